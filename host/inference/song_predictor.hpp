// Whole-song prediction (gpu_predict): audio files of any length and any supported format
// scored by a trained run. Each song is decoded, resampled to the run's data.sample_rate,
// cut into back-to-back windows of data.clip_seconds after dropping
// data.eval_drop_seconds at each end (when the song is long enough), and scored by the mean
// of its windows' scores (softmax for classes, sigmoids for tags).
//
// Invariants:
// - A file that cannot be decoded is reported (path and reason) and skipped; it never
//   stops the others. A song shorter than one window is zero-padded to one window.
// - Results come back in the order of the files given, whatever the decoding threads do.
// - Memory stays bounded: songs are decoded and scored in groups of at most
//   kSongsPerGroup files.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "host/core/logger.hpp"
#include "host/inference/trained_model.hpp"

namespace cadenza {

// The audio files named by `paths`: a file as given (whatever its extension), a folder
// searched as a folder dataset is (audio/audio_folder.hpp: hidden files passed over,
// sorted by path). A path that does not exist or cannot be reached, a folder without
// audio, and what a folder's scan skips (links to nothing, formats cadenza cannot read,
// unreadable folders) are added to `problems` ("<path>: <why>").
struct AudioFileList {
  std::vector<std::filesystem::path> files;
  std::vector<std::string> problems;
};
AudioFileList find_audio_files(const std::vector<std::string>& paths);

struct SongPrediction {
  std::filesystem::path file;
  double seconds = 0.0;       // the decoded song's length
  int windows = 0;            // windows averaged
  std::vector<float> scores;  // one per label, in the run's label order
};

struct SongPredictorCallbacks {
  std::function<void(const SongPrediction&)> on_song;   // each scored song, in file order
  std::function<void(const std::string&)> on_skipped;   // "<path>: <reason>" of a file skipped
};

// Scores `files` with the run's model; returns how many were scored.
int predict_songs(const TrainedRun& run, const std::vector<std::filesystem::path>& files,
                  const SongPredictorCallbacks& callbacks, Logger& log);

}  // namespace cadenza
