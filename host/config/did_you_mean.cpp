// Closest-match suggestions: edit distance, initials and the "close enough" threshold.
//
// Invariants: see did_you_mean.hpp; nothing here depends on the config schema.
#include "host/config/did_you_mean.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

namespace cadenza {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "learning_rate" -> "lr": the first letter of each '_'-separated word.
std::string initials(std::string_view word) {
  std::string out;
  bool at_word_start = true;
  for (char c : word) {
    if (c == '_') {
      at_word_start = true;
    } else if (at_word_start) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      at_word_start = false;
    }
  }
  return out;
}

// The largest distance still taken for a typo of `typed`.
std::size_t tolerance(std::string_view typed) { return std::max<std::size_t>(1, typed.size() / 3); }

// Whether one word starts with the other, the shorter having at least 3 letters ("conv" of
// "conv2d").
bool is_prefix_of_other(std::string_view a, std::string_view b) {
  const std::string shorter = lower(a.size() <= b.size() ? a : b);
  const std::string longer = lower(a.size() <= b.size() ? b : a);
  return shorter.size() >= 3 && longer.compare(0, shorter.size(), shorter) == 0;
}

// Distance used for ranking; an abbreviation (one is the other's initials or its start)
// counts as 1.
std::size_t word_distance(std::string_view typed, std::string_view candidate) {
  const std::size_t distance = edit_distance(typed, candidate);
  const bool abbreviation =
      (typed.find('_') != std::string_view::npos && initials(typed) == lower(candidate)) ||
      (candidate.find('_') != std::string_view::npos && initials(candidate) == lower(typed)) ||
      is_prefix_of_other(typed, candidate);
  return abbreviation ? std::min<std::size_t>(distance, 1) : distance;
}

std::string_view last_component(std::string_view path) {
  const std::size_t dot = path.rfind('.');
  return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

std::string_view parent_of(std::string_view path) {
  const std::size_t dot = path.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : path.substr(0, dot);
}

}  // namespace

std::size_t edit_distance(std::string_view a_text, std::string_view b_text) {
  const std::string a = lower(a_text);
  const std::string b = lower(b_text);
  // rows[i][j]: distance between the first i characters of a and the first j of b.
  std::vector<std::vector<std::size_t>> rows(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) rows[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) rows[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitution = a[i - 1] == b[j - 1] ? 0 : 1;
      std::size_t best =
          std::min({rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + substitution});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        best = std::min(best, rows[i - 2][j - 2] + 1);
      }
      rows[i][j] = best;
    }
  }
  return rows[a.size()][b.size()];
}

std::optional<std::string> closest_match(std::string_view typed,
                                         const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const std::string& candidate : candidates) {
    const std::size_t distance = word_distance(typed, candidate);
    if (distance <= tolerance(typed) && distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::optional<std::string> closest_key(std::string_view typed_path,
                                       const std::vector<std::string>& candidate_paths) {
  const std::string_view typed_last = last_component(typed_path);
  std::optional<std::string> best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const std::string& candidate : candidate_paths) {
    const std::size_t section_change = parent_of(typed_path) == parent_of(candidate) ? 0 : 1;
    const std::size_t by_last_component =
        word_distance(typed_last, last_component(candidate)) + section_change;
    const std::size_t by_whole_path = edit_distance(typed_path, candidate);
    const std::size_t distance = std::min(by_last_component, by_whole_path);
    if (distance <= tolerance(typed_last) && distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

}  // namespace cadenza
