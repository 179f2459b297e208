// Whole-song prediction: decode in parallel, score windows in batches, average per song.
#include "host/inference/song_predictor.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "host/audio/audio_decoder.hpp"
#include "host/audio/audio_folder.hpp"
#include "host/core/arena.hpp"
#include "host/core/error.hpp"
#include "host/data/sampler.hpp"

namespace cadenza {
namespace fs = std::filesystem;
namespace {

// A group of songs is decoded (a wave of one file per decode thread at a time) until it
// holds this many songs or samples, then scored: 2^26 float samples are 256 MiB, 70
// minutes at 16 kHz, so a folder of hour-long mixes is scored one wave (a song per decode
// thread) at a time instead of 32 hours at once.
constexpr std::size_t kSongsPerGroup = 32;
constexpr std::int64_t kGroupSamples = std::int64_t{1} << 26;

}  // namespace

AudioFileList find_audio_files(const std::vector<std::string>& paths) {
  AudioFileList list;
  for (const std::string& text : paths) {
    const fs::path path(text);
    std::error_code error;
    if (fs::is_directory(path, error)) {
      const AudioFolderScan scan = scan_audio_folder(path);
      list.problems.insert(list.problems.end(), scan.skipped.begin(), scan.skipped.end());
      if (scan.audio.empty()) list.problems.push_back(text + ": no audio files in this folder");
      list.files.insert(list.files.end(), scan.audio.begin(), scan.audio.end());
    } else if (fs::exists(path, error)) {
      list.files.push_back(path);
    } else if (error && error != std::errc::no_such_file_or_directory) {
      list.problems.push_back(text + ": " + error.message());  // a folder on the way cannot be read
    } else {
      list.problems.push_back(text + ": no such file or folder");
    }
  }
  return list;
}

int predict_songs(const TrainedRun& run, const std::vector<fs::path>& files, const SongPredictorCallbacks& callbacks,
                  Logger& log) {
  const Config& config = run.config;
  const int k = static_cast<int>(run.labels.size());
  Dataset songs;
  songs.name = "songs";
  songs.sample_rate = config.data.sample_rate;
  songs.label_names = run.labels;
  songs.multi_label = run.multi_label;
  TrainedModel trained(run, songs, log);
  Backend& backend = trained.backend();
  const int batch = trained.batch();
  ArenaPlan plan;
  const BufferId scores_id = plan.add(Region::activations, "window_scores", Shape{batch, k});
  const Arena arena(std::move(plan), backend);
  Tensor window_scores = arena.get(scores_id);
  Tensor host_scores = Tensor::zeros(window_scores.shape());
  const std::int64_t drop = std::llround(config.data.eval_drop_seconds * config.data.sample_rate);

  const int decode_threads = config.train.threads > 0 ? config.train.threads : omp_get_max_threads();
  int scored = 0;
  for (std::size_t group = 0, count = 0; group < files.size(); group += count) {
    // Decode waves of files in parallel until the group is full; a failure is kept as its
    // message.
    std::vector<std::vector<float>> audio;
    std::vector<std::optional<std::string>> failure;
    std::int64_t group_samples = 0;
    count = 0;
    while (group + count < files.size() && count < kSongsPerGroup && group_samples < kGroupSamples) {
      const std::size_t wave =
          std::min({std::size_t(decode_threads), files.size() - group - count, kSongsPerGroup - count});
      audio.resize(count + wave);
      failure.resize(count + wave);
#pragma omp parallel for schedule(dynamic, 1) num_threads(decode_threads)
      for (std::size_t i = count; i < count + wave; ++i) {
        try {
          audio[i] = load_audio(files[group + i], config.data.sample_rate);
        } catch (const std::exception& e) {
          failure[i] = e.what();
        }
      }
      for (std::size_t i = count; i < count + wave; ++i) group_samples += std::int64_t(audio[i].size());
      count += wave;
    }
    // One buffer of the group's samples; each song's own is freed once copied, so the
    // group is held about once, not twice.
    std::vector<float> pcm;
    pcm.reserve(std::size_t(group_samples));
    songs.lengths.clear();
    songs.clip_ids.clear();
    for (std::size_t i = 0; i < count; ++i) {
      if (failure[i]) continue;
      songs.lengths.push_back(static_cast<std::int64_t>(audio[i].size()));
      songs.clip_ids.push_back(files[group + i].string());
      pcm.insert(pcm.end(), audio[i].begin(), audio[i].end());
      std::vector<float>().swap(audio[i]);
    }
    const int clips = static_cast<int>(songs.lengths.size());
    songs.targets.assign(std::size_t(clips) * k, 0.0f);
    songs.audio = make_in_memory_audio(std::move(pcm), songs.lengths);
    std::vector<int> clip_order(clips);
    for (int c = 0; c < clips; ++c) clip_order[c] = c;
    const std::vector<ClipWindow> windows = evaluation_windows(clip_order, songs.lengths, trained.window(), 0, drop);

    std::vector<double> sums(std::size_t(clips) * k, 0.0);
    std::vector<int> window_counts(clips, 0);
    trained.pipeline().run_inference(windows, [&](const Tensor&, std::size_t first, int rows) {
      backend.output_scores(run.multi_label, trained.model().output(), window_scores);
      backend.copy(window_scores, host_scores);
      for (int r = 0; r < rows; ++r) {
        const int clip = windows[first + r].clip;
        ++window_counts[clip];
        for (int j = 0; j < k; ++j) sums[std::size_t(clip) * k + j] += host_scores.f32()[std::size_t(r) * k + j];
      }
    });

    // Report in file order: skipped files where they fall among the scored ones.
    int clip = 0;
    for (std::size_t i = 0; i < count; ++i) {
      if (failure[i]) {
        if (callbacks.on_skipped) callbacks.on_skipped(*failure[i]);
        continue;
      }
      SongPrediction prediction;
      prediction.file = files[group + i];
      prediction.seconds = double(songs.lengths[clip]) / config.data.sample_rate;
      prediction.windows = window_counts[clip];
      prediction.scores.resize(k);
      for (int j = 0; j < k; ++j)
        prediction.scores[j] = static_cast<float>(sums[std::size_t(clip) * k + j] / window_counts[clip]);
      if (callbacks.on_song) callbacks.on_song(prediction);
      ++scored;
      ++clip;
    }
  }
  return scored;
}

}  // namespace cadenza
