// Backend: the op interface. The CPU backend (host/cpu) implements it now; the CUDA
// backend (cuda/) implements the same functions with the same signatures.
//
// Conventions every implementation keeps:
// - Tensors are contiguous, f32 unless stated, and on the backend's device; an op never
//   copies between devices behind the caller's back (copy() is the only op that does).
// - Forward ops write their outputs with `=`. Backward ops write activation gradients
//   (dx) with `=` and ACCUMULATE parameter gradients (dw, dbias, dgamma, dbeta) with `+=`,
//   so the trainer zeroes the gradient region once per step and micro-batches can add up.
// - An optional tensor argument is "absent" when !defined() (e.g. no bias, no dx for the
//   first layer).
// - Randomness (dropout, augmentation) comes from 64-bit keys: the same key gives the same
//   draws on every backend (host/math/random_math.hpp).
// - Values that change every training step (random keys, the learning rate, Adam's bias
//   corrections) are never op arguments: ops read them from a StepValues tensor on the
//   device (step_values.hpp), so that a captured step graph replays with new ones.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "host/core/device.hpp"
#include "host/core/tensor.hpp"
#include "host/features/frontend_spec.hpp"
#include "host/math/hd.hpp"
#include "host/math/optimizer_math.hpp"
#include "host/ops/geometry.hpp"
#include "host/ops/step_values.hpp"

namespace cadenza {

// train.precision. fp32: fp32 everywhere. tf32: convolutions, recurrent layers and dense
// GEMMs may round their fp32 inputs to TF32 on tensor cores (fp32 sums), as PyTorch does
// for convolutions by default. bf16: as tf32, and convolutions run on bf16 copies of their
// inputs, weights and output gradients in NHWC (fp32 sums), their results widened back to
// fp32 tensors, as torch.autocast(dtype=torch.bfloat16) runs them. Parameters, their
// gradients and every other op stay fp32.
enum class Precision { fp32, tf32, bf16 };

// The elementwise activations. Each takes one float parameter, `alpha` in the op
// signatures: elu's alpha, leaky_relu's negative slope; the others ignore it.
// power_to_db is 10 log10(max(x, 1e-10)), torchaudio's AmplitudeToDB() on a power
// spectrogram (no reference, no top_db), applied inside a model (Won's HarmonicCNN).
enum class Activation { relu, elu, leaky_relu, sigmoid, tanh, power_to_db };

// The name a config's layer `type` gives it ("leaky_relu").
constexpr const char* activation_name(Activation kind) {
  switch (kind) {
    case Activation::relu: return "relu";
    case Activation::elu: return "elu";
    case Activation::leaky_relu: return "leaky_relu";
    case Activation::sigmoid: return "sigmoid";
    case Activation::tanh: return "tanh";
    case Activation::power_to_db: return "power_to_db";
  }
  return "unknown";
}

// What activation_backward reads besides dy: relu, leaky_relu and power_to_db need x;
// sigmoid and tanh need y (their derivatives are y(1 - y) and 1 - y^2); elu needs both. An
// argument not read may be an undefined Tensor.
constexpr bool activation_backward_reads_x(Activation kind) {
  return kind == Activation::relu || kind == Activation::elu || kind == Activation::leaky_relu ||
         kind == Activation::power_to_db;
}
constexpr bool activation_backward_reads_y(Activation kind) {
  return kind == Activation::elu || kind == Activation::sigmoid || kind == Activation::tanh;
}

// The learning rate and the bias corrections come from the step's StepValues.
struct AdamHyper {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  bool decoupled_weight_decay = false;  // true: AdamW
};

// The constants of one Adam update: the hyperparameters with the step's learning rate and
// bias corrections (the CPU loop and the CUDA kernel both build them here).
CADENZA_HD AdamStepConstants adam_step_constants(const AdamHyper& h, const StepValues& v) {
  return AdamStepConstants{v.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.decoupled_weight_decay,
                           v.adam_step_size, v.adam_bias_correction2_sqrt};
}

// On-line waveform augmentation of one batch (train only). Each example draws, from the
// key and its row, whether each kind applies (with its probability) and its amount:
// first a shift by an integer in [-max_shift, max_shift] samples (zero-filled), then a
// gain uniform in [gain_db_min, gain_db_max] dB, then white Gaussian noise whose RMS is
// the (shifted, gained) example's RMS / 10^(snr/20), snr uniform in [snr_db_min, snr_db_max].
struct WaveformAugment {
  float shift_probability = 0.0f;
  int max_shift = 0;
  float gain_probability = 0.0f, gain_db_min = 0.0f, gain_db_max = 0.0f;
  float noise_probability = 0.0f, snr_db_min = 0.0f, snr_db_max = 0.0f;
  // Row b of the batch draws as row first_row + b (data-parallel: its row in the step's
  // global batch, so that ranks draw what one process of the whole batch would).
  std::int64_t first_row = 0;
};

// SpecAugment masking (train only): per example, `time_masks` masks of a width uniform in
// [0, max_time_width] frames at a uniform start, and `freq_masks` of up to max_freq_width
// bins; masked values are set to the example's mean over all its values before masking.
struct SpectrogramMask {
  int time_masks = 0, max_time_width = 0;
  int freq_masks = 0, max_freq_width = 0;
  std::int64_t first_row = 0;  // as WaveformAugment::first_row
};

// The learning rate and the first-step flag come from the step's StepValues.
struct SgdHyper {
  float momentum = 0.0f, weight_decay = 0.0f;
  bool nesterov = false;
};

// Computes the model's input features from a batch of PCM (B, S).
class Frontend {
 public:
  virtual ~Frontend() = default;
  // (batch, 1, bins, frames) for the spectral types; (batch, 1, samples) for waveform.
  virtual Shape features_shape(int batch) const = 0;
  virtual void compute(const Tensor& pcm, Tensor& features) = 0;
};

// The parameters of one direction of a recurrent layer, in PyTorch's layout
// (geometry.hpp's RecurrentGeometry): G gates of H units each.
struct RecurrentDirectionWeights {
  Tensor weight_ih;  // (G*H, input_size)
  Tensor weight_hh;  // (G*H, H)
  Tensor bias_ih;    // (G*H)
  Tensor bias_hh;    // (G*H)
};
// [0] the forward direction; [1] the reverse one, read only when bidirectional.
using RecurrentWeights = std::array<RecurrentDirectionWeights, 2>;

// The ops every backend implements, by name: the CUDA parity test must exercise each one
// (tests/cuda/test_op_parity.cpp checks this list against what it ran).
inline constexpr const char* kBackendOps[] = {
    "frontend",
    "conv2d_forward",          "conv2d_backward",
    "batchnorm_forward_train", "batchnorm_forward_inference", "batchnorm_backward",
    "batchnorm_sums",          "batchnorm_forward_from_sums", "batchnorm_backward_sums",
    "batchnorm_backward_from_sums",
    "activation_forward",      "activation_backward",
    "maxpool2d_forward",       "maxpool2d_backward",
    "mean_pool_forward",       "mean_pool_backward",
    "avgpool2d_forward",       "avgpool2d_backward",
    "strided_copy",            "permute",
    "scale_rows_forward",      "scale_rows_backward",
    "dropout_forward",         "dropout_backward",
    "dense_forward",           "dense_backward",
    "harmonic_filterbank_forward", "harmonic_filterbank_backward",
    "recurrent_forward",       "recurrent_backward",
    "softmax_cross_entropy",   "sigmoid_bce",
    "adam_step",               "sgd_step",
    "clip_gradient_norm",
    "output_scores",           "accumulate_confusion",        "accumulate_sum",
    "accumulate_window_scores", "tag_metrics",
    "augment_waveform",        "mask_spectrogram",
};

// Moves batches from host memory to the device, double-buffered: while the device
// computes on one batch, the host fills the next and its copy runs on a copy stream.
// Use, per batch:  host = next_host_buffers(); fill host;  dev = submit();  enqueue the
// ops that read dev;  release_after_compute().
// Invariants: next_host_buffers() returns memory the host may write (the copy that last
// read it has finished); ops enqueued after submit() see the copied data; the device
// buffers of a batch are not overwritten before release_after_compute() was called for
// it and the work enqueued before that call has finished. On the CPU the host buffers are
// the device buffers and nothing is copied; there too two sets alternate, so the next
// batch may be filled (on another thread) while ops read the submitted one.
// The vectors returned are the uploader's own, valid as long as it lives (no allocation).
class BatchUploader {
 public:
  virtual ~BatchUploader() = default;
  virtual const std::vector<Tensor>& next_host_buffers() = 0;
  virtual const std::vector<Tensor>& submit() = 0;
  virtual void release_after_compute() = 0;
};

// Work recorded by Backend::capture: the ops it issued, with the tensors and arguments
// they were issued with, run again in order by each replay() (a CUDA graph on the GPU:
// one launch instead of one per op). Replays are enqueued like ops.
class StepGraph {
 public:
  virtual ~StepGraph() = default;
  virtual void replay() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;

  // Memory on this backend's device. allocate() returns 256-byte aligned zeroed memory or
  // throws a UserError naming the size asked for (and, on a GPU, the size free).
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void release(void* memory) = 0;
  // Copies between any two devices this backend can reach (equal byte sizes).
  virtual void copy(const Tensor& src, Tensor& dst) = 0;
  virtual void fill_zero(Tensor& t) = 0;
  // Waits until all queued work is done (a no-op on the CPU).
  virtual void synchronize() = 0;
  // The arithmetic of convolutions, recurrent layers and dense GEMMs (train.precision),
  // set before any layer is planned. The CPU backend computes in fp32 regardless.
  virtual void set_precision(Precision precision) { (void)precision; }

  // Records the ops `enqueue` issues on this backend into a graph, without running them.
  // Everything they are given is frozen in the graph: tensors must stay where they are
  // and per-step values come from a StepValues tensor. Returns null and says why in
  // `why_not` where the backend cannot capture this work (then nothing has run either).
  // Ops whose plans are made on first use (cuDNN algorithms, cuFFT plans) must have run
  // once before their capture.
  virtual std::unique_ptr<StepGraph> capture(const std::function<void()>& enqueue, std::string& why_not) = 0;

  // An uploader for batches made of tensors of these shapes (f32), its memory allocated now.
  virtual std::unique_ptr<BatchUploader> make_uploader(const std::vector<Shape>& shapes) = 0;

  // Front-end for batches of up to `max_batch` clips of `num_samples` samples.
  virtual std::unique_ptr<Frontend> make_frontend(const FrontendSpec& spec, int sample_rate,
                                                  int num_samples, int max_batch) = 0;

  // Convolution. x (N, Cin, H, W), w (Cout, Cin, kh, kw), bias (Cout), y (N, Cout, Ho, Wo).
  // With g.relu a ReLU is fused in: forward writes relu_forward(conv + bias), and backward
  // reads the output y and first zeroes dy in place where y is not > 0 (dy is the gradient of the
  // ReLU's output, no longer needed after this call); without it y may be undefined and
  // dy is left as it is.
  virtual std::size_t conv2d_workspace_bytes(const Conv2dGeometry& g) = 0;
  virtual void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                              const Tensor& bias, Tensor& y, Tensor& workspace) = 0;
  virtual void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& y,
                               Tensor& dy, Tensor& dx, Tensor& dw, Tensor& dbias, Tensor& workspace) = 0;

  // Batch normalisation. gamma, beta, running_*, saved_* are (channels). With g.relu a
  // ReLU is fused in: every forward writes relu_forward(z), and every backward reads the output
  // y and passes dy only where y > 0 (y may be undefined without g.relu).
  virtual void batchnorm_forward_train(const BatchNormGeometry& g, const Tensor& x,
                                       const Tensor& gamma, const Tensor& beta, Tensor& y,
                                       Tensor& running_mean, Tensor& running_var,
                                       Tensor& saved_mean, Tensor& saved_invstd) = 0;
  virtual void batchnorm_forward_inference(const BatchNormGeometry& g, const Tensor& x,
                                           const Tensor& gamma, const Tensor& beta,
                                           const Tensor& running_mean,
                                           const Tensor& running_var, Tensor& y) = 0;
  virtual void batchnorm_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                                  const Tensor& gamma, const Tensor& saved_mean,
                                  const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma,
                                  Tensor& dbeta) = 0;
  // Synchronised batch normalisation (train.dist.sync_batchnorm): the same functions in
  // steps, so that the channel sums can be summed over ranks between them; `count` is the
  // channel's element count over every rank. Forward: sums = sum x, all-reduce; squares =
  // sum (x - sums / count)^2, all-reduce; then normalise. Backward: local sums (2, C) of
  // dy and dy * xhat (also added into dbeta and dgamma), all-reduce; then dx.
  virtual void batchnorm_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& sums,
                              double count, Tensor& out) = 0;  // sums undefined: out = sum x
  virtual void batchnorm_forward_from_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                                           const Tensor& beta, const Tensor& sums, const Tensor& squares,
                                           double count, Tensor& y, Tensor& running_mean, Tensor& running_var,
                                           Tensor& saved_mean, Tensor& saved_invstd) = 0;
  virtual void batchnorm_backward_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                                       const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& sums,
                                       Tensor& dgamma, Tensor& dbeta) = 0;
  virtual void batchnorm_backward_from_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                                            const Tensor& gamma, const Tensor& saved_mean,
                                            const Tensor& saved_invstd, const Tensor& sums, double count,
                                            Tensor& dx) = 0;

  // Elementwise activations; backward reads x or y as the function needs (see
  // activation_backward_reads_x/_y); alpha is elu's alpha or leaky_relu's negative slope.
  virtual void activation_forward(Activation kind, float alpha, const Tensor& x, Tensor& y) = 0;
  virtual void activation_backward(Activation kind, float alpha, const Tensor& x,
                                   const Tensor& y, const Tensor& dy, Tensor& dx) = 0;

  // Max pooling; backward routes each window's gradient to its first maximum.
  virtual void maxpool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y) = 0;
  virtual void maxpool2d_backward(const Pool2dGeometry& g, const Tensor& x, const Tensor& dy,
                                  Tensor& dx) = 0;

  // Mean over the last `inner` values of x seen as (outer, inner): y (outer).
  virtual void mean_pool_forward(int outer, int inner, const Tensor& x, Tensor& y) = 0;
  virtual void mean_pool_backward(int outer, int inner, const Tensor& dy, Tensor& dx) = 0;

  // Average pooling (no padding, floor division: PyTorch's AvgPool2d default); backward
  // spreads each window's gradient evenly over it.
  virtual void avgpool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y) = 0;
  virtual void avgpool2d_backward(const Pool2dGeometry& g, const Tensor& dy, Tensor& dx) = 0;

  // Data movement: a block copy (geometry.hpp's StridedCopy; accumulate adds into dst) and
  // an axis permutation (f32; src and dst do not overlap).
  virtual void strided_copy(const StridedCopy& c, const Tensor& src, Tensor& dst) = 0;
  virtual void permute(const PermuteGeometry& g, const Tensor& x, Tensor& y) = 0;

  // A gate per row (squeeze-excitation): x (rows, inner), scale (rows), y = x * scale[row].
  // Backward writes dx = dy * scale[row] and dscale[row] = sum over the row of dy * x,
  // summed in double; both with `=`, either may be absent.
  virtual void scale_rows_forward(int rows, int inner, const Tensor& x, const Tensor& scale,
                                  Tensor& y) = 0;
  virtual void scale_rows_backward(int rows, int inner, const Tensor& x, const Tensor& scale,
                                   const Tensor& dy, Tensor& dx, Tensor& dscale) = 0;

  // Inverted dropout: y = x * keep / (1 - rate), keep drawn per element from the key
  // dropout_key(step values, salt), element i as element first_index + i (data-parallel:
  // its index in the step's global batch). `salt` tells the model's dropout ops apart.
  virtual void dropout_forward(float rate, const Tensor& step_values, std::uint64_t salt, std::uint64_t first_index,
                               const Tensor& x, Tensor& y) = 0;
  virtual void dropout_backward(float rate, const Tensor& step_values, std::uint64_t salt, std::uint64_t first_index,
                                const Tensor& dy, Tensor& dx) = 0;

  // Dense: y = x w^T + bias. x (B, in), w (out, in), bias (out), y (B, out).
  virtual void dense_forward(const DenseGeometry& g, const Tensor& x, const Tensor& w,
                             const Tensor& bias, Tensor& y) = 0;
  virtual void dense_backward(const DenseGeometry& g, const Tensor& x, const Tensor& w,
                              const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& dbias) = 0;

  // Harmonic filterbank (geometry.hpp's HarmonicFilterbankGeometry; the filters are
  // host/math/harmonic_math.hpp's): spectrogram (B, bins, frames), a power spectrogram;
  // q (1), the learnable bandwidth scale Q; filterbank (bins, filters); y (B, filters,
  // frames). Forward rebuilds filterbank[i][k], filter k's value at bin i, from q, then
  // writes y[b][k][t] = sum_i spectrogram[b][i][t] * filterbank[i][k].
  // Backward reads the filterbank the forward pass left (built from the same q) and dy
  // (B, filters, frames); it writes dx (B, bins, frames) = filterbank . dy with `=` and adds
  // into dq (1) sum over i, k of dfb[i][k] * dfilter/dQ, where dfb = sum over b, t of
  // spectrogram[b][i][t] * dy[b][k][t]; dx and dq may each be absent. `workspace`
  // (harmonic_filterbank_workspace_bytes) holds dfb.
  virtual std::size_t harmonic_filterbank_workspace_bytes(const HarmonicFilterbankGeometry& g) = 0;
  virtual void harmonic_filterbank_forward(const HarmonicFilterbankGeometry& g,
                                           const Tensor& spectrogram, const Tensor& q,
                                           Tensor& filterbank, Tensor& y) = 0;
  virtual void harmonic_filterbank_backward(const HarmonicFilterbankGeometry& g,
                                            const Tensor& spectrogram, const Tensor& q,
                                            const Tensor& filterbank, const Tensor& dy,
                                            Tensor& dx, Tensor& dq, Tensor& workspace) = 0;

  // Recurrent layers: one layer of a stack (RecurrentGeometry), one or both directions, from
  // zero initial states. recurrent_forward writes y (B, T, D*H) and keeps in `reserve` what
  // the backward pass reads (a layout of the backend's own, recurrent_reserve_bytes long,
  // left untouched by the caller between a forward and its backward). recurrent_backward
  // reads x, y, dy (B, T, D*H) and that reserve, which it may overwrite (one backward per
  // forward); it writes dx (B, T, In) with `=` (dx may be absent) and adds into every tensor
  // of dweights. `workspace` (recurrent_workspace_bytes) is scratch for either call.
  virtual std::size_t recurrent_reserve_bytes(const RecurrentGeometry& g) = 0;
  virtual std::size_t recurrent_workspace_bytes(const RecurrentGeometry& g) = 0;
  virtual void recurrent_forward(const RecurrentGeometry& g, const RecurrentWeights& weights,
                                 const Tensor& x, Tensor& y, Tensor& reserve,
                                 Tensor& workspace) = 0;
  virtual void recurrent_backward(const RecurrentGeometry& g, const RecurrentWeights& weights,
                                  const Tensor& x, const Tensor& y, const Tensor& dy,
                                  Tensor& reserve, Tensor& dx, RecurrentWeights& dweights,
                                  Tensor& workspace) = 0;

  // Losses, fused with their gradient. logits and targets (B, K); targets are probability
  // rows (one-hot or smoothed) for softmax and 0/1 (or soft) labels for BCE. Writes the
  // per-example loss (B) and, when dlogits is defined, grad_scale * dloss/dlogits.
  virtual void softmax_cross_entropy(const Tensor& logits, const Tensor& targets,
                                     float label_smoothing, Tensor& loss, Tensor& dlogits,
                                     float grad_scale) = 0;
  virtual void sigmoid_bce(const Tensor& logits, const Tensor& targets, Tensor& loss,
                           Tensor& dlogits, float grad_scale) = 0;

  // Fused optimizer updates over flat buffers of equal size; the learning rate, Adam's bias
  // corrections and SGD's first-step flag are read from `step_values`.
  virtual void adam_step(const AdamHyper& h, const Tensor& step_values, Tensor& params,
                         const Tensor& grads, Tensor& m, Tensor& v) = 0;
  virtual void sgd_step(const SgdHyper& h, const Tensor& step_values, Tensor& params,
                        const Tensor& grads, Tensor& momentum_buffer) = 0;

  // Scales the flat gradient buffer so its 2-norm is at most max_norm (torch's
  // clip_grad_norm_) and writes the norm before clipping to total_norm (1 element).
  // Sums in double in a fixed order: deterministic, and no host synchronisation.
  virtual void clip_gradient_norm(float max_norm, Tensor& grads, Tensor& total_norm) = 0;

  // Evaluation, accumulated on the device so that only totals come back to the host.
  // scores (B, K) = softmax (single-label) or sigmoid (multi-label) of logits (B, K).
  virtual void output_scores(bool multi_label, const Tensor& logits, Tensor& scores) = 0;
  // confusion (K, K) += 1 at [argmax target row][argmax score row] for the first `count` rows.
  virtual void accumulate_confusion(const Tensor& scores, const Tensor& targets, int count,
                                    Tensor& confusion) = 0;
  // sum (1) += values[0] + ... + values[count - 1], in that order.
  virtual void accumulate_sum(const Tensor& values, int count, Tensor& sum) = 0;
  // Multiframe evaluation: row r < count of scores (B, K) is window first_window + r of a
  // sequence in which every clip has windows_per_clip consecutive windows; adds
  // scores[r] / windows_per_clip to clip_scores row (first_window + r) / windows_per_clip.
  // Each clip row receives its windows' terms in window order (deterministic).
  virtual void accumulate_window_scores(const Tensor& scores, std::int64_t first_window, int count,
                                        int windows_per_clip, Tensor& clip_scores) = 0;
  // Multi-label: for each tag (column) of the first `count` rows of scores and targets
  // (N, K), writes metrics (kTagMetricRows, K) — ROC-AUC, average precision, and the
  // true-positive, predicted-positive and positive counts at `threshold` (metric_math.hpp's
  // TagMetricRow). Ties count as scikit-learn counts them.
  virtual void tag_metrics(const Tensor& scores, const Tensor& targets, int count, float threshold,
                           Tensor& metrics) = 0;

  // Augmentation. augment_waveform writes the augmented pcm (B, S) to out (not in place),
  // drawing from the step values' waveform_augment_key; mask_spectrogram masks features
  // (B, C, F, T) in place, drawing from their spectrogram_mask_key.
  virtual void augment_waveform(const WaveformAugment& a, const Tensor& step_values, const Tensor& pcm,
                                Tensor& out) = 0;
  virtual void mask_spectrogram(const SpectrogramMask& m, const Tensor& step_values, Tensor& features) = 0;
};

}  // namespace cadenza
