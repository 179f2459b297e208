// CpuBackend: the Backend on the host. Each op forwards to the function of the same name
// in namespace cadenza::cpu (one file per op in this folder), so a reader finds an op's CPU
// code by its name, and tests can call those functions directly.
//
// Capture: every op (copy and fill_zero too) goes through enqueue(), which runs it at once
// or, inside capture(), appends it with copies of its arguments to the graph being
// recorded; a replay runs the recorded ops in order. So the CPU records and replays as a
// CUDA stream capture does, and a step graph behaves the same on both backends. Running
// at once builds no std::function: the eager step allocates nothing.
//
// Threads: element loops use OpenMP and GEMMs the BLAS library's threads. Both pools are
// process-wide resources of the host, so creating a CpuBackend sets both to `threads`.
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "host/cpu/cpu_ops.hpp"
#include "host/ops/backend.hpp"

namespace cadenza {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads);
  Device device() const override { return Device::cpu(); }
  int threads() const { return threads_; }

  void* allocate(std::size_t bytes) override;
  void release(void* memory) override;
  void copy(const Tensor& src, Tensor& dst) override;
  void fill_zero(Tensor& t) override;
  void synchronize() override {}
  std::unique_ptr<StepGraph> capture(const std::function<void()>& enqueue, std::string& why_not) override;

  // Runs `work` now, or records it while a capture is under way.
  template <class Work>
  void enqueue(Work&& work) {
    if (recording_)
      recording_->emplace_back(std::forward<Work>(work));
    else
      work();
  }

  std::unique_ptr<BatchUploader> make_uploader(const std::vector<Shape>& shapes) override;
  std::unique_ptr<Frontend> make_frontend(const FrontendSpec& spec, int sample_rate,
                                          int num_samples, int max_batch) override;

  std::size_t conv2d_workspace_bytes(const Conv2dGeometry& g) override {
    return cpu::conv2d_workspace_bytes(g, threads_);
  }
  void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                      const Tensor& bias, Tensor& y, Tensor& workspace) override {
    enqueue([=]() mutable { cpu::conv2d_forward(g, x, w, bias, y, workspace); });
  }
  void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& y, Tensor& dy,
                       Tensor& dx, Tensor& dw, Tensor& dbias, Tensor& workspace) override {
    enqueue([=]() mutable { cpu::conv2d_backward(g, x, w, y, dy, dx, dw, dbias, workspace); });
  }
  void batchnorm_forward_train(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                               const Tensor& beta, Tensor& y, Tensor& running_mean,
                               Tensor& running_var, Tensor& saved_mean,
                               Tensor& saved_invstd) override {
    enqueue([=]() mutable {
      cpu::batchnorm_forward_train(g, x, gamma, beta, y, running_mean, running_var, saved_mean, saved_invstd);
    });
  }
  void batchnorm_forward_inference(const BatchNormGeometry& g, const Tensor& x,
                                   const Tensor& gamma, const Tensor& beta,
                                   const Tensor& running_mean, const Tensor& running_var,
                                   Tensor& y) override {
    enqueue([=]() mutable { cpu::batchnorm_forward_inference(g, x, gamma, beta, running_mean, running_var, y); });
  }
  void batchnorm_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                          const Tensor& gamma, const Tensor& saved_mean,
                          const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma,
                          Tensor& dbeta) override {
    enqueue([=]() mutable {
      cpu::batchnorm_backward(g, x, y, dy, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta);
    });
  }
  void batchnorm_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& sums, double count,
                      Tensor& out) override {
    enqueue([=]() mutable { cpu::batchnorm_sums(g, x, sums, count, out); });
  }
  void batchnorm_forward_from_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                                   const Tensor& beta, const Tensor& sums, const Tensor& squares, double count,
                                   Tensor& y, Tensor& running_mean, Tensor& running_var, Tensor& saved_mean,
                                   Tensor& saved_invstd) override {
    enqueue([=]() mutable {
      cpu::batchnorm_forward_from_sums(g, x, gamma, beta, sums, squares, count, y, running_mean, running_var,
                                       saved_mean, saved_invstd);
    });
  }
  void batchnorm_backward_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                               const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& sums, Tensor& dgamma,
                               Tensor& dbeta) override {
    enqueue([=]() mutable {
      cpu::batchnorm_backward_sums(g, x, y, dy, saved_mean, saved_invstd, sums, dgamma, dbeta);
    });
  }
  void batchnorm_backward_from_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                                    const Tensor& gamma, const Tensor& saved_mean, const Tensor& saved_invstd,
                                    const Tensor& sums, double count, Tensor& dx) override {
    enqueue([=]() mutable {
      cpu::batchnorm_backward_from_sums(g, x, y, dy, gamma, saved_mean, saved_invstd, sums, count, dx);
    });
  }
  void activation_forward(Activation kind, float alpha, const Tensor& x, Tensor& y) override {
    enqueue([=]() mutable { cpu::activation_forward(kind, alpha, x, y); });
  }
  void activation_backward(Activation kind, float alpha, const Tensor& x, const Tensor& y,
                           const Tensor& dy, Tensor& dx) override {
    enqueue([=]() mutable { cpu::activation_backward(kind, alpha, x, y, dy, dx); });
  }
  void maxpool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y) override {
    enqueue([=]() mutable { cpu::maxpool2d_forward(g, x, y); });
  }
  void maxpool2d_backward(const Pool2dGeometry& g, const Tensor& x, const Tensor& dy,
                          Tensor& dx) override {
    enqueue([=]() mutable { cpu::maxpool2d_backward(g, x, dy, dx); });
  }
  void mean_pool_forward(int outer, int inner, const Tensor& x, Tensor& y) override {
    enqueue([=]() mutable { cpu::mean_pool_forward(outer, inner, x, y); });
  }
  void mean_pool_backward(int outer, int inner, const Tensor& dy, Tensor& dx) override {
    enqueue([=]() mutable { cpu::mean_pool_backward(outer, inner, dy, dx); });
  }
  void avgpool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y) override {
    enqueue([=]() mutable { cpu::avgpool2d_forward(g, x, y); });
  }
  void avgpool2d_backward(const Pool2dGeometry& g, const Tensor& dy, Tensor& dx) override {
    enqueue([=]() mutable { cpu::avgpool2d_backward(g, dy, dx); });
  }
  void strided_copy(const StridedCopy& c, const Tensor& src, Tensor& dst) override {
    enqueue([=]() mutable { cpu::strided_copy(c, src, dst); });
  }
  void permute(const PermuteGeometry& g, const Tensor& x, Tensor& y) override {
    enqueue([=]() mutable { cpu::permute(g, x, y); });
  }
  void scale_rows_forward(int rows, int inner, const Tensor& x, const Tensor& scale,
                          Tensor& y) override {
    enqueue([=]() mutable { cpu::scale_rows_forward(rows, inner, x, scale, y); });
  }
  void scale_rows_backward(int rows, int inner, const Tensor& x, const Tensor& scale,
                           const Tensor& dy, Tensor& dx, Tensor& dscale) override {
    enqueue([=]() mutable { cpu::scale_rows_backward(rows, inner, x, scale, dy, dx, dscale); });
  }
  void dropout_forward(float rate, const Tensor& step_values, std::uint64_t salt, std::uint64_t first_index,
                       const Tensor& x, Tensor& y) override {
    enqueue([=]() mutable { cpu::dropout_forward(rate, step_values, salt, first_index, x, y); });
  }
  void dropout_backward(float rate, const Tensor& step_values, std::uint64_t salt, std::uint64_t first_index,
                        const Tensor& dy, Tensor& dx) override {
    enqueue([=]() mutable { cpu::dropout_backward(rate, step_values, salt, first_index, dy, dx); });
  }
  void dense_forward(const DenseGeometry& g, const Tensor& x, const Tensor& w,
                     const Tensor& bias, Tensor& y) override {
    enqueue([=]() mutable { cpu::dense_forward(g, x, w, bias, y); });
  }
  void dense_backward(const DenseGeometry& g, const Tensor& x, const Tensor& w,
                      const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& dbias) override {
    enqueue([=]() mutable { cpu::dense_backward(g, x, w, dy, dx, dw, dbias); });
  }
  std::size_t harmonic_filterbank_workspace_bytes(const HarmonicFilterbankGeometry& g) override {
    return cpu::harmonic_filterbank_workspace_bytes(g);
  }
  void harmonic_filterbank_forward(const HarmonicFilterbankGeometry& g, const Tensor& spectrogram,
                                   const Tensor& q, Tensor& filterbank, Tensor& y) override {
    enqueue([=]() mutable { cpu::harmonic_filterbank_forward(g, spectrogram, q, filterbank, y); });
  }
  void harmonic_filterbank_backward(const HarmonicFilterbankGeometry& g, const Tensor& spectrogram,
                                    const Tensor& q, const Tensor& filterbank, const Tensor& dy,
                                    Tensor& dx, Tensor& dq, Tensor& workspace) override {
    enqueue([=]() mutable {
      cpu::harmonic_filterbank_backward(g, spectrogram, q, filterbank, dy, dx, dq, workspace);
    });
  }
  std::size_t recurrent_reserve_bytes(const RecurrentGeometry& g) override {
    return cpu::recurrent_reserve_bytes(g);
  }
  std::size_t recurrent_workspace_bytes(const RecurrentGeometry& g) override {
    return cpu::recurrent_workspace_bytes(g);
  }
  void recurrent_forward(const RecurrentGeometry& g, const RecurrentWeights& weights, const Tensor& x,
                         Tensor& y, Tensor& reserve, Tensor& workspace) override {
    enqueue([=]() mutable { cpu::recurrent_forward(g, weights, x, y, reserve, workspace); });
  }
  void recurrent_backward(const RecurrentGeometry& g, const RecurrentWeights& weights, const Tensor& x,
                          const Tensor& y, const Tensor& dy, Tensor& reserve, Tensor& dx,
                          RecurrentWeights& dweights, Tensor& workspace) override {
    enqueue([=]() mutable { cpu::recurrent_backward(g, weights, x, y, dy, reserve, dx, dweights, workspace); });
  }
  void softmax_cross_entropy(const Tensor& logits, const Tensor& targets, float label_smoothing,
                             Tensor& loss, Tensor& dlogits, float grad_scale) override {
    enqueue([=]() mutable {
      cpu::softmax_cross_entropy(logits, targets, label_smoothing, loss, dlogits, grad_scale);
    });
  }
  void sigmoid_bce(const Tensor& logits, const Tensor& targets, Tensor& loss, Tensor& dlogits,
                   float grad_scale) override {
    enqueue([=]() mutable { cpu::sigmoid_bce(logits, targets, loss, dlogits, grad_scale); });
  }
  void adam_step(const AdamHyper& h, const Tensor& step_values, Tensor& params, const Tensor& grads,
                 Tensor& m, Tensor& v) override {
    enqueue([=]() mutable { cpu::adam_step(h, step_values, params, grads, m, v); });
  }
  void sgd_step(const SgdHyper& h, const Tensor& step_values, Tensor& params, const Tensor& grads,
                Tensor& momentum_buffer) override {
    enqueue([=]() mutable { cpu::sgd_step(h, step_values, params, grads, momentum_buffer); });
  }
  void clip_gradient_norm(float max_norm, Tensor& grads, Tensor& total_norm) override {
    enqueue([=]() mutable { cpu::clip_gradient_norm(max_norm, grads, total_norm); });
  }
  void output_scores(bool multi_label, const Tensor& logits, Tensor& scores) override {
    enqueue([=]() mutable { cpu::output_scores(multi_label, logits, scores); });
  }
  void tag_metrics(const Tensor& scores, const Tensor& targets, int count, float threshold,
                   Tensor& metrics) override {
    enqueue([=]() mutable { cpu::tag_metrics(scores, targets, count, threshold, metrics); });
  }
  void accumulate_confusion(const Tensor& scores, const Tensor& targets, int count,
                            Tensor& confusion) override {
    enqueue([=]() mutable { cpu::accumulate_confusion(scores, targets, count, confusion); });
  }
  void accumulate_sum(const Tensor& values, int count, Tensor& sum) override {
    enqueue([=]() mutable { cpu::accumulate_sum(values, count, sum); });
  }
  void accumulate_window_scores(const Tensor& scores, std::int64_t first_window, int count,
                                int windows_per_clip, Tensor& clip_scores) override {
    enqueue([=]() mutable {
      cpu::accumulate_window_scores(scores, first_window, count, windows_per_clip, clip_scores);
    });
  }
  void augment_waveform(const WaveformAugment& a, const Tensor& step_values, const Tensor& pcm,
                        Tensor& out) override {
    enqueue([=]() mutable { cpu::augment_waveform(a, step_values, pcm, out); });
  }
  void mask_spectrogram(const SpectrogramMask& m, const Tensor& step_values, Tensor& features) override {
    enqueue([=]() mutable { cpu::mask_spectrogram(m, step_values, features); });
  }

 private:
  int threads_;
  std::vector<std::function<void()>>* recording_ = nullptr;  // the graph being captured
};

}  // namespace cadenza
