// Inverted dropout on the GPU: element i is scaled by dropout_scale(key, first_index + i, rate)
// (host/math/dropout_math.hpp), the CPU loop's index for index, so both backends draw the
// same mask from the same key. The key, dropout_key(step values, salt), is computed by each
// thread from the step values in device memory. The mask is recomputed in backward, never
// stored.
//
// Invariants: one thread per element (grid-stride), 64-bit indices; y may alias x and dx
// may alias dy; outputs are written with `=`.
#include <algorithm>
#include <cstdint>

#include "cuda/check.cuh"
#include "cuda/elementwise_ops.cuh"
#include "host/math/dropout_math.hpp"

namespace cadenza::cuda {
namespace {

constexpr int kThreads = kElementwiseThreads;

// out[i] = in[i] * mask(i): forward (in = x) and backward (in = dy) are the same map.
__global__ void dropout_kernel(const float* in, float* out, float rate, const StepValues* __restrict__ step,
                               std::uint64_t salt, std::uint64_t first_index, std::int64_t n) {
  const std::uint64_t key = dropout_key(*step, salt);
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = in[i] * dropout_scale(key, first_index + std::uint64_t(i), rate);
}

void launch_dropout(cudaStream_t stream, float rate, const StepValues* step, std::uint64_t salt,
                    std::uint64_t first_index, const float* in, float* out, std::int64_t n) {
  if (n == 0) return;
  dropout_kernel<<<grid_stride_blocks(n), kThreads, 0, stream>>>(in, out, rate, step, salt, first_index, n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void dropout_forward(CudaContext& ctx, float rate, const Tensor& step_values, std::uint64_t salt,
                     std::uint64_t first_index, const Tensor& x, Tensor& y) {
  const std::int64_t n = x.numel();
  check_device_tensor(ctx, x, "dropout_forward", "x", n);
  check_device_tensor(ctx, y, "dropout_forward", "y", n);
  launch_dropout(ctx.stream, rate, device_step_values(ctx, step_values, "dropout_forward"), salt, first_index, static_cast<const float*>(x.raw()),
                 static_cast<float*>(y.raw()), n);
}

void dropout_backward(CudaContext& ctx, float rate, const Tensor& step_values, std::uint64_t salt,
                      std::uint64_t first_index, const Tensor& dy, Tensor& dx) {
  const std::int64_t n = dy.numel();
  check_device_tensor(ctx, dy, "dropout_backward", "dy", n);
  check_device_tensor(ctx, dx, "dropout_backward", "dx", n);
  launch_dropout(ctx.stream, rate, device_step_values(ctx, step_values, "dropout_backward"), salt, first_index, static_cast<const float*>(dy.raw()),
                 static_cast<float*>(dx.raw()), n);
}

}  // namespace cadenza::cuda
