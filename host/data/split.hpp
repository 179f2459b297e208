// Stratified train / validation / test split of a labelled clip set.
//
// Invariants: every index 0..n-1 is in exactly one of the three lists; each list is
// sorted; within every class the split counts are the class size cut at the rounded
// cumulative fractions (so they add up to the class size and a split of fraction 0 is
// empty); the result depends only on the labels, the fractions and the seed (the shuffle
// uses the counter RNG of host/math/random_math.hpp, one stream per class).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace cadenza {

// Splits the indices of `primary_label` (one label per clip, any int) into train, val and
// test by `fractions` {train, val, test}, per class: shuffle the class's indices
// (Fisher-Yates), then cut at round(n * f_train) and round(n * (f_train + f_val)).
// Throws UserError naming data.split_fractions unless every fraction is finite and
// non-negative, they sum to 1 within 1e-6, and the train fraction is positive.
std::array<std::vector<int>, 3> stratified_split(const std::vector<int>& primary_label,
                                                 std::array<double, 3> fractions,
                                                 std::uint64_t seed);

}  // namespace cadenza
