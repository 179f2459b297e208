// gpu_train: trains a model from a YAML config.
//
//   gpu_train CONFIG [--device auto|cpu|cuda|cuda:N] [--set key=value ...] [--run-dir DIR]
//                    [--threads N] [--summary] [--prepare-only] [--quiet]
//   gpu_train --resume RUN_DIR [--set key=value ...]
//
// At the end of a run it draws loss.png and metric.png (curves per epoch) in the run
// directory; gpu_eval RUN_DIR then evaluates it.
//
// Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and exits 130; a
// second Ctrl-C exits at once (losing only the steps since the last checkpoint).
#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "host/cli/arguments.hpp"
#include "host/cli/tool_main.hpp"
#include "host/config/config.hpp"
#include "host/core/context.hpp"
#include "host/core/error.hpp"
#include "host/core/logger.hpp"
#include "host/data/dataset.hpp"
#include "host/model/summary.hpp"
#include "host/report/evaluation_report.hpp"
#include "host/train/trainer.hpp"

namespace {

std::atomic<bool> g_stop_requested{false};

void on_stop_signal(int signal_number) {
  if (g_stop_requested.exchange(true)) {
    std::signal(signal_number, SIG_DFL);
    std::raise(signal_number);
  }
}

constexpr const char* kUsage =
    "usage: gpu_train CONFIG [options]      train the model CONFIG describes\n"
    "       gpu_train --resume RUN_DIR      continue a stopped run from its last checkpoint\n"
    "options:\n"
    "  --device D       auto (default: a GPU if one works, else the CPU), cpu, cuda, cuda:N\n"
    "  --set KEY=VALUE  override a config key, e.g. --set train.epochs=5 (repeatable)\n"
    "  --run-dir DIR    where to write config, metrics and checkpoints (default runs/NAME-TIME)\n"
    "  --threads N      CPU threads (default: all cores)\n"
    "  --summary        print the model's layers, shapes, parameters and FLOPs, then exit\n"
    "  --prepare-only   index the dataset and build its decoded-audio cache, then exit\n"
    "  --quiet          only warnings and errors\n";

std::string default_run_dir(const std::string& model_name) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  return "runs/" + model_name + "-" + stamp;
}

int train_main(int argc, char** argv) {
  using namespace cadenza;
  namespace fs = std::filesystem;
  const ArgumentSpec spec{{"--device", "--run-dir", "--threads", "--resume"},
                          {"--set"},
                          {"--summary", "--prepare-only", "--quiet", "--help"}};
  const Arguments args = parse_arguments(argc, argv, spec);
  if (args.has("--help")) {
    std::cout << kUsage;
    return 0;
  }
  const std::vector<std::string> overrides = config_overrides(args);

  const auto resume_dir = args.value("--resume");
  Config config;
  fs::path run_dir;
  if (resume_dir) {
    if (!args.positionals.empty())
      CADENZA_USER_ERROR("--resume takes the run directory's config; do not also give " << args.positionals[0]);
    if (args.value("--run-dir"))
      CADENZA_USER_ERROR("--resume RUN_DIR continues in RUN_DIR; do not also give --run-dir");
    run_dir = *resume_dir;
    if (!fs::exists(run_dir / "checkpoints" / "last"))
      CADENZA_USER_ERROR("--resume " << run_dir.string() << ": no checkpoint there (expected "
                                     << (run_dir / "checkpoints" / "last").string() << ")");
    config = load_config((run_dir / "config.yaml").string(), overrides);
  } else {
    if (args.positionals.size() != 1) {
      std::cerr << kUsage;
      CADENZA_USER_ERROR(args.positionals.empty() ? "no config file given"
                                                  : "one config file expected, got " +
                                                        std::to_string(args.positionals.size()));
    }
    config = load_config(args.positionals[0], overrides);
    run_dir = args.value("--run-dir").value_or(
        config.train.run_dir.empty() ? default_run_dir(config.model.name) : config.train.run_dir);
  }

  Logger logger(std::cerr, args.has("--quiet") ? Logger::Level::warn : Logger::Level::info);
  if (args.has("--summary")) {
    const auto context = make_context("cpu", config.train.threads, logger);
    std::cout << model_summary(config, context->backend());
    return 0;
  }
  if (args.has("--prepare-only")) {
    const Dataset data = load_dataset(config, config.train.seed, config.train.threads, logger);
    for (const std::string& line : data.skipped) logger.warn("skipped " + line);
    std::cout << "prepared " << config.data.dataset << ": " << data.num_clips() << " clips, "
              << data.num_labels() << (data.multi_label ? " tags" : " classes") << ", split "
              << data.indices(Split::train).size() << " / " << data.indices(Split::val).size() << " / "
              << data.indices(Split::test).size() << ", " << data.skipped.size() << " files skipped"
              << std::endl;
    return 0;
  }
  if (!resume_dir && fs::exists(run_dir / "checkpoints" / "last"))
    CADENZA_USER_ERROR("run directory " << run_dir.string() << " already holds a run; continue it with "
                                        << "--resume " << run_dir.string() << " or choose another --run-dir");

  logger.info("cadenza gpu_train: " + (config.source_path.empty() ? std::string("(built-in)") : config.source_path) +
              " → " + run_dir.string());
  logger.info("resolved config:\n" + to_yaml(config));
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  const TrainOutcome outcome =
      run_training(config, TrainRequest{run_dir, resume_dir.has_value(), &g_stop_requested}, logger);
  if (outcome.status == TrainOutcome::Status::interrupted) return kExitInterrupted;
  // The curves are a view of metrics.jsonl: a failure to draw them costs the run nothing.
  try {
    write_training_curves(run_dir / "metrics.jsonl", run_dir);
  } catch (const std::exception& e) {
    logger.warn(std::string("training curves not drawn: ") + e.what());
  }
  if (outcome.status == TrainOutcome::Status::completed || outcome.status == TrainOutcome::Status::stopped_early) {
    std::cout << "done: " << outcome.epochs_completed << " epochs, " << outcome.global_step << " steps";
    if (!outcome.metric_name.empty()) std::cout << ", " << outcome.metric_name << " " << outcome.last_val_metric;
    std::cout << "; run directory " << run_dir.string() << std::endl;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cadenza::tool_main("gpu_train", [&] { return train_main(argc, argv); });
}
