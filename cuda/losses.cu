// Softmax cross-entropy and sigmoid BCE on the GPU, fused with their gradient: one thread
// per row of logits calling softmax_cross_entropy_row / sigmoid_bce_row
// (host/math/loss_math.hpp) exactly as host/cpu/losses.cpp's loop does.
//
// Invariants: logits and targets are (B, K) with K >= 1 when B > 0, loss is (B); dlogits
// is absent (!defined(), the kernel gets nullptr and writes no gradient) or (B, K). Rows
// are tens of classes, so the serial per-row math is cheap; each thread touches only its
// own row, so dlogits may alias logits.
#include <cstdint>
#include <limits>

#include "cuda/check.cuh"
#include "cuda/elementwise_ops.cuh"
#include "host/core/error.hpp"
#include "host/math/loss_math.hpp"

namespace cadenza::cuda {
namespace {

constexpr int kThreads = 128;

__global__ void softmax_cross_entropy_kernel(const float* logits, const float* targets, int rows,
                                             int k, float label_smoothing, float grad_scale,
                                             float* loss, float* dlogits) {
  const std::int64_t r = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const std::int64_t at = r * k;
  loss[r] = softmax_cross_entropy_row(logits + at, targets + at, k, label_smoothing, grad_scale,
                                      dlogits ? dlogits + at : nullptr);
}

__global__ void sigmoid_bce_kernel(const float* logits, const float* targets, int rows, int k,
                                   float grad_scale, float* loss, float* dlogits) {
  const std::int64_t r = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const std::int64_t at = r * k;
  loss[r] = sigmoid_bce_row(logits + at, targets + at, k, grad_scale,
                            dlogits ? dlogits + at : nullptr);
}

void launch_softmax_cross_entropy(cudaStream_t stream, const float* logits, const float* targets,
                                  int rows, int k, float label_smoothing, float grad_scale,
                                  float* loss, float* dlogits) {
  if (rows == 0) return;
  softmax_cross_entropy_kernel<<<blocks_for(rows, kThreads), kThreads, 0, stream>>>(
      logits, targets, rows, k, label_smoothing, grad_scale, loss, dlogits);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void launch_sigmoid_bce(cudaStream_t stream, const float* logits, const float* targets, int rows,
                        int k, float grad_scale, float* loss, float* dlogits) {
  if (rows == 0) return;
  sigmoid_bce_kernel<<<blocks_for(rows, kThreads), kThreads, 0, stream>>>(
      logits, targets, rows, k, grad_scale, loss, dlogits);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

// The shape checks of host/cpu/losses.cpp plus device, dtype and K >= 1 (a row reads
// logits[0]); returns the dlogits pointer, null when the gradient is not wanted.
float* check_loss_arguments(const CudaContext& ctx, const char* op, const Tensor& logits,
                            const Tensor& targets, const Tensor& loss, const Tensor& dlogits) {
  check_device_tensor(ctx, logits, op, "logits", logits.numel());
  CADENZA_CHECK(logits.shape().rank() == 2, op << ": logits " << logits.shape().str()
                                               << " must be (batch, classes)");
  const std::int64_t rows = logits.dim(0), k = logits.dim(1);
  CADENZA_CHECK(rows <= std::numeric_limits<int>::max() && k <= std::numeric_limits<int>::max(),
                op << ": logits " << logits.shape().str() << " too large");
  CADENZA_CHECK(k >= 1 || rows == 0,
                op << ": logits " << logits.shape().str() << " has no classes");
  check_device_tensor(ctx, targets, op, "targets", logits.numel());
  CADENZA_CHECK(targets.shape() == logits.shape(), op << ": logits " << logits.shape().str()
                                                      << " vs targets " << targets.shape().str());
  check_device_tensor(ctx, loss, op, "loss", rows);
  if (!dlogits.defined()) return nullptr;
  check_device_tensor(ctx, dlogits, op, "dlogits", logits.numel());
  CADENZA_CHECK(dlogits.shape() == logits.shape(), op << ": dlogits " << dlogits.shape().str()
                                                      << " vs logits " << logits.shape().str());
  return static_cast<float*>(dlogits.raw());
}

}  // namespace

void softmax_cross_entropy(CudaContext& ctx, const Tensor& logits, const Tensor& targets,
                           float label_smoothing, Tensor& loss, Tensor& dlogits, float grad_scale) {
  float* grad = check_loss_arguments(ctx, "softmax_cross_entropy", logits, targets, loss, dlogits);
  launch_softmax_cross_entropy(ctx.stream, static_cast<const float*>(logits.raw()),
                               static_cast<const float*>(targets.raw()),
                               static_cast<int>(logits.dim(0)), static_cast<int>(logits.dim(1)),
                               label_smoothing, grad_scale, static_cast<float*>(loss.raw()), grad);
}

void sigmoid_bce(CudaContext& ctx, const Tensor& logits, const Tensor& targets, Tensor& loss,
                 Tensor& dlogits, float grad_scale) {
  float* grad = check_loss_arguments(ctx, "sigmoid_bce", logits, targets, loss, dlogits);
  launch_sigmoid_bce(ctx.stream, static_cast<const float*>(logits.raw()),
                     static_cast<const float*>(targets.raw()), static_cast<int>(logits.dim(0)),
                     static_cast<int>(logits.dim(1)), grad_scale, static_cast<float*>(loss.raw()),
                     grad);
}

}  // namespace cadenza::cuda
