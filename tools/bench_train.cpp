// bench_train: how many training examples per second cadenza's step runs for a config's
// model, front-end and batch, on the CPU backend or a GPU, and the machine's ceiling.
//
//   bench_train [--config configs/mtat_top10_crnn.yaml] [--device cpu|cuda|cuda:N]
//               [--threads N] [--batch B] [--warmup W] [--steps S] [--set KEY=VALUE]...
//               [--json FILE]
//
// A step is what gpu_train's step does on a batch already on the device (TrainingStep):
// front-end, forward, loss, backward, gradient clipping and the optimizer's update. The
// batch is synthetic music-like audio and random targets, made once; no data is read, no
// augmentation runs (a config's augment: section is ignored). W untimed steps, then S
// steps each timed to the device's completion; the median gives samples/s. As in training,
// the step is replayed as a recorded graph after StepGraphs' warm-up unless
// train.capture_graph is false (--set train.capture_graph=false).
//
// The ceiling is what the machine could do if every FLOP of the step ran at the rate of
// one large GEMM on the same backend and threads: measured GEMM FLOP/s over 3 × the
// model's forward FLOPs per example (backward costs about twice forward; the front-end
// and elementwise layers are not counted).
//
// Memory: the arena (every parameter, gradient, activation and workspace buffer of the
// step, on the device) and the process's peak resident set.
//
// tools/bench/train.py runs this next to the same model in PyTorch and prints both. The
// JSON holds the resolved config (blocks expanded) for that peer to build the model from.
// Nothing here is a test. Exit codes: 0 done, 2 a user error.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "host/cli/arguments.hpp"
#include "host/cli/tool_main.hpp"
#include "host/config/config.hpp"
#include "host/core/arena.hpp"
#include "host/core/context.hpp"
#include "host/core/error.hpp"
#include "host/core/logger.hpp"
#include "host/data/dataset.hpp"
#include "host/math/random_math.hpp"
#include "host/train/step_graphs.hpp"
#include "host/train/training_step.hpp"

namespace {

constexpr const char* kUsage =
    "usage: bench_train [options]          time a config's training step\n"
    "options:\n"
    "  --config CONFIG  model, features, batch and optimizer (default configs/mtat_top10_crnn.yaml)\n"
    "  --device D       cpu (default), cuda, cuda:N\n"
    "  --threads N      CPU threads (default: all cores)\n"
    "  --batch B        examples per step (default: train.batch_size)\n"
    "  --warmup W       untimed steps first (default 3)\n"
    "  --steps S        timed steps (default 10)\n"
    "  --set KEY=VALUE  override a config key (repeatable)\n"
    "  --json FILE      also write the figures and the resolved config as JSON\n";

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// FLOP/s of a (4096 × 1024) · (1024 × 1024) dense layer on the backend: the rate the
// step's convolutions and dense layers could at best reach.
double gemm_flops_per_second(cadenza::Backend& backend) {
  using namespace cadenza;
  const DenseGeometry g{4096, 1024, 1024};
  ArenaPlan plan;
  const BufferId x = plan.add(Region::activations, "x", Shape{g.batch, g.in_features});
  const BufferId w = plan.add(Region::parameters, "w", Shape{g.out_features, g.in_features});
  const BufferId b = plan.add(Region::parameters, "b", Shape{g.out_features});
  const BufferId y = plan.add(Region::activations, "y", Shape{g.batch, g.out_features});
  Arena arena(std::move(plan), backend);
  Tensor xs = arena.get(x), ws = arena.get(w), bs = arena.get(b), ys = arena.get(y);
  // Random operands: a GPU multiplies zeros faster than data (less switching power, so
  // higher clocks), which would overstate the ceiling.
  for (Tensor* t : {&xs, &ws, &bs}) {
    Tensor host = Tensor::zeros(t->shape());
    for (std::int64_t i = 0; i < host.numel(); ++i) host.f32()[i] = 2.0f * uniform01(5, 0, std::uint64_t(i)) - 1.0f;
    backend.copy(host, *t);
  }
  std::vector<double> timings;
  for (int i = 0; i < 7; ++i) {
    const auto start = Clock::now();
    backend.dense_forward(g, xs, ws, bs, ys);
    backend.synchronize();
    if (i >= 2) timings.push_back(seconds_since(start));
  }
  std::sort(timings.begin(), timings.end());
  return 2.0 * g.batch * g.in_features * g.out_features / timings[timings.size() / 2];
}

// This process's peak resident set: VmHWM of /proc/self/status (getrusage's ru_maxrss would
// include the peak of the process that started this one, which it keeps across exec).
double peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) * 1024.0;  // kB
  return 0.0;
}

int bench_main(int argc, char** argv) {
  using namespace cadenza;
  const ArgumentSpec spec{.with_value = {"--config", "--device", "--threads", "--batch", "--warmup", "--steps", "--json"},
                          .repeatable = {"--set"},
                          .usage = kUsage};
  const Arguments args = parse_arguments(argc, argv, spec);
  const std::string config_path = args.value("--config").value_or("configs/mtat_top10_crnn.yaml");
  const auto sets = args.repeated.find("--set");
  const Config config =
      load_config(config_path, sets == args.repeated.end() ? std::vector<std::string>{} : sets->second);
  const int batch = args.integer("--batch", config.train.batch_size);
  const int warmup = args.integer("--warmup", 3), steps = args.integer("--steps", 10);
  if (batch < 1 || warmup < 0 || steps < 1) CADENZA_USER_ERROR("--batch and --steps must be positive, --warmup not negative");

  Logger logger(std::cerr, Logger::Level::warn);
  const auto context = make_context(args.value("--device").value_or("cpu"), args.integer("--threads", 0), logger);
  apply_precision(*context, config.train.precision);
  Backend& backend = context->backend();
  const int sample_rate = config.data.sample_rate;
  const auto window = static_cast<int>(std::llround(config.data.clip_seconds * sample_rate));
  const int labels = dataset_label_count(config.data);
  const bool sigmoid_loss = config.loss.type == "auto" ? dataset_multi_label(config.data)
                                                       : config.loss.type == "sigmoid_bce";
  const auto frontend = backend.make_frontend(config.features, sample_rate, window, batch);

  ArenaPlan plan;
  const BufferId pcm_id = plan.add(Region::activations, "pcm", Shape{batch, window});
  const BufferId targets_id = plan.add(Region::activations, "targets", Shape{batch, labels});
  TrainingStep step(config, frontend->features_shape(batch), labels, sigmoid_loss, plan, backend);
  Arena arena(std::move(plan), backend);
  step.bind(arena);
  step.model().initialize(config.train.seed, backend);

  // Tones with vibrato and a little noise, and random one-hot or multi-hot targets.
  Tensor pcm_host = Tensor::zeros(Shape{batch, window});
  Tensor targets_host = Tensor::zeros(Shape{batch, labels});
  for (int b = 0; b < batch; ++b) {
    for (int i = 0; i < window; ++i) {
      const double t = double(i) / sample_rate;
      pcm_host.f32()[std::int64_t(b) * window + i] = static_cast<float>(
          0.3 * std::sin(2 * M_PI * (110.0 * (b + 1)) * t + 2.0 * std::sin(2 * M_PI * 5.0 * t)) +
          0.05 * std::sin(12345.678 * double(i) * (b + 3)));
    }
    const std::uint64_t bits = hash64(config.train.seed, static_cast<std::uint64_t>(b));
    if (sigmoid_loss) {
      for (int k = 0; k < labels; ++k) targets_host.f32()[b * labels + k] = (bits >> (k % 64)) & 1 ? 1.0f : 0.0f;
    } else {
      targets_host.f32()[b * labels + static_cast<int>(bits % static_cast<std::uint64_t>(labels))] = 1.0f;
    }
  }
  Tensor pcm = arena.get(pcm_id), targets = arena.get(targets_id);
  backend.copy(pcm_host, pcm);
  backend.copy(targets_host, targets);

  Tensor features = step.model().input();
  const auto lr = static_cast<float>(config.train.lr);
  std::vector<double> timings;
  StepGraphs graphs(backend, config.train.capture_graph, logger);
  for (int s = 0; s < warmup + steps; ++s) {
    const auto start = Clock::now();
    step.set_step_values(backend, StepValues{.dropout_seed = hash64(config.train.seed, static_cast<std::uint64_t>(s))},
                         s + 1, lr);
    graphs.run(pcm.raw(), [&] {
      const StepInfo info{true, step.step_values()};
      frontend->compute(pcm, features);
      step.forward_and_loss(backend, info, targets);
      step.backward_and_update(backend, info, nullptr);
    });
    backend.synchronize();
    if (s >= warmup) timings.push_back(seconds_since(start));
  }
  std::sort(timings.begin(), timings.end());
  const double median = timings[timings.size() / 2];
  const double samples_per_s = batch / median;
  const double peak_rss_bytes = peak_resident_bytes();  // before the GEMM probe's own buffers

  double forward_flops = 0;
  for (const LayerSummary& row : step.model().summary()) forward_flops += double(row.forward_flops);
  const double gemm = gemm_flops_per_second(backend);
  const double ceiling = gemm / (3.0 * forward_flops);
  const std::string device = backend.device().str();
  std::cout << config.model.name << " on " << device << ", batch " << batch << ", input "
            << features.shape().str() << ", " << step.model().parameter_count() << " parameters\n"
            << "  " << samples_per_s << " samples/s (median of " << steps << " steps, " << median * 1e3
            << " ms per step, range " << timings.front() * 1e3 << "-" << timings.back() * 1e3 << " ms)\n"
            << "  ceiling " << ceiling << " samples/s: GEMM " << gemm / 1e9 << " GFLOP/s over 3 x "
            << forward_flops / 1e9 << " GFLOP forward per example\n"
            << "  arena " << arena.total_bytes() / 1048576.0 << " MiB on " << device << ", peak resident set "
            << peak_rss_bytes / 1048576.0 << " MiB\n";
  if (const auto path = args.value("--json")) {
    const nlohmann::json j = {{"config", config_path},
                              {"model", config.model.name},
                              {"device", device},
                              {"batch", batch},
                              {"steps", steps},
                              {"samples_per_s", samples_per_s},
                              {"median_step_seconds", median},
                              {"step_seconds", timings},
                              {"parameters", step.model().parameter_count()},
                              {"labels", labels},
                              {"loss", sigmoid_loss ? "sigmoid_bce" : "softmax_cross_entropy"},
                              {"forward_flops_per_sample", forward_flops},
                              {"gemm_flops_per_s", gemm},
                              {"ceiling_samples_per_s", ceiling},
                              {"arena_bytes", arena.total_bytes()},
                              {"peak_rss_bytes", peak_rss_bytes},
                              {"resolved_config", to_yaml(config)}};
    std::ofstream(*path) << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cadenza::tool_main("bench_train", [&] { return bench_main(argc, argv); });
}
