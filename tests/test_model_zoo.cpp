// [cpu][model] The model zoo: every config in configs/ builds, summarises, and learns.
//
// - The parameter totals of Won et al.'s models equal the counts in the project's model
//   notes (computed from the reference PyTorch code: weights, biases, BN scale and shift).
// - Every config's model, at its real input size, takes two steps of its own optimizer on
//   one fixed batch of random features and targets on the CPU backend, and the loss on
//   that batch falls at each step. The forward pass is in training mode with a fixed
//   dropout key, so the loss is one deterministic function of the weights. The learning
//   rate is the config's, capped at 1e-5: Adam's first steps move every weight by about
//   the learning rate whatever its gradient, and a larger move (1e-4 over 7 million
//   weights, 4e-3 over 0.3 million) can overshoot the minimum of one batch's loss, which
//   would say nothing about the gradients. The batch is 4, not 2: batchnorm over two
//   values per channel (a length-1 output, a dense layer) gives +-1 whatever its input,
//   which leaves the layers before it with gradients of rounding noise.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>

#include "host/config/config.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/data/dataset.hpp"
#include "host/math/random_math.hpp"
#include "host/model/model.hpp"
#include "host/model/summary.hpp"
#include "host/train/optimizer.hpp"

using namespace cadenza;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> zoo_configs() {
  std::vector<std::string> paths;
  for (const auto& entry : fs::directory_iterator(fs::path(CADENZA_SOURCE_DIR) / "configs"))
    if (entry.path().extension() == ".yaml") paths.push_back(entry.path().string());
  std::sort(paths.begin(), paths.end());
  return paths;
}

bool is_multi_label(const Config& config) {
  return config.data.dataset == "mtat" || (config.data.dataset == "synthetic" && config.data.synthetic.multi_label);
}

// The mean loss of the fixed batch after `steps` optimizer steps from the initial weights.
std::vector<double> losses_over_steps(const Config& config, int steps) {
  CpuBackend backend(0);
  const int batch = 4;
  const int labels = dataset_label_count(config.data);
  const int samples = static_cast<int>(std::lround(config.data.clip_seconds * config.data.sample_rate));
  auto frontend = backend.make_frontend(config.features, config.data.sample_rate, samples, batch);
  ArenaPlan plan;
  Model model(config.model, frontend->features_shape(batch), labels, plan, backend);
  Optimizer optimizer(config.train, plan);
  const BufferId loss_id = plan.add(Region::activations, "loss", Shape{batch});
  Arena arena(std::move(plan), backend);
  model.bind(arena);
  optimizer.bind(arena, model.parameters(), {});
  model.initialize(config.train.seed, backend);

  Tensor x = model.input();
  for (std::int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = 2.0f * uniform01(3, 0, i) - 1.0f;
  Tensor targets = Tensor::zeros(Shape{batch, labels});
  const bool multi_label = is_multi_label(config);
  for (int b = 0; b < batch; ++b) {
    if (multi_label) {
      for (int k = 0; k < labels; ++k) targets.f32()[b * labels + k] = uniform01(4, b, k) < 0.3f ? 1.0f : 0.0f;
    } else {
      targets.f32()[b * labels + (b * 3) % labels] = 1.0f;
    }
  }
  Tensor loss = arena.get(loss_id), grads = arena.region(Region::gradients);
  std::vector<double> losses;
  for (int step = 0; step <= steps; ++step) {
    StepValues values{.dropout_seed = 99};
    optimizer.set_step_values(values, step + 1, static_cast<float>(std::min(config.train.lr, 1e-5)));
    const StepInfo step_info{.training = true, .step_values = step_values_tensor(values)};
    model.forward(backend, step_info);
    Tensor dlogits = model.output_gradient();
    backend.fill_zero(grads);
    if (multi_label)
      backend.sigmoid_bce(model.output(), targets, loss, dlogits, 1.0f / batch);
    else
      backend.softmax_cross_entropy(model.output(), targets, 0.0f, loss, dlogits, 1.0f / batch);
    double sum = 0.0;
    for (int b = 0; b < batch; ++b) sum += loss.f32()[b];
    losses.push_back(sum / batch);
    if (step == steps) break;
    model.backward(backend, step_info);
    optimizer.step(backend, step_info.step_values);
  }
  return losses;
}

}  // namespace

TEST_CASE("Won et al.'s models have the reference code's parameter counts", "[cpu][model]") {
  const std::map<std::string, std::int64_t> expected = {
      {"mtat_top50_fcn.yaml", 447'732},        {"mtat_top50_crnn.yaml", 394'100},
      {"mtat_top50_musicnn.yaml", 784'300},    {"mtat_top50_samplecnn.yaml", 1'869'874},
      {"mtat_top50_samplecnn_se.yaml", 6'951'858}, {"mtat_top50_shortchunk.yaml", 3'687'348},
      {"mtat_top50_shortchunk_res.yaml", 12'104'244}, {"mtat_top50_hcnn.yaml", 3'631'551},
  };
  CpuBackend backend(1);
  for (const auto& [file, count] : expected) {
    INFO(file);
    const Config config = load_config(std::string(CADENZA_SOURCE_DIR) + "/configs/" + file);
    const std::string summary = model_summary(config, backend);
    CHECK_THAT(summary, Catch::Contains("total: " + std::to_string(count) + " parameters"));
  }
}

TEST_CASE("every config builds, summarises, and two steps lower its loss on a fixed batch",
          "[cpu][model][slow]") {
  const std::vector<std::string> paths = zoo_configs();
  REQUIRE(paths.size() >= 21);  // the demo and the twenty models of the seeds and Won et al.
  CpuBackend backend(1);
  for (const std::string& path : paths) {
    INFO(path);
    const Config config = load_config(path);
    CHECK_THAT(model_summary(config, backend), Catch::Contains("total: "));
    const std::vector<double> losses = losses_over_steps(config, 2);
    INFO("losses " << losses[0] << ", " << losses[1] << ", " << losses[2]);
    CHECK(std::isfinite(losses[2]));
    CHECK(losses[1] < losses[0]);
    CHECK(losses[2] < losses[1]);
  }
}
