// CudaBackend: device set-up, memory, copies and the dispatch of each op.
#include "cuda/cuda_backend.cuh"

#include <sstream>

#include "cuda/augmentation.cuh"
#include "cuda/batch_uploader.cuh"
#include "cuda/batchnorm.cuh"
#include "cuda/check.cuh"
#include "cuda/conv2d.cuh"
#include "cuda/dense.cuh"
#include "cuda/harmonic_filterbank.cuh"
#include "cuda/elementwise_ops.cuh"
#include "cuda/pooling.cuh"
#include "cuda/recurrent.cuh"
#include "cuda/scale_rows.cuh"
#include "cuda/spectrogram.cuh"
#include "cuda/strided_copy.cuh"
#include "host/features/waveform_frontend.hpp"

namespace cadenza::cuda {
namespace {

// The Backend's Frontend over CudaSpectrogram: (B, S) PCM → (B, 1, bins, frames).
class CudaFrontend final : public Frontend {
 public:
  CudaFrontend(CudaContext& ctx, const FrontendSpec& spec, int sample_rate, int num_samples,
               int max_batch)
      : spectrogram_(ctx, spec, sample_rate, num_samples, max_batch) {}
  Shape features_shape(int batch) const override {
    return Shape{batch, 1, spectrogram_.num_bins(), spectrogram_.num_frames()};
  }
  void compute(const Tensor& pcm, Tensor& features) override { spectrogram_.compute(pcm, features); }

 private:
  CudaSpectrogram spectrogram_;
};

}  // namespace

CudaBackend::CudaBackend(int device_index)
    : conv_plans_(std::make_unique<Conv2dPlans>()), recurrent_plans_(std::make_unique<RecurrentPlans>()) {
  ctx_.device = device_index;
  CADENZA_CUDA_CHECK(cudaSetDevice(device_index));
  try {
    create_handles();
  } catch (...) {
    destroy_handles();
    throw;
  }
}

void CudaBackend::create_handles() {
  const int device_index = ctx_.device;
  CADENZA_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx_.stream, cudaStreamNonBlocking));
  CADENZA_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx_.copy_stream, cudaStreamNonBlocking));
  CADENZA_CUDA_CHECK(cublasCreate(&ctx_.cublas));
  CADENZA_CUDA_CHECK(cublasSetStream(ctx_.cublas, ctx_.stream));
  // After cublasSetStream, which resets the workspace to cuBLAS's pool.
  CADENZA_CUDA_CHECK(cudaMalloc(&ctx_.cublas_workspace, CudaContext::kCublasWorkspaceBytes));
  CADENZA_CUDA_CHECK(cublasSetWorkspace(ctx_.cublas, ctx_.cublas_workspace, CudaContext::kCublasWorkspaceBytes));
  // FP32 GEMMs (no TF32) so that results compare with the CPU backend's; set_precision changes it.
  CADENZA_CUDA_CHECK(cublasSetMathMode(ctx_.cublas, CUBLAS_PEDANTIC_MATH));
  CADENZA_CUDA_CHECK(cudnnCreate(&ctx_.cudnn));
  CADENZA_CUDA_CHECK(cudnnSetStream(ctx_.cudnn, ctx_.stream));
  CADENZA_CUDA_CHECK(cudaDeviceGetAttribute(&ctx_.max_threads_per_block, cudaDevAttrMaxThreadsPerBlock,
                                            device_index));
  CADENZA_CUDA_CHECK(cudaMalloc(&ctx_.reduction_scratch, sizeof(double) * CudaContext::kReductionScratchDoubles));
}

CudaBackend::~CudaBackend() { destroy_handles(); }

void CudaBackend::destroy_handles() noexcept {
  // Errors here cannot be reported usefully. The handles belong to ctx_.device, which need
  // not be current (another engine's device may be).
  const ScopedDevice device(ctx_.device, false);
  conv_plans_.reset();
  recurrent_plans_.reset();
  if (ctx_.reduction_scratch) cudaFree(ctx_.reduction_scratch);
  if (ctx_.cudnn) cudnnDestroy(ctx_.cudnn);
  if (ctx_.cublas) cublasDestroy(ctx_.cublas);
  if (ctx_.cublas_workspace) cudaFree(ctx_.cublas_workspace);
  if (ctx_.copy_stream) cudaStreamDestroy(ctx_.copy_stream);
  if (ctx_.stream) cudaStreamDestroy(ctx_.stream);
}

void CudaBackend::set_precision(Precision precision) {
  ctx_.tf32 = precision != Precision::fp32;
  ctx_.bf16_convolutions = precision == Precision::bf16;
  CADENZA_CUDA_CHECK(cublasSetMathMode(ctx_.cublas, ctx_.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
}

void* CudaBackend::allocate(std::size_t bytes) {
  void* memory = nullptr;
  const cudaError_t status = cudaMalloc(&memory, bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear the sticky error
    std::size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    CADENZA_USER_ERROR("out of GPU memory on cuda:" << ctx_.device << ": asked for "
                                                    << (bytes + (1 << 20) - 1) / (1 << 20) << " MiB, "
                                                    << free_bytes / (1 << 20) << " MiB free of "
                                                    << total_bytes / (1 << 20)
                                                    << " MiB; try a smaller train.batch_size");
  }
  CADENZA_CUDA_CHECK(status);
  CADENZA_CUDA_CHECK(cudaMemsetAsync(memory, 0, bytes, ctx_.stream));
  return memory;
}

void CudaBackend::release(void* memory) {
  // Never throws (it runs from destructors); a failure must not be blamed on the next op.
  if (cudaFree(memory) != cudaSuccess) static_cast<void>(cudaGetLastError());
}

void CudaBackend::copy(const Tensor& src, Tensor& dst) {
  CADENZA_CHECK(src.bytes() == dst.bytes(), "copy of " << src.bytes() << " bytes into " << dst.bytes());
  if (src.bytes() == 0) return;
  for (const Tensor* t : {&src, static_cast<const Tensor*>(&dst)})
    CADENZA_CHECK(t->device().is_cpu() || t->device() == device(),
                  "the backend of " << device().str() << " cannot reach " << t->device().str());
  const bool to_host = dst.device().is_cpu();
  const cudaMemcpyKind kind = src.device().is_cpu()
                                  ? (to_host ? cudaMemcpyHostToHost : cudaMemcpyHostToDevice)
                                  : (to_host ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice);
  CADENZA_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), src.bytes(), kind, ctx_.stream));
  // The host may reuse either side once copy() returns: it reads what it copied back, and
  // frees or refills a host source (CUDA promises no more than that a pageable upload
  // "might be synchronous"; a pinned one is not). Only set-up, evaluation and checkpoints
  // copy from the host: the step's batches go through the uploader.
  if (to_host || src.device().is_cpu()) CADENZA_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
}

void CudaBackend::fill_zero(Tensor& t) {
  CADENZA_CHECK(t.device() == device(), "fill_zero of a tensor on " << t.device().str());
  if (t.bytes()) CADENZA_CUDA_CHECK(cudaMemsetAsync(t.raw(), 0, t.bytes(), ctx_.stream));
}

void CudaBackend::synchronize() { CADENZA_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream)); }

namespace {

// An instantiated CUDA graph, launched on the compute stream.
class CudaStepGraph final : public StepGraph {
 public:
  CudaStepGraph(cudaGraphExec_t exec, cudaStream_t stream) : exec_(exec), stream_(stream) {}
  ~CudaStepGraph() override { static_cast<void>(cudaGraphExecDestroy(exec_)); }
  CudaStepGraph(const CudaStepGraph&) = delete;
  CudaStepGraph& operator=(const CudaStepGraph&) = delete;
  void replay() override { CADENZA_CUDA_CHECK(cudaGraphLaunch(exec_, stream_)); }

 private:
  cudaGraphExec_t exec_;
  cudaStream_t stream_;
};

}  // namespace

// Stream capture of the compute stream, thread-local: the loader threads and other host
// threads may go on calling CUDA meanwhile. An op the driver will not capture (or that
// synchronises) fails inside enqueue() or invalidates the capture; either way the capture
// is ended, the error cleared and null returned, and nothing has run. A failure that is
// not the capture's (a bad argument) shows again when the caller runs the step eagerly.
std::unique_ptr<StepGraph> CudaBackend::capture(const std::function<void()>& enqueue, std::string& why_not) {
  const cudaError_t began = cudaStreamBeginCapture(ctx_.stream, cudaStreamCaptureModeThreadLocal);
  if (began != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    why_not = std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(began);
    return nullptr;
  }
  std::string failure;
  try {
    enqueue();
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {  // whatever it was, the stream must leave capture mode
    failure = "an exception that is not a std::exception";
  }
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(ctx_.stream, &graph);
  if (failure.empty() && ended != cudaSuccess) failure = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(ended);
  cudaGraphExec_t exec = nullptr;
  if (failure.empty()) {
    const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
    if (instantiated != cudaSuccess) failure = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(instantiated);
  }
  if (graph) static_cast<void>(cudaGraphDestroy(graph));
  if (!failure.empty()) {
    static_cast<void>(cudaGetLastError());  // the capture's error is reported through why_not
    why_not = failure;
    return nullptr;
  }
  return std::make_unique<CudaStepGraph>(exec, ctx_.stream);
}

std::unique_ptr<BatchUploader> CudaBackend::make_uploader(const std::vector<Shape>& shapes) {
  return make_batch_uploader(ctx_, shapes);
}

std::unique_ptr<Frontend> CudaBackend::make_frontend(const FrontendSpec& spec, int sample_rate,
                                                     int num_samples, int max_batch) {
  if (spec.type == "waveform") return std::make_unique<WaveformFrontend>(*this, num_samples);
  return std::make_unique<CudaFrontend>(ctx_, spec, sample_rate, num_samples, max_batch);
}

std::size_t CudaBackend::conv2d_workspace_bytes(const Conv2dGeometry& g) {
  return cuda::conv2d_workspace_bytes(ctx_, *conv_plans_, g);
}
void CudaBackend::conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                                 const Tensor& bias, Tensor& y, Tensor& workspace) {
  cuda::conv2d_forward(ctx_, *conv_plans_, g, x, w, bias, y, workspace);
}
void CudaBackend::conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& y,
                                  Tensor& dy, Tensor& dx, Tensor& dw, Tensor& dbias, Tensor& workspace) {
  cuda::conv2d_backward(ctx_, *conv_plans_, g, x, w, y, dy, dx, dw, dbias, workspace);
}
void CudaBackend::batchnorm_forward_train(const BatchNormGeometry& g, const Tensor& x,
                                          const Tensor& gamma, const Tensor& beta, Tensor& y,
                                          Tensor& running_mean, Tensor& running_var,
                                          Tensor& saved_mean, Tensor& saved_invstd) {
  cuda::batchnorm_forward_train(ctx_, g, x, gamma, beta, y, running_mean, running_var, saved_mean,
                                saved_invstd);
}
void CudaBackend::batchnorm_forward_inference(const BatchNormGeometry& g, const Tensor& x,
                                              const Tensor& gamma, const Tensor& beta,
                                              const Tensor& running_mean,
                                              const Tensor& running_var, Tensor& y) {
  cuda::batchnorm_forward_inference(ctx_, g, x, gamma, beta, running_mean, running_var, y);
}
void CudaBackend::batchnorm_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                                     const Tensor& gamma, const Tensor& saved_mean,
                                     const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma,
                                     Tensor& dbeta) {
  cuda::batchnorm_backward(ctx_, g, x, y, dy, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta);
}
void CudaBackend::batchnorm_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& sums, double count,
                                 Tensor& out) {
  cuda::batchnorm_sums(ctx_, g, x, sums, count, out);
}
void CudaBackend::batchnorm_forward_from_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                                              const Tensor& beta, const Tensor& sums, const Tensor& squares,
                                              double count, Tensor& y, Tensor& running_mean, Tensor& running_var,
                                              Tensor& saved_mean, Tensor& saved_invstd) {
  cuda::batchnorm_forward_from_sums(ctx_, g, x, gamma, beta, sums, squares, count, y, running_mean, running_var,
                                    saved_mean, saved_invstd);
}
void CudaBackend::batchnorm_backward_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                                          const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& sums,
                                          Tensor& dgamma, Tensor& dbeta) {
  cuda::batchnorm_backward_sums(ctx_, g, x, y, dy, saved_mean, saved_invstd, sums, dgamma, dbeta);
}
void CudaBackend::batchnorm_backward_from_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                                               const Tensor& gamma, const Tensor& saved_mean,
                                               const Tensor& saved_invstd, const Tensor& sums, double count,
                                               Tensor& dx) {
  cuda::batchnorm_backward_from_sums(ctx_, g, x, y, dy, gamma, saved_mean, saved_invstd, sums, count, dx);
}
void CudaBackend::activation_forward(Activation kind, float alpha, const Tensor& x, Tensor& y) {
  cuda::activation_forward(ctx_, kind, alpha, x, y);
}
void CudaBackend::activation_backward(Activation kind, float alpha, const Tensor& x, const Tensor& y,
                                      const Tensor& dy, Tensor& dx) {
  cuda::activation_backward(ctx_, kind, alpha, x, y, dy, dx);
}
void CudaBackend::maxpool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y) {
  cuda::maxpool2d_forward(ctx_, g, x, y);
}
void CudaBackend::maxpool2d_backward(const Pool2dGeometry& g, const Tensor& x, const Tensor& dy,
                                     Tensor& dx) {
  cuda::maxpool2d_backward(ctx_, g, x, dy, dx);
}
void CudaBackend::mean_pool_forward(int outer, int inner, const Tensor& x, Tensor& y) {
  cuda::mean_pool_forward(ctx_, outer, inner, x, y);
}
void CudaBackend::mean_pool_backward(int outer, int inner, const Tensor& dy, Tensor& dx) {
  cuda::mean_pool_backward(ctx_, outer, inner, dy, dx);
}
void CudaBackend::avgpool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y) {
  cuda::avgpool2d_forward(ctx_, g, x, y);
}
void CudaBackend::avgpool2d_backward(const Pool2dGeometry& g, const Tensor& dy, Tensor& dx) {
  cuda::avgpool2d_backward(ctx_, g, dy, dx);
}
void CudaBackend::strided_copy(const StridedCopy& c, const Tensor& src, Tensor& dst) {
  cuda::strided_copy(ctx_, c, src, dst);
}
void CudaBackend::permute(const PermuteGeometry& g, const Tensor& x, Tensor& y) {
  cuda::permute(ctx_, g, x, y);
}
void CudaBackend::scale_rows_forward(int rows, int inner, const Tensor& x, const Tensor& scale,
                                     Tensor& y) {
  cuda::scale_rows_forward(ctx_, rows, inner, x, scale, y);
}
void CudaBackend::scale_rows_backward(int rows, int inner, const Tensor& x, const Tensor& scale,
                                      const Tensor& dy, Tensor& dx, Tensor& dscale) {
  cuda::scale_rows_backward(ctx_, rows, inner, x, scale, dy, dx, dscale);
}
void CudaBackend::dropout_forward(float rate, const Tensor& step_values, std::uint64_t salt, std::uint64_t first_index,
                                  const Tensor& x, Tensor& y) {
  cuda::dropout_forward(ctx_, rate, step_values, salt, first_index, x, y);
}
void CudaBackend::dropout_backward(float rate, const Tensor& step_values, std::uint64_t salt,
                                   std::uint64_t first_index, const Tensor& dy, Tensor& dx) {
  cuda::dropout_backward(ctx_, rate, step_values, salt, first_index, dy, dx);
}
void CudaBackend::dense_forward(const DenseGeometry& g, const Tensor& x, const Tensor& w,
                                const Tensor& bias, Tensor& y) {
  cuda::dense_forward(ctx_, g, x, w, bias, y);
}
void CudaBackend::dense_backward(const DenseGeometry& g, const Tensor& x, const Tensor& w,
                                 const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& dbias) {
  cuda::dense_backward(ctx_, g, x, w, dy, dx, dw, dbias);
}
std::size_t CudaBackend::harmonic_filterbank_workspace_bytes(const HarmonicFilterbankGeometry& g) {
  return cuda::harmonic_filterbank_workspace_bytes(g);
}
void CudaBackend::harmonic_filterbank_forward(const HarmonicFilterbankGeometry& g,
                                              const Tensor& spectrogram, const Tensor& q,
                                              Tensor& filterbank, Tensor& y) {
  cuda::harmonic_filterbank_forward(ctx_, g, spectrogram, q, filterbank, y);
}
void CudaBackend::harmonic_filterbank_backward(const HarmonicFilterbankGeometry& g,
                                               const Tensor& spectrogram, const Tensor& q,
                                               const Tensor& filterbank, const Tensor& dy, Tensor& dx,
                                               Tensor& dq, Tensor& workspace) {
  cuda::harmonic_filterbank_backward(ctx_, g, spectrogram, q, filterbank, dy, dx, dq, workspace);
}
std::size_t CudaBackend::recurrent_reserve_bytes(const RecurrentGeometry& g) {
  return cuda::recurrent_reserve_bytes(ctx_, *recurrent_plans_, g);
}
std::size_t CudaBackend::recurrent_workspace_bytes(const RecurrentGeometry& g) {
  return cuda::recurrent_workspace_bytes(ctx_, *recurrent_plans_, g);
}
void CudaBackend::recurrent_forward(const RecurrentGeometry& g, const RecurrentWeights& weights,
                                    const Tensor& x, Tensor& y, Tensor& reserve, Tensor& workspace) {
  cuda::recurrent_forward(ctx_, *recurrent_plans_, g, weights, x, y, reserve, workspace);
}
void CudaBackend::recurrent_backward(const RecurrentGeometry& g, const RecurrentWeights& weights,
                                     const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& reserve,
                                     Tensor& dx, RecurrentWeights& dweights, Tensor& workspace) {
  cuda::recurrent_backward(ctx_, *recurrent_plans_, g, weights, x, y, dy, reserve, dx, dweights, workspace);
}
void CudaBackend::softmax_cross_entropy(const Tensor& logits, const Tensor& targets,
                                        float label_smoothing, Tensor& loss, Tensor& dlogits,
                                        float grad_scale) {
  cuda::softmax_cross_entropy(ctx_, logits, targets, label_smoothing, loss, dlogits, grad_scale);
}
void CudaBackend::sigmoid_bce(const Tensor& logits, const Tensor& targets, Tensor& loss,
                              Tensor& dlogits, float grad_scale) {
  cuda::sigmoid_bce(ctx_, logits, targets, loss, dlogits, grad_scale);
}
void CudaBackend::adam_step(const AdamHyper& h, const Tensor& step_values, Tensor& params,
                            const Tensor& grads, Tensor& m, Tensor& v) {
  cuda::adam_step(ctx_, h, step_values, params, grads, m, v);
}
void CudaBackend::clip_gradient_norm(float max_norm, Tensor& grads, Tensor& total_norm) {
  cuda::clip_gradient_norm(ctx_, max_norm, grads, total_norm);
}
void CudaBackend::output_scores(bool multi_label, const Tensor& logits, Tensor& scores) {
  cuda::output_scores(ctx_, multi_label, logits, scores);
}
void CudaBackend::accumulate_confusion(const Tensor& scores, const Tensor& targets, int count,
                                       Tensor& confusion) {
  cuda::accumulate_confusion(ctx_, scores, targets, count, confusion);
}
void CudaBackend::accumulate_sum(const Tensor& values, int count, Tensor& sum) {
  cuda::accumulate_sum(ctx_, values, count, sum);
}
void CudaBackend::tag_metrics(const Tensor& scores, const Tensor& targets, int count, float threshold,
                              Tensor& metrics) {
  cuda::tag_metrics(ctx_, scores, targets, count, threshold, metrics);
}
void CudaBackend::accumulate_window_scores(const Tensor& scores, std::int64_t first_window, int count,
                                           int windows_per_clip, Tensor& clip_scores) {
  cuda::accumulate_window_scores(ctx_, scores, first_window, count, windows_per_clip, clip_scores);
}
void CudaBackend::augment_waveform(const WaveformAugment& a, const Tensor& step_values, const Tensor& pcm,
                                   Tensor& out) {
  cuda::augment_waveform(ctx_, a, step_values, pcm, out);
}
void CudaBackend::mask_spectrogram(const SpectrogramMask& m, const Tensor& step_values, Tensor& features) {
  cuda::mask_spectrogram(ctx_, m, step_values, features);
}
void CudaBackend::sgd_step(const SgdHyper& h, const Tensor& step_values, Tensor& params, const Tensor& grads,
                           Tensor& momentum_buffer) {
  cuda::sgd_step(ctx_, h, step_values, params, grads, momentum_buffer);
}

}  // namespace cadenza::cuda
