// gpu_eval: evaluates a trained run on a split of its dataset, the way papers report it.
//
//   gpu_eval RUN_DIR [--split test|val|train] [--checkpoint best|last|PATH] [--windows N]
//                    [--threshold T] [--out DIR] [--device D] [--threads N] [--set KEY=VALUE]
//
// Each clip is scored by the mean of N windows (multiframe; data.eval_windows by default,
// Won et al.'s protocol is 16). Prints a classification report and writes, to --out
// (default RUN_DIR/eval-SPLIT): report.json, predictions.csv, the plots and report.html,
// and skipped_files.txt when files of the dataset were left out.
#include <filesystem>
#include <iostream>

#include "host/cli/arguments.hpp"
#include "host/cli/tool_main.hpp"
#include "host/core/error.hpp"
#include "host/core/logger.hpp"
#include "host/data/dataset.hpp"
#include "host/inference/trained_model.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/json_text.hpp"
#include "host/report/evaluation_report.hpp"
#include "host/report/html_report.hpp"

namespace {

constexpr const char* kUsage =
    "usage: gpu_eval RUN_DIR [options]     evaluate a trained run on a split of its dataset\n"
    "options:\n"
    "  --split S         test (default; val when the run has no test clips), val (or valid,\n"
    "                    validation) or train\n"
    "  --checkpoint C    best (default), last, one of the run's (step-00000006), or a checkpoint\n"
    "                    directory or model.safetensors\n"
    "  --windows N       windows averaged per clip (default: data.eval_windows of the run)\n"
    "  --threshold T     multi-label: a tag is predicted when its score >= T (default 0.5)\n"
    "  --out DIR         where to write the report (default RUN_DIR/eval-SPLIT)\n"
    "  --device D        auto (default), cpu, cuda, cuda:N\n"
    "  --threads N       CPU threads (default: all cores)\n"
    "  --set KEY=VALUE   override a config key that does not define the model, e.g.\n"
    "                    --set data.root=/data/mtat (repeatable)\n"
    "  --quiet           only warnings, errors and the report\n";

int eval_main(int argc, char** argv) {
  using namespace cadenza;
  namespace fs = std::filesystem;
  const ArgumentSpec spec{.with_value = {"--split", "--checkpoint", "--windows", "--threshold", "--out", "--device", "--threads"},
                          .repeatable = {"--set"},
                          .switches = {"--quiet"},
                          .usage = kUsage,
                          .min_positionals = 1,
                          .max_positionals = 1,
                          .positionals = "one run directory"};
  const Arguments args = parse_arguments(argc, argv, spec);
  const fs::path run_dir = args.positionals[0];
  const std::string split_argument = args.value("--split").value_or("test");
  const std::optional<Split> parsed_split = parse_split(split_argument);
  if (!parsed_split) CADENZA_USER_ERROR("--split: expected test, val or train, got " << split_argument);
  const std::string checkpoint = args.value("--checkpoint").value_or("best");
  const auto threshold = static_cast<float>(args.fraction("--threshold", 0.5));
  const std::vector<std::string> overrides = config_overrides(args);

  Logger log(std::cerr, args.has("--quiet") ? Logger::Level::warn : Logger::Level::info);
  const TrainedRun run = open_trained_run(run_dir, checkpoint, overrides);
  const Config& config = run.config;
  if (args.value("--threshold") && !run.multi_label)
    log.warn("--threshold applies to tags; this run classifies (the top class is the prediction)");
  if (args.value("--out")) check_output_folder(*args.value("--out"), "--out");  // before the dataset loads
  const Dataset data = load_run_dataset(run, log);
  // The test split by default; a run split without one (the demo's [0.8, 0.2, 0.0])
  // evaluates its validation split, and says so.
  Split split = *parsed_split;
  if (!args.value("--split") && data.indices(Split::test).empty() && !data.indices(Split::val).empty()) {
    split = Split::val;
    log.info("the run has no test clips: evaluating its validation split (--split chooses)");
  }
  const std::string split_label = split_name(split);
  const fs::path out = args.value("--out").value_or((run_dir / ("eval-" + split_label)).string());
  check_output_folder(out, "--out");  // made once there is a report to write
  const fs::path skipped_list = out / "skipped_files.txt";
  warn_skipped_files(data, log, skipped_list);
  const std::vector<int>& clips = data.indices(split);
  if (clips.empty())
    CADENZA_USER_ERROR("--split " << split_label << ": the run's " << split_label
                                  << " split is empty; choose another with --split");
  TrainedModel trained(run, data, log);

  log.info("evaluating " + run_dir.string() + " (" + run.weights.string() + ") on " + std::to_string(clips.size()) +
           " " + split_label + " clips");
  const ClipEvaluation evaluation = trained.evaluate(clips, false, threshold);

  const EvaluationReport report = make_evaluation_report(evaluation, data.label_names, run.multi_label);
  std::cout << format_evaluation_report(report) << std::flush;

  const nlohmann::json context = {{"run_dir", run_dir.string()},     {"checkpoint", run.weights.string()},
                                  {"split", split_label},             {"windows_per_clip", evaluation.windows_per_clip},
                                  {"dataset", config.data.dataset},  {"model", config.model.name}};
  make_output_folder(out, "--out");
  write_file_atomically(out / "report.json", json_text(evaluation_report_json(report, context), 2) + "\n");
  std::vector<std::string> clip_ids;
  for (int clip : clips) clip_ids.push_back(data.clip_ids[clip]);
  write_predictions_csv(out / "predictions.csv", clip_ids, data.label_names, evaluation);
  write_skipped_files(data, skipped_list);

  HtmlReport html;
  html.title = config.model.name + " on " + config.data.dataset + ": " + split_label + " split";
  html.summary = {{"run", run_dir.string()},
                  {"checkpoint", run.weights.string()},
                  {"split", split_label + ", " + std::to_string(clips.size()) + " clips, " +
                                std::to_string(evaluation.windows_per_clip) + " windows per clip"},
                  {"loss", std::to_string(report.loss)}};
  if (run.multi_label) {
    html.summary.push_back({"ROC-AUC (macro)", std::to_string(report.auc.roc_auc)});
    html.summary.push_back({"PR-AUC (macro)", std::to_string(report.auc.pr_auc)});
  } else {
    html.summary.push_back({"accuracy", std::to_string(report.classification.accuracy)});
  }
  html.tables.push_back(evaluation_table(report));
  html.images = write_training_curves(run_dir / "metrics.jsonl", out);  // the run directory is only read
  for (auto& plot : write_evaluation_plots(out, report, evaluation)) html.images.push_back(std::move(plot));
  html.config_yaml = to_yaml(config);
  write_html_report(out / "report.html", html);
  std::cout << "wrote " << (out / "report.json").string() << ", predictions.csv, report.html and "
            << html.images.size() << " plots" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cadenza::tool_main("gpu_eval", [&] { return eval_main(argc, argv); });
}
