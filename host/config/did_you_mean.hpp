// Closest-match suggestions for misspelt config keys and values ("did you mean ...?").
//
// Invariants: comparisons are case-insensitive; a suggestion is offered only when it is
// reasonably close (an edit distance of about a third of the typed word, at least 1, or
// one word being the other's initials, as learning_rate and lr, or its start, as conv and
// conv2d); ties go to the candidate listed first.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cadenza {

// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), ignoring case.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `typed`, if one is close enough to be a likely typo.
std::optional<std::string> closest_match(std::string_view typed,
                                         const std::vector<std::string>& candidates);

// The same for dotted key paths ("train.learning_rate"): compares last components (a
// candidate in another section costs one more) and whole paths, and keeps the better.
std::optional<std::string> closest_key(std::string_view typed_path,
                                       const std::vector<std::string>& candidate_paths);

}  // namespace cadenza
