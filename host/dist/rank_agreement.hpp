// Checking, before a job trains, that every rank was given the same settings: ranks that
// differ (a --set on one command line only) would take different steps, and the job would
// report figures of no model.
//
// Invariants:
// - Every rank calls it with entries under the same keys in the same order when the job
//   is sound; a rank whose entries differ in number is found by the first all-reduce,
//   before the second could be of another length.
// - Every rank reaches the same verdict from the same sums, so all of them throw (or none).
// - Exact: a value is an XXH3-64 hash in 8-bit chunks x; over n ranks, n·Σx² = (Σx)² holds
//   only when every rank's x is the same (Cauchy–Schwarz), and both sides stay below 2^53
//   (exact in a double) up to 2^18 ranks.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "host/dist/communicator.hpp"

namespace cadenza {

// UserError naming the first key whose value differs between the ranks, with this rank's
// value and `advice`; one host all-reduce for the count and one for the values.
void require_same_on_every_rank(const std::vector<std::pair<std::string, std::string>>& entries,
                                Communicator& communicator, const std::string& advice);

}  // namespace cadenza
