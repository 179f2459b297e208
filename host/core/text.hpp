// Small text helpers for messages and names: ASCII lower case (file extensions, label
// comparisons), the capped list of names a one-line message shows, durations as a clock
// shows them, and a float in the digits that read back as the same float.
#pragma once

#include <algorithm>
#include <cctype>
#include <concepts>
#include <cstddef>
#include <cstdio>
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

// "1 epoch", "3 epochs": a count and its noun, plural with an s where the count is not 1.
template <std::integral Count>
std::string count_of(Count count, const std::string& noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

// "4:05" or, from an hour on, "1:04:05": seconds rounded, negative ones shown as 0:00.
inline std::string format_duration(double seconds) {
  const auto total = static_cast<long long>(std::max(0.0, seconds) + 0.5);
  char text[32];
  if (total >= 3600)
    std::snprintf(text, sizeof(text), "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  else
    std::snprintf(text, sizeof(text), "%lld:%02lld", total / 60, total % 60);
  return text;
}

// Nine significant digits, which read back as the same float (a low score keeps its digits:
// 3.20000011e-07, not 0.000000): for scores written to CSV.
inline std::string float_text(float value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.9g", value);
  return text;
}

}  // namespace cadenza
