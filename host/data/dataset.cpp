// load_dataset: the synthetic set in memory, or a dataset index with its audio in the PCM
// cache; then the split, the check that no file is in two splits, and the report of
// skipped files.
#include "host/data/dataset.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>

#include "host/core/error.hpp"
#include "host/data/dataset_index.hpp"
#include "host/data/pcm_cache.hpp"
#include "host/data/split.hpp"
#include "host/data/synthetic_audio.hpp"

namespace cadenza {
namespace fs = std::filesystem;
namespace {

// Clips of equal length held in memory (the synthetic set).
class InMemoryAudio final : public ClipAudio {
 public:
  InMemoryAudio(std::vector<float> pcm, std::int64_t clip_length)
      : pcm_(std::move(pcm)), clip_length_(clip_length) {}
  void read(int clip, std::int64_t offset, std::int64_t count, float* out) const override {
    const std::int64_t available = std::clamp<std::int64_t>(clip_length_ - offset, 0, count);
    const float* first = pcm_.data() + std::size_t(clip) * std::size_t(clip_length_) + offset;
    std::copy_n(first, available, out);
    std::fill(out + available, out + count, 0.0f);
  }

 private:
  std::vector<float> pcm_;
  std::int64_t clip_length_;
};

// Clips read from the memory-mapped PCM cache: clip i is entry i.
class CachedAudio final : public ClipAudio {
 public:
  explicit CachedAudio(PcmCache cache) : cache_(std::move(cache)) {}
  void read(int clip, std::int64_t offset, std::int64_t count, float* out) const override {
    cache_.read(std::size_t(clip), offset, count, out);
  }

 private:
  PcmCache cache_;
};

Dataset synthetic_dataset(const DataConfig& config, std::uint64_t train_seed) {
  SyntheticClipSet set = generate_synthetic(config.synthetic, config.sample_rate, config.clip_seconds);
  Dataset d;
  d.label_names = set.label_names;
  d.multi_label = set.multi_label;
  d.targets = std::move(set.targets);
  d.primary_label = set.primary_label;
  d.lengths.assign(set.primary_label.size(), set.num_samples);
  for (int i = 0; i < set.num_clips(); ++i) d.clip_ids.push_back("synthetic." + std::to_string(i));
  const std::uint64_t seed = config.split_seed ? config.split_seed : train_seed;
  d.splits = stratified_split(d.primary_label, config.split_fractions, seed);
  d.audio = std::make_unique<InMemoryAudio>(std::move(set.pcm), set.num_samples);
  return d;
}

// Refuses an index whose splits share a file (a manifest listing one file twice, or two
// readers' lists overlapping): evaluation on training audio would be a silent leak.
void require_disjoint_splits(const DatasetIndex& index, const std::array<std::vector<int>, 3>& splits) {
  static const char* kSplitNames[] = {"train", "val", "test"};
  std::map<fs::path, int> split_of_file;
  for (int s = 0; s < 3; ++s) {
    for (int clip : splits[s]) {
      const auto [it, inserted] = split_of_file.emplace(index.clips[clip].path, s);
      if (!inserted && it->second != s)
        CADENZA_USER_ERROR("data: " << it->first.string() << " is in both the " << kSplitNames[it->second]
                                    << " and the " << kSplitNames[s]
                                    << " split; a file may be in one split only");
    }
  }
}

Dataset indexed_dataset(const DataConfig& config, std::uint64_t train_seed, int threads, Logger& log) {
  DatasetIndex index = index_dataset(config);
  const std::array<std::vector<int>, 3> splits = assign_splits(index, config, train_seed);
  require_disjoint_splits(index, splits);

  std::vector<fs::path> files;
  files.reserve(index.clips.size());
  for (const ClipEntry& clip : index.clips) files.push_back(clip.path);
  PcmCacheOptions options;
  options.cache_root = pcm_cache_root(config);
  options.sample_rate = config.sample_rate;
  options.threads = threads;
  PcmCache cache = PcmCache::open_or_build(files, options, log);

  Dataset d;
  d.label_names = index.label_names;
  d.multi_label = index.multi_label;
  d.skipped = index.skipped;
  for (std::size_t i = 0; i < index.clips.size(); ++i) {
    ClipEntry& clip = index.clips[i];
    d.clip_ids.push_back(clip.id);
    d.targets.insert(d.targets.end(), clip.targets.begin(), clip.targets.end());
    d.primary_label.push_back(clip.primary_label);
    d.lengths.push_back(cache.available(i) ? cache.length(i) : 0);
  }
  for (const std::string& failure : cache.failures()) d.skipped.push_back(failure);
  for (int s = 0; s < 3; ++s) {
    for (int clip : splits[s])
      if (d.lengths[clip] > 0) d.splits[s].push_back(clip);
  }
  d.audio = std::make_unique<CachedAudio>(std::move(cache));
  return d;
}

}  // namespace

int dataset_label_count(const DataConfig& config) {
  if (config.dataset == "synthetic") return static_cast<int>(synthetic_label_names(config.synthetic.num_classes).size());
  return static_cast<int>(index_dataset(config).label_names.size());
}

fs::path pcm_cache_root(const DataConfig& config) {
  if (!config.cache_dir.empty()) return absolute_path(config.cache_dir);
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "cadenza" / "pcm";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "cadenza" / "pcm";
  CADENZA_USER_ERROR("data.cache_dir: neither XDG_CACHE_HOME nor HOME is set; name a folder for the decoded-audio cache");
}

Dataset load_dataset(const Config& config, std::uint64_t train_seed, int threads, Logger& log) {
  Dataset d = config.data.dataset == "synthetic" ? synthetic_dataset(config.data, train_seed)
                                                 : indexed_dataset(config.data, train_seed, threads, log);
  d.name = config.data.dataset;
  d.sample_rate = config.data.sample_rate;
  return d;
}

}  // namespace cadenza
