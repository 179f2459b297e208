// load_dataset: the synthetic set in memory, or a dataset index with its audio in the PCM
// cache; then the splits (made, or a run's recorded ones), and warnings about labels a
// split has no clip of.
#include "host/data/dataset.hpp"

#include <algorithm>
#include <cstdlib>
#include <iomanip>
#include <map>
#include <optional>
#include <sstream>

#include "host/audio/time_pitch.hpp"
#include "host/core/error.hpp"
#include "host/core/hash.hpp"
#include "host/core/text.hpp"
#include "host/data/dataset_index.hpp"
#include "host/data/pcm_cache.hpp"
#include "host/data/split.hpp"
#include "host/data/synthetic_audio.hpp"
#include "host/io/atomic_file.hpp"
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

// A run's recorded splits applied to a dataset's clips (by id).
struct RecordedSplits {
  std::array<std::vector<int>, 3> splits;
  std::vector<int> unlisted;  // clips the record does not list: in no split
  int gone = 0;               // listed clips the dataset no longer has
};

// The record applied to the clips, or nullopt (with a warning) when it lists none of them:
// the run is evaluated on another dataset, which is split as the config says.
std::optional<RecordedSplits> apply_split_record(const std::vector<std::string>& clip_ids, const SplitRecord& record,
                                                 Logger& log) {
  RecordedSplits applied;
  std::size_t found = 0;
  for (int clip = 0; clip < static_cast<int>(clip_ids.size()); ++clip) {
    const auto it = record.split_of_clip.find(clip_ids[clip]);
    if (it == record.split_of_clip.end()) {
      applied.unlisted.push_back(clip);
      continue;
    }
    applied.splits[int(it->second)].push_back(clip);
    ++found;
  }
  applied.gone = static_cast<int>(record.split_of_clip.size() - found);
  if (found == 0 && !clip_ids.empty()) {
    log.warn("data: " + record.file.string() + " lists none of this dataset's clips; it is split as the config says");
    return std::nullopt;
  }
  return applied;
}

// Says how the dataset differs from the one the record was made from; `new_clips` counts
// the unlisted clips that could be used (decoded).
void warn_if_changed(const SplitRecord& record, std::size_t new_clips, int gone, Logger& log) {
  if (new_clips == 0 && gone == 0) return;
  std::string changes;
  if (new_clips > 0)
    changes += std::to_string(new_clips) + (new_clips == 1 ? " clip is" : " clips are") + " new (in none of its splits)";
  if (gone > 0)
    changes += (changes.empty() ? "" : ", ") + std::to_string(gone) + " of its clips " + (gone == 1 ? "is" : "are") +
               " gone";
  log.warn("data: the dataset differs from the one the run was split on (" + changes +
           "); the run's splits are kept (" + record.file.string() + ")");
}

// Warns about clips shorter than one example window by more than a tenth of it: their
// examples are padded with silence (as a PyTorch crop with padding would), which a user
// should know about. (FMA's 29.98 s clips in a 30 s window are not worth a warning.)
void warn_short_clips(const Dataset& d, const DataConfig& config, Logger& log) {
  const std::int64_t window = window_samples(config);
  std::size_t short_clips = 0, used = 0;
  std::int64_t shortest = window;
  for (int s = 0; s < 3; ++s)
    for (int clip : d.splits[s]) {
      ++used;
      if (d.lengths[clip] >= window - window / 10) continue;
      ++short_clips;
      shortest = std::min(shortest, d.lengths[clip]);
    }
  if (short_clips == 0) return;
  std::ostringstream text;
  text << std::setprecision(3) << "data: " << short_clips << " of " << used << " clips are shorter than "
       << "data.clip_seconds (" << config.clip_seconds << " s) by more than a tenth (the shortest is "
       << double(shortest) / config.sample_rate << " s): their examples are padded with silence";
  log.warn(text.str());
}

// Warns about a validation or test split that data.split_fractions asks for and that is
// empty: it rounded to no clip (a set of a handful of clips), or the clips `assigned` to it
// could not be decoded.
void warn_empty_random_splits(const Dataset& d, const DataConfig& config,
                              const std::array<std::vector<int>, 3>& assigned, Logger& log) {
  for (const Split split : {Split::val, Split::test}) {
    const double fraction = config.split_fractions[int(split)];
    if (fraction <= 0.0 || !d.indices(split).empty()) continue;
    const std::size_t lost = assigned[int(split)].size();
    std::ostringstream text;
    text << "data: the " << split_name(split) << " split is empty: ";
    if (lost > 0)
      text << "the " << count_of(lost, "clip") << " data.split_fractions gave it cannot be decoded";
    else
      text << "data.split_fractions gives it " << fraction << " of " << d.num_clips()
           << " clips, which rounds to none; use more clips or a larger fraction";
    log.warn(text.str());
  }
}

// Warns about labels without a training clip (their files all failed to decode, or too few
// for the split) or, when there is a validation split, without a validation clip.
void warn_labels_without_clips(const Dataset& d, Logger& log) {
  for (const Split split : {Split::train, Split::val}) {
    if (d.indices(split).empty()) continue;
    std::vector<bool> present(d.label_names.size(), false);
    for (int clip : d.indices(split))
      for (std::size_t label = 0; label < present.size(); ++label)
        if (d.clip_targets(clip)[label] > 0.0f) present[label] = true;
    std::vector<std::string> missing;
    for (std::size_t label = 0; label < present.size(); ++label)
      if (!present[label]) missing.push_back(d.label_names[label]);
    if (missing.empty()) continue;
    const bool many = missing.size() > 1;
    log.warn("data: no " + std::string(split_name(split)) + " clip has the label" + (many ? "s " : " ") +
             name_list(missing) +
             (split == Split::train ? std::string(": the model learns nothing of ") + (many ? "them" : "it") +
                                          " (are " + (many ? "their" : "its") + " files decodable?)"
                                    : std::string("; ") + (many ? "their" : "its") +
                                          " validation figures are undefined"));
  }
}

Dataset synthetic_dataset(const Config& full_config, std::uint64_t train_seed, const SplitRecord* recorded,
                          Logger& log) {
  const DataConfig& config = full_config.data;
  SyntheticClipSet set = generate_synthetic(config.synthetic, config.sample_rate, config.clip_seconds);
  Dataset d;
  d.label_names = set.label_names;
  d.multi_label = set.multi_label;
  d.targets = std::move(set.targets);
  d.primary_label = set.primary_label;
  d.lengths.assign(set.primary_label.size(), set.num_samples);
  for (int i = 0; i < set.num_clips(); ++i) d.clip_ids.push_back("synthetic." + std::to_string(i));
  d.original_clips = d.num_clips();
  const std::optional<RecordedSplits> applied =
      recorded ? apply_split_record(d.clip_ids, *recorded, log) : std::nullopt;
  if (applied) {
    d.splits = applied->splits;
    warn_if_changed(*recorded, applied->unlisted.size(), applied->gone, log);
  } else {
    const std::uint64_t seed = config.split_seed ? config.split_seed : train_seed;
    d.splits = stratified_split(d.primary_label, config.split_fractions, seed);
    warn_empty_random_splits(d, config, d.splits, log);
  }
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

Dataset indexed_dataset(const Config& full_config, std::uint64_t train_seed, int threads, Logger& log,
                        const SplitRecord* recorded, const std::function<bool()>& stop_requested) {
  const DataConfig& config = full_config.data;
  DatasetIndex index = index_dataset(config);
  // The config check knows multi-label datasets by their keys; a CSV is known once read.
  if (index.multi_label && config.balance != "none")
    CADENZA_USER_ERROR("data.balance: expected none for multi-label data (classes are balanced for single-label "
                       "data only, and " << (config.manifest.empty() ? "this dataset" : config.manifest)
                                          << " has several labels per clip), got '" << config.balance << "'");
  for (const std::string& note : index.notes) log.info("data: " + note);
  for (const std::string& warning : index.warnings) log.warn("data: " + warning);
  std::vector<std::string> ids;
  for (const ClipEntry& clip : index.clips) ids.push_back(clip.id);
  const std::optional<RecordedSplits> applied = recorded ? apply_split_record(ids, *recorded, log) : std::nullopt;
  const std::array<std::vector<int>, 3> splits = applied ? applied->splits : assign_splits(index, config, train_seed);

  std::vector<fs::path> files;
  files.reserve(index.clips.size());
  for (const ClipEntry& clip : index.clips) files.push_back(clip.path);
  PcmCacheOptions options;
  options.cache_root = pcm_cache_root(config);
  options.sample_rate = config.sample_rate;
  options.threads = threads;
  options.stop_requested = stop_requested;
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
  d.original_clips = d.num_clips();
  for (int s = 0; s < 3; ++s) {
    for (int clip : splits[s])
      if (d.lengths[clip] > 0) d.splits[s].push_back(clip);
  }
  if (applied) {
    const auto decoded = [&](int clip) { return d.lengths[clip] > 0; };
    warn_if_changed(*recorded, std::count_if(applied->unlisted.begin(), applied->unlisted.end(), decoded),
                    applied->gone, log);
    // A dataset's own split (a manifest's split column, an official list) edited since.
    std::size_t moved = 0;
    for (int s = 0; s < 3; ++s)
      for (int clip : applied->splits[s]) moved += index.clips[clip].split >= 0 && index.clips[clip].split != s;
    if (moved > 0)
      log.warn("data: " + std::to_string(moved) + (moved == 1 ? " clip has" : " clips have") +
               " another split in the dataset than in the run's record; the run's is kept (" +
               recorded->file.string() + ")");
  }
  if (!applied && !has_own_splits(index)) warn_empty_random_splits(d, config, splits, log);
  warn_short_clips(d, config, log);
  warn_labels_without_clips(d, log);

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

Dataset load_dataset(const Config& config, std::uint64_t train_seed, int threads, Logger& log,
                     const SplitRecord* recorded, const std::function<bool()>& stop_requested) {
  Dataset d = config.data.dataset == "synthetic"
                  ? synthetic_dataset(config, train_seed, recorded, log)
                  : indexed_dataset(config, train_seed, threads, log, recorded, stop_requested);
  d.name = config.data.dataset;
  d.sample_rate = config.data.sample_rate;
  return d;
}

void warn_skipped_files(const Dataset& data, Logger& log, const fs::path& list) {
  if (data.skipped.empty()) return;
  constexpr std::size_t kShown = 3;
  std::string line = "data: " + count_of(data.skipped.size(), "file") +
                     " left out (broken, unlabelled, undecodable, or outside the split or tags chosen): ";
  for (std::size_t i = 0; i < std::min(kShown, data.skipped.size()); ++i) line += (i > 0 ? "; " : "") + data.skipped[i];
  if (data.skipped.size() > kShown) line += "; and " + std::to_string(data.skipped.size() - kShown) + " more";
  if (!list.empty()) line += "; all in " + list.string();
  log.warn(line);
}

void require_some_training_clip(const Dataset& data, const std::string& where_listed) {
  if (!data.indices(Split::train).empty()) return;
  if (data.skipped.empty()) CADENZA_USER_ERROR("data: no training clip (the training split is empty)");
  CADENZA_USER_ERROR("data: no training clip; every training file was left out ("
                     << data.skipped.size() << " " << where_listed << ")");
}

void write_skipped_files(const Dataset& data, const fs::path& list) {
  if (data.skipped.empty()) {
    fs::remove(list);
    return;
  }
  std::string text;
  for (const std::string& line : data.skipped) text += line + "\n";
  write_file_atomically(list, text);
}

}  // namespace cadenza
