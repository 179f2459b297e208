// On-line augmentation on the GPU; see augmentation.cuh. Rows are processed in chunks of
// kRowsPerChunk so that each row's kBlocksPerRow partial sums fit the context's
// reduction scratch (kRowsPerChunk * kBlocksPerRow = CudaContext::kReductionBlocks).
//
// augment_waveform, per chunk:
//   1. waveform_squares_kernel, grid (kBlocksPerRow, rows): block (p, r) sums in double the
//      squares of row r's shifted, gained samples p*kThreads + t, p*kThreads + t + stride,
//      ..., then a shared-memory tree; rows without noise skip it (never read).
//   2. waveform_kernel, grid (x, rows): thread 0 of each block draws the row's plan and
//      sums its partials in order into sigma, then every sample is
//      out[i] = shifted_gained(i) (+ sigma * N(0, 1) where the row has noise).
// mask_spectrogram, per chunk:
//   1. row_sum_kernel, grid (kBlocksPerRow, rows): the row's values summed the same way.
//   2. mask_kernel, grid (time_masks + freq_masks, rows): block (k, r) writes row r's mean
//      into the span of mask k. Overlapping masks write the same value to the same address
//      from different blocks, so the result does not depend on their order.
// The grids never depend on the device, so the sums are reproducible; they differ from the
// CPU's index-order double sums by double rounding only.
#include "cuda/augmentation.cuh"

#include <algorithm>

#include "cuda/check.cuh"
#include "host/core/error.hpp"
#include "host/math/augment_math.hpp"

namespace cadenza::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kBlocksPerRow = 8;
constexpr int kRowsPerChunk = CudaContext::kReductionBlocks / kBlocksPerRow;
static_assert(kRowsPerChunk * kBlocksPerRow <= CudaContext::kReductionBlocks, "scratch too small");
// Blocks per row of the elementwise pass (a grid-stride loop covers longer rows).
constexpr unsigned int kMaxApplyBlocksPerRow = 1024;

// The block's sum of `value` (fixed tree over kThreads threads); valid in thread 0.
__device__ double block_sum(double value) {
  __shared__ double shared[kThreads];
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  return shared[0];
}

// The sum of row r's kBlocksPerRow partials, in order (the same in every block that reads it).
__device__ double row_total(const double* partial, int r) {
  double total = 0.0;
  for (int p = 0; p < kBlocksPerRow; ++p) total += partial[r * kBlocksPerRow + p];
  return total;
}

__global__ void waveform_squares_kernel(WaveformAugment a, const StepValues* __restrict__ step,
                                        const float* __restrict__ pcm, std::int64_t n, std::int64_t first_row,
                                        double* partial) {
  const std::uint64_t key = step->waveform_augment_key;
  const std::int64_t b = first_row + blockIdx.y;
  const WaveformRowPlan plan = waveform_row_plan(a, key, a.first_row + b);
  if (!plan.noise) return;  // the whole block: no barrier is skipped by part of it
  const float* in = pcm + b * n;
  double sum = 0.0;
  const std::int64_t stride = std::int64_t(kThreads) * kBlocksPerRow;
  for (std::int64_t i = std::int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += stride) {
    const float y = shifted_gained_sample(in, n, plan, i);
    sum += double(y) * y;
  }
  const double total = block_sum(sum);
  if (threadIdx.x == 0) partial[blockIdx.y * kBlocksPerRow + blockIdx.x] = total;
}

__global__ void waveform_kernel(WaveformAugment a, const StepValues* __restrict__ step, const float* __restrict__ pcm,
                                float* __restrict__ out, std::int64_t n, std::int64_t first_row,
                                const double* partial) {
  const std::uint64_t key = step->waveform_augment_key;
  const std::int64_t b = first_row + blockIdx.y;
  // The row's draws (and pow) once per block rather than once per thread.
  __shared__ WaveformRowPlan plan;
  __shared__ float sigma;
  if (threadIdx.x == 0) {
    plan = waveform_row_plan(a, key, a.first_row + b);
    if (plan.noise) sigma = noise_sigma(sqrt(row_total(partial, blockIdx.y) / double(n)), plan.snr_db);
  }
  __syncthreads();
  const float* in = pcm + b * n;
  float* y = out + b * n;
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float value = shifted_gained_sample(in, n, plan, i);
    y[i] = plan.noise ? value + sigma * noise_value(key, a.first_row + b, i) : value;
  }
}

__global__ void row_sum_kernel(const float* __restrict__ x, std::int64_t per_row, std::int64_t first_row,
                               double* partial) {
  const float* row = x + (first_row + blockIdx.y) * per_row;
  double sum = 0.0;
  const std::int64_t stride = std::int64_t(kThreads) * kBlocksPerRow;
  for (std::int64_t i = std::int64_t(blockIdx.x) * kThreads + threadIdx.x; i < per_row; i += stride) sum += row[i];
  const double total = block_sum(sum);
  if (threadIdx.x == 0) partial[blockIdx.y * kBlocksPerRow + blockIdx.x] = total;
}

__global__ void mask_kernel(SpectrogramMask m, const StepValues* __restrict__ step, float* x, std::int64_t channels,
                            int bins, int frames, std::int64_t first_row, const double* partial) {
  const std::uint64_t key = step->spectrogram_mask_key;
  const std::int64_t b = first_row + blockIdx.y;
  const std::int64_t per_row = channels * bins * frames;
  const int k = static_cast<int>(blockIdx.x);
  const bool time = k < m.time_masks;
  const MaskSpan s = time ? mask_span(key, m.first_row + b, AugmentStream::time_masks, k, frames, m.max_time_width)
                          : mask_span(key, m.first_row + b, AugmentStream::freq_masks, k - m.time_masks, bins, m.max_freq_width);
  if (s.width == 0) return;  // the whole block
  __shared__ float mean;
  if (threadIdx.x == 0) mean = static_cast<float>(row_total(partial, blockIdx.y) / double(per_row));
  __syncthreads();
  float* row = x + b * per_row;
  // Time mask: frames [start, start + width) of every (channel, bin) row of T values.
  // Frequency mask: bins [start, start + width) of every channel, all T frames each.
  const std::int64_t span = time ? channels * bins * s.width : channels * s.width * std::int64_t(frames);
  for (std::int64_t j = threadIdx.x; j < span; j += blockDim.x) {
    std::int64_t index;
    if (time) {
      index = (j / s.width) * frames + s.start + j % s.width;
    } else {
      const std::int64_t block = std::int64_t(s.width) * frames;
      index = ((j / block) * bins + s.start) * frames + j % block;
    }
    row[index] = mean;
  }
}

void launch_augment_waveform(cudaStream_t stream, const WaveformAugment& a, const StepValues* step, const float* pcm,
                             float* out, std::int64_t rows, std::int64_t n, double* scratch) {
  if (rows == 0 || n == 0) return;
  const unsigned int apply_blocks = std::min(blocks_for(n, kThreads), kMaxApplyBlocksPerRow);
  for (std::int64_t first = 0; first < rows; first += kRowsPerChunk) {
    const unsigned int chunk = static_cast<unsigned int>(std::min<std::int64_t>(kRowsPerChunk, rows - first));
    if (a.noise_probability > 0.0f) {
      waveform_squares_kernel<<<dim3(kBlocksPerRow, chunk), kThreads, 0, stream>>>(a, step, pcm, n, first, scratch);
      CADENZA_CUDA_CHECK(cudaGetLastError());
    }
    waveform_kernel<<<dim3(apply_blocks, chunk), kThreads, 0, stream>>>(a, step, pcm, out, n, first, scratch);
    CADENZA_CUDA_CHECK(cudaGetLastError());
  }
}

void launch_mask_spectrogram(cudaStream_t stream, const SpectrogramMask& m, const StepValues* step, float* x,
                             std::int64_t rows, std::int64_t channels, int bins, int frames, double* scratch) {
  const std::int64_t per_row = channels * bins * frames;
  const unsigned int masks = static_cast<unsigned int>(m.time_masks) + static_cast<unsigned int>(m.freq_masks);
  if (rows == 0 || per_row == 0 || masks == 0) return;
  for (std::int64_t first = 0; first < rows; first += kRowsPerChunk) {
    const unsigned int chunk = static_cast<unsigned int>(std::min<std::int64_t>(kRowsPerChunk, rows - first));
    row_sum_kernel<<<dim3(kBlocksPerRow, chunk), kThreads, 0, stream>>>(x, per_row, first, scratch);
    CADENZA_CUDA_CHECK(cudaGetLastError());
    mask_kernel<<<dim3(masks, chunk), kThreads, 0, stream>>>(m, step, x, channels, bins, frames, first, scratch);
    CADENZA_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace

void augment_waveform(CudaContext& ctx, const WaveformAugment& a, const Tensor& step_values, const Tensor& pcm,
                      Tensor& out) {
  const char* op = "augment_waveform";
  CADENZA_CHECK(pcm.shape().rank() == 2 && out.shape() == pcm.shape(),
                op << ": pcm " << pcm.shape().str() << ", out " << out.shape().str());
  check_device_tensor(ctx, pcm, op, "pcm", pcm.numel());
  check_device_tensor(ctx, out, op, "out", pcm.numel());
  CADENZA_CHECK(pcm.numel() == 0 || pcm.raw() != out.raw(), op << ": out must not alias pcm");
  CADENZA_CHECK(a.max_shift >= 0 && a.gain_db_min <= a.gain_db_max && a.snr_db_min <= a.snr_db_max,
                op << ": max_shift " << a.max_shift << ", gain [" << a.gain_db_min << ", " << a.gain_db_max
                   << "] dB, snr [" << a.snr_db_min << ", " << a.snr_db_max << "] dB");
  launch_augment_waveform(ctx.stream, a, device_step_values(ctx, step_values, op), static_cast<const float*>(pcm.raw()), static_cast<float*>(out.raw()),
                          pcm.dim(0), pcm.dim(1), ctx.reduction_scratch);
}

void mask_spectrogram(CudaContext& ctx, const SpectrogramMask& m, const Tensor& step_values, Tensor& features) {
  const char* op = "mask_spectrogram";
  CADENZA_CHECK(features.shape().rank() == 4,
                op << ": features " << features.shape().str() << ", expected (B, C, F, T)");
  check_device_tensor(ctx, features, op, "features", features.numel());
  CADENZA_CHECK(m.time_masks >= 0 && m.max_time_width >= 0 && m.freq_masks >= 0 && m.max_freq_width >= 0,
                op << ": " << m.time_masks << " time masks of up to " << m.max_time_width << ", " << m.freq_masks
                   << " frequency masks of up to " << m.max_freq_width);
  launch_mask_spectrogram(ctx.stream, m, device_step_values(ctx, step_values, op), static_cast<float*>(features.raw()), features.dim(0),
                          features.dim(1), static_cast<int>(features.dim(2)), static_cast<int>(features.dim(3)),
                          ctx.reduction_scratch);
}

}  // namespace cadenza::cuda
