// require_same_on_every_rank (see rank_agreement.hpp).
#include "host/dist/rank_agreement.hpp"

#include <cstdint>
#include <xxhash.h>

#include "host/core/error.hpp"

namespace cadenza {
namespace {

constexpr int kChunks = 8;  // 8-bit chunks of a 64-bit hash

// Appends x and x² for each chunk of `value`.
void append_chunks(std::uint64_t value, std::vector<double>& sums) {
  for (int i = 0; i < kChunks; ++i) {
    const double x = double((value >> (8 * i)) & 0xff);
    sums.push_back(x);
    sums.push_back(x * x);
  }
}

// Whether the summed chunks starting at `first` came from one value on all n ranks.
bool all_equal(const std::vector<double>& sums, std::size_t first, double n) {
  for (int i = 0; i < kChunks; ++i) {
    const double sum = sums[first + 2 * i], squares = sums[first + 2 * i + 1];
    if (n * squares != sum * sum) return false;
  }
  return true;
}

}  // namespace

void require_same_on_every_rank(const std::vector<std::pair<std::string, std::string>>& entries,
                                Communicator& communicator, const std::string& advice) {
  const double n = communicator.world_size();
  if (n <= 1) return;
  std::vector<double> count;
  append_chunks(entries.size(), count);
  communicator.all_reduce_host(count);
  if (!all_equal(count, 0, n))
    CADENZA_USER_ERROR("the ranks were given settings of different shapes (" << entries.size()
                                                                             << " values on rank " << communicator.rank()
                                                                             << "); " << advice);
  std::vector<double> sums;
  sums.reserve(entries.size() * 2 * kChunks);
  for (const auto& [key, value] : entries) {
    const std::string text = key + '\0' + value;
    append_chunks(XXH3_64bits(text.data(), text.size()), sums);
  }
  communicator.all_reduce_host(sums);
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (!all_equal(sums, i * 2 * kChunks, n))
      CADENZA_USER_ERROR(entries[i].first << " differs between the ranks (rank " << communicator.rank() << ": "
                                          << entries[i].second << "); " << advice);
}

}  // namespace cadenza
