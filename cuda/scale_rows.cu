// Kernels of scale_rows; see scale_rows.cuh.
#include "cuda/scale_rows.cuh"

#include <cstdint>

#include "cuda/block_reduce.cuh"
#include "cuda/check.cuh"

namespace cadenza::cuda {
namespace {

// One thread per element (grid-stride): y = x * scale[row] (dx = dy * scale[row] too).
__global__ void scale_kernel(const float* x, const float* scale, float* y, int inner, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x)
    y[i] = x[i] * scale[i / inner];
}

// One block per row, row_reduction_threads(inner) threads: dscale[row] = sum dy * x.
__global__ void scale_gradient_kernel(const float* x, const float* dy, float* dscale, int inner) {
  const std::int64_t start = std::int64_t(blockIdx.x) * inner;
  double sum = 0.0;
  for (std::int64_t i = threadIdx.x; i < inner; i += blockDim.x)
    sum += double(dy[start + i]) * x[start + i];
  const double total = block_sum_in_order(sum);
  if (threadIdx.x == 0) dscale[blockIdx.x] = static_cast<float>(total);
}

void launch_scale(cudaStream_t stream, int inner, std::int64_t n, const float* x, const float* scale,
                  float* y) {
  if (n == 0) return;
  scale_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, stream>>>(x, scale, y, inner, n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void scale_rows_forward(CudaContext& ctx, int rows, int inner, const Tensor& x, const Tensor& scale,
                        Tensor& y) {
  const std::int64_t n = std::int64_t(rows) * inner;
  check_device_tensor(ctx, x, "scale_rows_forward", "x", n);
  check_device_tensor(ctx, scale, "scale_rows_forward", "scale", rows);
  check_device_tensor(ctx, y, "scale_rows_forward", "y", n);
  launch_scale(ctx.stream, inner, n, static_cast<const float*>(x.raw()),
               static_cast<const float*>(scale.raw()), static_cast<float*>(y.raw()));
}

void scale_rows_backward(CudaContext& ctx, int rows, int inner, const Tensor& x, const Tensor& scale,
                         const Tensor& dy, Tensor& dx, Tensor& dscale) {
  const std::int64_t n = std::int64_t(rows) * inner;
  check_device_tensor(ctx, x, "scale_rows_backward", "x", n);
  check_device_tensor(ctx, scale, "scale_rows_backward", "scale", rows);
  check_device_tensor(ctx, dy, "scale_rows_backward", "dy", n);
  // dscale reads dy before dx is written, so that dx may alias dy (as on the CPU).
  if (dscale.defined() && rows > 0) {
    check_device_tensor(ctx, dscale, "scale_rows_backward", "dscale", rows);
    scale_gradient_kernel<<<static_cast<unsigned int>(rows), row_reduction_threads(inner), 0,
                            ctx.stream>>>(static_cast<const float*>(x.raw()),
                                          static_cast<const float*>(dy.raw()),
                                          static_cast<float*>(dscale.raw()), inner);
    CADENZA_CUDA_CHECK(cudaGetLastError());
  }
  if (dx.defined()) {
    check_device_tensor(ctx, dx, "scale_rows_backward", "dx", n);
    launch_scale(ctx.stream, inner, n, static_cast<const float*>(dy.raw()),
                 static_cast<const float*>(scale.raw()), static_cast<float*>(dx.raw()));
  }
}

}  // namespace cadenza::cuda
