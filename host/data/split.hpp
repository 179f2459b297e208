// Stratified train / validation / test split of a labelled clip set.
//
// Invariants: every index 0..n-1 is in exactly one of the three lists; each list is
// sorted; each split holds its fraction of all n clips rounded by largest remainder (so a
// split of fraction 0 is empty, and a small set still gets a validation clip where its
// fraction asks for one), shared among the classes in proportion to their sizes as
// scikit-learn's StratifiedShuffleSplit shares it; the result depends only on the labels,
// the fractions and the seed (the shuffle uses the counter RNG of
// host/math/random_math.hpp, one stream per class).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace cadenza {

// Splits the indices of `primary_label` (one label per clip, any int) into train, val and
// test by `fractions` {train, val, test}: the split totals are n * f rounded by largest
// remainder; train's total, then val's, is shared among the classes by their sizes
// (largest remainder within what a class has left; ties in an order drawn from the seed);
// each class's indices are shuffled (Fisher-Yates) and cut at its train and val counts.
// Throws UserError naming data.split_fractions unless every fraction is finite and
// non-negative, they sum to 1 within 1e-6, and the train fraction is positive.
std::array<std::vector<int>, 3> stratified_split(const std::vector<int>& primary_label,
                                                 std::array<double, 3> fractions,
                                                 std::uint64_t seed);

}  // namespace cadenza
