// The run configuration: typed structs filled from YAML in one place (config.cpp).
//
// Invariants:
// - Every key a user may write is a field here; config.cpp is the only code that reads
//   YAML, and it rejects unknown keys (naming the file, the key path and the closest
//   valid key) and out-of-range values (naming the key and what is accepted).
// - Defaults live in the member initialisers below; the schema table in config_schema.cpp
//   lists every key with what it accepts.
// - Later features extend these sections with new keys; existing names are never renamed
//   (saved run directories must stay loadable).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "host/features/frontend_spec.hpp"

namespace cadenza {

struct SyntheticDataConfig {
  int num_classes = 8;         // labels (classes when single-label, tags when multi-label)
  int clips_per_class = 100;   // total clips = num_classes * clips_per_class
  bool multi_label = false;    // false: one class per clip; true: each tag present or not
  double tag_probability = 0.35;  // multi-label: the chance each tag's source is in a clip
  std::uint64_t seed = 1234;   // audio generation seed (independent of train.seed)
};

struct DataConfig {
  std::string dataset = "synthetic";  // synthetic | gtzan | mtat | fma | folder | csv
  std::string root;                   // dataset folder (unused by synthetic and csv)
  int sample_rate = 16000;            // Hz; audio is resampled to this
  double clip_seconds = 2.0;          // length of one training example
  // auto: the dataset's standard split (gtzan, folder, synthetic: random; mtat: folder;
  // fma: official; csv: the manifest's split column when it has one, else random);
  // random: stratified by split_fractions; gtzan: filtered; mtat: folder, cleaned;
  // fma: official; csv: manifest. host/data/dataset_index.hpp describes each.
  std::string split = "auto";
  std::array<double, 3> split_fractions = {0.8, 0.2, 0.0};  // train, val, test; sum to 1
  std::uint64_t split_seed = 0;       // 0: use train.seed
  std::string split_lists;            // gtzan filtered: folder of the three lists; "": root
  std::vector<std::string> tags = {"top50"};  // mtat: top<N> (most frequent) or tag names
  std::string subset = "small";       // fma: small | medium | large
  std::string labels = "genre_top";   // fma: genre_top (single-label) | genres_all (multi-label)
  std::vector<std::string> genres;    // fma: keep only these genres; empty: all
  std::string metadata;               // fma: tracks.csv (or its folder); "": root/fma_metadata
  std::string audio_dir;              // fma, mtat: audio folder; "": root/fma_<subset>, root
  std::string manifest;               // csv: the manifest file
  std::string cache_dir;              // decoded-audio cache; "": $XDG_CACHE_HOME or ~/.cache, /cadenza/pcm
  std::string balance = "none";       // none | oversample | undersample (single-label classes)
  // Evaluation windows per clip (multiframe; their scores are averaged per clip):
  // 0: the number of whole windows in the median evaluated clip, at most 16.
  int eval_windows = 0;
  double eval_drop_seconds = 0.0;     // seconds left out at each end of a clip in evaluation
  SyntheticDataConfig synthetic;
};

// Training-only augmentation, each kind off by default. Random choices are drawn from
// train.seed and the step (on-line kinds) or data.synthetic-independent augment.offline_seed
// (the offline pass), so runs repeat exactly.
struct AugmentConfig {
  // On the waveform, per example, each with its probability: a time shift of up to
  // shift_seconds either way (zero-filled), a gain in gain_db, white noise at an SNR in
  // noise_snr_db relative to the example's RMS.
  double shift_probability = 0.0;
  double shift_seconds = 0.5;
  double gain_probability = 0.0;
  std::array<double, 2> gain_db = {-6.0, 6.0};
  double noise_probability = 0.0;
  std::array<double, 2> noise_snr_db = {10.0, 40.0};
  // On the features (SpecAugment): masks of a uniform width in [0, max] frames or bins,
  // set to the example's mean value.
  int time_masks = 0;
  int time_mask_frames = 20;
  int freq_masks = 0;
  int freq_mask_bins = 8;
  // Offline, into the cache: offline_copies extra versions of every training clip, each
  // time-stretched by a rate in time_stretch and pitch-shifted by semitones in pitch_shift.
  int offline_copies = 0;
  std::array<double, 2> time_stretch = {0.8, 1.25};
  std::array<double, 2> pitch_shift = {-2.0, 2.0};
  std::uint64_t offline_seed = 1;
};

// One layer of model.layers. `type` selects which of the remaining fields apply;
// config.cpp validates that only the keys of that type were given.
struct LayerConfig {
  std::string type;   // one of layer_types() in config_schema.cpp
  std::string name;   // unique; defaults to "<type><index>" (e.g. conv2d0)
  std::vector<std::string> inputs;  // names of the layers it reads; default: the previous layer
  // conv1d, conv2d (a conv1d takes one kernel, stride, dilation and pad value)
  int filters = 0;
  std::array<int, 2> kernel = {3, 3};
  std::array<int, 2> stride = {1, 1};
  std::array<int, 2> dilation = {1, 1};
  std::string padding = "same";  // same | valid | explicit (the zeros `pad` gives)
  std::array<int, 2> pad = {0, 0};  // explicit: zeros on each side, [height, width] (PyTorch's padding)
  bool bias = true;
  // conv2d, dense: weight initialisation
  std::string init = "torch_default";  // torch_default | he_normal | he_uniform | glorot_uniform | normal
  // maxpool2d, avgpool2d; maxpool1d, avgpool1d (one value)
  std::array<int, 2> pool = {2, 2};
  std::array<int, 2> pool_stride = {0, 0};  // 0: equal to pool
  // batchnorm
  double momentum = 0.1;  // PyTorch convention: running = (1-m)*running + m*batch
  double eps = 1e-5;
  // elu (alpha)
  double alpha = 1.0;
  // leaky_relu: the slope for x < 0, as torch.nn.LeakyReLU's negative_slope
  double negative_slope = 0.01;
  // dropout
  double rate = 0.0;
  // dense; units 0 on the last layer means "one per label of the dataset"
  int units = 0;
  // concat: the axis joined; batchnorm: the axis normalised (1: channels; 2: frequency
  // bins of a (B, C, F, T) spectrogram, Choi's per-frequency BN). Negative counts from
  // the end; 0 (the batch) is refused.
  int axis = 1;
  // global_max_pool, global_avg_pool: the axes pooled, consecutive (e.g. [2]: over
  // frequency of (B, C, F, T)); empty: every axis after the channels.
  std::vector<int> axes;
  // reshape: the shape after the batch axis; one entry may be -1 (inferred)
  std::vector<int> shape;
  // permute: the new order of all axes, batch first (torch.permute: [0, 3, 1, 2])
  std::vector<int> order;
  // gru, lstm, rnn (torch.nn.GRU/LSTM/RNN, batch_first; `units` is the hidden size, > 0):
  int num_layers = 1;             // stacked recurrent layers
  bool bidirectional = false;     // a reverse direction too; outputs are [forward, reverse]
  // false: the last state, (batch, directions * units), as Keras and PyTorch's h_n: the
  // forward direction's last step and the reverse direction's state after the whole
  // sequence (its output at step 0); true: every step, (batch, steps, directions * units)
  bool return_sequences = false;
  double dropout = 0.0;           // on each stacked layer's output but the last, training only
  std::string nonlinearity = "tanh";  // rnn: tanh | relu
  // harmonic_filterbank (Won et al.'s HarmonicSTFT filters on a power STFT, features.type
  // stft with power 2): harmonics * bands triangular filters, bands = (MIDI of
  // sample_rate / (2 harmonics) - 24) * semitone_scale pitch bands from C1 per harmonic
  int harmonics = 6;       // harmonics of each pitch band
  int semitone_scale = 2;  // pitch bands per semitone
  int sample_rate = 0;     // Hz, required: equal to data.sample_rate (the bins' frequencies)
};

struct ModelConfig {
  std::string name = "model";
  std::vector<LayerConfig> layers;
  std::string init_from;  // a run directory, checkpoint directory or model.safetensors to start from
};

struct LossConfig {
  // auto: softmax_cross_entropy for single-label data, sigmoid_bce for multi-label
  std::string type = "auto";  // auto | softmax_cross_entropy | sigmoid_bce
  double label_smoothing = 0.0;  // softmax_cross_entropy only, as torch.nn.CrossEntropyLoss
};

// The learning rate over a run (host/train/lr_schedule.hpp): a linear warm-up, then one of
// constant, step (× gamma every step_epochs), multistep (× gamma at each milestone),
// cosine (down to min_lr at the last step) or plateau (× factor when select_metric has not
// improved for `patience` epochs, as torch's ReduceLROnPlateau).
struct ScheduleConfig {
  std::string type = "constant";  // constant | step | multistep | cosine | plateau
  double warmup_epochs = 0.0;     // lr rises linearly to train.lr over these (fractional) epochs
  int step_epochs = 30;           // step
  std::vector<int> milestones;    // multistep: epochs (from 1) after which lr × gamma
  double gamma = 0.1;             // step, multistep
  double min_lr = 0.0;            // cosine: the last step's lr; plateau: the floor
  int patience = 10;              // plateau: epochs without improvement before reducing
  double factor = 0.1;            // plateau: lr × factor
  double threshold = 1e-4;        // plateau: relative change that counts as improvement
};

// Phases of a run (Won et al.'s protocol): after epochs[i] epochs, optionally reload the
// best checkpoint so far, reset the optimizer's state, switch to `optimizer` and train at
// the constant rate lr[i]. Before the first phase, train.optimizer, train.lr and
// train.schedule apply.
struct PhasesConfig {
  std::vector<int> epochs;   // strictly increasing; empty: no phases
  std::vector<double> lr;    // one per phase
  std::string optimizer;     // adam | adamw | sgd for every phase; empty: train.optimizer
  bool reload_best = true;   // start each phase from the best checkpoint so far
};

// Data-parallel training (one process per device; see host/dist/).
struct DistributedConfig {
  double bucket_mb = 25.0;          // gradients are averaged in buckets of about this size
  double timeout_seconds = 600.0;   // a collective that long without progress ends the job
  bool sync_batchnorm = false;      // batchnorm statistics over every rank's batch (SyncBatchNorm)
};

struct TrainConfig {
  int epochs = 10;
  int batch_size = 16;
  std::string optimizer = "adam";  // adam | adamw | sgd
  double lr = 1e-3;
  ScheduleConfig schedule;
  PhasesConfig phases;
  DistributedConfig dist;
  double weight_decay = 0.0;       // adam/sgd: L2 added to the gradient; adamw: decoupled
  std::array<double, 2> betas = {0.9, 0.999};
  double eps = 1e-8;
  double momentum = 0.0;           // sgd
  bool nesterov = false;           // sgd
  double grad_clip_norm = 0.0;     // > 0: clip the gradients' 2-norm to this (torch's clip_grad_norm_)
  std::uint64_t seed = 42;         // data order, initialisation, dropout
  std::string device = "auto";     // auto | cpu | cuda | cuda:N
  int threads = 0;                 // CPU threads; 0: all cores
  // fp32 | tf32 | bf16 (host/ops/backend.hpp's Precision): on a GPU, tf32 lets cuDNN
  // convolutions and recurrent layers and cuBLAS dense GEMMs round their fp32 inputs to
  // TF32 on tensor cores (fp32 sums); bf16 also runs convolutions on bf16 NHWC copies. The
  // CPU computes in fp32 either way.
  std::string precision = "fp32";
  // After two eager warm-up steps the training step's ops are recorded once per batch
  // buffer and replayed (a CUDA graph on the GPU: one launch per step); false enqueues them
  // one by one. The results are the same bits either way.
  bool capture_graph = true;
  std::string run_dir;             // empty: runs/<model.name>-<timestamp>
  int checkpoint_every_steps = 0;  // 0: at the end of each epoch only
  int keep_checkpoints = 2;        // step checkpoints kept besides best
  std::string select_metric = "auto";  // auto | val_loss | val_accuracy | val_roc_auc | val_pr_auc
  std::vector<std::string> freeze;  // parameter-name prefixes that stay fixed (model.init_from's layers)
  int early_stopping_patience = 0;  // stop after this many epochs without a new best; 0: never
  int max_steps = 0;               // stop (with a checkpoint) after this many steps; 0: no limit
  int log_every_steps = 10;        // one line of steps.jsonl every N steps
};

struct Config {
  int schema_version = 1;
  DataConfig data;
  FrontendSpec features;
  ModelConfig model;
  LossConfig loss;
  AugmentConfig augment;
  TrainConfig train;
  std::string source_path;  // the YAML file it came from ("" when built in code)
};

// The samples of one example window: round(data.clip_seconds * data.sample_rate).
std::int64_t window_samples(const DataConfig& data);

// Reads `path`, applies `overrides` ("a.b=c", as given to --set, in order) and validates.
// Throws UserError naming the file and key on any problem.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// The same from YAML text; `origin` names it in error messages.
Config parse_config(const std::string& yaml_text, const std::string& origin,
                    const std::vector<std::string>& overrides = {});

// The config with every path key (data.root, data.split_lists, data.metadata,
// data.audio_dir, data.manifest, data.cache_dir, model.init_from, train.run_dir) that is
// given and relative made absolute against the current directory: what a run directory
// records, so that its config reads the same files from anywhere.
Config with_absolute_paths(const Config& config);

// Those path keys by name, as config_values names them: what a resume may change (a moved
// dataset) and what may differ between the ranks of a job (each node's own mounts).
const std::vector<std::string>& path_keys();

// The fully resolved config as YAML (every key, defaults included); parse_config of this
// text gives back an equal Config.
std::string to_yaml(const Config& config);

// Every value of the config as text, by key path ("train.lr", "model.layers[2].filters"),
// in the form to_yaml writes it.
std::map<std::string, std::string> config_values(const Config& config);

// What is wrong with `value` for `key` on its own ("train.threads: expected an integer >= 0,
// got -3"), or nullopt when the schema accepts it: for a tool flag that stands for a key,
// so that its error names the flag rather than a --set the user never typed.
std::optional<std::string> config_value_problem(const std::string& key, const std::string& value);

// A stable 64-bit hash of the keys that decide the model's shapes and weights' meaning
// (features, model, data's label set): a checkpoint records it, and resuming or loading
// with a different one is refused.
std::uint64_t model_hash(const Config& config);

// The first of `overrides` whose addition (applied in order to the config at `path`)
// changes its model_hash; nullopt when none does. A run's config cannot take such an override when a
// run is resumed or evaluated: its checkpoints hold the model it was trained as.
std::optional<std::string> model_changing_override(const std::string& path,
                                                   const std::vector<std::string>& overrides);

}  // namespace cadenza
