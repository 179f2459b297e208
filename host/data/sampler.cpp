// Training and evaluation samplers; see sampler.hpp.
#include "host/data/sampler.hpp"

#include <algorithm>
#include <map>

#include "host/core/error.hpp"
#include "host/math/random_math.hpp"

namespace cadenza {
namespace {

// Streams of the sampler's seed.
constexpr std::uint64_t kOrderStream = 11, kBalanceStream = 12, kCropStream = 13;

void shuffle(std::vector<int>& values, std::uint64_t seed, std::uint64_t stream) {
  for (std::size_t i = values.size(); i > 1; --i)
    std::swap(values[i - 1], values[uniform_index(seed, stream, i, i)]);
}

// Clips per class brought to `target` each: repeated in shuffled rounds, or cut.
std::vector<int> balanced(const std::vector<int>& clips, const std::vector<int>& primary_label,
                          const std::string& mode, std::uint64_t seed, int epoch) {
  std::map<int, std::vector<int>> by_class;
  for (int clip : clips) by_class[primary_label.at(clip)].push_back(clip);
  std::size_t target = mode == "oversample" ? 0 : clips.size();
  for (const auto& [label, members] : by_class)
    target = mode == "oversample" ? std::max(target, members.size()) : std::min(target, members.size());
  std::vector<int> out;
  for (auto& [label, members] : by_class) {
    std::vector<int> pool;
    for (std::uint64_t round = 0; pool.size() < target; ++round) {
      std::vector<int> copy = members;
      shuffle(copy, seed, hash64(hash64(kBalanceStream, std::uint64_t(epoch)), hash64(std::uint64_t(label), round)));
      pool.insert(pool.end(), copy.begin(), copy.end());
    }
    pool.resize(target);
    out.insert(out.end(), pool.begin(), pool.end());
  }
  return out;
}

}  // namespace

std::vector<ClipWindow> training_epoch(const std::vector<int>& clips, const std::vector<std::int64_t>& lengths,
                                       const std::vector<int>& primary_label, std::int64_t window,
                                       const TrainingSamplerOptions& options, int epoch) {
  CADENZA_CHECK(options.world_size >= 1 && options.rank >= 0 && options.rank < options.world_size &&
                    options.batch >= 1,
                "rank " << options.rank << " of " << options.world_size << ", batch " << options.batch);
  CADENZA_CHECK(window > 0, "window " << window);
  if (options.balance != "none" && options.balance != "oversample" && options.balance != "undersample")
    CADENZA_USER_ERROR("data.balance: expected none, oversample or undersample, got '" << options.balance << "'");
  std::vector<int> order = options.balance == "none" ? clips : balanced(clips, primary_label, options.balance,
                                                                          options.seed, epoch);
  shuffle(order, options.seed, hash64(kOrderStream, std::uint64_t(epoch)));
  const std::size_t batch = std::size_t(options.batch), global_batch = batch * std::size_t(options.world_size);
  const std::size_t per_rank = order.size() / global_batch * batch;
  std::vector<ClipWindow> examples;
  examples.reserve(per_rank);
  for (std::size_t k = 0; k < per_rank; ++k) {
    const std::size_t position = k / batch * global_batch + std::size_t(options.rank) * batch + k % batch;
    const int clip = order[position];
    const std::int64_t room = std::max<std::int64_t>(0, lengths.at(clip) - window);
    const std::uint64_t draw = uniform_index(options.seed, hash64(kCropStream, std::uint64_t(epoch)),
                                             position, std::uint64_t(room) + 1);
    examples.push_back({clip, std::int64_t(draw)});
  }
  return examples;
}

std::vector<ClipWindow> evaluation_windows(const std::vector<int>& clips, const std::vector<std::int64_t>& lengths,
                                           std::int64_t window, int windows_per_clip, std::int64_t drop) {
  CADENZA_CHECK(window > 0 && windows_per_clip >= 0 && drop >= 0,
                "window " << window << ", windows " << windows_per_clip << ", drop " << drop);
  std::vector<ClipWindow> out;
  for (int clip : clips) {
    const std::int64_t length = lengths.at(clip);
    // Dropping the ends only when enough remains for one window.
    const std::int64_t start = length - 2 * drop >= window ? drop : 0;
    const std::int64_t usable = length - 2 * start;
    const std::int64_t room = std::max<std::int64_t>(0, usable - window);
    if (windows_per_clip == 0) {
      for (std::int64_t offset = 0; offset <= room; offset += window) out.push_back({clip, start + offset});
      continue;
    }
    const std::int64_t hop = room / windows_per_clip;
    for (int i = 0; i < windows_per_clip; ++i) out.push_back({clip, start + i * hop});
  }
  return out;
}

}  // namespace cadenza
