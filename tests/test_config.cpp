// Tests of the config reader: values and defaults, every kind of error message, --set
// overrides, the to_yaml round trip and model_hash.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "host/config/config.hpp"
#include "host/config/config_schema.hpp"
#include "host/core/error.hpp"

namespace cadenza {
namespace {

using Catch::Matchers::Contains;

constexpr const char* kOrigin = "configs/x.yaml";

// A config that sets every key to a value other than its default and uses every layer type.
const std::string kFullConfig = R"(schema_version: 1
data:
  dataset: synthetic
  root: /data/none
  sample_rate: 22050
  clip_seconds: 3.5
  split: random
  split_fractions: [0.7, 0.2, 0.1]
  split_seed: 99
  split_lists: /data/lists
  tags: [guitar, "no vocals"]
  subset: medium
  labels: genres_all
  genres: [Rock, Hip-Hop]
  metadata: /data/fma_metadata
  audio_dir: /data/audio
  manifest: /data/manifest.csv
  synthetic:
    num_classes: 5
    clips_per_class: 12
    multi_label: true
    seed: 18446744073709551615
features:
  type: stft
  n_fft: 1024
  hop_length: 300
  win_length: 800
  window: hann
  center: false
  pad_mode: constant
  power: 1
  n_mels: 64
  f_min: 20.5
  f_max: 11000
  mel_scale: slaney
  mel_norm: slaney
  log: log1p
  amin: 1e-12
  db_ref: 0.5
  top_db: 80
  log1p_scale: 123.25
model:
  name: tiny-cnn_1
  layers:
    - type: conv2d
      name: stem
      filters: 16
      kernel: [3, 5]
      stride: 2
      dilation: [1, 2]
      padding: valid
      bias: false
      init: he_normal
    - {type: batchnorm, momentum: 0.01, eps: 0.001}
    - {type: elu, alpha: 0.5}
    - {type: maxpool2d, pool: [2, 3], pool_stride: 1}
    - {type: relu, inputs: [maxpool2d3]}
    - {type: leaky_relu, negative_slope: 0.2}
    - {type: sigmoid}
    - {type: tanh}
    - {type: dropout, rate: 0.25}
    - {type: global_avg_pool}
    - {type: flatten, inputs: global_avg_pool9}
    - {type: dense, units: 32, bias: false, init: glorot_uniform}
    - {type: dense, name: head, init: normal}
loss:
  type: sigmoid_bce
  label_smoothing: 0
train:
  epochs: 3
  batch_size: 4
  optimizer: sgd
  lr: 0.1
  weight_decay: 0.0005
  betas: [0.8, 0.95]
  eps: 1e-6
  momentum: 0.9
  nesterov: true
  seed: 7
  device: cuda:1
  threads: 2
  run_dir: "runs/with space"
  checkpoint_every_steps: 50
  keep_checkpoints: 3
  select_metric: val_roc_auc
  max_steps: 1000
  log_every_steps: 5
)";

// The smallest valid config: everything else takes its default.
const std::string kMinimalConfig = R"(model:
  layers:
    - {type: conv2d, filters: 8}
    - type: relu
    - type: global_avg_pool
    - type: dense
)";

Config parse(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return parse_config(text, kOrigin, overrides);
}

// The message of the UserError `action` throws (the test fails when it throws none).
std::string user_error(const std::function<void()>& action) {
  try {
    action();
  } catch (const UserError& error) {
    return error.what();
  }
  FAIL("expected a UserError");
  return "";
}

std::string parse_error(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return user_error([&] { parse(text, overrides); });
}

std::filesystem::path write_temp_file(const std::string& name, const std::string& text) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("a full config fills every field", "[cpu][config]") {
  const Config c = parse(kFullConfig);
  CHECK(c.schema_version == 1);
  CHECK(c.data.root == "/data/none");
  CHECK(c.data.sample_rate == 22050);
  CHECK(c.data.clip_seconds == 3.5);
  CHECK(c.data.split_fractions == std::array<double, 3>{0.7, 0.2, 0.1});
  CHECK(c.data.split == "random");
  CHECK(c.data.split_seed == 99);
  CHECK(c.data.split_lists == "/data/lists");
  CHECK(c.data.tags == std::vector<std::string>{"guitar", "no vocals"});
  CHECK(c.data.subset == "medium");
  CHECK(c.data.labels == "genres_all");
  CHECK(c.data.genres == std::vector<std::string>{"Rock", "Hip-Hop"});
  CHECK(c.data.metadata == "/data/fma_metadata");
  CHECK(c.data.audio_dir == "/data/audio");
  CHECK(c.data.manifest == "/data/manifest.csv");
  CHECK(c.data.synthetic.num_classes == 5);
  CHECK(c.data.synthetic.clips_per_class == 12);
  CHECK(c.data.synthetic.multi_label);
  CHECK(c.data.synthetic.seed == 18446744073709551615ull);

  CHECK(c.features.type == "stft");
  CHECK(c.features.n_fft == 1024);
  CHECK(c.features.hop_length == 300);
  CHECK(c.features.win_length == 800);
  CHECK_FALSE(c.features.center);
  CHECK(c.features.pad_mode == "constant");
  CHECK(c.features.power == 1.0);
  CHECK(c.features.n_mels == 64);
  CHECK(c.features.f_min == 20.5);
  CHECK(c.features.f_max == 11000.0);
  CHECK(c.features.mel_scale == "slaney");
  CHECK(c.features.mel_norm == "slaney");
  CHECK(c.features.log == "log1p");
  CHECK(c.features.amin == 1e-12);
  CHECK(c.features.db_ref == 0.5);
  CHECK(c.features.top_db == 80.0);
  CHECK(c.features.log1p_scale == 123.25);

  CHECK(c.model.name == "tiny-cnn_1");
  REQUIRE(c.model.layers.size() == 13);
  const LayerConfig& stem = c.model.layers[0];
  CHECK(stem.type == "conv2d");
  CHECK(stem.name == "stem");
  CHECK(stem.inputs == std::vector<std::string>{"input"});
  CHECK(stem.filters == 16);
  CHECK(stem.kernel == std::array<int, 2>{3, 5});
  CHECK(stem.stride == std::array<int, 2>{2, 2});
  CHECK(stem.dilation == std::array<int, 2>{1, 2});
  CHECK(stem.padding == "valid");
  CHECK_FALSE(stem.bias);
  CHECK(stem.init == "he_normal");
  CHECK(c.model.layers[1].name == "batchnorm1");
  CHECK(c.model.layers[1].inputs == std::vector<std::string>{"stem"});
  CHECK(c.model.layers[1].momentum == 0.01);
  CHECK(c.model.layers[1].eps == 0.001);
  CHECK(c.model.layers[2].alpha == 0.5);
  CHECK(c.model.layers[3].pool == std::array<int, 2>{2, 3});
  CHECK(c.model.layers[3].pool_stride == std::array<int, 2>{1, 1});
  CHECK(c.model.layers[4].inputs == std::vector<std::string>{"maxpool2d3"});
  CHECK(c.model.layers[5].type == "leaky_relu");
  CHECK(c.model.layers[5].negative_slope == 0.2);
  CHECK(c.model.layers[6].name == "sigmoid6");
  CHECK(c.model.layers[7].name == "tanh7");
  CHECK(c.model.layers[7].inputs == std::vector<std::string>{"sigmoid6"});
  CHECK(c.model.layers[8].rate == 0.25);
  CHECK(c.model.layers[10].inputs == std::vector<std::string>{"global_avg_pool9"});
  CHECK(c.model.layers[11].units == 32);
  CHECK_FALSE(c.model.layers[11].bias);
  CHECK(c.model.layers[11].init == "glorot_uniform");
  CHECK(c.model.layers[12].name == "head");
  CHECK(c.model.layers[12].inputs == std::vector<std::string>{"dense11"});
  CHECK(c.model.layers[12].units == 0);

  CHECK(c.loss.type == "sigmoid_bce");
  CHECK(c.train.epochs == 3);
  CHECK(c.train.batch_size == 4);
  CHECK(c.train.optimizer == "sgd");
  CHECK(c.train.lr == 0.1);
  CHECK(c.train.weight_decay == 0.0005);
  CHECK(c.train.betas == std::array<double, 2>{0.8, 0.95});
  CHECK(c.train.eps == 1e-6);
  CHECK(c.train.momentum == 0.9);
  CHECK(c.train.nesterov);
  CHECK(c.train.seed == 7);
  CHECK(c.train.device == "cuda:1");
  CHECK(c.train.threads == 2);
  CHECK(c.train.run_dir == "runs/with space");
  CHECK(c.train.checkpoint_every_steps == 50);
  CHECK(c.train.keep_checkpoints == 3);
  CHECK(c.train.select_metric == "val_roc_auc");
  CHECK(c.train.max_steps == 1000);
  CHECK(c.train.log_every_steps == 5);
  CHECK(c.source_path.empty());
}

TEST_CASE("keys left out take their defaults", "[cpu][config]") {
  const Config c = parse(kMinimalConfig);
  const Config defaults;
  CHECK(c.data.dataset == defaults.data.dataset);
  CHECK(c.data.sample_rate == defaults.data.sample_rate);
  CHECK(c.data.split_fractions == defaults.data.split_fractions);
  CHECK(c.data.split == "auto");
  CHECK(c.data.tags == std::vector<std::string>{"top50"});
  CHECK(c.data.subset == "small");
  CHECK(c.data.labels == "genre_top");
  CHECK(c.data.genres.empty());
  CHECK(c.data.manifest.empty());
  CHECK(c.data.synthetic.num_classes == defaults.data.synthetic.num_classes);
  CHECK(c.features.n_fft == defaults.features.n_fft);
  CHECK(c.features.mel_scale == defaults.features.mel_scale);
  CHECK(c.loss.type == "auto");
  CHECK(c.train.lr == defaults.train.lr);
  CHECK(c.train.betas == defaults.train.betas);
  CHECK(c.train.device == "auto");
  CHECK(c.model.name == "model");

  REQUIRE(c.model.layers.size() == 4);
  const LayerConfig& conv = c.model.layers[0];
  CHECK(conv.name == "conv2d0");
  CHECK(conv.inputs == std::vector<std::string>{"input"});
  CHECK(conv.kernel == std::array<int, 2>{3, 3});
  CHECK(conv.padding == "same");
  CHECK(conv.init == "torch_default");
  CHECK(c.model.layers[1].name == "relu1");
  CHECK(c.model.layers[1].inputs == std::vector<std::string>{"conv2d0"});
  CHECK(c.model.layers[3].name == "dense3");
  CHECK(c.model.layers[3].units == 0);

  // A missing section and an empty one mean the same.
  CHECK(to_yaml(parse(kMinimalConfig + "train:\n")) == to_yaml(c));
}

TEST_CASE("unknown keys name the file, the line and the closest key", "[cpu][config]") {
  const std::string message = parse_error(kMinimalConfig + "train:\n  learning_rate: 0.1\n");
  CHECK(message ==
        "configs/x.yaml:8: unknown key 'train.learning_rate' \u2014 did you mean 'train.lr'?");
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  Epoch: 3\n"),
             Contains("unknown key 'train.Epoch'") && Contains("did you mean 'train.epochs'?"));
  CHECK_THAT(parse_error(kMinimalConfig + "trian:\n  epochs: 3\n"),
             Contains("configs/x.yaml:7: unknown key 'trian'") && Contains("'train'?"));
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  sample_rate: 8000\n"),
             Contains("did you mean 'data.sample_rate'?"));
  // Nothing close: the section's keys are listed instead.
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  zzzz: 1\n"),
             Contains("unknown key 'train.zzzz'; train takes: epochs, batch_size,") &&
                 !Contains("did you mean"));
  CHECK_THAT(parse_error(kMinimalConfig + "data:\n  synthetic:\n    num_class: 3\n"),
             Contains("did you mean 'data.synthetic.num_classes'?"));
}

TEST_CASE("layer keys are checked against the layer's type", "[cpu][config]") {
  CHECK(parse_error("model:\n  layers:\n    - {type: relu}\n    - {type: conv2d, filter: 8}\n") ==
        "configs/x.yaml:4: unknown key 'model.layers[1].filter' for a conv2d layer \u2014 did you "
        "mean 'model.layers[1].filters'?");
  CHECK_THAT(parse_error("model:\n  layers:\n    - {type: conv2d, filters: 8, units: 3}\n"),
             Contains("unknown key 'model.layers[0].units' for a conv2d layer; conv2d layers take: "
                      "type, name, inputs, filters") &&
                 Contains("units is a key of dense"));
  CHECK_THAT(parse_error("model:\n  layers:\n    - {type: conv, filters: 8}\n"),
             Contains("configs/x.yaml:3: model.layers[0].type: expected one of conv1d, conv2d, "
                      "batchnorm, relu,") &&
                 Contains("got 'conv' \u2014 did you mean 'conv1d'?"));
  CHECK_THAT(parse_error("model:\n  layers:\n    - {filters: 8}\n"),
             Contains("model.layers[0]: missing required key 'type' (one of conv1d, conv2d,"));
  CHECK_THAT(parse_error("model:\n  layers:\n    - {type: conv2d}\n"),
             Contains("configs/x.yaml:3: model.layers[0]: missing required key 'filters' (an "
                      "integer > 0) for a conv2d layer"));
  CHECK_THAT(parse_error("model:\n  layers:\n    - {type: conv2d, filters: 8, kernel: [3, 0]}\n"),
             Contains("model.layers[0].kernel: expected an integer > 0 or a list of 2 integers > "
                      "0, got [3, 0]"));
  CHECK_THAT(parse_error("model:\n  layers:\n    - {type: batchnorm, momentum: 0}\n"),
             Contains("model.layers[0].momentum: expected a number in (0, 1], got 0"));
  CHECK_THAT(parse_error("model:\n  layers:\n    - {type: dropout, rate: 1}\n"),
             Contains("model.layers[0].rate: expected a number in [0, 1), got 1"));
  CHECK_THAT(parse_error("model:\n  layers:\n    - {type: dense, init: he}\n"),
             Contains("model.layers[0].init: expected one of torch_default, he_normal, he_uniform, "
                      "glorot_uniform, normal, got 'he'"));
  CHECK_THAT(parse_error("model:\n  layers: []\n"),
             Contains("configs/x.yaml:2: model.layers: expected a non-empty list of layers"));
  CHECK_THAT(parse_error("data:\n  sample_rate: 8000\n"),
             Contains("configs/x.yaml: model.layers: expected a non-empty list of layers"));
}

TEST_CASE("leaky_relu takes negative_slope; sigmoid and tanh take no keys", "[cpu][config]") {
  const Config c = parse(
      "model:\n  layers:\n    - {type: leaky_relu}\n    - {type: leaky_relu, negative_slope: 0}\n"
      "    - {type: sigmoid, name: gate}\n    - {type: tanh}\n");
  REQUIRE(c.model.layers.size() == 4);
  CHECK(c.model.layers[0].negative_slope == 0.01);  // torch.nn.LeakyReLU's default
  CHECK(c.model.layers[1].negative_slope == 0.0);   // >= 0: 0 is relu
  CHECK(c.model.layers[2].name == "gate");
  CHECK(c.model.layers[3].name == "tanh3");
  CHECK(c.model.layers[3].inputs == std::vector<std::string>{"gate"});

  CHECK(parse_error("model:\n  layers:\n    - {type: conv2d, filters: 8}\n    - {type: tanh, "
                    "negative_slope: 0.1}\n") ==
        "configs/x.yaml:4: unknown key 'model.layers[1].negative_slope' for a tanh layer; tanh "
        "layers take: type, name, inputs (negative_slope is a key of leaky_relu layers)");
  CHECK(parse_error("model:\n  layers:\n    - {type: sigmoid, alpha: 1}\n") ==
        "configs/x.yaml:3: unknown key 'model.layers[0].alpha' for a sigmoid layer; sigmoid "
        "layers take: type, name, inputs (alpha is a key of elu layers)");
  CHECK_THAT(parse_error("model:\n  layers:\n    - {type: leaky_relu, negative_slop: 0.1}\n"),
             Contains("unknown key 'model.layers[0].negative_slop' for a leaky_relu layer \u2014 "
                      "did you mean 'model.layers[0].negative_slope'?"));
  CHECK_THAT(parse_error("model:\n  layers:\n    - {type: leaky_relu, negative_slope: -0.1}\n"),
             Contains("configs/x.yaml:3: model.layers[0].negative_slope: expected a number >= 0, "
                      "got -0.1"));
  CHECK_THAT(parse_error("model:\n  layers:\n    - {type: leaky_relu, alpha: 0.1}\n"),
             Contains("unknown key 'model.layers[0].alpha' for a leaky_relu layer"));
  CHECK_THAT(parse_error(kMinimalConfig, {"model.layers[1]={type: tanh}", "model.layers[1].negative_slope=0.3"}),
             Contains("--set model.layers[1].negative_slope=0.3: unknown key "
                      "'model.layers[1].negative_slope' for a tanh layer"));
}

TEST_CASE("layer names are unique and inputs name earlier layers", "[cpu][config]") {
  CHECK(parse_error(
            "model:\n  layers:\n    - {type: relu, name: a}\n    - {type: relu, name: a}\n") ==
        "configs/x.yaml:4: model.layers[1].name: 'a' is already the name of model.layers[0]");
  CHECK_THAT(
      parse_error("model:\n  layers:\n    - {type: relu, name: relu1}\n    - {type: relu}\n"),
      Contains("model.layers[1].name: 'relu1' (the default name) is already the name of "
               "model.layers[0]"));
  CHECK_THAT(parse_error("model:\n  layers:\n    - {type: relu, name: input}\n"),
             Contains("model.layers[0].name: 'input' is reserved"));
  CHECK_THAT(
      parse_error("model:\n  layers:\n    - {type: relu, inputs: [relu1]}\n    - {type: relu}\n"),
      Contains("configs/x.yaml:3: model.layers[0].inputs: 'relu1' is model.layers[1], "
               "which comes later"));
  CHECK(
      parse_error("model:\n  layers:\n    - {type: relu}\n    - {type: relu, inputs: [rleu0]}\n") ==
      "configs/x.yaml:4: model.layers[1].inputs: expected one of input, relu0 (input or an "
      "earlier layer), got 'rleu0' \u2014 did you mean 'relu0'?");
  CHECK_THAT(
      parse_error(
          "model:\n  layers:\n    - {type: relu}\n    - {type: relu, inputs: [relu0, input]}\n"),
      Contains("model.layers[1].inputs: a relu layer reads 1 input, got 2"));
  CHECK_THAT(parse_error("model:\n  layers:\n    - {type: dense, units: 0}\n    - {type: relu}\n"),
             Contains("model.layers[0].units: expected an integer > 0, got 0"));
  CHECK_THAT(parse_error("model:\n  layers:\n    - {type: dense}\n    - {type: relu}\n"),
             Contains("model.layers[0]: missing required key 'units'"));
}

TEST_CASE("wrong types and out-of-range values say what was expected", "[cpu][config]") {
  CHECK(parse_error(kMinimalConfig + "train:\n  epochs: ten\n") ==
        "configs/x.yaml:8: train.epochs: expected an integer >= 1, got 'ten'");
  CHECK(parse_error(kMinimalConfig + "train:\n  lr: -1\n") ==
        "configs/x.yaml:8: train.lr: expected a number > 0, got -1");
  CHECK(
      parse_error(kMinimalConfig + "train:\n  optimizer: adma\n") ==
      "configs/x.yaml:8: train.optimizer: expected one of adam, adamw, sgd, got 'adma' \u2014 did "
      "you mean 'adam'?");
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  epochs: 2.5\n"),
             Contains("train.epochs: expected an integer >= 1, got 2.5"));
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  precision: fp16\n"),
             Contains("train.precision: expected one of fp32, tf32, bf16, got 'fp16'"));
  CHECK(parse(kMinimalConfig + "train:\n  precision: tf32\n").train.precision == "tf32");
  CHECK(parse(kMinimalConfig + "train:\n  precision: bf16\n").train.precision == "bf16");
  CHECK(parse(kMinimalConfig).train.precision == "fp32");
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  nesterov: maybe\n"),
             Contains("train.nesterov: expected true or false, got 'maybe'"));
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  seed: -3\n"),
             Contains("train.seed: expected an integer >= 0, got -3"));
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  betas: [0.9, 1.0]\n"),
             Contains("train.betas: expected a list of 2 numbers in [0, 1), got [0.9, 1.0]"));
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  device: gpu\n"),
             Contains("train.device: expected auto, cpu, cuda or cuda:N, got 'gpu'"));
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  device: cuda:x\n"),
             Contains("train.device: expected auto, cpu, cuda or cuda:N"));
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  select_metric: accuracy\n"),
             Contains("train.select_metric: expected one of auto, val_loss, val_accuracy, "
                      "val_roc_auc, val_pr_auc, got 'accuracy'"));
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  epochs:\n"),
             Contains("train.epochs: expected an integer >= 1, got nothing"));
  CHECK_THAT(parse_error(kMinimalConfig + "train: [1, 2]\n"),
             Contains("configs/x.yaml:7: train: expected a map of epochs, batch_size"));
  CHECK_THAT(parse_error(kMinimalConfig + "loss:\n  type: bce\n"),
             Contains("loss.type: expected one of auto, softmax_cross_entropy, sigmoid_bce"));
  CHECK_THAT(parse_error(kMinimalConfig + "loss:\n  label_smoothing: 1\n"),
             Contains("loss.label_smoothing: expected a number in [0, 1), got 1"));
  CHECK_THAT(parse_error(kMinimalConfig + "features:\n  hop_length: 0\n"),
             Contains("features.hop_length: expected an integer > 0, got 0"));
  CHECK_THAT(parse_error(kMinimalConfig + "features:\n  top_db: -1\n"),
             Contains("features.top_db: expected a number >= 0, got -1"));
  CHECK_THAT(parse_error(kMinimalConfig + "data:\n  dataset: gtzn\n"),
             Contains("data.dataset: expected one of synthetic, gtzan, mtat, fma, folder, csv, "
                      "got 'gtzn' \u2014 did you mean 'gtzan'?"));
  CHECK_THAT(parse_error(kMinimalConfig + "data:\n  subset: tiny\n"),
             Contains("data.subset: expected one of small, medium, large, got 'tiny'"));
  CHECK_THAT(parse_error(kMinimalConfig + "data:\n  labels: genre\n"),
             Contains("data.labels: expected one of genre_top, genres_all, got 'genre'"));
  CHECK_THAT(parse_error(kMinimalConfig + "data:\n  split: filter\n"),
             Contains("data.split: expected one of auto, random, filtered, folder, cleaned, "
                      "official, manifest, got 'filter' \u2014 did you mean 'filtered'?"));
  CHECK(parse_error(kMinimalConfig, {"model.name=my model"}) ==
        "--set model.name=my model: model.name: expected a name of letters, digits, '_' or '-', "
        "got 'my model'");
  CHECK(parse_error("schema_version: 2\n" + kMinimalConfig) ==
        "configs/x.yaml:1: schema_version: expected 1, got 2");
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  epochs: 3\n  epochs: 4\n"),
             Contains("configs/x.yaml:9: train.epochs: given twice (first at line 8)"));
  // An override of the key leaves the file's two entries: still the file's mistake.
  CHECK(parse_error(kMinimalConfig + "train:\n  epochs: 3\n  epochs: 4\n", {"train.epochs=1"}) ==
        "configs/x.yaml:9: train.epochs: given twice (first at line 8)");
  CHECK(parse_error(kMinimalConfig, {"train={lr: 1, lr: 2}"}) ==
        "--set train={lr: 1, lr: 2}: train.lr: given twice");
}

TEST_CASE("rules across keys", "[cpu][config]") {
  CHECK_THAT(parse_error(kMinimalConfig + "data:\n  split_fractions: [0.5, 0.2, 0.2]\n"),
             Contains("configs/x.yaml:8: data.split_fractions: expected 3 numbers >= 0 (train, "
                      "val, test) summing to 1 with train > 0, got [0.5, 0.2, 0.2]"));
  CHECK_THAT(parse_error(kMinimalConfig + "data:\n  split_fractions: [0, 0.5, 0.5]\n"),
             Contains("data.split_fractions: expected"));
  CHECK_THAT(parse_error(kMinimalConfig + "data:\n  split_fractions: [1.2, -0.2, 0]\n"),
             Contains("data.split_fractions: expected a list of 3 numbers >= 0"));
  CHECK(parse(kMinimalConfig + "data:\n  split_fractions: [0.7, 0.2, 0.1]\n")
            .data.split_fractions[2] == 0.1);
  CHECK_THAT(parse_error(kMinimalConfig + "features:\n  f_max: 9000\n"),
             Contains("configs/x.yaml:8: features.f_max: expected 0 (sample_rate / 2) or a number "
                      "up to sample_rate / 2 = 8000, got 9000"));
  // The key in the wrong is f_min when it passes f_max, or the Nyquist frequency.
  CHECK_THAT(parse_error(kMinimalConfig + "features:\n  f_min: 500\n  f_max: 400\n"),
             Contains("configs/x.yaml:8: features.f_min: expected a number in [0, f_max) = [0, 400), got 500"));
  CHECK_THAT(parse_error(kMinimalConfig + "features:\n  f_min: 9000\n"),
             Contains("features.f_min: expected a number in [0, sample_rate / 2) = [0, 8000), got 9000"));
  CHECK_THAT(parse_error(kMinimalConfig + "features:\n  type: mfcc\n  n_mels: 40\n  n_mfcc: 41\n"),
             Contains("configs/x.yaml:10: features.n_mfcc: expected 1 to features.n_mels = 40 for type mfcc, got 41"));
  CHECK(parse(kMinimalConfig + "features:\n  f_max: 8000\n").features.f_max == 8000.0);
  CHECK_THAT(parse_error(kMinimalConfig + "features:\n  win_length: 1024\n"),
             Contains("features.win_length: expected an integer in [0, n_fft] = [0, 512]"));
  CHECK_THAT(
      parse_error(kMinimalConfig + "data:\n  synthetic:\n    num_classes: 1\n"),
      Contains("data.synthetic.num_classes: expected an integer in [2, 12], got 1"));
  CHECK_THAT(parse_error(kMinimalConfig + "loss:\n  type: sigmoid_bce\n  label_smoothing: 0.1\n"),
             Contains("loss.label_smoothing: expected 0 with sigmoid_bce"));
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  optimizer: sgd\n  nesterov: true\n"),
             Contains("train.nesterov: true needs train.momentum > 0"));
}

TEST_CASE("train.phases: increasing epochs, one lr each, a constant schedule", "[cpu][config]") {
  const Config won = parse(kMinimalConfig +
                           "train:\n  phases:\n    epochs: [80, 100, 120]\n    lr: [1e-3, 1e-4, 1e-5]\n"
                           "    optimizer: sgd\n");
  CHECK(won.train.phases.epochs == std::vector<int>{80, 100, 120});
  CHECK(won.train.phases.lr == std::vector<double>{1e-3, 1e-4, 1e-5});
  CHECK(won.train.phases.optimizer == "sgd");
  CHECK(won.train.phases.reload_best);
  CHECK(parse_config(to_yaml(won), "round trip").train.phases.lr == won.train.phases.lr);
  CHECK(parse(kMinimalConfig + "train:\n  phases:\n    epochs: 5\n    lr: 0.01\n").train.phases.lr ==
        std::vector<double>{0.01});
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  phases:\n    epochs: [10, 5]\n    lr: [1, 2]\n"),
             Contains("train.phases.epochs: expected increasing epochs, got [10, 5]"));
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  phases:\n    epochs: [10, 20]\n    lr: [0.1]\n"),
             Contains("train.phases.lr: expected one lr per phase (2 for train.phases.epochs [10, 20]), got [0.1]"));
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  phases:\n    epochs: [10]\n    lr: [0.1, x]\n"),
             Contains("train.phases.lr: expected a list of numbers > 0"));
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  schedule:\n    type: cosine\n  phases:\n    epochs: [10]\n"
                                          "    lr: [0.1]\n"),
             Contains("train.schedule.type: expected constant with train.phases"));
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  phases:\n    optimizer: sdg\n"),
             Contains("train.phases.optimizer") && Contains("sgd"));
}

TEST_CASE("dataset keys: the splits each dataset takes, and what it requires", "[cpu][config]") {
  CHECK_THAT(parse_error(kMinimalConfig + "data:\n  dataset: gtzan\n"),
             Contains("data.root: required for dataset 'gtzan'"));
  CHECK(parse_error(kMinimalConfig + "data:\n  dataset: gtzan\n  root: /g\n  split: folder\n") ==
        "configs/x.yaml:10: data.split: expected auto or random, filtered for dataset 'gtzan', "
        "got 'folder'");
  CHECK_THAT(parse_error(kMinimalConfig + "data:\n  split: official\n"),
             Contains("data.split: expected auto or random for dataset 'synthetic'"));
  CHECK(parse(kMinimalConfig + "data:\n  dataset: gtzan\n  root: /g\n  split: filtered\n")
            .data.split == "filtered");
  CHECK(parse(kMinimalConfig + "data:\n  dataset: mtat\n  root: /m\n  split: cleaned\n")
            .data.split == "cleaned");
  CHECK(parse(kMinimalConfig + "data:\n  dataset: fma\n  root: /f\n  split: official\n")
            .data.split == "official");
  CHECK_THAT(parse_error(kMinimalConfig + "data:\n  dataset: csv\n"),
             Contains("data.manifest: required for dataset 'csv'"));
  CHECK(parse(kMinimalConfig + "data:\n  dataset: csv\n  manifest: m.csv\n  split: manifest\n")
            .data.split == "manifest");
  CHECK_THAT(parse_error(kMinimalConfig + "data:\n  dataset: mtat\n  root: /m\n  tags: []\n"),
             Contains("data.tags: expected top<N> or a list of tag names, got none"));
  // One tag name is a list of one; an empty list is the default "all" for data.genres.
  CHECK(parse(kMinimalConfig + "data:\n  tags: guitar\n").data.tags ==
        std::vector<std::string>{"guitar"});
  CHECK(parse(kMinimalConfig + "data:\n  genres: []\n").data.genres.empty());
  CHECK_THAT(parse_error(kMinimalConfig + "data:\n  genres: {a: 1}\n"),
             Contains("data.genres: expected a list of genre names"));
  // MTAT and FMA's genres_all are multi-label: the automatic loss is sigmoid_bce.
  CHECK_THAT(parse_error(kMinimalConfig +
                         "data:\n  dataset: mtat\n  root: /m\nloss:\n  label_smoothing: 0.1\n"),
             Contains("loss.label_smoothing: expected 0 with sigmoid_bce"));
  CHECK_THAT(parse_error(kMinimalConfig + "data:\n  dataset: fma\n  root: /f\n  labels: "
                                          "genres_all\nloss:\n  label_smoothing: 0.1\n"),
             Contains("loss.label_smoothing: expected 0 with sigmoid_bce"));
  CHECK(parse(kMinimalConfig + "data:\n  dataset: fma\n  root: /f\nloss:\n  label_smoothing: 0.1\n")
            .loss.label_smoothing == 0.1);  // genre_top: single-label
}

TEST_CASE("YAML syntax errors and unreadable files", "[cpu][config]") {
  CHECK_THAT(
      parse_error("train:\n  betas: [0.9, 0.99\n  lr: 1\n"),
      Contains("configs/x.yaml:") && Contains("invalid YAML: end of sequence flow not found"));
  CHECK_THAT(parse_error("- 1\n- 2\n"),
             Contains("configs/x.yaml:1: expected a map of schema_version, data, features, model, "
                      "loss, augment, train at the top level, got [1, 2]"));
  // An override does not turn a list at the top level, or a section given as a scalar, into a map.
  CHECK_THAT(parse_error("- 1\n- 2\n", {"train.threads=1"}), Contains("configs/x.yaml:1: expected a map of"));
  CHECK(parse_error(kMinimalConfig + "train: 5\n", {"train.threads=1"}) ==
        "--set train.threads=1: train is 5, not a map of keys that train.threads could be set in");

  const std::filesystem::path missing =
      std::filesystem::temp_directory_path() / "cadenza_test_config_missing.yaml";
  std::filesystem::remove(missing);
  CHECK(user_error([&] { load_config(missing.string()); }) ==
        "cannot read config '" + missing.string() + "': No such file or directory");
}

TEST_CASE("load_config reads a file and names it in errors", "[cpu][config]") {
  const std::filesystem::path good = write_temp_file("cadenza_test_config_good.yaml", kFullConfig);
  const Config c = load_config(good.string(), {"train.epochs=9"});
  CHECK(c.source_path == good.string());
  CHECK(c.train.epochs == 9);
  CHECK(c.model.layers.size() == 13);

  const std::filesystem::path bad =
      write_temp_file("cadenza_test_config_bad.yaml", kMinimalConfig + "train:\n  epochs: ten\n");
  CHECK(user_error([&] { load_config(bad.string()); }) ==
        bad.string() + ":8: train.epochs: expected an integer >= 1, got 'ten'");
  const std::filesystem::path empty = write_temp_file("cadenza_test_config_empty.yaml", "# nothing yet\n");
  CHECK(user_error([&] { load_config(empty.string(), {"train.threads=1"}); }) ==
        empty.string() + ": the file is empty (expected a map of schema_version, data, features, model, loss, augment, "
                         "train)");
  std::filesystem::remove(good);
  std::filesystem::remove(bad);
  std::filesystem::remove(empty);
}

TEST_CASE("model_changing_override finds the override a run's checkpoints cannot take", "[cpu][config]") {
  const std::filesystem::path run_config = write_temp_file("cadenza_test_config_run.yaml", kFullConfig);
  const std::string path = run_config.string();
  CHECK_FALSE(model_changing_override(path, {"train.epochs=9", "train.lr=0.5", "train.threads=1"}));
  CHECK(model_changing_override(path, {"train.epochs=9", "model.layers[0].filters=3", "features.n_mels=20"}) ==
        "model.layers[0].filters=3");
  CHECK(model_changing_override(path, {"features.n_mels=20"}) == "features.n_mels=20");
  CHECK(model_changing_override(path, {"data.synthetic.num_classes=3"}) == "data.synthetic.num_classes=3");
  // Overrides valid only together (momentum 0 alone contradicts nesterov: true) are added
  // in order: the invalid prefix is passed over, not reported.
  CHECK_FALSE(model_changing_override(path, {"train.momentum=0", "train.nesterov=false"}));
  CHECK(model_changing_override(path, {"train.momentum=0", "train.nesterov=false", "features.n_mels=20"}) ==
        "features.n_mels=20");
  // A model-defining key refused only against the run's other keys (a rate of 8000 Hz
  // below the run's f_max of 11000) is named, not the run's own f_max.
  CHECK(model_changing_override(path, {"data.sample_rate=8000"}) == "data.sample_rate=8000");
  std::filesystem::remove(run_config);
}

TEST_CASE("--set overrides are applied before validation", "[cpu][config]") {
  const Config c = parse(kMinimalConfig + "train:\n  epochs: 4\n",
                         {"train.epochs=5", "train.betas=[0.9,0.99]", "model.layers[0].filters=64",
                          "model.layers[0].kernel=[1, 7]", "data.synthetic.multi_label=true",
                          "train.device=cuda:0", "features.n_mels=40", "train.run_dir=a=b"});
  CHECK(c.train.epochs == 5);
  CHECK(c.train.betas == std::array<double, 2>{0.9, 0.99});
  CHECK(c.model.layers[0].filters == 64);
  CHECK(c.model.layers[0].kernel == std::array<int, 2>{1, 7});
  CHECK(c.data.synthetic.multi_label);
  CHECK(c.train.device == "cuda:0");
  CHECK(c.features.n_mels == 40);
  CHECK(c.train.run_dir == "a=b");

  // Later overrides win; a whole layer or section may be replaced.
  const Config replaced = parse(
      kMinimalConfig, {"train.lr=0.5", "train.lr=0.25", "model.layers[1]={type: elu, alpha: 2}",
                       "loss={type: softmax_cross_entropy}"});
  CHECK(replaced.train.lr == 0.25);
  CHECK(replaced.model.layers[1].type == "elu");
  CHECK(replaced.model.layers[1].alpha == 2.0);
  CHECK(replaced.model.layers[2].inputs == std::vector<std::string>{"elu1"});
  CHECK(replaced.loss.type == "softmax_cross_entropy");

  // An override on an empty file builds the whole tree.
  CHECK(parse("", {"model.layers=[{type: dense}]"}).model.layers.size() == 1);

  CHECK(parse_error(kMinimalConfig, {"train.epoch=5"}) ==
        "--set train.epoch=5: unknown key 'train.epoch' \u2014 did you mean 'train.epochs'?");
  CHECK(parse_error(kMinimalConfig, {"train.epochs=ten"}) ==
        "--set train.epochs=ten: train.epochs: expected an integer >= 1, got 'ten'");
  CHECK(parse_error(kMinimalConfig, {"model.layers[2].filter=64"}) ==
        "--set model.layers[2].filter=64: unknown key 'model.layers[2].filter' \u2014 did you mean "
        "'model.layers[2].filters'?");
  CHECK_THAT(parse_error(kMinimalConfig, {"model.layers[1].units=3"}),
             Contains("--set model.layers[1].units=3: unknown key 'model.layers[1].units' for a "
                      "relu layer"));
  CHECK(parse_error(kMinimalConfig, {"model.layers[9].filters=3"}) ==
        "--set model.layers[9].filters=3: model.layers[9] does not exist (model.layers has 4 "
        "entries)");
  CHECK_THAT(parse_error(kMinimalConfig, {"features.f_max=9000"}),
             Contains("--set features.f_max=9000: features.f_max: expected 0"));
  CHECK_THAT(parse_error(kMinimalConfig, {"train.epochs"}),
             Contains("--set train.epochs: expected key=value"));
  CHECK_THAT(parse_error(kMinimalConfig, {"=3"}), Contains("--set =3: expected key=value"));
  CHECK_THAT(parse_error(kMinimalConfig, {"train..lr=3"}),
             Contains("--set train..lr=3: malformed key 'train..lr'"));
  CHECK_THAT(parse_error(kMinimalConfig, {"train.lr[0]=3"}),
             Contains("only model.layers takes an index"));
  CHECK_THAT(parse_error(kMinimalConfig, {"train.betas=[0.9"}),
             Contains("--set train.betas=[0.9: train.betas: the value is not valid YAML"));
  // A value from the file is still located in the file.
  CHECK_THAT(parse_error(kMinimalConfig + "train:\n  lr: -1\n", {"train.epochs=2"}),
             Contains("configs/x.yaml:8: train.lr"));
}

TEST_CASE("blocks expand into named layers; --set model.layers[i] is the file's i-th entry", "[cpu][config]") {
  const std::string with_blocks = R"(blocks:
  ConvBlock:
    params: {filters: ~, pool: 2}
    layers:
      - {type: conv2d, name: conv, filters: $filters}
      - {type: relu, name: relu}
      - {type: maxpool2d, name: mp, pool: $pool}
model:
  layers:
    - {type: batchnorm, name: input_bn}
    - {block: ConvBlock, name: b1, filters: 8}
    - {block: ConvBlock, name: b2, filters: 16, pool: [2, 4]}
    - {type: global_avg_pool, name: gap}
    - {type: dense, name: head}
)";
  const Config plain = parse(with_blocks);
  std::vector<std::string> names;
  for (const LayerConfig& layer : plain.model.layers) names.push_back(layer.name);
  CHECK(names == std::vector<std::string>{"input_bn", "b1.conv", "b1.relu", "b1.mp", "b2.conv", "b2.relu", "b2.mp",
                                          "gap", "head"});
  CHECK(plain.model.layers[6].pool == std::array<int, 2>{2, 4});

  // Index 2 is the use of b2, whose filters parameter the override sets; index 4 the head.
  const Config changed = parse(with_blocks, {"model.layers[2].filters=32", "model.layers[4].units=0"});
  CHECK(changed.model.layers[1].filters == 8);
  CHECK(changed.model.layers[4].filters == 32);
  CHECK(changed.model.layers[8].name == "head");

  // Errors name the override as typed, and the expanded layer they land in.
  CHECK(parse_error(with_blocks, {"model.layers[2].filters=0"}) ==
        "--set model.layers[2].filters=0: model.layers[4].filters: expected an integer > 0, got 0");
  CHECK_THAT(parse_error(with_blocks, {"model.layers[2].filterz=3"}),
             Contains("model.layers[2]: unknown key 'filterz' for block ConvBlock"));
  CHECK_THAT(parse_error(with_blocks, {"model.layers[3].filters=3"}),
             Contains("--set model.layers[3].filters=3: unknown key 'model.layers[7].filters' for a global_avg_pool "
                      "layer"));
  CHECK(parse_error(with_blocks, {"model.layers[5].units=3"}) ==
        "--set model.layers[5].units=3: model.layers[5] does not exist (model.layers has 5 entries)");
}

TEST_CASE("to_yaml writes every key and reads back equal", "[cpu][config]") {
  Config c = parse(kFullConfig);
  c.train.lr = 0.1 + 0.2;  // needs 17 digits
  c.features.f_min = 1.0 / 3.0;
  c.train.run_dir = "odd \"dir\": #1\t~";
  c.data.root = "null";
  const std::string text = to_yaml(c);
  CHECK_THAT(text, Contains("kernel: [3, 5]") && Contains("\n  layers:\n    - type: conv2d\n") &&
                       Contains("split_seed: 99") && Contains("log_every_steps: 5"));
  // Layer entries hold their type's keys only.
  CHECK_THAT(text,
             Contains("    - type: relu\n      name: relu4\n      inputs: [maxpool2d3]\n    - "));
  CHECK_THAT(text, Contains("    - type: leaky_relu\n      name: leaky_relu5\n      inputs: [relu4]\n"
                            "      negative_slope: 0.2") &&
                       Contains("    - type: tanh\n      name: tanh7\n      inputs: [sigmoid6]\n    - "));

  const Config back = parse_config(text, "round trip");
  CHECK(to_yaml(back) == text);
  CHECK(back.train.lr == c.train.lr);
  CHECK(back.features.f_min == c.features.f_min);
  CHECK(back.train.run_dir == c.train.run_dir);
  CHECK(back.data.root == "null");
  CHECK(back.data.synthetic.seed == c.data.synthetic.seed);
  CHECK(back.model.layers[0].kernel == c.model.layers[0].kernel);
  CHECK(back.model.layers[12].name == "head");
  CHECK(back.model.layers[5].negative_slope == 0.2);
  CHECK(model_hash(back) == model_hash(c));

  const Config defaults = parse(kMinimalConfig);
  CHECK(to_yaml(parse_config(to_yaml(defaults), "round trip")) == to_yaml(defaults));
}

TEST_CASE("model_hash covers the model's definition only", "[cpu][config]") {
  const Config base = parse(kMinimalConfig);
  const std::uint64_t hash = model_hash(base);
  CHECK(model_hash(parse(kMinimalConfig)) == hash);
  CHECK(model_hash(base) == model_hash(parse_config(to_yaml(base), "elsewhere")));
  // A fixed value: the hash must not change between processes, builds or added keys. It is
  // FNV-1a of the non-default values, "model.layers[0].type=conv2d\n...".
  CHECK(hash == 0x36542151742a46eeull);

  for (const char* unrelated :
       {"train.epochs=3", "train.lr=0.5", "train.run_dir=/tmp/r", "train.seed=1",
        "data.split_seed=5", "model.name=other", "data.synthetic.clips_per_class=7"}) {
    CAPTURE(unrelated);
    CHECK(model_hash(parse(kMinimalConfig, {unrelated})) == hash);
  }
  for (const char* decisive :
       {"model.layers[0].filters=16", "model.layers[0].kernel=5", "model.layers[1].name=act",
        "features.n_mels=64", "features.log=none", "data.sample_rate=22050", "data.clip_seconds=1",
        "data.synthetic.num_classes=4", "data.synthetic.multi_label=true"}) {
    CAPTURE(decisive);
    CHECK(model_hash(parse(kMinimalConfig, {decisive})) != hash);
  }
  // A dataset's label keys are model-defining for that dataset only.
  const auto dataset_hash = [](const char* dataset, const char* setting) {
    std::vector<std::string> overrides = {std::string("data.dataset=") + dataset, "data.root=/d"};
    if (setting != nullptr) overrides.push_back(setting);
    return model_hash(parse(kMinimalConfig, overrides));
  };
  CHECK(dataset_hash("mtat", "data.tags=top10") != dataset_hash("mtat", nullptr));
  CHECK(dataset_hash("mtat", "data.split=cleaned") == dataset_hash("mtat", nullptr));
  CHECK(model_hash(parse(kMinimalConfig, {"data.tags=top10"})) == hash);
  for (const char* decisive :
       {"data.subset=medium", "data.labels=genres_all", "data.genres=[Rock, Pop]"}) {
    CAPTURE(decisive);
    CHECK(dataset_hash("fma", decisive) != dataset_hash("fma", nullptr));
  }
  // Spelling out a default does not change the hash.
  CHECK(model_hash(parse(kMinimalConfig, {"model.layers[1].inputs=[conv2d0]",
                                          "model.layers[0].stride=1"})) == hash);
}

// The README's config reference names every key: a row of the key itself, or a row of
// keys that share its section ("| `features.n_fft`, `hop_length`, ... |"); every layer key
// appears in the layer table.
TEST_CASE("README documents every config key and layer key", "[cpu][config]") {
  std::ifstream in(std::string(CADENZA_SOURCE_DIR) + "/README.md");
  std::vector<std::string> rows;
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("| `")) rows.push_back(line.substr(0, line.find(" | ", 2)));  // the first cell
  const auto documented = [&](const std::string& path) {
    const std::size_t dot = path.rfind('.');
    const std::string section = dot == std::string::npos ? "" : path.substr(0, dot + 1);
    const std::string leaf = path.substr(dot == std::string::npos ? 0 : dot + 1);
    for (const std::string& cell : rows) {
      if (cell.find("`" + path + "`") != std::string::npos) return true;
      if (!section.empty() && cell.starts_with("| `" + section) &&
          (cell.find("`" + leaf + "`") != std::string::npos || cell.find("`." + leaf + "`") != std::string::npos))
        return true;
    }
    return false;
  };
  for (const KeySpec& key : config_keys()) {
    INFO(key.path);
    CHECK(documented(key.path));
  }
  std::ifstream again(std::string(CADENZA_SOURCE_DIR) + "/README.md");
  const std::string readme((std::istreambuf_iterator<char>(again)), {});
  for (const LayerKeySpec& key : layer_keys()) {
    INFO("layer key " << key.path);
    CHECK(readme.find("`" + key.path + "`") != std::string::npos);
  }
}

}  // namespace cadenza
