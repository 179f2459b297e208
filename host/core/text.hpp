// Small text helpers for messages and names: ASCII lower case (file extensions, label
// comparisons) and the capped list of names a one-line message shows.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <string>
#include <vector>

namespace cadenza {

// text with ASCII letters lower-cased; other bytes (UTF-8 included) as they are.
inline std::string ascii_lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// "'a', 'b', 'c' and 3 more": at most `shown` of `names`, quoted or not, so that a message
// stays one line however many names there are.
inline std::string name_list(const std::vector<std::string>& names, bool quoted = true, std::size_t shown = 5) {
  std::string text;
  for (std::size_t i = 0; i < std::min(names.size(), shown); ++i)
    text += (i ? ", " : "") + (quoted ? "'" + names[i] + "'" : names[i]);
  if (names.size() > shown) text += " and " + std::to_string(names.size() - shown) + " more";
  return text;
}

}  // namespace cadenza
