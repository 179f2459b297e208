// Elementwise activations on the GPU (relu, elu, leaky_relu, sigmoid, tanh, power_to_db): one
// thread per element (grid-stride), each calling host/math/activation_math.hpp as the CPU loop in
// host/cpu/activation.cpp does.
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
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = activation_value<kKind>(x[i], alpha);
}

template <Activation kKind>
__global__ void activation_backward_kernel(const float* x, const float* y, const float* dy,
                                           float* dx, float alpha, std::int64_t n) {
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dx[i] = activation_gradient<kKind>(x, y, i, alpha, dy[i]);
}

void launch_activation_forward(cudaStream_t stream, Activation kind, float alpha, const float* x,
                               float* y, std::int64_t n) {
  if (n == 0) return;
  visit_activation(kind, [&](auto k) {
    activation_forward_kernel<decltype(k)::value><<<grid_stride_blocks(n), kThreads, 0, stream>>>(x, y, alpha, n);
  });
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

// x is read by relu, elu, leaky_relu and power_to_db, y by elu, sigmoid and tanh
// (activation_backward_reads_x/_y); the one not read may be null.
void launch_activation_backward(cudaStream_t stream, Activation kind, float alpha, const float* x,
                                const float* y, const float* dy, float* dx, std::int64_t n) {
  if (n == 0) return;
  visit_activation(kind, [&](auto k) {
    activation_backward_kernel<decltype(k)::value>
        <<<grid_stride_blocks(n), kThreads, 0, stream>>>(x, y, dy, dx, alpha, n);
  });
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void activation_forward(CudaContext& ctx, Activation kind, float alpha, const Tensor& x,
                        Tensor& y) {
  const char* op = "activation_forward";
  const std::int64_t n = x.numel();
  check_device_tensor(ctx, x, op, "x", n);
  check_device_tensor(ctx, y, op, "y", n);
  launch_activation_forward(ctx.stream, kind, alpha, static_cast<const float*>(x.raw()),
                            static_cast<float*>(y.raw()), n);
}

void activation_backward(CudaContext& ctx, Activation kind, float alpha, const Tensor& x,
                         const Tensor& y, const Tensor& dy, Tensor& dx) {
  const char* op = "activation_backward";
  const std::int64_t n = dy.numel();
  const bool needs_x = activation_backward_reads_x(kind), needs_y = activation_backward_reads_y(kind);
  if (needs_x) check_device_tensor(ctx, x, op, "x", n);
  if (needs_y) check_device_tensor(ctx, y, op, "y", n);
  check_device_tensor(ctx, dy, op, "dy", n);
  check_device_tensor(ctx, dx, op, "dx", n);
  launch_activation_backward(ctx.stream, kind, alpha,
                             needs_x ? static_cast<const float*>(x.raw()) : nullptr,
                             needs_y ? static_cast<const float*>(y.raw()) : nullptr,
                             static_cast<const float*>(dy.raw()), static_cast<float*>(dx.raw()), n);
}

}  // namespace cadenza::cuda
