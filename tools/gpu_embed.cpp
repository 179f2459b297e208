// gpu_embed: exports the penultimate-layer features of a trained run for every clip of a
// dataset split, so that a user can fit another classifier on them (seed 003's SVM on
// convnet features).
//
//   gpu_embed RUN_DIR [--split all|train|val|test] [--out FILE.safetensors|FILE.npy]
//             [--checkpoint best|last|PATH] [--windows N] [--device D] [--threads N]
//             [--set KEY=VALUE]
//
// A clip's features are the mean over its evaluation windows of the last layer's input.
// `--split all` takes the run's three splits and then the clips the dataset has gained
// since the run recorded its splits (split "new": the model saw them in none). Offline
// augmentation copies are never embedded. FILE.safetensors holds `embeddings` (clips, D)
// and `targets` (clips, labels) as F32 and `split` (clips) as I32 (0 train, 1 val, 2 test,
// 3 new), with the clip ids and label names as JSON in its metadata. FILE.npy holds the
// embeddings; FILE.clips.csv beside it the clip, its split and its true_<label> columns,
// row for row. FILE.skipped_files.txt beside either lists the files of the dataset that
// were left out, when there are any.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "host/cli/arguments.hpp"
#include "host/cli/tool_main.hpp"
#include "host/core/error.hpp"
#include "host/core/logger.hpp"
#include "host/core/text.hpp"
#include "host/data/dataset.hpp"
#include "host/inference/trained_model.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/json_text.hpp"
#include "host/io/csv.hpp"
#include "host/io/npy.hpp"
#include "host/io/safetensors.hpp"

namespace {

// The split code of a clip in none of the run's splits: added to the dataset since.
constexpr int kNewClip = 3;

std::string split_label_of(int code) {
  return code == kNewClip ? "new" : cadenza::split_name(cadenza::Split(code));
}

constexpr const char* kUsage =
    "usage: gpu_embed RUN_DIR [options]    export penultimate-layer features of a dataset's clips\n"
    "options:\n"
    "  --split S         all (default), train, val (or valid, validation) or test\n"
    "  --out FILE        FILE.safetensors (default RUN_DIR/embeddings-SPLIT.safetensors) or FILE.npy\n"
    "  --checkpoint C    best (default), last, one of the run's (step-00000006), or a checkpoint\n"
    "                    directory or model.safetensors\n"
    "  --windows N       windows averaged per clip (default: data.eval_windows of the run)\n"
    "  --device D        auto (default), cpu, cuda, cuda:N\n"
    "  --threads N       CPU threads (default: all cores)\n"
    "  --set KEY=VALUE   override a config key that does not define the model (repeatable)\n"
    "  --quiet           only warnings and errors\n";

int embed_main(int argc, char** argv) {
  using namespace cadenza;
  namespace fs = std::filesystem;
  const ArgumentSpec spec{.with_value = {"--split", "--out", "--checkpoint", "--windows", "--device", "--threads"},
                          .repeatable = {"--set"},
                          .switches = {"--quiet"},
                          .usage = kUsage,
                          .min_positionals = 1,
                          .max_positionals = 1,
                          .positionals = "one run directory"};
  const Arguments args = parse_arguments(argc, argv, spec);
  const fs::path run_dir = args.positionals[0];
  const std::string split_argument = args.value("--split").value_or("all");
  std::vector<Split> splits;
  if (split_argument == "all") {
    splits = {Split::train, Split::val, Split::test};
  } else if (const std::optional<Split> split = parse_split(split_argument)) {
    splits = {*split};
  }
  if (splits.empty()) CADENZA_USER_ERROR("--split: expected all, train, val or test, got " << split_argument);
  // The split's own name ("val" for "validation"), as gpu_eval and the reports spell it.
  const std::string split_label = splits.size() == 1 ? split_name(splits[0]) : "all";
  const fs::path out = args.value("--out").value_or((run_dir / ("embeddings-" + split_label + ".safetensors")).string());
  const std::string extension = ascii_lowercase(out.extension().string());
  if (extension != ".safetensors" && extension != ".npy")
    CADENZA_USER_ERROR("--out " << out.string() << ": expected a .safetensors or .npy file name");
  // Its folder is made, as gpu_eval's --out is, once there is something to write.
  const fs::path out_folder = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  check_output_folder(out_folder, "--out");
  const std::vector<std::string> overrides = config_overrides(args);

  Logger log(std::cerr, args.has("--quiet") ? Logger::Level::warn : Logger::Level::info);
  const TrainedRun run = open_trained_run(run_dir, args.value("--checkpoint").value_or("best"), overrides);
  const Dataset data = load_run_dataset(run, log);
  const fs::path skipped_list = fs::path(out).replace_extension(".skipped_files.txt");
  warn_skipped_files(data, log, skipped_list);
  std::vector<int> clips, clip_split;
  for (Split s : splits)
    for (int clip : data.indices(s)) {
      clips.push_back(clip);
      clip_split.push_back(int(s));
    }
  if (split_argument == "all") {
    std::vector<bool> in_a_split(std::size_t(data.num_clips()), false);
    for (int clip : clips) in_a_split[std::size_t(clip)] = true;
    for (int clip = 0; clip < data.original_clips; ++clip)
      if (!in_a_split[std::size_t(clip)] && data.lengths[std::size_t(clip)] > 0) {
        clips.push_back(clip);
        clip_split.push_back(kNewClip);
      }
  }
  if (clips.empty()) CADENZA_USER_ERROR("--split " << split_argument << ": no clips in the run's " << split_label << " split");
  TrainedModel trained(run, data, log);

  log.info("embedding " + std::to_string(clips.size()) + " clips (" + split_label + ")");
  const ClipEvaluation evaluation = trained.evaluate(clips, true);

  const auto c = static_cast<std::int64_t>(clips.size());
  const std::int64_t d = trained.model().embedding().dim(1), k = data.num_labels();
  std::vector<std::string> ids;
  for (int clip : clips) ids.push_back(data.clip_ids[clip]);
  make_output_folder(out_folder, "--out");
  write_skipped_files(data, skipped_list);
  if (extension == ".npy") {
    write_npy_f32(out, {c, d}, evaluation.embeddings.data());
    std::vector<std::string> fields{"clip", "split"};
    for (const std::string& label : data.label_names) fields.push_back("true_" + label);
    std::string csv = csv_record(fields);
    for (std::int64_t i = 0; i < c; ++i) {
      fields = {ids[i], split_label_of(clip_split[i])};
      for (std::int64_t j = 0; j < k; ++j) fields.push_back(evaluation.targets[i * k + j] >= 0.5f ? "1" : "0");
      csv += csv_record(fields);
    }
    const fs::path sidecar = fs::path(out).replace_extension(".clips.csv");
    write_file_atomically(sidecar, csv);
    std::cout << "wrote " << out.string() << " (" << c << " x " << d << " float32) and " << sidecar.string()
              << std::endl;
    return 0;
  }
  const std::map<std::string, std::string> metadata = {
      {"clips", json_text(nlohmann::json(ids))},
      {"labels", json_text(nlohmann::json(data.label_names))},
      {"splits", R"(["train", "val", "test", "new"])"},
      {"run_dir", run_dir.string()},
      {"checkpoint", run.weights.string()},
      {"windows_per_clip", std::to_string(evaluation.windows_per_clip)}};
  write_safetensors(out,
                    {{"embeddings", "F32", {c, d}, evaluation.embeddings.data(), evaluation.embeddings.size() * 4},
                     {"targets", "F32", {c, k}, evaluation.targets.data(), evaluation.targets.size() * 4},
                     {"split", "I32", {c}, clip_split.data(), clip_split.size() * 4}},
                    metadata);
  std::cout << "wrote " << out.string() << " (embeddings " << c << " x " << d << ", targets " << c << " x " << k
            << ")" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cadenza::tool_main("gpu_embed", [&] { return embed_main(argc, argv); });
}
