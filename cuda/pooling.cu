// Max and average pooling kernels; see pooling.cuh. Planes are (batch * channels) of in_h x in_w.
#include "cuda/pooling.cuh"

#include <algorithm>

#include "cuda/check.cuh"
#include "host/math/pooling_math.hpp"

namespace cadenza::cuda {
namespace {

__global__ void forward_kernel(Pool2dGeometry g, const float* x, float* y, std::int64_t n) {
  const std::int64_t out_plane = std::int64_t(g.out_h) * g.out_w;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t p = i / out_plane;
    const int oy = static_cast<int>(i % out_plane / g.out_w), ox = static_cast<int>(i % g.out_w);
    const float* plane = x + p * g.in_h * g.in_w;
    y[i] = plane[max_window_argmax(g, plane, oy, ox)];
  }
}

// One thread per input element: the sum of dy over the windows this element wins.
__global__ void backward_kernel(Pool2dGeometry g, const float* x, const float* dy, float* dx,
                                std::int64_t n) {
  const std::int64_t in_plane = std::int64_t(g.in_h) * g.in_w;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t p = i / in_plane;
    const int index = static_cast<int>(i % in_plane);
    const int iy = index / g.in_w, ix = index % g.in_w;
    const float* plane = x + p * in_plane;
    const float* grad_out = dy + p * g.out_h * g.out_w;
    // Windows starting at oy*stride_h <= iy < oy*stride_h + window_h.
    const int oy_first = iy >= g.window_h ? (iy - g.window_h) / g.stride_h + 1 : 0;
    const int ox_first = ix >= g.window_w ? (ix - g.window_w) / g.stride_w + 1 : 0;
    const int oy_last = min(iy / g.stride_h, g.out_h - 1);
    const int ox_last = min(ix / g.stride_w, g.out_w - 1);
    float sum = 0.0f;
    for (int oy = oy_first; oy <= oy_last; ++oy)
      for (int ox = ox_first; ox <= ox_last; ++ox)
        if (max_window_argmax(g, plane, oy, ox) == index) sum += grad_out[oy * g.out_w + ox];
    dx[i] = sum;
  }
}

// One thread per output element: the window's mean.
__global__ void average_forward_kernel(Pool2dGeometry g, const float* x, float* y, std::int64_t n) {
  const std::int64_t out_plane = std::int64_t(g.out_h) * g.out_w;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t p = i / out_plane;
    const int oy = static_cast<int>(i % out_plane / g.out_w), ox = static_cast<int>(i % g.out_w);
    y[i] = average_window(g, x + p * g.in_h * g.in_w, oy, ox);
  }
}

// One thread per input element: its share of the windows that contain it.
__global__ void average_backward_kernel(Pool2dGeometry g, const float* dy, float* dx, std::int64_t n) {
  const std::int64_t in_plane = std::int64_t(g.in_h) * g.in_w;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t p = i / in_plane;
    const int index = static_cast<int>(i % in_plane);
    dx[i] = average_window_gradient(g, dy + p * g.out_h * g.out_w, index / g.in_w, index % g.in_w);
  }
}

}  // namespace

void maxpool2d_forward(CudaContext& ctx, const Pool2dGeometry& g, const Tensor& x, Tensor& y) {
  const std::int64_t planes = std::int64_t(g.batch) * g.channels;
  check_device_tensor(ctx, x, "maxpool2d_forward", "x", planes * g.in_h * g.in_w);
  check_device_tensor(ctx, y, "maxpool2d_forward", "y", planes * g.out_h * g.out_w);
  const std::int64_t n = y.numel();
  forward_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, ctx.stream>>>(
      g, static_cast<const float*>(x.raw()), static_cast<float*>(y.raw()), n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void maxpool2d_backward(CudaContext& ctx, const Pool2dGeometry& g, const Tensor& x, const Tensor& dy,
                        Tensor& dx) {
  const std::int64_t planes = std::int64_t(g.batch) * g.channels;
  check_device_tensor(ctx, x, "maxpool2d_backward", "x", planes * g.in_h * g.in_w);
  check_device_tensor(ctx, dy, "maxpool2d_backward", "dy", planes * g.out_h * g.out_w);
  check_device_tensor(ctx, dx, "maxpool2d_backward", "dx", x.numel());
  const std::int64_t n = dx.numel();
  backward_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, ctx.stream>>>(
      g, static_cast<const float*>(x.raw()), static_cast<const float*>(dy.raw()),
      static_cast<float*>(dx.raw()), n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void avgpool2d_forward(CudaContext& ctx, const Pool2dGeometry& g, const Tensor& x, Tensor& y) {
  const std::int64_t planes = std::int64_t(g.batch) * g.channels;
  check_device_tensor(ctx, x, "avgpool2d_forward", "x", planes * g.in_h * g.in_w);
  check_device_tensor(ctx, y, "avgpool2d_forward", "y", planes * g.out_h * g.out_w);
  const std::int64_t n = y.numel();
  if (n == 0) return;
  average_forward_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, ctx.stream>>>(
      g, static_cast<const float*>(x.raw()), static_cast<float*>(y.raw()), n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void avgpool2d_backward(CudaContext& ctx, const Pool2dGeometry& g, const Tensor& dy, Tensor& dx) {
  const std::int64_t planes = std::int64_t(g.batch) * g.channels;
  check_device_tensor(ctx, dy, "avgpool2d_backward", "dy", planes * g.out_h * g.out_w);
  check_device_tensor(ctx, dx, "avgpool2d_backward", "dx", planes * g.in_h * g.in_w);
  const std::int64_t n = dx.numel();
  if (n == 0) return;
  average_backward_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, ctx.stream>>>(
      g, static_cast<const float*>(dy.raw()), static_cast<float*>(dx.raw()), n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace cadenza::cuda
