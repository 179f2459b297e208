// Batch normalisation kernels; see batchnorm.cuh. Element e of channel c sits at
// (o * channels + c) * inner + i with o = e / inner, i = e % inner.
#include "cuda/batchnorm.cuh"

#include "cuda/check.cuh"
#include "host/math/batchnorm_math.hpp"

namespace cadenza::cuda {
namespace {

constexpr int kThreads = 256;
// A block's share of a channel is at least this many elements (where the channel has them),
// and the grid has about kTargetBlocks blocks (a few per SM) when the channels are fewer.
constexpr std::int64_t kMinElementsPerBlock = 4 * kThreads;
constexpr int kTargetBlocks = 1024;

__device__ std::int64_t element_offset(const BatchNormGeometry& g, int c, std::int64_t e) {
  return (e / g.inner * g.channels + c) * std::int64_t(g.inner) + e % g.inner;
}

// Each channel's elements are split into `parts` slices, one block each (grid: channels x
// parts), so that a few channels of many elements (the input spectrogram's one channel, the
// first conv block's 64 of 2.8 M each at batch 16) still fill the GPU. A block leaves its
// partial sums in the context's reduction scratch: slot c * parts + p of two halves of
// channels * parts doubles (channels * parts <= max(channels, kTargetBlocks)). Everything
// here depends on the geometry only, never on timing, so the sums (each partial a fixed
// block tree, the partials added by channel_total's fixed shape) are deterministic.
int parts_for(const BatchNormGeometry& g) {
  const std::int64_t count = std::int64_t(g.outer) * g.inner;
  const std::int64_t by_grid = std::max(1, kTargetBlocks / g.channels);
  const std::int64_t by_size = std::max<std::int64_t>(1, count / kMinElementsPerBlock);
  return static_cast<int>(std::min(by_grid, by_size));
}

dim3 grid_for(const BatchNormGeometry& g) { return dim3(static_cast<unsigned>(g.channels), parts_for(g)); }

// This block's elements [begin, end) of channel blockIdx.x.
struct Slice {
  std::int64_t begin, end;
};

__device__ Slice block_slice(const BatchNormGeometry& g) {
  const std::int64_t count = std::int64_t(g.outer) * g.inner;
  const std::int64_t p = blockIdx.y, parts = gridDim.y;
  return {count * p / parts, count * (p + 1) / parts};
}

// Sums `value` over the block in a fixed tree; every thread gets the total.
__device__ double block_sum(double value, double* shared) {
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();
  return total;
}

// Channel c's total of its `parts` partials in half `half` of the scratch; every thread of
// the block gets it. Thread t adds partials t, t + blockDim.x, ... in order and block_sum's
// fixed tree adds the threads' sums, so the total depends on the geometry only and every
// block of the channel computes the same one (with each block reading parts / blockDim.x
// partials, not all of them alone).
__device__ double channel_total(const BatchNormGeometry& g, const double* scratch, int half, int c, int parts,
                                double* shared) {
  const double* partials = scratch + (std::int64_t(half) * g.channels + c) * parts;
  double sum = 0.0;
  for (int p = threadIdx.x; p < parts; p += blockDim.x) sum += partials[p];
  return block_sum(sum, shared);
}

__device__ void store_partial(double* scratch, int half, double value) {
  if (threadIdx.x == 0) scratch[std::int64_t(half) * gridDim.x * gridDim.y + blockIdx.x * gridDim.y + blockIdx.y] = value;
}

// The gradient reaching the normalisation at `at`: dy, masked by the fused ReLU's output y.
__device__ float upstream(const BatchNormGeometry& g, const float* y, const float* dy, std::int64_t at) {
  return batchnorm_upstream(g.relu, g.relu ? y[at] : 0.0f, dy[at]);
}

// Normalises this block's slice of channel c with the channel's mean and sum of squared
// deviations over `count` values; block 0 of the channel updates the running and saved
// statistics.
__device__ void normalize_slice(const BatchNormGeometry& g, const float* x, const float* gamma, const float* beta,
                                int c, double mean, double squares, double count, float* y, float* running_mean,
                                float* running_var, float* saved_mean, float* saved_invstd) {
  const Slice slice = block_slice(g);
  const float invstd = batchnorm_invstd(squares, count, g.eps);
  const float scale = gamma[c] * invstd;
  const float shift = beta[c] - static_cast<float>(mean) * scale;
  for (std::int64_t e = slice.begin + threadIdx.x; e < slice.end; e += blockDim.x) {
    const std::int64_t at = element_offset(g, c, e);
    y[at] = batchnorm_output(g.relu, x[at] * scale + shift);
  }
  if (blockIdx.y == 0 && threadIdx.x == 0) {
    saved_mean[c] = static_cast<float>(mean);
    saved_invstd[c] = invstd;
    running_mean[c] = batchnorm_running(running_mean[c], mean, g.momentum);
    running_var[c] = batchnorm_running(running_var[c], batchnorm_unbiased_variance(squares, count), g.momentum);
  }
}

// Training forward, pass 1: each block's sum of x (half 0).
__global__ void sum_partials_kernel(BatchNormGeometry g, const float* x, double* scratch) {
  __shared__ double shared[kThreads];
  const int c = blockIdx.x;
  const Slice slice = block_slice(g);
  double sum = 0.0;
  for (std::int64_t e = slice.begin + threadIdx.x; e < slice.end; e += blockDim.x) sum += x[element_offset(g, c, e)];
  store_partial(scratch, 0, block_sum(sum, shared));
}

// Pass 2: each block's sum of squared deviations from the channel mean (half 1): the mean
// of pass 1's partials, or sums[c] / count when `sums` is given (synchronised batchnorm:
// the sums of every rank).
__global__ void squares_partials_kernel(BatchNormGeometry g, const float* x, const float* sums, double count,
                                        double* scratch) {
  __shared__ double shared[kThreads];
  const int c = blockIdx.x;
  const Slice slice = block_slice(g);
  const double mean = sums ? double(sums[c]) / count : channel_total(g, scratch, 0, c, gridDim.y, shared) / count;
  double squares = 0.0;
  for (std::int64_t e = slice.begin + threadIdx.x; e < slice.end; e += blockDim.x) {
    const double d = x[element_offset(g, c, e)] - mean;
    squares += d * d;
  }
  store_partial(scratch, 1, block_sum(squares, shared));
}

// Pass 3: normalise with the channel's totals.
__global__ void normalize_kernel(BatchNormGeometry g, const float* x, const float* gamma, const float* beta,
                                 const double* scratch, float* y, float* running_mean, float* running_var,
                                 float* saved_mean, float* saved_invstd) {
  __shared__ double shared[kThreads];
  const int c = blockIdx.x;
  const double count = double(g.outer) * g.inner;
  const double sum = channel_total(g, scratch, 0, c, gridDim.y, shared);
  const double squares = channel_total(g, scratch, 1, c, gridDim.y, shared);
  normalize_slice(g, x, gamma, beta, c, sum / count, squares, count, y, running_mean, running_var, saved_mean,
                  saved_invstd);
}

__global__ void forward_inference_kernel(BatchNormGeometry g, const float* x, const float* gamma,
                                         const float* beta, const float* running_mean,
                                         const float* running_var, float* y, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>((i / g.inner) % g.channels);
    const float invstd = 1.0f / sqrtf(running_var[c] + g.eps);
    const float scale = gamma[c] * invstd;
    const float shift = beta[c] - running_mean[c] * scale;
    y[i] = batchnorm_output(g.relu, x[i] * scale + shift);
  }
}

// Backward, pass 1: each block's sums of the upstream gradient (half 0) and of it times
// xhat (half 1).
__global__ void gradient_partials_kernel(BatchNormGeometry g, const float* x, const float* y, const float* dy,
                                         const float* saved_mean, const float* saved_invstd, double* scratch) {
  __shared__ double shared[kThreads];
  const int c = blockIdx.x;
  const Slice slice = block_slice(g);
  const float mean = saved_mean[c], invstd = saved_invstd[c];
  double sum_dy = 0.0, sum_dy_xhat = 0.0;
  for (std::int64_t e = slice.begin + threadIdx.x; e < slice.end; e += blockDim.x) {
    const std::int64_t at = element_offset(g, c, e);
    const float d = upstream(g, y, dy, at);
    sum_dy += d;
    sum_dy_xhat += double(d) * ((x[at] - mean) * invstd);
  }
  const double block_dy = block_sum(sum_dy, shared);
  store_partial(scratch, 0, block_dy);
  store_partial(scratch, 1, block_sum(sum_dy_xhat, shared));
}

// Pass 2: block 0 of each channel adds the totals into dbeta and dgamma (and, for
// synchronised batchnorm, writes them to `sums`, (2, channels)); every block computes dx of
// its slice when asked.
__global__ void gradient_totals_kernel(BatchNormGeometry g, const float* x, const float* y, const float* dy,
                                       const float* gamma, const float* saved_mean, const float* saved_invstd,
                                       const double* scratch, float* dx, float* dgamma, float* dbeta, float* sums) {
  __shared__ double shared[kThreads];
  const int c = blockIdx.x;
  const double total_dy = channel_total(g, scratch, 0, c, gridDim.y, shared);
  const double total_dy_xhat = channel_total(g, scratch, 1, c, gridDim.y, shared);
  if (blockIdx.y == 0 && threadIdx.x == 0) {
    dbeta[c] += static_cast<float>(total_dy);
    dgamma[c] += static_cast<float>(total_dy_xhat);
    if (sums) {
      sums[c] = static_cast<float>(total_dy);
      sums[g.channels + c] = static_cast<float>(total_dy_xhat);
    }
  }
  if (!dx) return;
  const Slice slice = block_slice(g);
  const float count = static_cast<float>(double(g.outer) * g.inner);
  const float mean = saved_mean[c], invstd = saved_invstd[c];
  const float a = static_cast<float>(total_dy), b = static_cast<float>(total_dy_xhat);
  for (std::int64_t e = slice.begin + threadIdx.x; e < slice.end; e += blockDim.x) {
    const std::int64_t at = element_offset(g, c, e);
    dx[at] = batchnorm_dx(gamma[c], invstd, count, upstream(g, y, dy, at), (x[at] - mean) * invstd, a, b);
  }
}

// Each channel's total of its `parts` partials in half `half` of the scratch, as a float in
// out[c]: one block per channel.
__global__ void store_total_kernel(BatchNormGeometry g, const double* scratch, int half, int parts, float* out) {
  __shared__ double shared[kThreads];
  const int c = blockIdx.x;
  const double value = channel_total(g, scratch, half, c, parts, shared);
  if (threadIdx.x == 0) out[c] = static_cast<float>(value);
}

// The split ops of synchronised batchnorm reuse the sliced passes above; these two apply
// channel sums given from every rank.
__global__ void forward_from_sums_kernel(BatchNormGeometry g, const float* x, const float* gamma, const float* beta,
                                         const float* sums, const float* squares, double count, float* y,
                                         float* running_mean, float* running_var, float* saved_mean,
                                         float* saved_invstd) {
  const int c = blockIdx.x;
  normalize_slice(g, x, gamma, beta, c, double(sums[c]) / count, squares[c], count, y, running_mean, running_var,
                  saved_mean, saved_invstd);
}

__global__ void backward_from_sums_kernel(BatchNormGeometry g, const float* x, const float* y, const float* dy,
                                          const float* gamma, const float* saved_mean, const float* saved_invstd,
                                          const float* sums, double count, float* dx) {
  const int c = blockIdx.x;
  const Slice slice = block_slice(g);
  const float mean = saved_mean[c], invstd = saved_invstd[c];
  for (std::int64_t e = slice.begin + threadIdx.x; e < slice.end; e += blockDim.x) {
    const std::int64_t at = element_offset(g, c, e);
    dx[at] = batchnorm_dx(gamma[c], invstd, static_cast<float>(count), upstream(g, y, dy, at),
                          (x[at] - mean) * invstd, sums[c], sums[g.channels + c]);
  }
}

void check(const CudaContext& ctx, const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
           const char* op) {
  check_device_tensor(ctx, x, op, "x", std::int64_t(g.outer) * g.channels * g.inner);
  check_device_tensor(ctx, gamma, op, "gamma", g.channels);
}

const float* in(const Tensor& t) { return static_cast<const float*>(t.raw()); }
float* out(Tensor& t) { return static_cast<float*>(t.raw()); }

// The partials of a sliced grid fit the context's reduction scratch.
void check_scratch(const BatchNormGeometry& g, const dim3& grid) {
  CADENZA_CHECK(2 * std::int64_t(grid.x) * grid.y <= CudaContext::kReductionScratchDoubles,
                "batchnorm: " << g.channels << " channels need more reduction scratch than the context has");
}

// The forward output a backward reads for the fused ReLU's mask (null without one).
const float* relu_output(const CudaContext& ctx, const BatchNormGeometry& g, const Tensor& y, const char* op,
                         std::int64_t numel) {
  if (!g.relu) return nullptr;
  check_device_tensor(ctx, y, op, "y", numel);
  return in(y);
}

}  // namespace

void batchnorm_forward_train(CudaContext& ctx, const BatchNormGeometry& g, const Tensor& x,
                             const Tensor& gamma, const Tensor& beta, Tensor& y, Tensor& running_mean,
                             Tensor& running_var, Tensor& saved_mean, Tensor& saved_invstd) {
  const char* op = "batchnorm_forward_train";
  check(ctx, g, x, gamma, op);
  check_device_tensor(ctx, y, op, "y", x.numel());
  for (const Tensor& t : {beta, running_mean, running_var, saved_mean, saved_invstd})
    check_device_tensor(ctx, t, op, "per-channel tensor", g.channels);
  const dim3 grid = grid_for(g);
  check_scratch(g, grid);
  sum_partials_kernel<<<grid, kThreads, 0, ctx.stream>>>(g, in(x), ctx.reduction_scratch);
  squares_partials_kernel<<<grid, kThreads, 0, ctx.stream>>>(g, in(x), nullptr, double(g.outer) * g.inner,
                                                             ctx.reduction_scratch);
  normalize_kernel<<<grid, kThreads, 0, ctx.stream>>>(g, in(x), in(gamma), in(beta), ctx.reduction_scratch, out(y),
                                                      out(running_mean), out(running_var), out(saved_mean),
                                                      out(saved_invstd));
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void batchnorm_forward_inference(CudaContext& ctx, const BatchNormGeometry& g, const Tensor& x,
                                 const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                                 const Tensor& running_var, Tensor& y) {
  const char* op = "batchnorm_forward_inference";
  check(ctx, g, x, gamma, op);
  check_device_tensor(ctx, y, op, "y", x.numel());
  for (const Tensor& t : {beta, running_mean, running_var})
    check_device_tensor(ctx, t, op, "per-channel tensor", g.channels);
  const std::int64_t n = x.numel();
  forward_inference_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, ctx.stream>>>(
      g, in(x), in(gamma), in(beta), in(running_mean), in(running_var), out(y), n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void batchnorm_backward(CudaContext& ctx, const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                        const Tensor& gamma, const Tensor& saved_mean, const Tensor& saved_invstd,
                        Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  const char* op = "batchnorm_backward";
  check(ctx, g, x, gamma, op);
  check_device_tensor(ctx, dy, op, "dy", x.numel());
  if (dx.defined()) check_device_tensor(ctx, dx, op, "dx", x.numel());
  for (const Tensor& t : {saved_mean, saved_invstd, dgamma, dbeta})
    check_device_tensor(ctx, t, op, "per-channel tensor", g.channels);
  const dim3 grid = grid_for(g);
  check_scratch(g, grid);
  const float* y_mask = relu_output(ctx, g, y, op, x.numel());
  gradient_partials_kernel<<<grid, kThreads, 0, ctx.stream>>>(g, in(x), y_mask, in(dy), in(saved_mean),
                                                              in(saved_invstd), ctx.reduction_scratch);
  gradient_totals_kernel<<<grid, kThreads, 0, ctx.stream>>>(g, in(x), y_mask, in(dy), in(gamma), in(saved_mean),
                                                            in(saved_invstd), ctx.reduction_scratch,
                                                            dx.defined() ? out(dx) : nullptr, out(dgamma),
                                                            out(dbeta), nullptr);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void batchnorm_sums(CudaContext& ctx, const BatchNormGeometry& g, const Tensor& x, const Tensor& sums, double count,
                    Tensor& out_sums) {
  const char* op = "batchnorm_sums";
  check_device_tensor(ctx, x, op, "x", std::int64_t(g.outer) * g.channels * g.inner);
  if (sums.defined()) check_device_tensor(ctx, sums, op, "sums", g.channels);
  check_device_tensor(ctx, out_sums, op, "out", g.channels);
  const dim3 grid = grid_for(g);
  check_scratch(g, grid);
  if (sums.defined()) {
    squares_partials_kernel<<<grid, kThreads, 0, ctx.stream>>>(g, in(x), in(sums), count, ctx.reduction_scratch);
  } else {
    sum_partials_kernel<<<grid, kThreads, 0, ctx.stream>>>(g, in(x), ctx.reduction_scratch);
  }
  store_total_kernel<<<g.channels, kThreads, 0, ctx.stream>>>(g, ctx.reduction_scratch, sums.defined() ? 1 : 0,
                                                              static_cast<int>(grid.y), out(out_sums));
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void batchnorm_forward_from_sums(CudaContext& ctx, const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                                 const Tensor& beta, const Tensor& sums, const Tensor& squares, double count,
                                 Tensor& y, Tensor& running_mean, Tensor& running_var, Tensor& saved_mean,
                                 Tensor& saved_invstd) {
  const char* op = "batchnorm_forward_from_sums";
  check(ctx, g, x, gamma, op);
  check_device_tensor(ctx, y, op, "y", x.numel());
  for (const Tensor& t : {beta, sums, squares, running_mean, running_var, saved_mean, saved_invstd})
    check_device_tensor(ctx, t, op, "per-channel tensor", g.channels);
  forward_from_sums_kernel<<<grid_for(g), kThreads, 0, ctx.stream>>>(
      g, in(x), in(gamma), in(beta), in(sums), in(squares), count, out(y), out(running_mean), out(running_var),
      out(saved_mean), out(saved_invstd));
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void batchnorm_backward_sums(CudaContext& ctx, const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                             const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& sums, Tensor& dgamma,
                             Tensor& dbeta) {
  const char* op = "batchnorm_backward_sums";
  check_device_tensor(ctx, x, op, "x", std::int64_t(g.outer) * g.channels * g.inner);
  check_device_tensor(ctx, dy, op, "dy", x.numel());
  check_device_tensor(ctx, sums, op, "sums", 2 * std::int64_t(g.channels));
  for (const Tensor& t : {saved_mean, saved_invstd, dgamma, dbeta})
    check_device_tensor(ctx, t, op, "per-channel tensor", g.channels);
  const dim3 grid = grid_for(g);
  check_scratch(g, grid);
  const float* y_mask = relu_output(ctx, g, y, op, x.numel());
  gradient_partials_kernel<<<grid, kThreads, 0, ctx.stream>>>(g, in(x), y_mask, in(dy), in(saved_mean),
                                                              in(saved_invstd), ctx.reduction_scratch);
  gradient_totals_kernel<<<grid, kThreads, 0, ctx.stream>>>(g, in(x), y_mask, in(dy), nullptr, in(saved_mean),
                                                            in(saved_invstd), ctx.reduction_scratch, nullptr,
                                                            out(dgamma), out(dbeta), out(sums));
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void batchnorm_backward_from_sums(CudaContext& ctx, const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                                  const Tensor& gamma, const Tensor& saved_mean, const Tensor& saved_invstd,
                                  const Tensor& sums, double count, Tensor& dx) {
  const char* op = "batchnorm_backward_from_sums";
  check(ctx, g, x, gamma, op);
  check_device_tensor(ctx, dy, op, "dy", x.numel());
  check_device_tensor(ctx, dx, op, "dx", x.numel());
  check_device_tensor(ctx, sums, op, "sums", 2 * std::int64_t(g.channels));
  for (const Tensor& t : {saved_mean, saved_invstd})
    check_device_tensor(ctx, t, op, "per-channel tensor", g.channels);
  backward_from_sums_kernel<<<grid_for(g), kThreads, 0, ctx.stream>>>(
      g, in(x), relu_output(ctx, g, y, op, x.numel()), in(dy), in(gamma), in(saved_mean), in(saved_invstd), in(sums), count, out(dx));
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace cadenza::cuda
