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

// Splits `total` into integer parts proportional to `weights` (each at most its `room`), by
// largest remainder: floors first, then one more to the parts with the largest fractional
// part (ties in `order`), round after round while any is left. Needs sum(room) >= total.
std::vector<std::size_t> apportion(std::size_t total, const std::vector<double>& weights,
                                   const std::vector<std::size_t>& room, const std::vector<std::size_t>& order) {
  double weight_sum = 0.0;
  for (const double w : weights) weight_sum += w;
  std::vector<std::size_t> parts(weights.size(), 0);
  std::vector<double> remainder(weights.size(), 0.0);
  std::size_t given = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const double share = weight_sum > 0.0 ? double(total) * weights[i] / weight_sum : 0.0;
    parts[i] = std::min(room[i], static_cast<std::size_t>(std::floor(share)));
    remainder[i] = share - std::floor(share);
    given += parts[i];
  }
  std::vector<std::size_t> by_remainder = order;
  std::stable_sort(by_remainder.begin(), by_remainder.end(),
                   [&](std::size_t a, std::size_t b) { return remainder[a] > remainder[b]; });
  while (given < total) {
    for (const std::size_t i : by_remainder) {
      if (given == total) break;
      if (parts[i] < room[i]) {
        ++parts[i];
        ++given;
      }
    }
  }
  return parts;
}

}  // namespace

std::array<std::vector<int>, 3> stratified_split(const std::vector<int>& primary_label,
                                                 std::array<double, 3> fractions,
                                                 std::uint64_t seed) {
  validate_fractions(fractions);

  std::map<int, std::vector<int>> members;  // label -> its clip indices, ascending
  for (int i = 0; i < static_cast<int>(primary_label.size()); ++i) {
    members[primary_label[i]].push_back(i);
  }
  std::vector<std::vector<int>> classes;  // shuffled indices, in label order
  std::vector<std::uint64_t> streams;
  for (auto& [label, indices] : members) {
    const std::uint64_t stream =
        hash64(kSplitStreamTag, static_cast<std::uint64_t>(static_cast<std::int64_t>(label)));
    for (std::size_t i = indices.size(); i > 1; --i) {
      const std::size_t j = uniform_index(seed, stream, i, i);
      std::swap(indices[i - 1], indices[j]);
    }
    classes.push_back(std::move(indices));
    streams.push_back(stream);
  }
  // Ties between classes go in an order drawn from the seed, not always to the first labels.
  std::vector<std::size_t> class_order(classes.size());
  for (std::size_t c = 0; c < classes.size(); ++c) class_order[c] = c;
  std::sort(class_order.begin(), class_order.end(), [&](std::size_t a, std::size_t b) {
    return hash64(seed, streams[a]) < hash64(seed, streams[b]);
  });

  // The split totals: the fractions of all clips, rounded by largest remainder.
  const std::size_t n = primary_label.size();
  const std::vector<std::size_t> totals = apportion(n, {fractions[0], fractions[1], fractions[2]}, {n, n, n}, {0, 1, 2});
  // Train then validation shared among the classes by size, within what each has left.
  std::vector<double> sizes;
  std::vector<std::size_t> left;
  for (const std::vector<int>& indices : classes) {
    sizes.push_back(double(indices.size()));
    left.push_back(indices.size());
  }
  std::vector<std::size_t> train = apportion(totals[0], sizes, left, class_order);
  for (std::size_t c = 0; c < classes.size(); ++c) left[c] -= train[c];
  std::vector<std::size_t> val = apportion(totals[1], sizes, left, class_order);

  std::array<std::vector<int>, 3> splits;
  for (std::size_t c = 0; c < classes.size(); ++c) {
    const std::vector<int>& indices = classes[c];
    const auto train_end = indices.begin() + std::ptrdiff_t(train[c]);
    const auto val_end = train_end + std::ptrdiff_t(val[c]);
    splits[0].insert(splits[0].end(), indices.begin(), train_end);
    splits[1].insert(splits[1].end(), train_end, val_end);
    splits[2].insert(splits[2].end(), val_end, indices.end());
  }
  for (std::vector<int>& split : splits) std::sort(split.begin(), split.end());
  return splits;
}

}  // namespace cadenza
