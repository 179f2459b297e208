// [cpu][model] Building models from configs: shapes through the graph, parameter counts,
// and the build-time errors that name layers and shapes.
#include <catch2/catch.hpp>

#include <cmath>

#include "host/config/config.hpp"
#include "host/core/error.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/model/model.hpp"
#include "host/model/summary.hpp"
#include "tests/test_support.hpp"

using namespace cadenza;

namespace {

Config config_with_layers(const std::string& layers_yaml) {
  return parse_config("data: {synthetic: {num_classes: 4}}\n"
                      "features: {n_mels: 32}\n"
                      "model:\n  layers:\n" + layers_yaml,
                      "test.yaml");
}

std::string build_error(const Config& config, const Shape& input) {
  CpuBackend backend(1);
  ArenaPlan plan;
  try {
    Model model(config.model, input, 4, plan, backend);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("the demo model has the parameters its layers define", "[cpu][model]") {
  const Config config = load_config(std::string(CADENZA_SOURCE_DIR) + "/configs/demo.yaml");
  CpuBackend backend(1);
  ArenaPlan plan;
  const Model model(config.model, Shape{2, 1, 64, 126}, 8, plan, backend);
  auto conv = [](int in, int out) { return in * out * 9 + out; };
  const std::int64_t expected = 2 /* input_bn */ + conv(1, 16) + 32 + conv(16, 32) + 64 +
                                conv(32, 64) + 128 + conv(64, 64) + 128 + (64 * 8 + 8);
  CHECK(model.parameter_count() == expected);
  const auto rows = model.summary();
  CHECK(rows.back().output_shape == (Shape{2, 8}));
  CHECK(rows[1].name == "conv1");
  CHECK(rows[1].forward_flops == 2LL * 16 * 64 * 126 * 9);
  const std::string table = model_summary(config, backend);
  CHECK_THAT(table, Catch::Contains("total: " + std::to_string(expected) + " parameters"));
}

TEST_CASE("a layer that does not fit its input names both layers' shapes", "[cpu][model]") {
  SECTION("pooling larger than what reaches it") {
    const std::string message = build_error(
        config_with_layers("    - {type: conv2d, name: c1, filters: 4, kernel: 3}\n"
                           "    - {type: maxpool2d, name: big_pool, pool: [64, 2]}\n"
                           "    - {type: global_avg_pool}\n    - {type: dense}\n"),
        Shape{2, 1, 32, 20});
    CHECK_THAT(message, Catch::Contains("big_pool") && Catch::Contains("[2, 4, 32, 20]"));
  }
  SECTION("a valid convolution larger than its input") {
    const std::string message = build_error(
        config_with_layers("    - {type: conv2d, name: wide, filters: 4, kernel: [3, 40], padding: valid}\n"
                           "    - {type: global_avg_pool}\n    - {type: dense}\n"),
        Shape{2, 1, 32, 20});
    CHECK_THAT(message, Catch::Contains("wide") && Catch::Contains("[2, 1, 32, 20]"));
  }
  SECTION("conv2d after flatten") {
    const std::string message = build_error(
        config_with_layers("    - {type: flatten, name: flat}\n"
                           "    - {type: conv2d, name: late_conv, filters: 4}\n    - {type: dense}\n"),
        Shape{2, 1, 32, 20});
    CHECK_THAT(message, Catch::Contains("late_conv") && Catch::Contains("[2, 640]"));
  }
  SECTION("an output that is not one score per label") {
    const std::string message = build_error(
        config_with_layers("    - {type: global_avg_pool}\n    - {type: dense, name: head, units: 7}\n"),
        Shape{2, 1, 32, 20});
    CHECK_THAT(message, Catch::Contains("head") && Catch::Contains("[2, 4]") &&
                            Catch::Contains("[2, 7]"));
  }
  SECTION("the model input is said in the config's terms") {
    // 66048 samples at hop 8192 make 9 frames, too few for the CNN's pooling.
    Config config = load_config(std::string(CADENZA_SOURCE_DIR) + "/configs/gtzan_cnn2d.yaml",
                                {"features.hop_length=8192"});
    CpuBackend backend(1);
    CHECK_THROWS_WITH(model_summary(config, backend),
                      Catch::StartsWith("model.layers[6], layer 'conv2a'") &&
                          Catch::EndsWith("; the model input [1, 1, 128, 9] is 128 mel bands by 9 frames of 66048 "
                                          "samples (data.clip_seconds 2.99537 s at 22050 Hz, features.hop_length "
                                          "8192)"));
  }
  SECTION("an output no layer reads") {
    const std::string message = build_error(
        config_with_layers("    - {type: conv2d, name: trunk, filters: 4}\n"
                           "    - {type: relu, name: dead_end, inputs: [trunk]}\n"
                           "    - {type: global_avg_pool, inputs: [trunk]}\n    - {type: dense}\n"),
        Shape{2, 1, 32, 20});
    CHECK_THAT(message, Catch::Contains("'dead_end'") && Catch::Contains("read by no layer"));
  }
  SECTION("an add of two shapes names both inputs") {
    const std::string message = build_error(
        config_with_layers("    - {type: conv2d, name: wide, filters: 4}\n"
                           "    - {type: conv2d, name: narrow, filters: 2, inputs: [input]}\n"
                           "    - {type: add, name: joint, inputs: [wide, narrow]}\n"
                           "    - {type: global_avg_pool}\n    - {type: dense}\n"),
        Shape{2, 1, 32, 20});
    CHECK_THAT(message, Catch::Contains("'joint'") && Catch::Contains("'wide' [2, 4, 32, 20]") &&
                            Catch::Contains("'narrow' [2, 2, 32, 20]"));
  }
  SECTION("a recurrent-style input after a conv names the layer it came from") {
    const std::string message = build_error(
        config_with_layers("    - {type: conv2d, name: c1, filters: 4}\n"
                           "    - {type: conv1d, name: c2, filters: 4}\n"
                           "    - {type: global_avg_pool}\n    - {type: dense}\n"),
        Shape{2, 1, 32, 20});
    CHECK_THAT(message, Catch::Contains("'c2' (conv1d)") &&
                            Catch::Contains("layer 'c1' (conv2d) gives [2, 4, 32, 20]"));
  }
}

TEST_CASE("explicit inputs wire the same chain as the default order", "[cpu][model]") {
  const Config config = config_with_layers(
      "    - {type: conv2d, name: c1, filters: 3, inputs: [input]}\n"
      "    - {type: relu, name: r1, inputs: [c1]}\n"
      "    - {type: global_avg_pool, name: pool, inputs: [r1]}\n    - {type: dense}\n");
  CpuBackend backend(1);
  ArenaPlan plan;
  const Model model(config.model, Shape{2, 1, 8, 8}, 4, plan, backend);
  // The relu runs fused into the convolution: one node, named as the convolution.
  REQUIRE(model.summary().size() == 3);
  CHECK(model.summary()[0].type == "conv2d+relu");
  CHECK(model.summary()[0].name == "c1");
  CHECK(model.summary()[1].output_shape == (Shape{2, 3}));
  CHECK(model.parameter_count() == (9 * 3 + 3) + (3 * 4 + 4));
}

TEST_CASE("a parameter-free first layer needs no input gradient; batchnorm refuses one value "
          "per channel", "[cpu][model]") {
  const Config config = config_with_layers(
      "    - {type: maxpool2d, name: first_pool, pool: 2}\n"
      "    - {type: conv2d, name: c1, filters: 3}\n"
      "    - {type: global_avg_pool}\n"
      "    - {type: batchnorm, name: late_bn}\n"
      "    - {type: dense}\n");
  CpuBackend backend(1);
  for (int batch : {2, 1}) {
    ArenaPlan plan;
    Model model(config.model, Shape{batch, 1, 8, 8}, 4, plan, backend);
    Arena arena(std::move(plan), backend);
    model.bind(arena);
    model.initialize(1, backend);
    const StepInfo training = testing::training_step(3);
    if (batch == 1) {
      // (1, 3) after pooling: one value per channel, which batch statistics cannot normalise.
      CHECK_THROWS_WITH(model.forward(backend, training),
                        Catch::Contains("late_bn") && Catch::Contains("batch_size"));
      continue;
    }
    model.forward(backend, training);
    Tensor dlogits = model.output_gradient();
    for (std::int64_t i = 0; i < dlogits.numel(); ++i) dlogits.f32()[i] = 0.1f * float(i + 1);
    model.backward(backend, training);
    const Tensor grads = arena.region(Region::gradients);
    double norm = 0;
    for (std::int64_t i = 0; i < grads.numel(); ++i) norm += std::abs(grads.f32()[i]);
    CHECK(norm > 0);
  }
}

TEST_CASE("leaky_relu, sigmoid and tanh layers build, run and pass gradients back", "[cpu][model]") {
  const Config config = config_with_layers(
      "    - {type: conv2d, name: c1, filters: 3}\n"
      "    - {type: leaky_relu, name: leaky, negative_slope: 0.2}\n"
      "    - {type: global_avg_pool}\n"
      "    - {type: dense, name: logits, units: 4}\n"
      "    - {type: tanh, name: squash}\n"
      "    - {type: sigmoid, name: gate}\n");
  CpuBackend backend(1);
  ArenaPlan plan;
  Model model(config.model, Shape{2, 1, 8, 8}, 4, plan, backend);
  const auto rows = model.summary();
  REQUIRE(rows.size() == 6);
  CHECK(rows[1].type == "leaky_relu");
  CHECK(rows[1].output_shape == (Shape{2, 3, 8, 8}));
  CHECK(rows[1].forward_flops == 3 * 8 * 8);  // one per element, as relu and elu
  CHECK(rows[4].type == "tanh");
  CHECK(rows[5].type == "sigmoid");
  CHECK(rows[5].output_shape == (Shape{2, 4}));
  CHECK(model.parameter_count() == (9 * 3 + 3) + (3 * 4 + 4));

  Arena arena(std::move(plan), backend);
  model.bind(arena);
  model.initialize(1, backend);
  Tensor input = model.input();
  for (std::int64_t i = 0; i < input.numel(); ++i) input.f32()[i] = std::sin(0.37f * float(i));
  const StepInfo training = testing::training_step(3);
  model.forward(backend, training);
  // sigmoid(tanh(z)) lies in (sigmoid(-1), sigmoid(1)) whatever the logits z.
  const Tensor out = model.output();
  for (std::int64_t i = 0; i < out.numel(); ++i) {
    CHECK(out.f32()[i] > 1.0f / (1.0f + std::exp(1.0f)));
    CHECK(out.f32()[i] < 1.0f / (1.0f + std::exp(-1.0f)));
  }
  Tensor dout = model.output_gradient();
  for (std::int64_t i = 0; i < dout.numel(); ++i) dout.f32()[i] = 0.1f * float(i + 1);
  model.backward(backend, training);
  const Tensor grads = arena.region(Region::gradients);
  double norm = 0;
  for (std::int64_t i = 0; i < grads.numel(); ++i) {
    REQUIRE(std::isfinite(grads.f32()[i]));
    norm += std::abs(grads.f32()[i]);
  }
  CHECK(norm > 0);
}
