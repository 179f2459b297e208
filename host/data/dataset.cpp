// load_dataset: the synthetic set in memory, or a dataset index with its audio in the PCM
// cache; then the split, the check that no file is in two splits, and the report of
// skipped files.
#include "host/data/dataset.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>

#include "host/audio/time_pitch.hpp"
#include "host/core/error.hpp"
#include "host/core/hash.hpp"
#include "host/data/dataset_index.hpp"
#include "host/data/pcm_cache.hpp"
#include "host/data/split.hpp"
#include "host/data/synthetic_audio.hpp"
#include "host/math/random_math.hpp"

namespace cadenza {
namespace fs = std::filesystem;
namespace {

// Clips held in memory back to back (the synthetic set and its offline copies).
class InMemoryAudio final : public ClipAudio {
 public:
  InMemoryAudio(std::vector<float> pcm, const std::vector<std::int64_t>& lengths) : pcm_(std::move(pcm)) {
    starts_.push_back(0);
    for (std::int64_t length : lengths) starts_.push_back(starts_.back() + length);
    CADENZA_CHECK(starts_.back() == std::int64_t(pcm_.size()), "clip lengths do not add up to the samples");
  }
  void read(int clip, std::int64_t offset, std::int64_t count, float* out) const override {
    const std::int64_t length = starts_[clip + 1] - starts_[clip];
    const std::int64_t available = std::clamp<std::int64_t>(length - offset, 0, count);
    std::copy_n(pcm_.data() + starts_[clip] + offset, available, out);
    std::fill(out + available, out + count, 0.0f);
  }

 private:
  std::vector<float> pcm_;
  std::vector<std::int64_t> starts_;  // clip c is pcm_[starts_[c], starts_[c + 1])
};

// Clips read from the memory-mapped PCM caches: clip i < originals.size() is entry i of
// the originals' cache, clip originals.size() + j entry j of the copies' cache.
class CachedAudio final : public ClipAudio {
 public:
  CachedAudio(PcmCache originals, std::optional<PcmCache> copies)
      : originals_(std::move(originals)), copies_(std::move(copies)) {}
  void read(int clip, std::int64_t offset, std::int64_t count, float* out) const override {
    const std::size_t i = std::size_t(clip);
    if (i < originals_.size()) originals_.read(i, offset, count, out);
    else copies_->read(i - originals_.size(), offset, count, out);
  }

 private:
  PcmCache originals_;
  std::optional<PcmCache> copies_;
};

// One offline-augmented copy of a training clip.
struct OfflineCopy {
  int original = 0;
  double stretch = 1.0, semitones = 0.0;
};

// augment.offline_copies copies of every training clip, each with a stretch and a shift
// drawn uniformly from the configured ranges. The draws depend on the offline seed and
// the clip's id, so a clip keeps its copies when others are added or removed.
std::vector<OfflineCopy> plan_offline_copies(const Dataset& d, const AugmentConfig& augment) {
  std::vector<OfflineCopy> copies;
  for (int clip : d.indices(Split::train)) {
    const std::uint64_t stream = fnv1a_64(d.clip_ids[clip]);
    for (int j = 0; j < augment.offline_copies; ++j) {
      const auto draw = [&](int which, const std::array<double, 2>& range) {
        return range[0] + (range[1] - range[0]) * double(uniform01(augment.offline_seed, stream, 2 * j + which));
      };
      copies.push_back({clip, draw(0, augment.time_stretch), draw(1, augment.pitch_shift)});
    }
  }
  return copies;
}

// Appends the copies as training clips with their originals' labels (lengths are set by
// the caller).
void append_copies(Dataset& d, const std::vector<OfflineCopy>& copies) {
  const std::size_t labels = d.label_names.size();
  for (std::size_t j = 0; j < copies.size(); ++j) {
    const int original = copies[j].original;
    d.clip_ids.push_back(d.clip_ids[original] + "+copy" + std::to_string(j));
    d.targets.insert(d.targets.end(), d.clip_targets(original), d.clip_targets(original) + labels);
    d.primary_label.push_back(d.primary_label[original]);
  }
}

Dataset synthetic_dataset(const Config& full_config, std::uint64_t train_seed) {
  const DataConfig& config = full_config.data;
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
  const std::vector<OfflineCopy> copies = plan_offline_copies(d, full_config.augment);
  append_copies(d, copies);
  for (const OfflineCopy& copy : copies) {
    const auto first = set.pcm.begin() + std::ptrdiff_t(copy.original) * set.num_samples;
    const std::vector<float> stretched = stretch_and_shift(std::vector<float>(first, first + set.num_samples),
                                                           config.sample_rate, copy.stretch, copy.semitones);
    set.pcm.insert(set.pcm.end(), stretched.begin(), stretched.end());
    d.splits[int(Split::train)].push_back(d.num_clips());
    d.lengths.push_back(std::int64_t(stretched.size()));
  }
  d.audio = std::make_unique<InMemoryAudio>(std::move(set.pcm), d.lengths);
  return d;
}

// Refuses an index whose splits share a file (a manifest listing one file twice, or two
// readers' lists overlapping): evaluation on training audio would be a silent leak.
void require_disjoint_splits(const DatasetIndex& index, const std::array<std::vector<int>, 3>& splits) {
  std::map<fs::path, int> split_of_file;
  for (int s = 0; s < 3; ++s) {
    for (int clip : splits[s]) {
      const auto [it, inserted] = split_of_file.emplace(index.clips[clip].path, s);
      if (!inserted && it->second != s)
        CADENZA_USER_ERROR("data: " << it->first.string() << " is in both the " << split_name(Split(it->second))
                                    << " and the " << split_name(Split(s))
                                    << " split; a file may be in one split only");
    }
  }
}

Dataset indexed_dataset(const Config& full_config, std::uint64_t train_seed, int threads, Logger& log) {
  const DataConfig& config = full_config.data;
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

  const std::vector<OfflineCopy> copies = plan_offline_copies(d, full_config.augment);
  std::optional<PcmCache> copy_cache;
  if (!copies.empty()) {
    std::vector<PcmSource> sources;
    for (const OfflineCopy& copy : copies) sources.push_back({files[copy.original], copy.stretch, copy.semitones});
    log.info("offline augmentation: " + std::to_string(copies.size()) + " stretched and pitch-shifted copies of " +
             std::to_string(d.indices(Split::train).size()) + " training clips");
    copy_cache = PcmCache::open_or_build(sources, options, log);
    append_copies(d, copies);
    for (std::size_t j = 0; j < copies.size(); ++j) {
      const bool available = copy_cache->available(j);
      if (available) d.splits[int(Split::train)].push_back(d.num_clips());
      d.lengths.push_back(available ? copy_cache->length(j) : 0);
    }
    for (const std::string& failure : copy_cache->failures()) d.skipped.push_back(failure);
  }
  d.audio = std::make_unique<CachedAudio>(std::move(cache), std::move(copy_cache));
  return d;
}

}  // namespace

std::unique_ptr<ClipAudio> make_in_memory_audio(std::vector<float> pcm, const std::vector<std::int64_t>& lengths) {
  return std::make_unique<InMemoryAudio>(std::move(pcm), lengths);
}

int dataset_label_count(const DataConfig& config) {
  if (config.dataset == "synthetic") return static_cast<int>(synthetic_label_names(config.synthetic.num_classes).size());
  // Label sets the config itself fixes, so a model can be summarised without the data.
  if (config.dataset == "mtat") {
    const std::optional<std::size_t> top = mtat_top_count(config.tags);
    return static_cast<int>(top ? *top : config.tags.size());
  }
  if (config.dataset == "fma" && config.labels == "genre_top" && !config.genres.empty())
    return static_cast<int>(config.genres.size());
  if (config.dataset == "gtzan" && !fs::exists(absolute_path(config.root))) return 10;  // its ten genres
  return static_cast<int>(index_dataset(config).label_names.size());
}

bool dataset_multi_label(const DataConfig& config) {
  if (config.dataset == "synthetic") return config.synthetic.multi_label;
  if (config.dataset == "mtat") return true;
  if (config.dataset == "gtzan") return false;
  return index_dataset(config).multi_label;
}

fs::path pcm_cache_root(const DataConfig& config) {
  if (!config.cache_dir.empty()) return absolute_path(config.cache_dir);
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "cadenza" / "pcm";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "cadenza" / "pcm";
  CADENZA_USER_ERROR("data.cache_dir: neither XDG_CACHE_HOME nor HOME is set; name a folder for the decoded-audio cache");
}

Dataset load_dataset(const Config& config, std::uint64_t train_seed, int threads, Logger& log) {
  Dataset d = config.data.dataset == "synthetic" ? synthetic_dataset(config, train_seed)
                                                 : indexed_dataset(config, train_seed, threads, log);
  d.name = config.data.dataset;
  d.sample_rate = config.data.sample_rate;
  return d;
}

}  // namespace cadenza
