// The dataset a config names (data.dataset), ready to train on: every clip's targets and
// length, the splits, and the clips' audio at data.sample_rate (generated in memory for
// synthetic, memory-mapped from the PCM cache for datasets read from files).
//
// Invariants:
// - Splits are made by clip before any cropping or framing, so no audio of a validation
//   or test clip is ever seen in training; each clip is in at most one split, and no
//   audio file is in two splits (an index lists each file once: drop_duplicate_files).
// - Clips whose file could not be decoded are in no split; they and the entries the index
//   skipped are listed in `skipped`. All clips in a split have length > 0.
// - Offline-augmented copies (augment.offline_copies) come after the original clips
//   (clips [0, original_clips)) and are training clips only, with their original's targets.
// - Clip ids are unique. With a run's split record (split_record.hpp) every clip keeps
//   the split the run gave it, and clips the record does not list are in no split.
// - The audio of a clip is a pure function of the files (or synthetic seed) and the config:
//   read() gives the same samples for the same arguments, from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "host/config/config.hpp"
#include "host/core/logger.hpp"
#include "host/data/dataset_index.hpp"
#include "host/data/split_record.hpp"

namespace cadenza {

// Where the clips' samples come from.
class ClipAudio {
 public:
  virtual ~ClipAudio() = default;
  // Writes samples [offset, offset + count) of `clip`, zero past its end.
  virtual void read(int clip, std::int64_t offset, std::int64_t count, float* out) const = 0;
};

struct Dataset {
  std::string name;  // data.dataset
  int sample_rate = 0;
  std::vector<std::string> label_names;
  bool multi_label = false;
  std::vector<std::string> clip_ids;   // per clip
  int original_clips = 0;              // clips before the offline copies
  std::vector<float> targets;          // (clips, labels): one-hot or multi-hot
  std::vector<int> primary_label;      // per clip: the class, or the first present tag (-1: none)
  std::vector<std::int64_t> lengths;   // per clip, samples (0: could not be decoded)
  std::array<std::vector<int>, 3> splits;  // clip indices of train, val, test (sorted)
  std::vector<std::string> skipped;    // "<path>: <reason>" per file left out
  std::unique_ptr<ClipAudio> audio;

  int num_labels() const { return static_cast<int>(label_names.size()); }
  int num_clips() const { return static_cast<int>(lengths.size()); }
  const std::vector<int>& indices(Split s) const { return splits[int(s)]; }
  // The clips a run uses: those of the three splits (not the undecodable ones).
  std::size_t clips_in_splits() const { return splits[0].size() + splits[1].size() + splits[2].size(); }
  const float* clip_targets(int clip) const { return targets.data() + std::size_t(clip) * label_names.size(); }
};

// Clips held in memory back to back: clip c is pcm[sum of lengths before c, + lengths[c]).
std::unique_ptr<ClipAudio> make_in_memory_audio(std::vector<float> pcm, const std::vector<std::int64_t>& lengths);

// The number of labels (classes or tags) data.dataset defines, without loading audio; read
// from the config alone where it fixes the label set (synthetic, mtat, fma with a genres
// list, gtzan without its folder: its ten genres), so a model summary needs no data.
int dataset_label_count(const DataConfig& config);
// Whether data.dataset is multi-label (tags) rather than single-label (classes), decided
// like dataset_label_count: from the config where it does (synthetic, mtat, gtzan), else by
// indexing the files.
bool dataset_multi_label(const DataConfig& config);

// Where the PCM cache lives: data.cache_dir, else $XDG_CACHE_HOME/cadenza/pcm, else
// $HOME/.cache/cadenza/pcm.
std::filesystem::path pcm_cache_root(const DataConfig& config);

// Loads data.dataset and splits it: generates the synthetic set, or indexes the files,
// opens (building if needed) the PCM cache with `threads` decode threads (0: all cores)
// and the offline-augmentation cache. `train_seed` seeds a random split when
// data.split_seed is 0. With `recorded` (a run's splits.csv) the clips take the recorded
// splits instead, and a warning says how many clips are new (left out) or gone; a record
// that lists none of the clips is set aside with a warning. Once `stop_requested` answers true
// a cache build keeps what it decoded and throws Interrupted (pcm_cache.hpp).
Dataset load_dataset(const Config& config, std::uint64_t train_seed, int threads, Logger& log,
                     const SplitRecord* recorded = nullptr, const std::function<bool()>& stop_requested = {});

// The one warning line about data.skipped, however many there are: their count, the first
// three and, given `list`, that all are in it; nothing when none are. A dataset of the
// cleaned MTAT split leaves thousands of clips out by design.
void warn_skipped_files(const Dataset& data, Logger& log, const std::filesystem::path& list = {});

// Throws a UserError when the training split has no clip: "data: no training clip", and
// when files were left out, how many and `where_listed` (say, "listed in
// skipped_files.txt").
void require_some_training_clip(const Dataset& data, const std::string& where_listed);

// Writes data.skipped to `list` (atomically; one "<path>: <reason>" per line), or removes
// a `list` left by an earlier run when none are skipped.
void write_skipped_files(const Dataset& data, const std::filesystem::path& list);

}  // namespace cadenza
