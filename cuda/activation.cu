// Elementwise activations on the GPU: one thread per element (grid-stride), each calling
// host/math/activation_math.hpp as the CPU loop in host/cpu/activation.cpp does.
//
// Invariants: indices are 64-bit; y may alias x and dx may alias dy (each element is read
// before it is written, by the one thread that owns it); forward writes y and backward
// writes dx with `=`.
#include <algorithm>
#include <cstdint>

#include "cuda/check.cuh"
#include "cuda/elementwise_ops.cuh"
#include "host/core/error.hpp"
#include "host/math/activation_math.hpp"

namespace cadenza::cuda {
namespace {

constexpr int kThreads = kElementwiseThreads;

template <Activation kKind>
__global__ void activation_forward_kernel(const float* x, float* y, float alpha, std::int64_t n) {
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    if constexpr (kKind == Activation::relu)
      y[i] = relu_forward(x[i]);
    else
      y[i] = elu_forward(x[i], alpha);
  }
}

template <Activation kKind>
__global__ void activation_backward_kernel(const float* x, const float* y, const float* dy,
                                           float* dx, float alpha, std::int64_t n) {
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    if constexpr (kKind == Activation::relu)
      dx[i] = relu_backward(x[i], dy[i]);
    else
      dx[i] = elu_backward(x[i], y[i], alpha, dy[i]);
  }
}

void launch_activation_forward(cudaStream_t stream, Activation kind, float alpha, const float* x,
                               float* y, std::int64_t n) {
  if (n == 0) return;
  switch (kind) {
    case Activation::relu:
      activation_forward_kernel<Activation::relu>
          <<<grid_stride_blocks(n), kThreads, 0, stream>>>(x, y, alpha, n);
      break;
    case Activation::elu:
      activation_forward_kernel<Activation::elu>
          <<<grid_stride_blocks(n), kThreads, 0, stream>>>(x, y, alpha, n);
      break;
  }
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

// y is read only by elu (relu's derivative needs x alone); it may be null for relu.
void launch_activation_backward(cudaStream_t stream, Activation kind, float alpha, const float* x,
                                const float* y, const float* dy, float* dx, std::int64_t n) {
  if (n == 0) return;
  switch (kind) {
    case Activation::relu:
      activation_backward_kernel<Activation::relu>
          <<<grid_stride_blocks(n), kThreads, 0, stream>>>(x, y, dy, dx, alpha, n);
      break;
    case Activation::elu:
      activation_backward_kernel<Activation::elu>
          <<<grid_stride_blocks(n), kThreads, 0, stream>>>(x, y, dy, dx, alpha, n);
      break;
  }
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void check_kind(Activation kind, const char* op) {
  CADENZA_CHECK(kind == Activation::relu || kind == Activation::elu,
                op << ": unknown activation " << static_cast<int>(kind));
}

}  // namespace

void activation_forward(CudaContext& ctx, Activation kind, float alpha, const Tensor& x,
                        Tensor& y) {
  const char* op = "activation_forward";
  check_kind(kind, op);
  const std::int64_t n = x.numel();
  check_device_tensor(ctx, x, op, "x", n);
  check_device_tensor(ctx, y, op, "y", n);
  launch_activation_forward(ctx.stream, kind, alpha, static_cast<const float*>(x.raw()),
                            static_cast<float*>(y.raw()), n);
}

void activation_backward(CudaContext& ctx, Activation kind, float alpha, const Tensor& x,
                         const Tensor& y, const Tensor& dy, Tensor& dx) {
  const char* op = "activation_backward";
  check_kind(kind, op);
  const std::int64_t n = x.numel();
  check_device_tensor(ctx, x, op, "x", n);
  const bool needs_y = kind == Activation::elu;
  if (needs_y) check_device_tensor(ctx, y, op, "y", n);
  check_device_tensor(ctx, dy, op, "dy", n);
  check_device_tensor(ctx, dx, op, "dx", n);
  launch_activation_backward(ctx.stream, kind, alpha, static_cast<const float*>(x.raw()),
                             needs_y ? static_cast<const float*>(y.raw()) : nullptr,
                             static_cast<const float*>(dy.raw()), static_cast<float*>(dx.raw()), n);
}

}  // namespace cadenza::cuda
