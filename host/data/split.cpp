// stratified_split: per-class shuffle and cut (see split.hpp).
#include "host/data/split.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "host/core/error.hpp"
#include "host/math/random_math.hpp"

namespace cadenza {
namespace {

// Class `label` is shuffled with stream hash64(kSplitStreamTag, label) of the split seed,
// apart from the streams other users of the same seed derive.
constexpr std::uint64_t kSplitStreamTag = 0x73706c6974;  // "split"

void validate_fractions(const std::array<double, 3>& fractions) {
  double sum = 0.0;
  for (const double f : fractions) {
    if (!std::isfinite(f) || f < 0.0) {
      CADENZA_USER_ERROR("data.split_fractions: expected three non-negative fractions "
                         "[train, val, test], got ["
                         << fractions[0] << ", " << fractions[1] << ", " << fractions[2] << "]");
    }
    sum += f;
  }
  if (std::abs(sum - 1.0) > 1e-6) {
    CADENZA_USER_ERROR("data.split_fractions: the fractions [train, val, test] must sum to 1, "
                       "got " << fractions[0] << " + " << fractions[1] << " + " << fractions[2]
                       << " = " << sum);
  }
  if (!(fractions[0] > 0.0)) {
    CADENZA_USER_ERROR("data.split_fractions: the train fraction must be positive, got "
                       << fractions[0]);
  }
}

}  // namespace

std::array<std::vector<int>, 3> stratified_split(const std::vector<int>& primary_label,
                                                 std::array<double, 3> fractions,
                                                 std::uint64_t seed) {
  validate_fractions(fractions);
  const double total = fractions[0] + fractions[1] + fractions[2];

  std::map<int, std::vector<int>> members;  // label -> its clip indices, ascending
  for (int i = 0; i < static_cast<int>(primary_label.size()); ++i) {
    members[primary_label[i]].push_back(i);
  }

  std::array<std::vector<int>, 3> splits;
  for (auto& [label, indices] : members) {
    const std::uint64_t stream =
        hash64(kSplitStreamTag, static_cast<std::uint64_t>(static_cast<std::int64_t>(label)));
    for (std::size_t i = indices.size(); i > 1; --i) {
      const std::size_t j = uniform_index(seed, stream, i, i);
      std::swap(indices[i - 1], indices[j]);
    }
    const double n = static_cast<double>(indices.size());
    const std::size_t train_end =
        static_cast<std::size_t>(std::llround(n * fractions[0] / total));
    const std::size_t val_end =
        fractions[2] == 0.0
            ? indices.size()
            : static_cast<std::size_t>(std::llround(n * (fractions[0] + fractions[1]) / total));
    splits[0].insert(splits[0].end(), indices.begin(), indices.begin() + train_end);
    splits[1].insert(splits[1].end(), indices.begin() + train_end, indices.begin() + val_end);
    splits[2].insert(splits[2].end(), indices.begin() + val_end, indices.end());
  }
  for (std::vector<int>& split : splits) std::sort(split.begin(), split.end());
  return splits;
}

}  // namespace cadenza
