// gpu_train: trains a model from a YAML config.
//
//   gpu_train CONFIG [--device auto|cpu|cuda|cuda:N] [--set key=value ...] [--run-dir DIR]
//                    [--threads N] [--summary] [--prepare-only] [--quiet]
//   gpu_train --resume RUN_DIR [--set key=value ...]
//
// At the end of a run it draws loss.png and metric.png (curves per epoch) in the run
// directory; gpu_eval RUN_DIR then evaluates it.
//
// Ctrl-C (or SIGTERM) finishes the current step or validation batch, writes a checkpoint
// and exits 130; during a build of the decoded-audio cache it keeps the files decoded so
// far for the next run. A second Ctrl-C exits at once (losing only the steps since the last
// checkpoint).
//
// Data-parallel: one process per device, started by mpirun, srun or torchrun-style
// variables (host/dist/launch.hpp); rank 0 prints and writes the run directory.
#include <atomic>
#include <cstdlib>
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <vector>

#include "host/cli/arguments.hpp"
#include "host/cli/tool_main.hpp"
#include "host/config/config.hpp"
#include "host/core/context.hpp"
#include "host/core/error.hpp"
#include "host/core/logger.hpp"
#include "host/core/text.hpp"
#include "host/data/dataset.hpp"
#include "host/dist/launch.hpp"
#include "host/dist/process_group.hpp"
#include "host/io/atomic_file.hpp"
#include "host/model/summary.hpp"
#include "host/train/checkpoint.hpp"
#include "host/train/trainer.hpp"

namespace {

std::atomic<bool> g_stop_requested{false};

void on_stop_signal(int signal_number) {
  if (g_stop_requested.exchange(true)) {
    std::signal(signal_number, SIG_DFL);
    std::raise(signal_number);
  }
}

bool stop_requested() { return g_stop_requested.load(); }

void install_stop_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

constexpr const char* kUsage =
    "usage: gpu_train CONFIG [options]      train the model CONFIG describes\n"
    "       gpu_train --resume RUN_DIR      continue a stopped run from its last checkpoint\n"
    "options:\n"
    "  --device D       auto (default: the CPU until the CUDA backend is validated), cpu, cuda, cuda:N\n"
    "  --set KEY=VALUE  override a config key, e.g. --set train.epochs=5 (repeatable)\n"
    "  --run-dir DIR    where to write config, metrics and checkpoints (default runs/NAME-TIME)\n"
    "  --threads N      CPU threads (default: all cores)\n"
    "  --summary        print the model's layers, shapes, parameters and FLOPs, then exit\n"
    "  --prepare-only   index the dataset and build its decoded-audio cache, then exit\n"
    "  --quiet          only warnings and errors\n";

// runs/NAME-TIME with rank 0's time, made by rank 0 at once; where that is taken (a sweep
// started several runs in one second), runs/NAME-TIME-2, -3, ... Every rank gets the name.
std::string default_run_dir(const std::string& model_name, cadenza::Communicator& communicator) {
  namespace fs = std::filesystem;
  std::vector<double> chosen = {0.0, 0.0};  // the time, the number of the name tried last
  if (communicator.rank() == 0) {
    chosen[0] = double(std::time(nullptr));
    fs::create_directories("runs");
  }
  const auto name = [&](double time, int number) {
    const auto now = static_cast<std::time_t>(time);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
    std::string text = "runs/" + model_name + "-" + stamp;
    if (number > 1) text += '-' + std::to_string(number);
    return text;
  };
  if (communicator.rank() == 0)
    for (int number = 1;; ++number)
      if (fs::create_directory(name(chosen[0], number))) {
        chosen[1] = number;
        break;
      }
  communicator.all_reduce_host(chosen);
  return name(chosen[0], int(chosen[1]));
}

// Whether run_dir holds (part of) a run that a fresh one would overwrite.
bool holds_a_run(const std::filesystem::path& run_dir) {
  namespace fs = std::filesystem;
  const fs::path checkpoints = run_dir / "checkpoints";
  return fs::exists(run_dir / "metrics.jsonl") || fs::exists(run_dir / "steps.jsonl") ||
         (fs::is_directory(checkpoints) && !fs::is_empty(checkpoints));
}

// Whether a resume has checkpoints/last to start from. A run stopped before its first
// checkpoint has none and starts again from step 0 with its config.yaml (false); without
// `last` but with step directories, says which could stand in.
bool has_last_checkpoint(const std::filesystem::path& run_dir) {
  namespace fs = std::filesystem;
  const fs::path checkpoints = run_dir / "checkpoints";
  if (fs::exists(checkpoints / "last")) return true;
  const std::vector<std::string> steps = cadenza::step_directory_names(checkpoints);
  if (!steps.empty())
    CADENZA_USER_ERROR("--resume " << run_dir.string() << ": " << (checkpoints / "last").string()
                                   << " is missing; to resume from the newest checkpoint, link it: ln -sfn "
                                   << steps.back() << " " << (checkpoints / "last").string());
  if (!fs::exists(run_dir / "config.yaml"))
    CADENZA_USER_ERROR("--resume " << run_dir.string() << ": no run there (expected "
                                   << (checkpoints / "last").string() << " and " << (run_dir / "config.yaml").string()
                                   << ")");
  return false;
}

int train_main(int argc, char** argv) {
  using namespace cadenza;
  namespace fs = std::filesystem;
  const ArgumentSpec spec{.with_value = {"--device", "--run-dir", "--threads", "--resume"},
                          .repeatable = {"--set"},
                          .switches = {"--summary", "--prepare-only", "--quiet"},
                          .usage = kUsage,
                          .min_positionals = 0,
                          .max_positionals = 1,
                          .positionals = "one config file"};
  const Arguments args = parse_arguments(argc, argv, spec);
  const std::vector<std::string> overrides = config_overrides(args);

  const auto resume_dir = args.value("--resume");
  const LaunchInfo launch = detect_launch([](const char* name) { return std::getenv(name); });
  Config config;
  std::optional<fs::path> run_dir;
  bool from_checkpoint = false;
  if (resume_dir) {
    if (!args.positionals.empty())
      CADENZA_USER_ERROR("--resume takes the run directory's config; do not also give " << args.positionals[0]);
    if (args.value("--run-dir"))
      CADENZA_USER_ERROR("--resume RUN_DIR continues in RUN_DIR; do not also give --run-dir");
    run_dir = *resume_dir;
    from_checkpoint = has_last_checkpoint(*run_dir);
    const std::string run_config = (*run_dir / "config.yaml").string();
    if (const auto changing = model_changing_override(run_config, overrides))
      CADENZA_USER_ERROR("--set " << *changing << ": a resumed run keeps the model, features and labels its "
                                  "checkpoints were trained with; start a new run to change them");
    config = load_config(run_config, overrides);
  } else {
    if (args.positionals.empty()) throw UsageError("no config file given", kUsage);
    config = load_config(args.positionals[0], overrides);
    if (const auto given = args.value("--run-dir")) run_dir = *given;
    else if (!config.train.run_dir.empty()) run_dir = config.train.run_dir;
  }

  // Ranks other than 0 print only errors: they read the same data and config, so their
  // warnings would repeat rank 0's.
  const Logger::Level level = launch.rank != 0     ? Logger::Level::error
                              : args.has("--quiet") ? Logger::Level::warn
                                                    : Logger::Level::info;
  Logger logger(std::cerr, level);
  if (args.has("--summary")) {
    if (launch.rank != 0) return 0;  // one table per job
    // Shapes, parameters and FLOPs are the same on every device: computed on the CPU, quietly.
    Logger quiet(std::cerr, Logger::Level::warn);
    const auto context = make_context("cpu", config.train.threads, quiet);
    std::cout << model_summary(config, context->backend());
    return 0;
  }
  install_stop_handlers();
  if (args.has("--prepare-only")) {
    if (launch.rank != 0) return 0;  // one process builds the cache
    const Dataset data =
        load_dataset(config, config.train.seed, config.train.threads, logger, nullptr, stop_requested);
    warn_skipped_files(data, logger);
    require_some_training_clip(data, "named above");  // as training would refuse it
    std::cout << "prepared " << config.data.dataset << ": " << data.clips_in_splits() << " clips, "
              << data.num_labels() << (data.multi_label ? " tags (" : " classes (")
              << name_list(data.label_names, false, 8) << "), split "
              << data.indices(Split::train).size() << " / " << data.indices(Split::val).size() << " / "
              << data.indices(Split::test).size() << ", "
              << count_of(data.skipped.size(), "file") << " skipped"
              << std::endl;
    return 0;
  }
  ProcessGroup group = join_process_group(launch, config.train.device, config.train.threads,
                                          config.train.dist.timeout_seconds, logger);
  install_stop_handlers();  // again: MPI_Init may install handlers of its own
  if (!run_dir) run_dir = default_run_dir(config.model.name, *group.communicator);
  if (!resume_dir && holds_a_run(*run_dir))
    CADENZA_USER_ERROR("run directory " << run_dir->string() << " already holds a run; continue it with "
                                        << "--resume " << run_dir->string() << " or choose another --run-dir");
  if (launch.rank == 0) make_output_folder(*run_dir, "run directory");

  logger.info("cadenza gpu_train: " + (config.source_path.empty() ? std::string("(built-in)") : config.source_path) +
              " → " + run_dir->string());
  if (resume_dir && !from_checkpoint)
    logger.info(run_dir->string() + " stopped before its first checkpoint: training it again from step 0 with its "
                "config.yaml");
  logger.info("resolved config:\n" + to_yaml(config));
  TrainRequest request{*run_dir, from_checkpoint, stop_requested};
  request.context = group.context.get();
  request.communicator = group.communicator.get();
  const TrainOutcome outcome = run_training(config, request, logger);
  // The last line, even with --quiet: how the run ended and where it is.
  if (launch.rank == 0) {
    if (outcome.status == TrainOutcome::Status::interrupted || outcome.status == TrainOutcome::Status::reached_max_steps)
      std::cout << (outcome.status == TrainOutcome::Status::interrupted ? "stopped" : "reached train.max_steps")
                << " at step " << outcome.global_step << ", checkpoint written; continue with --resume "
                << run_dir->string()
                << (outcome.status == TrainOutcome::Status::reached_max_steps
                        ? " --set train.max_steps=0 (or a larger budget)"
                        : "")
                << std::endl;
    else {
      std::ostringstream done;
      done << std::fixed << std::setprecision(4) << "done: " << count_of(outcome.epochs_completed, "epoch") << ", "
           << count_of(outcome.global_step, "step");
      const bool last_is_best = outcome.best_metric && outcome.best_epoch == outcome.epochs_completed;
      if (outcome.last_val_metric)
        done << "; " << (last_is_best ? "" : "last epoch's ") << outcome.metric_name << " " << *outcome.last_val_metric;
      if (last_is_best)
        done << ", the best epoch (checkpoints/best)";
      else if (outcome.best_metric)
        done << "; best " << outcome.select_metric << " " << *outcome.best_metric << " at epoch " << outcome.best_epoch
             << " (checkpoints/best, which gpu_eval and gpu_predict use)";
      std::cout << done.str() << "; run directory " << run_dir->string() << std::endl;
    }
  }
  return outcome.status == TrainOutcome::Status::interrupted ? kExitInterrupted : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cadenza::tool_main("gpu_train", [&] { return train_main(argc, argv); });
}
