// CudaBackend: the Backend on one GPU. Each op forwards to the function of the same name
// in namespace cadenza::cuda (conv2d.cu, batchnorm.cu, pooling.cu, dense.cu, harmonic_filterbank.cu,
// elementwise_ops.cuh's files, spectrogram.cu, augmentation.cu, strided_copy.cu,
// scale_rows.cu, recurrent.cu), so a reader finds an op's
// CUDA code by its name. Plain C++ header: host code creates the backend.
//
// Invariants: all work is enqueued on the context's compute stream; copy() to or from the
// host waits for it (the only host synchronisation besides synchronize(); the step's
// batches come through the uploader instead); memory comes from cudaMalloc, never managed
// memory.
#pragma once

#include <memory>

#include "cuda/cuda_context.cuh"
#include "host/ops/backend.hpp"

namespace cadenza::cuda {

class Conv2dPlans;
class RecurrentPlans;

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device_index);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override { return Device::cuda(ctx_.device); }
  CudaContext& context() { return ctx_; }

  void* allocate(std::size_t bytes) override;
  void release(void* memory) override;
  void copy(const Tensor& src, Tensor& dst) override;
  void fill_zero(Tensor& t) override;
  void synchronize() override;
  std::unique_ptr<StepGraph> capture(const std::function<void()>& enqueue, std::string& why_not) override;
  void set_precision(Precision precision) override;

  std::unique_ptr<BatchUploader> make_uploader(const std::vector<Shape>& shapes) override;
  std::unique_ptr<Frontend> make_frontend(const FrontendSpec& spec, int sample_rate, int num_samples,
                                          int max_batch) override;

  std::size_t conv2d_workspace_bytes(const Conv2dGeometry& g) override;
  void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                      Tensor& y, Tensor& workspace) override;
  void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& y, Tensor& dy,
                       Tensor& dx, Tensor& dw, Tensor& dbias, Tensor& workspace) override;
  void batchnorm_forward_train(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                               const Tensor& beta, Tensor& y, Tensor& running_mean, Tensor& running_var,
                               Tensor& saved_mean, Tensor& saved_invstd) override;
  void batchnorm_forward_inference(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                                   const Tensor& beta, const Tensor& running_mean,
                                   const Tensor& running_var, Tensor& y) override;
  void batchnorm_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& sums, double count,
                      Tensor& out) override;
  void batchnorm_forward_from_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                                   const Tensor& beta, const Tensor& sums, const Tensor& squares, double count,
                                   Tensor& y, Tensor& running_mean, Tensor& running_var, Tensor& saved_mean,
                                   Tensor& saved_invstd) override;
  void batchnorm_backward_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                               const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& sums, Tensor& dgamma,
                               Tensor& dbeta) override;
  void batchnorm_backward_from_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                                    const Tensor& gamma, const Tensor& saved_mean, const Tensor& saved_invstd,
                                    const Tensor& sums, double count, Tensor& dx) override;
  void batchnorm_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                          const Tensor& gamma, const Tensor& saved_mean, const Tensor& saved_invstd,
                          Tensor& dx, Tensor& dgamma, Tensor& dbeta) override;
  void activation_forward(Activation kind, float alpha, const Tensor& x, Tensor& y) override;
  void activation_backward(Activation kind, float alpha, const Tensor& x, const Tensor& y,
                           const Tensor& dy, Tensor& dx) override;
  void maxpool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y) override;
  void maxpool2d_backward(const Pool2dGeometry& g, const Tensor& x, const Tensor& dy,
                          Tensor& dx) override;
  void mean_pool_forward(int outer, int inner, const Tensor& x, Tensor& y) override;
  void mean_pool_backward(int outer, int inner, const Tensor& dy, Tensor& dx) override;
  void avgpool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y) override;
  void avgpool2d_backward(const Pool2dGeometry& g, const Tensor& dy, Tensor& dx) override;
  void strided_copy(const StridedCopy& c, const Tensor& src, Tensor& dst) override;
  void permute(const PermuteGeometry& g, const Tensor& x, Tensor& y) override;
  void scale_rows_forward(int rows, int inner, const Tensor& x, const Tensor& scale,
                          Tensor& y) override;
  void scale_rows_backward(int rows, int inner, const Tensor& x, const Tensor& scale,
                           const Tensor& dy, Tensor& dx, Tensor& dscale) override;
  void dropout_forward(float rate, const Tensor& step_values, std::uint64_t salt, std::uint64_t first_index,
                       const Tensor& x, Tensor& y) override;
  void dropout_backward(float rate, const Tensor& step_values, std::uint64_t salt, std::uint64_t first_index,
                        const Tensor& dy, Tensor& dx) override;
  void dense_forward(const DenseGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                     Tensor& y) override;
  void dense_backward(const DenseGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy,
                      Tensor& dx, Tensor& dw, Tensor& dbias) override;
  std::size_t harmonic_filterbank_workspace_bytes(const HarmonicFilterbankGeometry& g) override;
  void harmonic_filterbank_forward(const HarmonicFilterbankGeometry& g, const Tensor& spectrogram,
                                   const Tensor& q, Tensor& filterbank, Tensor& y) override;
  void harmonic_filterbank_backward(const HarmonicFilterbankGeometry& g, const Tensor& spectrogram,
                                    const Tensor& q, const Tensor& filterbank, const Tensor& dy,
                                    Tensor& dx, Tensor& dq, Tensor& workspace) override;
  std::size_t recurrent_reserve_bytes(const RecurrentGeometry& g) override;
  std::size_t recurrent_workspace_bytes(const RecurrentGeometry& g) override;
  void recurrent_forward(const RecurrentGeometry& g, const RecurrentWeights& weights, const Tensor& x,
                         Tensor& y, Tensor& reserve, Tensor& workspace) override;
  void recurrent_backward(const RecurrentGeometry& g, const RecurrentWeights& weights, const Tensor& x,
                          const Tensor& y, const Tensor& dy, Tensor& reserve, Tensor& dx,
                          RecurrentWeights& dweights, Tensor& workspace) override;
  void softmax_cross_entropy(const Tensor& logits, const Tensor& targets, float label_smoothing,
                             Tensor& loss, Tensor& dlogits, float grad_scale) override;
  void sigmoid_bce(const Tensor& logits, const Tensor& targets, Tensor& loss, Tensor& dlogits,
                   float grad_scale) override;
  void adam_step(const AdamHyper& h, const Tensor& step_values, Tensor& params, const Tensor& grads,
                 Tensor& m, Tensor& v) override;
  void sgd_step(const SgdHyper& h, const Tensor& step_values, Tensor& params, const Tensor& grads,
                Tensor& momentum_buffer) override;
  void clip_gradient_norm(float max_norm, Tensor& grads, Tensor& total_norm) override;
  void output_scores(bool multi_label, const Tensor& logits, Tensor& scores) override;
  void accumulate_confusion(const Tensor& scores, const Tensor& targets, int count,
                            Tensor& confusion) override;
  void accumulate_sum(const Tensor& values, int count, Tensor& sum) override;
  void tag_metrics(const Tensor& scores, const Tensor& targets, int count, float threshold,
                   Tensor& metrics) override;
  void accumulate_window_scores(const Tensor& scores, std::int64_t first_window, int count,
                                int windows_per_clip, Tensor& clip_scores) override;
  void augment_waveform(const WaveformAugment& a, const Tensor& step_values, const Tensor& pcm,
                        Tensor& out) override;
  void mask_spectrogram(const SpectrogramMask& m, const Tensor& step_values, Tensor& features) override;

 private:
  // Creates the streams, handles and scratch of ctx_ on ctx_.device.
  void create_handles();
  // Frees what create_handles made (also after it failed half-way); never throws.
  void destroy_handles() noexcept;

  CudaContext ctx_;
  std::unique_ptr<Conv2dPlans> conv_plans_;
  std::unique_ptr<RecurrentPlans> recurrent_plans_;
};

}  // namespace cadenza::cuda
