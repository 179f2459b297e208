// Mean over the trailing axis on the GPU: x seen as (outer, inner) → y (outer), and its
// backward dx[o, i] = dy[o] / inner (host/cpu/pooling.cpp's mean_pool_*).
//
// Invariants:
// - Forward: one block per row. Each thread sums a strided slice of the row in double,
//   then block_sum_in_order (block_reduce.cuh) adds the partial sums in a fixed tree:
//   bit-identical run to run. Summing in double,
//   as the CPU does, makes the float result agree with the CPU's except in rare cases where
//   the two summation orders round the double sum to different floats.
// - Backward: one thread per element of dx (grid-stride, 64-bit indices), written with `=`.
#include <cstdint>

#include "cuda/block_reduce.cuh"
#include "cuda/check.cuh"
#include "cuda/elementwise_ops.cuh"
#include "host/core/error.hpp"

namespace cadenza::cuda {
namespace {

constexpr int kThreads = kElementwiseThreads;

// Launched with one block per row and row_reduction_threads(inner) threads.
__global__ void mean_pool_forward_kernel(const float* x, float* y, int inner) {
  const float* row = x + std::int64_t(blockIdx.x) * inner;
  double sum = 0.0;
  for (std::int64_t i = threadIdx.x; i < inner; i += blockDim.x) sum += row[i];
  const double total = block_sum_in_order(sum);
  if (threadIdx.x == 0) y[blockIdx.x] = static_cast<float>(total / inner);
}

__global__ void mean_pool_backward_kernel(const float* dy, float* dx, int inner, std::int64_t n) {
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dx[i] = dy[i / inner] / static_cast<float>(inner);
}

void launch_mean_pool_forward(cudaStream_t stream, int outer, int inner, const float* x, float* y) {
  if (outer == 0) return;
  mean_pool_forward_kernel<<<static_cast<unsigned int>(outer), row_reduction_threads(inner), 0,
                             stream>>>(x, y, inner);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void launch_mean_pool_backward(cudaStream_t stream, int outer, int inner, const float* dy,
                               float* dx) {
  const std::int64_t n = std::int64_t(outer) * inner;
  if (n == 0) return;
  mean_pool_backward_kernel<<<grid_stride_blocks(n), kThreads, 0, stream>>>(dy, dx, inner, n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void mean_pool_forward(CudaContext& ctx, int outer, int inner, const Tensor& x, Tensor& y) {
  const char* op = "mean_pool_forward";
  CADENZA_CHECK(outer >= 0 && inner >= 0, op << ": outer " << outer << ", inner " << inner);
  check_device_tensor(ctx, x, op, "x", std::int64_t(outer) * inner);
  check_device_tensor(ctx, y, op, "y", outer);
  launch_mean_pool_forward(ctx.stream, outer, inner, static_cast<const float*>(x.raw()),
                           static_cast<float*>(y.raw()));
}

void mean_pool_backward(CudaContext& ctx, int outer, int inner, const Tensor& dy, Tensor& dx) {
  const char* op = "mean_pool_backward";
  CADENZA_CHECK(outer >= 0 && inner >= 0, op << ": outer " << outer << ", inner " << inner);
  check_device_tensor(ctx, dy, op, "dy", outer);
  check_device_tensor(ctx, dx, op, "dx", std::int64_t(outer) * inner);
  launch_mean_pool_backward(ctx.stream, outer, inner, static_cast<const float*>(dy.raw()),
                            static_cast<float*>(dx.raw()));
}

}  // namespace cadenza::cuda
