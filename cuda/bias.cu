// Bias broadcast and bias gradient on the GPU, for layers whose main product comes from a
// vendor library: y (rows, cols) += bias (cols), and dbias (cols) += the column sums of
// dy (rows, cols), as host/cpu/dense.cpp's bias logic.
//
// Invariants:
// - add_bias_rows: one thread per element of y (grid-stride, 64-bit indices).
// - accumulate_bias_gradient: one thread per column, summing its rows in order 0..rows-1
//   in float and adding the total once, the CPU loop's order, so the result is the CPU's
//   bit for bit and identical run to run (no atomics). Neighbouring threads read
//   neighbouring columns of a row, so the reads coalesce.
#include <algorithm>
#include <cstdint>

#include "cuda/check.cuh"
#include "cuda/elementwise_ops.cuh"
#include "host/core/error.hpp"

namespace cadenza::cuda {
namespace {

constexpr int kThreads = kElementwiseThreads;

__global__ void add_bias_rows_kernel(const float* bias, float* y, int cols, std::int64_t n) {
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] += bias[i % cols];
}

__global__ void accumulate_bias_gradient_kernel(const float* dy, float* dbias, int rows, int cols) {
  const std::int64_t c = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float sum = 0.0f;
  for (std::int64_t r = 0; r < rows; ++r) sum += dy[r * cols + c];
  dbias[c] += sum;
}

void launch_add_bias_rows(cudaStream_t stream, int rows, int cols, const float* bias, float* y) {
  const std::int64_t n = std::int64_t(rows) * cols;
  if (n == 0) return;
  add_bias_rows_kernel<<<grid_stride_blocks(n), kThreads, 0, stream>>>(bias, y, cols, n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

// Launched even when rows == 0: the CPU adds its zero sum too.
void launch_accumulate_bias_gradient(cudaStream_t stream, int rows, int cols, const float* dy,
                                     float* dbias) {
  if (cols == 0) return;
  accumulate_bias_gradient_kernel<<<blocks_for(cols, kThreads), kThreads, 0, stream>>>(
      dy, dbias, rows, cols);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void add_bias_rows(CudaContext& ctx, int rows, int cols, const Tensor& bias, Tensor& y) {
  const char* op = "add_bias_rows";
  CADENZA_CHECK(rows >= 0 && cols >= 0, op << ": rows " << rows << ", cols " << cols);
  check_device_tensor(ctx, bias, op, "bias", cols);
  check_device_tensor(ctx, y, op, "y", std::int64_t(rows) * cols);
  launch_add_bias_rows(ctx.stream, rows, cols, static_cast<const float*>(bias.raw()),
                       static_cast<float*>(y.raw()));
}

void accumulate_bias_gradient(CudaContext& ctx, int rows, int cols, const Tensor& dy,
                              Tensor& dbias) {
  const char* op = "accumulate_bias_gradient";
  CADENZA_CHECK(rows >= 0 && cols >= 0, op << ": rows " << rows << ", cols " << cols);
  check_device_tensor(ctx, dy, op, "dy", std::int64_t(rows) * cols);
  check_device_tensor(ctx, dbias, op, "dbias", cols);
  launch_accumulate_bias_gradient(ctx.stream, rows, cols, static_cast<const float*>(dy.raw()),
                                  static_cast<float*>(dbias.raw()));
}

}  // namespace cadenza::cuda
