// Gradient-norm clipping (two fixed-shape reduction passes, then a scale that reads the
// coefficient from device memory: no host synchronisation), and fused Adam/AdamW and SGD
// updates on the GPU over flat parameter buffers: one thread per
// element (grid-stride, 64-bit indices) calling adam_update / sgd_update
// (host/math/optimizer_math.hpp), as host/cpu/optimizers.cpp's loops do.
//
// Invariants: the learning rate, Adam's bias corrections (computed once per step on the
// host by set_adam_bias_corrections, the CPU's own computation) and SGD's first-step flag
// are read by each thread from the step values in device memory. params, grads and the
// state buffers are distinct, of equal size.
#include <algorithm>
#include <cstdint>

#include "cuda/check.cuh"
#include "cuda/elementwise_ops.cuh"
#include "host/core/error.hpp"
#include "host/math/optimizer_math.hpp"

namespace cadenza::cuda {
namespace {

constexpr int kThreads = kElementwiseThreads;

__global__ void adam_step_kernel(AdamHyper h, const StepValues* __restrict__ step, float* __restrict__ params,
                                 const float* __restrict__ grads, float* __restrict__ m,
                                 float* __restrict__ v, std::int64_t n) {
  const AdamStepConstants c = adam_step_constants(h, *step);
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    adam_update(c, params[i], grads[i], m[i], v[i]);
}

__global__ void sgd_step_kernel(SgdHyper h, const StepValues* __restrict__ step, float* __restrict__ params,
                                const float* __restrict__ grads, float* __restrict__ buffer,
                                std::int64_t n) {
  const float lr = step->lr;
  const bool first_step = step->first_step != 0;
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    sgd_update(lr, h.momentum, h.weight_decay, h.nesterov, first_step, params[i], grads[i], buffer[i]);
}

void launch_adam_step(cudaStream_t stream, const AdamHyper& h, const StepValues* step, float* params,
                      const float* grads, float* m, float* v, std::int64_t n) {
  if (n == 0) return;
  adam_step_kernel<<<grid_stride_blocks(n), kThreads, 0, stream>>>(h, step, params, grads, m, v, n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void launch_sgd_step(cudaStream_t stream, const SgdHyper& h, const StepValues* step, float* params,
                     const float* grads, float* buffer, std::int64_t n) {
  if (n == 0) return;
  sgd_step_kernel<<<grid_stride_blocks(n), kThreads, 0, stream>>>(h, step, params, grads, buffer, n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void adam_step(CudaContext& ctx, const AdamHyper& h, const Tensor& step_values, Tensor& params,
               const Tensor& grads, Tensor& m, Tensor& v) {
  const char* op = "adam_step";
  const std::int64_t n = params.numel();
  check_device_tensor(ctx, params, op, "params", n);
  check_device_tensor(ctx, grads, op, "grads", n);
  check_device_tensor(ctx, m, op, "m", n);
  check_device_tensor(ctx, v, op, "v", n);
  launch_adam_step(ctx.stream, h, device_step_values(ctx, step_values, op), static_cast<float*>(params.raw()),
                   static_cast<const float*>(grads.raw()), static_cast<float*>(m.raw()),
                   static_cast<float*>(v.raw()), n);
}

void sgd_step(CudaContext& ctx, const SgdHyper& h, const Tensor& step_values, Tensor& params,
              const Tensor& grads, Tensor& momentum_buffer) {
  const char* op = "sgd_step";
  const std::int64_t n = params.numel();
  check_device_tensor(ctx, params, op, "params", n);
  check_device_tensor(ctx, grads, op, "grads", n);
  check_device_tensor(ctx, momentum_buffer, op, "momentum_buffer", n);
  launch_sgd_step(ctx.stream, h, device_step_values(ctx, step_values, op), static_cast<float*>(params.raw()),
                  static_cast<const float*>(grads.raw()),
                  static_cast<float*>(momentum_buffer.raw()), n);
}

namespace {

// Pass 1: block b sums the squares of a fixed strided slice in double (the grid is always
// kReductionBlocks blocks of kThreads, so the order never depends on the device).
__global__ void sum_squares_kernel(const float* __restrict__ g, std::int64_t n, double* partial) {
  __shared__ double shared[kThreads];
  double sum = 0.0;
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    sum += double(g[i]) * g[i];
  shared[threadIdx.x] = sum;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = shared[0];
}

// Pass 2 (one thread): the norm, written to total_norm; the coefficient to partial[0].
__global__ void finish_norm_kernel(double* partial, int blocks, float max_norm, float* total_norm) {
  double squares = 0.0;
  for (int b = 0; b < blocks; ++b) squares += partial[b];
  const double norm = sqrt(squares);
  total_norm[0] = static_cast<float>(norm);
  partial[0] = clip_coefficient(norm, max_norm);
}

__global__ void scale_kernel(float* __restrict__ g, std::int64_t n, const double* coefficient) {
  const float c = static_cast<float>(coefficient[0]);
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) g[i] *= c;
}

}  // namespace

void clip_gradient_norm(CudaContext& ctx, float max_norm, Tensor& grads, Tensor& total_norm) {
  const char* op = "clip_gradient_norm";
  const std::int64_t n = grads.numel();
  check_device_tensor(ctx, grads, op, "grads", n);
  check_device_tensor(ctx, total_norm, op, "total_norm", 1);
  float* g = static_cast<float*>(grads.raw());
  sum_squares_kernel<<<CudaContext::kReductionBlocks, kThreads, 0, ctx.stream>>>(g, n, ctx.reduction_scratch);
  CADENZA_CUDA_CHECK(cudaGetLastError());
  finish_norm_kernel<<<1, 1, 0, ctx.stream>>>(ctx.reduction_scratch, CudaContext::kReductionBlocks, max_norm,
                                              static_cast<float*>(total_norm.raw()));
  CADENZA_CUDA_CHECK(cudaGetLastError());
  if (n == 0) return;
  scale_kernel<<<grid_stride_blocks(n), kThreads, 0, ctx.stream>>>(g, n, ctx.reduction_scratch);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace cadenza::cuda
