// gpu_selfcheck: checks a GPU, its driver and cuDNN against the CPU backend — the first
// thing to run on a new machine.
//
//   gpu_selfcheck [--device cuda:N] [--config configs/demo.yaml] [--steps 5]
//
// 1. Every op forward and backward on fresh random inputs, CUDA against CPU, with sentinel
//    guards around outputs (host/selfcheck/op_parity): a table of max relative error,
//    tolerance and pass/fail.
// 2. A few training steps of the config on both devices, same seed: the losses side by side.
// Exits 0 when everything passes, 1 when anything fails, 2 when no GPU works.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "host/cli/arguments.hpp"
#include "host/cli/tool_main.hpp"
#include "host/config/config.hpp"
#include "host/core/context.hpp"
#include "host/core/error.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/io/jsonl.hpp"
#include "host/selfcheck/op_parity.hpp"
#include "host/train/trainer.hpp"

namespace {

using namespace cadenza;
namespace fs = std::filesystem;

// Step losses of two devices differ by the compounding of per-op rounding differences
// (kReduction-sized per step); 1e-3 relative over a few steps leaves room for that and
// none for a wrong op, which moves the loss by far more.
constexpr double kLossTolerance = 1e-3;

constexpr const char* kUsage =
    "usage: gpu_selfcheck [options]        check a GPU, its driver and cuDNN against the CPU backend\n"
    "Runs every op forward and backward on random inputs on both backends and prints the largest\n"
    "error of each against its tolerance, then trains a few steps of CONFIG on both and compares\n"
    "the losses. Exits 0 when all pass, 1 when any fails, 2 when no GPU works.\n"
    "options:\n"
    "  --device D        cuda or cuda:N, the GPU to check (default cuda:0)\n"
    "  --config CONFIG   the config whose training steps are compared (default configs/demo.yaml)\n"
    "  --steps N         training steps on each device (default 5)\n";

int selfcheck_main(int argc, char** argv) {
  const ArgumentSpec spec{.with_value = {"--device", "--config", "--steps"},
                          .usage = kUsage};
  const Arguments args = parse_arguments(argc, argv, spec);
  const std::string device = args.value("--device").value_or("cuda:0");
  if (!device.starts_with("cuda"))
    CADENZA_USER_ERROR("--device " << device << ": expected cuda or cuda:N (the self-check compares a GPU with the CPU)");
  const std::string config_path = args.value("--config").value_or(CADENZA_SOURCE_DIR "/configs/demo.yaml");
  const int steps = args.integer("--steps", 5);
  if (steps < 1) CADENZA_USER_ERROR("--steps: expected 1 or more training steps, got " << steps);
  load_config(config_path);  // a wrong --config fails now, not after the op checks

  Logger logger(std::cerr, Logger::Level::warn);
  const auto gpu = make_context(device, 0, logger);  // a UserError (exit 2) without a GPU
  std::cout << "gpu_selfcheck: " << probe_cuda().summary << "\n\n";

  CpuBackend cpu(0);
  const std::vector<ParityResult> results = run_op_parity(cpu, gpu->backend());
  int failures = 0;
  // The case goes last and whole: its precision and padding tell rows apart.
  std::cout << std::left << std::setw(30) << "op" << std::setw(20) << "output" << std::right << std::setw(11)
            << "max error" << std::setw(11) << "tolerance" << "  " << std::left << std::setw(34) << "result"
            << "case\n";
  for (const ParityResult& r : results) {
    failures += !r.passed();
    std::cout << std::left << std::setw(30) << r.op << std::setw(20) << r.output << std::right << std::scientific
              << std::setprecision(2) << std::setw(11) << r.max_error << std::setw(11) << r.tolerance << "  "
              << std::left << std::setw(34)
              << (r.passed() ? "pass" : !r.guards_intact ? "FAIL (wrote outside its buffer)"
                                        : !r.finite      ? "FAIL (not finite, or threw)"
                                                         : "FAIL")
              << r.shape_case << "\n";
  }
  for (const std::string& op : uncovered_ops(results)) {
    ++failures;
    std::cout << std::left << std::setw(30) << op << "FAIL (no parity case)\n";
  }

  // The same training steps on both devices.
  const fs::path scratch = fs::temp_directory_path() / ("cadenza-selfcheck-" + std::to_string(::getpid()));
  std::vector<double> losses[2];
  const char* devices[2] = {"cpu", device.c_str()};
  for (int d = 0; d < 2; ++d) {
    const Config config = load_config(config_path, {"train.device=" + std::string(devices[d]),
                                                    "train.max_steps=" + std::to_string(steps),
                                                    "train.log_every_steps=1"});
    const fs::path run_dir = scratch / devices[d];
    run_training(config, TrainRequest{run_dir, false}, logger);
    losses[d] = logged_step_losses(run_dir);
  }
  fs::remove_all(scratch);
  std::cout << "\ntraining " << config_path << " for " << steps << " steps\n"
            << std::setw(6) << "step" << std::setw(14) << "cpu loss" << std::setw(14) << "cuda loss"
            << std::setw(12) << "rel. diff" << "  result\n";
  if (losses[0].size() != losses[1].size() || losses[0].empty()) {
    ++failures;
    std::cout << "FAIL: " << losses[0].size() << " cpu steps, " << losses[1].size() << " cuda steps\n";
  }
  for (std::size_t s = 0; s < std::min(losses[0].size(), losses[1].size()); ++s) {
    const double diff = std::fabs(losses[1][s] - losses[0][s]) / std::max(1e-12, std::fabs(losses[0][s]));
    const bool ok = std::isfinite(losses[1][s]) && diff <= kLossTolerance;
    failures += !ok;
    std::cout << std::setw(6) << s + 1 << std::fixed << std::setprecision(6) << std::setw(14) << losses[0][s]
              << std::setw(14) << losses[1][s] << std::scientific << std::setprecision(2) << std::setw(12)
              << diff << "  " << (ok ? "pass" : "FAIL") << "\n";
  }
  std::cout << "\n" << (failures ? std::to_string(failures) + " check(s) FAILED" : "all checks passed") << "\n";
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cadenza::tool_main("gpu_selfcheck", [&] { return selfcheck_main(argc, argv); });
}
