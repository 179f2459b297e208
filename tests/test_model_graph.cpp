// [cpu][model] Models as graphs: branches, residual adds, concatenation, squeeze-excitation
// gates, 1-D convolutions and pooling, reshapes to sequences and per-axis batchnorm, each
// checked end to end by tests/model_gradient_check.hpp: every parameter's gradient from
// Model::backward against central finite differences of L = sum(r * logits).
//
// Max pooling is piecewise linear: a step that makes another element win a window shows as
// one large error, so the model with maxima over short windows of close values uses a
// step of 1e-3.
#include <catch2/catch.hpp>

#include "host/config/config.hpp"
#include "tests/model_gradient_check.hpp"

using namespace cadenza;
using cadenza::testing::BuiltModel;
using cadenza::testing::check_model_gradients;

namespace {

Config config_with_layers(const std::string& layers_yaml) {
  return parse_config("data: {synthetic: {num_classes: 3}}\nmodel:\n  layers:\n" + layers_yaml,
                      "graph.yaml");
}

}  // namespace

TEST_CASE("a residual block sums the gradients of an output read twice", "[cpu][model]") {
  // trunk feeds both the residual branch and the add: its gradient has two parts.
  check_model_gradients(config_with_layers(
                            "    - {type: conv2d, name: trunk, filters: 3}\n"
                            "    - {type: conv2d, name: branch, filters: 3}\n"
                            "    - {type: batchnorm, name: branch_bn}\n"
                            "    - {type: add, name: joint, inputs: [branch_bn, trunk]}\n"
                            "    - {type: relu}\n"
                            "    - {type: global_avg_pool}\n    - {type: dense, name: head}\n"),
                        Shape{2, 1, 6, 7});
}

TEST_CASE("parallel branches joined by concat, each from the model input", "[cpu][model]") {
  // Musicnn's front: a tall conv reduced by a max over frequency, and a frequency average
  // followed by a 1-D conv over time, concatenated along channels.
  check_model_gradients(config_with_layers(
                            "    - {type: conv2d, name: tall, filters: 2, kernel: [5, 3], padding: explicit, pad: [0, 1]}\n"
                            "    - {type: global_max_pool, name: over_freq, axes: [2]}\n"
                            "    - {type: global_avg_pool, name: freq_mean, axes: [2], inputs: [input]}\n"
                            "    - {type: conv1d, name: temporal, filters: 2, kernel: 3, inputs: [freq_mean]}\n"
                            "    - {type: concat, name: front, inputs: [over_freq, temporal]}\n"
                            "    - {type: global_max_pool, name: time_max}\n"
                            "    - {type: global_avg_pool, name: time_mean, inputs: [front]}\n"
                            "    - {type: concat, name: pooled, inputs: [time_max, time_mean]}\n"
                            "    - {type: dense, name: head}\n"),
                        Shape{2, 1, 8, 9}, 1e-3f);
}

TEST_CASE("a squeeze-excitation block gates channels by a function of themselves",
          "[cpu][model]") {
  check_model_gradients(config_with_layers(
                            "    - {type: conv1d, name: conv, filters: 4, kernel: 3, stride: 3, padding: explicit, pad: 1}\n"
                            "    - {type: global_avg_pool, name: squeeze}\n"
                            "    - {type: dense, name: excite1, units: 4}\n"
                            "    - {type: relu}\n"
                            "    - {type: dense, name: excite2, units: 4}\n"
                            "    - {type: sigmoid, name: gate}\n"
                            "    - {type: scale_channels, name: recalibrated, inputs: [conv, gate]}\n"
                            "    - {type: maxpool1d, pool: 2}\n"
                            "    - {type: avgpool1d, pool: 2}\n"
                            "    - {type: flatten}\n    - {type: dense, name: head}\n"),
                        Shape{2, 1, 27});
}

TEST_CASE("a feature map becomes a sequence; per-frequency batchnorm; reshape and permute",
          "[cpu][model]") {
  check_model_gradients(config_with_layers(
                            "    - {type: batchnorm, name: freq_bn, axis: 2}\n"
                            "    - {type: conv2d, name: conv, filters: 3}\n"
                            "    - {type: avgpool2d, pool: [2, 1]}\n"
                            "    - {type: to_sequence, name: seq}\n"
                            "    - {type: permute, order: [0, 2, 1]}\n"
                            "    - {type: reshape, shape: [-1, 5]}\n"
                            "    - {type: flatten}\n    - {type: dense, name: head}\n"),
                        Shape{3, 1, 4, 5});
  BuiltModel shapes(config_with_layers("    - {type: conv2d, filters: 3}\n"
                                       "    - {type: to_sequence, name: seq}\n"
                                       "    - {type: flatten}\n    - {type: dense}\n"),
                    Shape{2, 1, 4, 5});
  CHECK(shapes.model->summary()[1].output_shape == (Shape{2, 5, 12}));
}
