// The config schema's tables and the phrases that describe what a key accepts.
//
// Invariants: see config_schema.hpp. Each row names its field through the member path,
// so a key's name cannot drift from its struct member; rows are grouped by section in
// the order of the structs in config.hpp and frontend_spec.hpp.
#include "host/config/config_schema.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <type_traits>

#include "host/audio/time_pitch.hpp"
#include "host/data/synthetic_audio.hpp"

namespace cadenza {
namespace {

ValueRule any_value() { return {}; }

ValueRule at_least(double value) {
  ValueRule rule;
  rule.min = Bound{value, true};
  return rule;
}

ValueRule above(double value) {
  ValueRule rule;
  rule.min = Bound{value, false};
  return rule;
}

ValueRule between(Bound min, Bound max) {
  ValueRule rule;
  rule.min = min;
  rule.max = max;
  return rule;
}

ValueRule one_of(std::vector<std::string> choices) {
  ValueRule rule;
  rule.choices = std::move(choices);
  return rule;
}

ValueRule text_where(bool (*accepts)(std::string_view), std::string expectation) {
  ValueRule rule;
  rule.accepts = accepts;
  rule.expectation = std::move(expectation);
  return rule;
}

ValueRule described(ValueRule rule, std::string expectation) {
  rule.expectation = std::move(expectation);
  return rule;
}

// Letters, digits, '_' and '-': safe in file names and checkpoint tensor names.
bool is_plain_name(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

// Plain names joined by '.', as PyTorch names a submodule (layer1.conv): a layer expanded
// from a block is named "<use>.<layer>".
bool is_layer_name(std::string_view text) {
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = text.find('.', start);
    if (!is_plain_name(text.substr(start, dot == std::string_view::npos ? dot : dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// auto | cpu | cuda | cuda:N
bool is_device(std::string_view text) {
  if (text == "auto" || text == "cpu" || text == "cuda") return true;
  constexpr std::string_view kCudaPrefix = "cuda:";
  if (text.substr(0, kCudaPrefix.size()) != kCudaPrefix) return false;
  const std::string_view index = text.substr(kCudaPrefix.size());
  return !index.empty() && std::all_of(index.begin(), index.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

const std::string kPlainNameExpectation = "a name of letters, digits, '_' or '-'";
const std::string kLayerNameExpectation =
    "a name of letters, digits, '_' or '-', or such names joined by '.' (layer1.conv)";
const std::vector<std::string> kInitNames = {"torch_default", "he_normal", "he_uniform",
                                             "glorot_uniform", "normal"};

std::vector<std::string> dataset_names() {
  std::vector<std::string> names;
  for (const DatasetSpec& dataset : datasets()) names.push_back(dataset.name);
  return names;
}

// auto, then every split some dataset accepts, in table order.
std::vector<std::string> split_names() {
  std::vector<std::string> names = {"auto"};
  for (const DatasetSpec& dataset : datasets()) {
    for (const std::string& split : dataset.splits) {
      if (std::find(names.begin(), names.end(), split) == names.end()) names.push_back(split);
    }
  }
  return names;
}

std::string bounds_phrase(const ValueRule& rule) {
  if (rule.min && rule.max) {
    return " in " + std::string(rule.min->inclusive ? "[" : "(") + format_number(rule.min->value) +
           ", " + format_number(rule.max->value) + (rule.max->inclusive ? "]" : ")");
  }
  if (rule.min) return (rule.min->inclusive ? " >= " : " > ") + format_number(rule.min->value);
  if (rule.max) return (rule.max->inclusive ? " <= " : " < ") + format_number(rule.max->value);
  return "";
}

}  // namespace

// The row of a top-level key: its path is the member path, e.g. CONFIG_KEY(train.lr).
#define CONFIG_KEY(member) #member, [](Config & c) -> ConfigField { return &c.member; }
#define LAYER_KEY(member) #member, [](LayerConfig & l) -> ConfigField { return &l.member; }

const std::vector<KeySpec>& config_keys() {
  static const std::vector<KeySpec> keys = {
      {CONFIG_KEY(schema_version), described(between({1, true}, {1, true}), "1"), ""},

      {CONFIG_KEY(data.dataset), one_of(dataset_names()), ""},
      {CONFIG_KEY(data.root), any_value(), "dataset folder; unused by synthetic and csv"},
      {CONFIG_KEY(data.sample_rate), above(0), "Hz"},
      {CONFIG_KEY(data.clip_seconds), above(0), "seconds per example"},
      {CONFIG_KEY(data.split), one_of(split_names()),
       "auto: the dataset's standard split; random: stratified by split_fractions"},
      {CONFIG_KEY(data.split_fractions), at_least(0), "train, val, test; sum to 1"},
      {CONFIG_KEY(data.split_seed), any_value(), "0: use train.seed"},
      {CONFIG_KEY(data.split_lists), any_value(),
       "gtzan filtered: folder of train_filtered.txt, valid_filtered.txt, test_filtered.txt; "
       "empty: data.root"},
      {CONFIG_KEY(data.tags), described(any_value(), "top<N> or a list of tag names"),
       "mtat: top<N> (the N most frequent tags) or a list of tag names"},
      {CONFIG_KEY(data.subset), one_of({"small", "medium", "large"}),
       "fma: each includes the smaller ones"},
      {CONFIG_KEY(data.labels), one_of({"genre_top", "genres_all"}),
       "fma: genre_top (single-label) or genres_all (multi-label)"},
      {CONFIG_KEY(data.genres), described(any_value(), "a list of genre names"),
       "fma: keep only these genres; empty: all"},
      {CONFIG_KEY(data.metadata), any_value(),
       "fma: tracks.csv or its folder; empty: data.root/fma_metadata"},
      {CONFIG_KEY(data.audio_dir), any_value(),
       "fma, mtat: audio folder; empty: data.root/fma_<subset> (fma), data.root (mtat)"},
      {CONFIG_KEY(data.manifest), any_value(),
       "csv: a CSV with a header and columns path, label or labels (';'-separated), split"},
      {CONFIG_KEY(data.cache_dir), any_value(),
       "decoded-audio cache; empty: $XDG_CACHE_HOME/cadenza/pcm or ~/.cache/cadenza/pcm"},
      {CONFIG_KEY(data.balance), one_of({"none", "oversample", "undersample"}),
       "training clips per class: as they are, or every class repeated or cut to one count"},
      {CONFIG_KEY(data.eval_windows), between({0, true}, {256, true}),
       "windows per evaluated clip, scores averaged; 0: whole windows in the median clip, <= 16"},
      {CONFIG_KEY(data.eval_drop_seconds), at_least(0), "left out at each end in evaluation"},
      {CONFIG_KEY(data.synthetic.num_classes), between({2, true}, {kMaxSyntheticClasses, true}),
       "distinct sources the generator has"},
      {CONFIG_KEY(data.synthetic.clips_per_class), at_least(1), ""},
      {CONFIG_KEY(data.synthetic.multi_label), any_value(), ""},
      {CONFIG_KEY(data.synthetic.tag_probability), between({0, false}, {1, true}),
       "multi-label: chance each tag is present in a clip (a clip with none gets one)"},
      {CONFIG_KEY(data.synthetic.seed), any_value(), "audio generation; independent of train.seed"},

      {CONFIG_KEY(features.type), one_of({"mel", "stft", "mfcc", "waveform"}), ""},
      {CONFIG_KEY(features.n_fft), above(0), ""},
      {CONFIG_KEY(features.hop_length), above(0), ""},
      {CONFIG_KEY(features.win_length), at_least(0), "0: n_fft"},
      {CONFIG_KEY(features.window), one_of({"hann"}), ""},
      {CONFIG_KEY(features.center), any_value(), ""},
      {CONFIG_KEY(features.pad_mode), one_of({"reflect", "constant"}), ""},
      {CONFIG_KEY(features.power), above(0), "1: magnitude, 2: power"},
      {CONFIG_KEY(features.n_mels), above(0), ""},
      {CONFIG_KEY(features.f_min), at_least(0), "Hz"},
      {CONFIG_KEY(features.f_max), at_least(0), "Hz; 0: sample_rate / 2"},
      {CONFIG_KEY(features.mel_scale), one_of({"htk", "slaney"}), ""},
      {CONFIG_KEY(features.mel_norm), one_of({"none", "slaney"}), ""},
      {CONFIG_KEY(features.mel_filterbank), one_of({"torchaudio", "librosa"}),
       "whose float rounding the filterbank and mfcc DCT reproduce"},
      {CONFIG_KEY(features.log), one_of({"db", "log1p", "none"}), ""},
      {CONFIG_KEY(features.amin), above(0), ""},
      {CONFIG_KEY(features.db_ref), above(0), ""},
      {CONFIG_KEY(features.top_db), at_least(0), "0: no clipping"},
      {CONFIG_KEY(features.log1p_scale), above(0), ""},
      {CONFIG_KEY(features.n_mfcc), above(0), "mfcc: coefficients kept, <= n_mels"},

      {CONFIG_KEY(model.name), text_where(is_plain_name, kPlainNameExpectation), ""},
      {CONFIG_KEY(model.layers), described(any_value(), "a non-empty list of layers"), ""},
      {CONFIG_KEY(model.init_from), any_value(),
       "a run directory (its best checkpoint), checkpoint directory or model.safetensors: tensors of the "
       "same name and shape are loaded"},

      {CONFIG_KEY(loss.type), one_of({"auto", "softmax_cross_entropy", "sigmoid_bce"}),
       "auto: softmax_cross_entropy, or sigmoid_bce for multi-label data"},
      {CONFIG_KEY(loss.label_smoothing), between({0, true}, {1, false}), ""},

      {CONFIG_KEY(augment.shift_probability), between({0, true}, {1, true}), "0: off"},
      {CONFIG_KEY(augment.shift_seconds), at_least(0), "largest shift either way"},
      {CONFIG_KEY(augment.gain_probability), between({0, true}, {1, true}), "0: off"},
      {CONFIG_KEY(augment.gain_db), any_value(), "min, max"},
      {CONFIG_KEY(augment.noise_probability), between({0, true}, {1, true}), "0: off"},
      {CONFIG_KEY(augment.noise_snr_db), any_value(), "min, max; relative to the example's RMS"},
      {CONFIG_KEY(augment.time_masks), between({0, true}, {16, true}), "0: off"},
      {CONFIG_KEY(augment.time_mask_frames), at_least(0), "widest time mask"},
      {CONFIG_KEY(augment.freq_masks), between({0, true}, {16, true}), "0: off"},
      {CONFIG_KEY(augment.freq_mask_bins), at_least(0), "widest frequency mask"},
      {CONFIG_KEY(augment.offline_copies), between({0, true}, {16, true}),
       "0: off; stretched and shifted versions of each training clip, built into the cache"},
      {CONFIG_KEY(augment.time_stretch), between({kTimePitchMinRate, true}, {kTimePitchMaxRate, true}),
       "min, max rate; > 1 is faster"},
      {CONFIG_KEY(augment.pitch_shift), between({-kTimePitchMaxSemitones, true}, {kTimePitchMaxSemitones, true}),
       "min, max semitones"},
      {CONFIG_KEY(augment.offline_seed), any_value(), ""},

      {CONFIG_KEY(train.epochs), at_least(1), ""},
      {CONFIG_KEY(train.batch_size), at_least(1), ""},
      {CONFIG_KEY(train.optimizer), one_of({"adam", "adamw", "sgd"}), ""},
      {CONFIG_KEY(train.lr), above(0), ""},
      {CONFIG_KEY(train.schedule.type), one_of({"constant", "step", "multistep", "cosine", "plateau"}),
       "after the warm-up"},
      {CONFIG_KEY(train.schedule.warmup_epochs), at_least(0), "linear from lr / warm-up steps to lr"},
      {CONFIG_KEY(train.schedule.step_epochs), at_least(1), "step: lr × gamma every step_epochs epochs"},
      {CONFIG_KEY(train.schedule.milestones), at_least(1), "multistep: lr × gamma after each of these epochs"},
      {CONFIG_KEY(train.schedule.gamma), above(0), "step, multistep"},
      {CONFIG_KEY(train.schedule.min_lr), at_least(0), "cosine: the last step's lr; plateau: the floor"},
      {CONFIG_KEY(train.schedule.patience), at_least(0),
       "plateau: epochs without improvement of train.select_metric before lr × factor"},
      {CONFIG_KEY(train.schedule.factor), between({0, false}, {1, false}), "plateau"},
      {CONFIG_KEY(train.schedule.threshold), at_least(0), "plateau: relative, as torch's threshold_mode rel"},
      {CONFIG_KEY(train.phases.epochs), at_least(1), "a phase starts after this many epochs (increasing)"},
      {CONFIG_KEY(train.phases.lr), above(0), "each phase's constant lr"},
      {CONFIG_KEY(train.phases.optimizer), one_of({"", "adam", "adamw", "sgd"}), "the phases' optimizer; "
                                                                                   "empty: train.optimizer"},
      {CONFIG_KEY(train.phases.reload_best), any_value(), "each phase starts from the best checkpoint"},
      {CONFIG_KEY(train.dist.bucket_mb), above(0), "data-parallel: gradients are averaged in buckets of this size"},
      {CONFIG_KEY(train.dist.timeout_seconds), above(0),
       "data-parallel: a collective without progress for this long ends the job"},
      {CONFIG_KEY(train.dist.sync_batchnorm), any_value(),
       "data-parallel: batchnorm statistics over every rank's batch, as one large batch"},
      {CONFIG_KEY(train.weight_decay), at_least(0), "adamw: decoupled; adam, sgd: L2"},
      {CONFIG_KEY(train.betas), between({0, true}, {1, false}), ""},
      {CONFIG_KEY(train.eps), above(0), ""},
      {CONFIG_KEY(train.momentum), between({0, true}, {1, false}), "sgd"},
      {CONFIG_KEY(train.nesterov), any_value(), "sgd"},
      {CONFIG_KEY(train.grad_clip_norm), at_least(0), "0: no clipping"},
      {CONFIG_KEY(train.seed), any_value(), ""},
      {CONFIG_KEY(train.device), text_where(is_device, "auto, cpu, cuda or cuda:N"), ""},
      {CONFIG_KEY(train.threads), at_least(0), "0: all cores"},
      {CONFIG_KEY(train.precision), one_of({"fp32", "tf32", "bf16"}),
       "tf32: GPU convolutions, recurrent layers and dense layers on TF32 tensor cores; bf16: convolutions "
       "in bf16"},
      {CONFIG_KEY(train.capture_graph), any_value(),
       "the training step recorded once and replayed (a CUDA graph on the GPU); false: op by op"},
      {CONFIG_KEY(train.run_dir), any_value(), "empty: runs/<model.name>-<timestamp>"},
      {CONFIG_KEY(train.checkpoint_every_steps), at_least(0), "0: at the end of each epoch only"},
      {CONFIG_KEY(train.keep_checkpoints), at_least(0), "step checkpoints kept besides best"},
      {CONFIG_KEY(train.select_metric), one_of({"auto", "val_loss", "val_accuracy", "val_roc_auc", "val_pr_auc"}),
       ""},
      {CONFIG_KEY(train.freeze), described(any_value(), "a list of parameter-name prefixes"),
       "parameters whose names start with one of these stay fixed, e.g. [layer1, layer2]"},
      {CONFIG_KEY(train.early_stopping_patience), at_least(0),
       "stop after this many epochs without a new best train.select_metric; 0: never"},
      {CONFIG_KEY(train.max_steps), at_least(0), "0: no limit"},
      {CONFIG_KEY(train.log_every_steps), at_least(1), ""},
  };
  return keys;
}

const std::vector<LayerKeySpec>& layer_keys() {
  static const std::vector<LayerKeySpec> keys = {
      {LAYER_KEY(type), one_of(layer_type_names()), ""},
      {LAYER_KEY(name), text_where(is_layer_name, kLayerNameExpectation), ""},
      {LAYER_KEY(inputs), described(any_value(), "a layer name or a list of layer names"), ""},
      {LAYER_KEY(filters), above(0), ""},
      {LAYER_KEY(kernel), above(0), ""},
      {LAYER_KEY(stride), above(0), ""},
      {LAYER_KEY(dilation), above(0), ""},
      {LAYER_KEY(padding), one_of({"same", "valid", "explicit"}), ""},
      {LAYER_KEY(pad), at_least(0), "zeros on each side with padding: explicit"},
      {LAYER_KEY(bias), any_value(), ""},
      {LAYER_KEY(init), one_of(kInitNames), ""},
      {LAYER_KEY(momentum), between({0, false}, {1, true}), ""},
      {LAYER_KEY(eps), above(0), ""},
      {LAYER_KEY(alpha), above(0), ""},
      {LAYER_KEY(negative_slope), at_least(0), "slope for x < 0"},
      {LAYER_KEY(pool), above(0), ""},
      {LAYER_KEY(pool_stride), at_least(0), "0: equal to pool"},
      {LAYER_KEY(rate), between({0, true}, {1, false}), ""},
      {LAYER_KEY(units), at_least(0),
       "dense: 0 on the last layer means one per label; gru, lstm, rnn: the hidden size, > 0"},
      {LAYER_KEY(axis), any_value(), "1: channels; negative counts from the end"},
      {LAYER_KEY(axes), at_least(1), "empty: every axis after the channels"},
      {LAYER_KEY(shape), at_least(-1), "-1: inferred"},
      {LAYER_KEY(order), at_least(0), ""},
      {LAYER_KEY(num_layers), at_least(1), "stacked recurrent layers"},
      {LAYER_KEY(bidirectional), any_value(), ""},
      {LAYER_KEY(return_sequences), any_value(),
       "false: the last state, (batch, directions * units); true: every step"},
      {LAYER_KEY(dropout), between({0, true}, {1, false}), "between stacked layers, training only"},
      {LAYER_KEY(nonlinearity), one_of({"tanh", "relu"}), ""},
      {LAYER_KEY(harmonics), at_least(1), "harmonics of each pitch band"},
      {LAYER_KEY(semitone_scale), at_least(1), "pitch bands per semitone"},
      {LAYER_KEY(sample_rate), above(0), "Hz; equal to data.sample_rate"},
  };
  return keys;
}

#undef CONFIG_KEY
#undef LAYER_KEY

const std::vector<LayerTypeSpec>& layer_types() {
  static const std::vector<LayerTypeSpec> types = {
      {"conv1d",
       {"filters", "kernel", "stride", "dilation", "padding", "pad", "bias", "init"},
       {"filters"},
       1},
      {"conv2d",
       {"filters", "kernel", "stride", "dilation", "padding", "pad", "bias", "init"},
       {"filters"},
       1},
      {"batchnorm", {"axis", "momentum", "eps"}, {}, 1},
      {"relu", {}, {}, 1},
      {"elu", {"alpha"}, {}, 1},
      {"leaky_relu", {"negative_slope"}, {}, 1},
      {"sigmoid", {}, {}, 1},
      {"tanh", {}, {}, 1},
      {"power_to_db", {}, {}, 1},
      {"harmonic_filterbank", {"harmonics", "semitone_scale", "sample_rate"}, {"sample_rate"}, 1},
      {"maxpool2d", {"pool", "pool_stride"}, {}, 1},
      {"avgpool2d", {"pool", "pool_stride"}, {}, 1},
      {"maxpool1d", {"pool", "pool_stride"}, {}, 1},
      {"avgpool1d", {"pool", "pool_stride"}, {}, 1},
      {"global_max_pool", {"axes"}, {}, 1},
      {"global_avg_pool", {"axes"}, {}, 1},
      {"flatten", {}, {}, 1},
      {"reshape", {"shape"}, {"shape"}, 1},
      {"permute", {"order"}, {"order"}, 1},
      {"to_sequence", {}, {}, 1},
      {"add", {}, {}, kTwoOrMoreInputs},
      {"concat", {"axis"}, {}, kTwoOrMoreInputs},
      {"scale_channels", {}, {}, 2},
      {"dropout", {"rate"}, {}, 1},
      {"dense", {"units", "bias", "init"}, {}, 1},
      {"gru", {"units", "num_layers", "bidirectional", "return_sequences", "dropout"}, {"units"}, 1},
      {"lstm", {"units", "num_layers", "bidirectional", "return_sequences", "dropout"}, {"units"}, 1},
      {"rnn",
       {"units", "num_layers", "bidirectional", "return_sequences", "dropout", "nonlinearity"},
       {"units"},
       1},
  };
  return types;
}

const std::vector<DatasetSpec>& datasets() {
  static const std::vector<DatasetSpec> specs = {
      {"synthetic",
       false,
       {"data.synthetic.num_classes", "data.synthetic.multi_label"},
       {"random"}},
      {"gtzan", true, {}, {"random", "filtered"}},
      {"mtat", true, {"data.tags"}, {"folder", "cleaned", "random"}},
      {"fma", true, {"data.subset", "data.labels", "data.genres"}, {"official", "random"}},
      {"folder", true, {}, {"random"}},
      {"csv", false, {}, {"manifest", "random"}},
  };
  return specs;
}

const KeySpec* find_config_key(std::string_view path) {
  for (const KeySpec& key : config_keys()) {
    if (key.path == path) return &key;
  }
  return nullptr;
}

const LayerKeySpec* find_layer_key(std::string_view name) {
  for (const LayerKeySpec& key : layer_keys()) {
    if (key.path == name) return &key;
  }
  return nullptr;
}

const LayerTypeSpec* find_layer_type(std::string_view type) {
  for (const LayerTypeSpec& spec : layer_types()) {
    if (spec.type == type) return &spec;
  }
  return nullptr;
}

const DatasetSpec* find_dataset(std::string_view name) {
  for (const DatasetSpec& dataset : datasets()) {
    if (dataset.name == name) return &dataset;
  }
  return nullptr;
}

std::vector<std::string> all_config_paths() {
  std::vector<std::string> paths;
  for (const KeySpec& key : config_keys()) {
    // Each section once, before its first key.
    for (std::size_t dot = key.path.find('.'); dot != std::string::npos;
         dot = key.path.find('.', dot + 1)) {
      const std::string section = key.path.substr(0, dot);
      if (std::find(paths.begin(), paths.end(), section) == paths.end()) paths.push_back(section);
    }
    paths.push_back(key.path);
  }
  return paths;
}

std::vector<std::string> section_children(std::string_view section) {
  const std::string prefix = section.empty() ? "" : std::string(section) + ".";
  std::vector<std::string> children;
  for (const KeySpec& key : config_keys()) {
    if (key.path.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = key.path.substr(prefix.size());
    const std::string child = rest.substr(0, rest.find('.'));
    if (std::find(children.begin(), children.end(), child) == children.end()) {
      children.push_back(child);
    }
  }
  return children;
}

bool is_config_section(std::string_view path) {
  const std::string prefix = std::string(path) + ".";
  return std::any_of(config_keys().begin(), config_keys().end(), [&](const KeySpec& key) {
    return key.path.compare(0, prefix.size(), prefix) == 0;
  });
}

std::vector<std::string> layer_keys_of(const LayerTypeSpec& type) {
  std::vector<std::string> keys = {"type", "name", "inputs"};
  keys.insert(keys.end(), type.keys.begin(), type.keys.end());
  return keys;
}

std::vector<std::string> layer_type_names() {
  std::vector<std::string> names;
  for (const LayerTypeSpec& spec : layer_types()) names.push_back(spec.type);
  return names;
}

std::string describe_expected(const ValueRule& rule, const ConfigField& field) {
  if (!rule.expectation.empty()) return rule.expectation;
  const std::string bounds = bounds_phrase(rule);
  return std::visit(
      [&](auto* target) -> std::string {
        using Target = std::remove_pointer_t<decltype(target)>;
        if constexpr (std::is_same_v<Target, int>) {
          return "an integer" + bounds;
        } else if constexpr (std::is_same_v<Target, std::uint64_t>) {
          return "an integer >= 0";
        } else if constexpr (std::is_same_v<Target, double>) {
          return "a number" + bounds;
        } else if constexpr (std::is_same_v<Target, bool>) {
          return "true or false";
        } else if constexpr (std::is_same_v<Target, std::string>) {
          return rule.choices.empty() ? "a string" : "one of " + joined(rule.choices);
        } else if constexpr (std::is_same_v<Target, std::array<int, 2>>) {
          return "an integer" + bounds + " or a list of 2 integers" + bounds;
        } else if constexpr (std::is_same_v<Target, std::array<double, 2>> ||
                             std::is_same_v<Target, std::array<double, 3>>) {
          return "a list of " + std::to_string(std::tuple_size_v<Target>) + " numbers" + bounds;
        } else if constexpr (std::is_same_v<Target, std::vector<int>>) {
          return "a list of integers" + bounds;
        } else if constexpr (std::is_same_v<Target, std::vector<double>>) {
          return "a list of numbers" + bounds;
        } else {
          return "a list";
        }
      },
      field);
}

bool within_bounds(const ValueRule& rule, double value) {
  if (rule.min && (rule.min->inclusive ? value < rule.min->value : value <= rule.min->value)) {
    return false;
  }
  if (rule.max && (rule.max->inclusive ? value > rule.max->value : value >= rule.max->value)) {
    return false;
  }
  return true;
}

bool accepts_text(const ValueRule& rule, std::string_view text) {
  if (!rule.choices.empty() &&
      std::find(rule.choices.begin(), rule.choices.end(), text) == rule.choices.end()) {
    return false;
  }
  return rule.accepts == nullptr || rule.accepts(text);
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string format_number(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

}  // namespace cadenza
