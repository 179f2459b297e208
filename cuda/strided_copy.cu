// Kernels of strided_copy and permute; see strided_copy.cuh. Grid-stride loops with 64-bit
// indices; each output element is written by exactly one thread.
#include "cuda/strided_copy.cuh"

#include <cstdint>

#include "cuda/check.cuh"
#include "host/math/layout_math.hpp"

namespace cadenza::cuda {
namespace {

__global__ void strided_copy_kernel(StridedCopy c, const float* src, float* dst, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t row = i / c.width, column = i % c.width;
    const float value = src[row * c.src_stride + c.src_offset + column];
    float& target = dst[row * c.dst_stride + c.dst_offset + column];
    target = c.accumulate ? target + value : value;
  }
}

__global__ void permute_kernel(PermuteGeometry g, const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x)
    y[i] = x[permuted_source_index(g, i)];
}

}  // namespace

void strided_copy(CudaContext& ctx, const StridedCopy& c, const Tensor& src, Tensor& dst) {
  check_device_tensor(ctx, src, "strided_copy", "src", src.numel());
  check_device_tensor(ctx, dst, "strided_copy", "dst", dst.numel());
  c.check_fits(src.numel(), dst.numel());
  const std::int64_t n = c.rows * c.width;
  if (n == 0) return;
  strided_copy_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, ctx.stream>>>(
      c, static_cast<const float*>(src.raw()), static_cast<float*>(dst.raw()), n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void permute(CudaContext& ctx, const PermuteGeometry& g, const Tensor& x, Tensor& y) {
  const std::int64_t n = g.numel();
  check_device_tensor(ctx, x, "permute", "x", n);
  check_device_tensor(ctx, y, "permute", "y", n);
  if (n == 0) return;
  permute_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, ctx.stream>>>(
      g, static_cast<const float*>(x.raw()), static_cast<float*>(y.raw()), n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace cadenza::cuda
