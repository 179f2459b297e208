// gpu_predict: tags or classifies whole songs with a trained run.
//
//   gpu_predict RUN_DIR AUDIO... [--top-k K] [--threshold T] [--json|--csv]
//               [--checkpoint best|last|PATH] [--device D] [--threads N] [--set KEY=VALUE]
//
// AUDIO is any number of files (any length, any format the decoder reads) and folders
// (searched recursively). Each song is cut into windows of the run's clip length, scored
// and averaged. A file that cannot be read is reported on stderr and skipped. Output, on
// stdout: the top labels of each song (default), one JSON array of songs (--json), or a
// CSV with a score column per label (--csv).
#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <limits>
#include <numeric>
#include <sstream>
#include <nlohmann/json.hpp>

#include "host/cli/arguments.hpp"
#include "host/cli/tool_main.hpp"
#include "host/core/error.hpp"
#include "host/core/logger.hpp"
#include "host/core/text.hpp"
#include "host/inference/song_predictor.hpp"
#include "host/io/csv.hpp"
#include "host/io/json_text.hpp"

namespace {

constexpr const char* kUsage =
    "usage: gpu_predict RUN_DIR AUDIO... [options]   score songs (files or folders) with a trained run\n"
    "options:\n"
    "  --top-k K         labels listed per song (default 5; all with --json/--csv)\n"
    "  --threshold T     list only labels scoring >= T (tags predicted present)\n"
    "  --json            one JSON array: file, seconds, windows, top labels and every score\n"
    "  --csv             one row per song: file, seconds, windows, score_<label>... (every label;\n"
    "                    --top-k and --threshold choose what the text and --json list)\n"
    "  --checkpoint C    best (default), last, one of the run's (step-00000006), or a checkpoint\n"
    "                    directory or model.safetensors\n"
    "  --device D        auto (default), cpu, cuda, cuda:N\n"
    "  --threads N       CPU threads (default: all cores)\n"
    "  --set KEY=VALUE   override a config key that does not define the model, e.g.\n"
    "                    --set data.eval_drop_seconds=5 (repeatable)\n"
    "  --quiet           only warnings and errors on stderr\n";

// The song's labels by descending score (ties: label order), those >= threshold, at most top_k.
std::vector<int> ranked_labels(const std::vector<float>& scores, int top_k, float threshold) {
  std::vector<int> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  std::vector<int> kept;
  for (int label : order)
    if (scores[label] >= threshold && int(kept.size()) < top_k) kept.push_back(label);
  return kept;
}

int predict_main(int argc, char** argv) {
  using namespace cadenza;
  const ArgumentSpec spec{.with_value = {"--top-k", "--threshold", "--checkpoint", "--device", "--threads"},
                          .repeatable = {"--set"},
                          .switches = {"--json", "--csv", "--quiet"},
                          .usage = kUsage,
                          .min_positionals = 2,
                          .max_positionals = std::numeric_limits<std::size_t>::max(),
                          .positionals = "a run directory and at least one audio file or folder"};
  const Arguments args = parse_arguments(argc, argv, spec);
  if (args.has("--json") && args.has("--csv")) CADENZA_USER_ERROR("choose one of --json and --csv");
  const bool structured = args.has("--json") || args.has("--csv");
  const int top_k = args.integer("--top-k", structured ? 1 << 30 : 5);
  if (top_k < 1) CADENZA_USER_ERROR("--top-k: expected at least 1, got " << top_k);
  const auto threshold = static_cast<float>(args.fraction("--threshold", -1.0));
  const std::vector<std::string> overrides = config_overrides(args);

  Logger log(std::cerr, args.has("--quiet") ? Logger::Level::warn : Logger::Level::info);
  const TrainedRun run =
      open_trained_run(args.positionals[0], args.value("--checkpoint").value_or("best"), overrides);
  const AudioFileList inputs =
      find_audio_files(std::vector<std::string>(args.positionals.begin() + 1, args.positionals.end()));
  for (const std::string& problem : inputs.problems) log.warn("skipped " + problem);
  if (inputs.files.empty()) CADENZA_USER_ERROR("no audio files to score");
  log.info("scoring " + count_of(inputs.files.size(), "file") + " with " + run.weights.string());

  const std::vector<std::string>& labels = run.labels;
  // The document starts with the first song, so that a failure before it (the checkpoint,
  // the device) leaves stdout empty rather than holding half a document.
  bool first_song = true;
  const auto start_document = [&] {
    if (!first_song) return;
    if (args.has("--json")) std::cout << "[\n";
    if (args.has("--csv")) {
      std::vector<std::string> header{"file", "seconds", "windows"};
      for (const std::string& label : labels) header.push_back("score_" + label);
      std::cout << csv_record(header);
    }
  };
  SongPredictorCallbacks callbacks;
  int skipped = static_cast<int>(inputs.problems.size());
  callbacks.on_skipped = [&](const std::string& reason) {
    log.warn("skipped " + reason);
    ++skipped;
  };
  callbacks.on_song = [&](const SongPrediction& song) {
    const std::vector<int> top = ranked_labels(song.scores, top_k, threshold);
    if (song.seconds < run.config.data.clip_seconds) {
      std::ostringstream note;
      note << std::setprecision(3) << song.file.string() << " is " << song.seconds
           << " s long, shorter than the model's window of " << run.config.data.clip_seconds
           << " s: its scores come from a window padded with silence";
      log.warn(note.str());
    }
    start_document();
    if (args.has("--json")) {
      nlohmann::ordered_json j = {{"file", song.file.string()}, {"seconds", song.seconds}, {"windows", song.windows}};
      j["top"] = nlohmann::ordered_json::array();
      for (int label : top) j["top"].push_back({{"label", labels[label]}, {"score", song.scores[label]}});
      j["scores"] = nlohmann::ordered_json::object();
      for (std::size_t i = 0; i < labels.size(); ++i) j["scores"][labels[i]] = song.scores[i];
      std::cout << (first_song ? "" : ",\n") << json_text(j) << std::flush;
    } else if (args.has("--csv")) {
      std::vector<std::string> row{song.file.string(), std::to_string(song.seconds), std::to_string(song.windows)};
      for (float score : song.scores) row.push_back(float_text(score));
      std::cout << csv_record(row) << std::flush;
    } else {
      std::cout << song.file.string() << "  (" << format_duration(song.seconds) << ", "
                << count_of(song.windows, "window") << ")\n";
      if (top.empty()) std::cout << "  no label scores >= " << *args.value("--threshold") << "\n";
      for (int label : top) {
        char score[16];
        std::snprintf(score, sizeof score, "%.3f", song.scores[label]);
        std::cout << "  " << score << "  " << labels[label] << "\n";
      }
      std::cout << std::flush;
    }
    first_song = false;
  };
  const int scored = predict_songs(run, inputs.files, callbacks, log);
  if (args.has("--json") && !first_song) std::cout << "\n]\n" << std::flush;
  log.info("scored " + count_of(scored, "file") +
           (skipped ? ", skipped " + std::to_string(skipped) + " (listed above)" : std::string()));
  if (scored == 0) CADENZA_USER_ERROR("none of the files could be scored (see the reasons above)");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cadenza::tool_main("gpu_predict", [&] { return predict_main(argc, argv); });
}
