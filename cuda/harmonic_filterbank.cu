// Kernels and cuBLAS calls of the harmonic filterbank; see harmonic_filterbank.cuh.
// Compiled, not yet run on a GPU.
//
// cuBLAS is column-major: a row-major (m, n) matrix is the column-major (n, m) matrix with
// leading dimension n. Per example b, with S_b (bins, frames), fb (bins, filters) and
// Y_b, dY_b (filters, frames) row-major (K = filters, F = bins, T = frames):
//   Y_b^T (T, K)   = S_b^T (T, F) . fb (F, K)      gemm(N, T, T, K, F, S_b:ld T, fb:ld K, Y_b:ld T)
//   dX_b^T (T, F)  = dY_b^T (T, K) . fb^T (K, F)   gemm(N, N, T, F, K, dY_b:ld T, fb:ld K, dX_b:ld T)
//   dfb_b^T (K, F) = dY_b (K, T) . S_b^T (T, F)    gemm(T, N, K, F, T, dY_b:ld T, S_b:ld T, dfb_b:ld K)
// each strided over b (fb's stride 0). dfb_b land in the workspace, (B, F, K) row-major.
//
// dq: pass 1 runs CudaContext::kReductionBlocks blocks of kThreads (a grid fixed whatever
// the device); a thread takes the (bin, filter) elements e = its global index + n * grid
// size, sums dfb_b[e] over b in order, multiplies by dfilter/dQ at e, and adds into its
// double partial; block_sum_in_order gives the block's total. Pass 2, one thread, adds the
// block totals in block order into dq. Both passes are fixed trees: bit-identical run to run.
#include "cuda/harmonic_filterbank.cuh"

#include <cstdint>

#include "cuda/block_reduce.cuh"
#include "cuda/check.cuh"
#include "host/core/error.hpp"
#include "host/math/harmonic_math.hpp"

namespace cadenza::cuda {
namespace {

constexpr int kThreads = kElementwiseThreads;
static_assert(kThreads <= kMaxRowThreads && kThreads % kWarpSize == 0, "block_sum_in_order's shape");

// harmonic_filter_offset at element e of the (bins, filters) matrix.
__device__ float filter_offset_at(std::int64_t e, int bins, int filters, int bands,
                                  int semitone_scale, int sample_rate) {
  const int bin = static_cast<int>(e / filters), filter = static_cast<int>(e % filters);
  return harmonic_filter_offset(harmonic_bin_hz(bin, bins, sample_rate),
                                harmonic_center_hz(filter, bands, semitone_scale));
}

// One thread per element (grid-stride, filters fastest: coalesced writes).
__global__ void build_filterbank_kernel(const float* q, float* filterbank, int bins, int filters,
                                        int bands, int semitone_scale, int sample_rate) {
  const float bandwidth_scale = q[0];
  const std::int64_t n = std::int64_t(bins) * filters;
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t e = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride)
    filterbank[e] = harmonic_filter_value(
        filter_offset_at(e, bins, filters, bands, semitone_scale, sample_rate), bandwidth_scale);
}

// Pass 1 of dq: block totals of sum over b and e of dfb[b][e] * dfilter/dQ(e) into partial.
__global__ void dq_partial_kernel(const float* q, const float* dfb, int batch, int bins,
                                  int filters, int bands, int semitone_scale, int sample_rate,
                                  double* partial) {
  const float bandwidth_scale = q[0];
  const std::int64_t n = std::int64_t(bins) * filters;
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  double sum = 0.0;
  for (std::int64_t e = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    const float derivative = harmonic_filter_dq(
        filter_offset_at(e, bins, filters, bands, semitone_scale, sample_rate), bandwidth_scale);
    double over_batch = 0.0;
    for (int b = 0; b < batch; ++b) over_batch += dfb[b * n + e];
    sum += over_batch * derivative;
  }
  const double total = block_sum_in_order(sum);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// Pass 2 (one thread): dq += the block totals, added in block order.
__global__ void dq_finish_kernel(const double* partial, int blocks, float* dq) {
  double total = 0.0;
  for (int b = 0; b < blocks; ++b) total += partial[b];
  dq[0] += static_cast<float>(total);
}

void launch_build_filterbank(cudaStream_t stream, const HarmonicFilterbankGeometry& g,
                             const float* q, float* filterbank) {
  const std::int64_t n = std::int64_t(g.bins) * g.filters();
  build_filterbank_kernel<<<grid_stride_blocks(n), kThreads, 0, stream>>>(
      q, filterbank, g.bins, g.filters(), g.bands, g.semitone_scale, g.sample_rate);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void launch_dq(CudaContext& ctx, const HarmonicFilterbankGeometry& g, const float* q,
               const float* dfb, float* dq) {
  dq_partial_kernel<<<CudaContext::kReductionBlocks, kThreads, 0, ctx.stream>>>(
      q, dfb, g.batch, g.bins, g.filters(), g.bands, g.semitone_scale, g.sample_rate,
      ctx.reduction_scratch);
  CADENZA_CUDA_CHECK(cudaGetLastError());
  dq_finish_kernel<<<1, 1, 0, ctx.stream>>>(ctx.reduction_scratch, CudaContext::kReductionBlocks, dq);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

const float* in(const Tensor& t) { return static_cast<const float*>(t.raw()); }
float* out(Tensor& t) { return static_cast<float*>(t.raw()); }

// The checks both entries share: geometry, and spectrogram, q, filterbank and y or dy.
void check_arguments(CudaContext& ctx, const char* op, const HarmonicFilterbankGeometry& g,
                     const Tensor& spectrogram, const Tensor& q, const Tensor& filterbank,
                     const char* output_name, const Tensor& output) {
  CADENZA_CHECK(g.batch >= 1 && g.bins >= 2 && g.bands >= 1 && g.semitone_scale >= 1,
                op << ": geometry batch " << g.batch << ", bins " << g.bins << ", bands " << g.bands);
  check_device_tensor(ctx, spectrogram, op, "spectrogram", std::int64_t(g.batch) * g.bins * g.frames);
  check_device_tensor(ctx, q, op, "q", 1);
  check_device_tensor(ctx, filterbank, op, "filterbank", std::int64_t(g.bins) * g.filters());
  check_device_tensor(ctx, output, op, output_name, std::int64_t(g.batch) * g.filters() * g.frames);
}

}  // namespace

std::size_t harmonic_filterbank_workspace_bytes(const HarmonicFilterbankGeometry& g) {
  return sizeof(float) * std::size_t(g.batch) * std::size_t(g.bins) * std::size_t(g.filters());
}

void harmonic_filterbank_forward(CudaContext& ctx, const HarmonicFilterbankGeometry& g,
                                 const Tensor& spectrogram, const Tensor& q, Tensor& filterbank,
                                 Tensor& y) {
  const char* op = "harmonic_filterbank_forward";
  check_arguments(ctx, op, g, spectrogram, q, filterbank, "y", y);
  launch_build_filterbank(ctx.stream, g, in(q), out(filterbank));
  const int filters = g.filters();
  const float one = 1.0f, zero = 0.0f;
  CADENZA_CUDA_CHECK(cublasSgemmStridedBatched(
      ctx.cublas, CUBLAS_OP_N, CUBLAS_OP_T, g.frames, filters, g.bins, &one, in(spectrogram),
      g.frames, std::int64_t(g.bins) * g.frames, in(filterbank), filters, 0, &zero, out(y),
      g.frames, std::int64_t(filters) * g.frames, g.batch));
}

void harmonic_filterbank_backward(CudaContext& ctx, const HarmonicFilterbankGeometry& g,
                                  const Tensor& spectrogram, const Tensor& q,
                                  const Tensor& filterbank, const Tensor& dy, Tensor& dx,
                                  Tensor& dq, Tensor& workspace) {
  const char* op = "harmonic_filterbank_backward";
  check_arguments(ctx, op, g, spectrogram, q, filterbank, "dy", dy);
  const int filters = g.filters();
  const std::int64_t spectrogram_stride = std::int64_t(g.bins) * g.frames;
  const std::int64_t output_stride = std::int64_t(filters) * g.frames;
  const float one = 1.0f, zero = 0.0f;
  if (dx.defined()) {
    check_device_tensor(ctx, dx, op, "dx", spectrogram.numel());
    CADENZA_CUDA_CHECK(cublasSgemmStridedBatched(
        ctx.cublas, CUBLAS_OP_N, CUBLAS_OP_N, g.frames, g.bins, filters, &one, in(dy), g.frames,
        output_stride, in(filterbank), filters, 0, &zero, out(dx), g.frames, spectrogram_stride,
        g.batch));
  }
  if (!dq.defined()) return;
  check_device_tensor(ctx, dq, op, "dq", 1);
  CADENZA_CHECK(workspace.device() == Device::cuda(ctx.device) &&
                    workspace.bytes() >= harmonic_filterbank_workspace_bytes(g),
                op << ": workspace of " << workspace.bytes() << " bytes on " << workspace.device().str()
                   << ", needs " << harmonic_filterbank_workspace_bytes(g) << " on cuda:" << ctx.device);
  float* dfb = static_cast<float*>(workspace.raw());
  CADENZA_CUDA_CHECK(cublasSgemmStridedBatched(
      ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, filters, g.bins, g.frames, &one, in(dy), g.frames,
      output_stride, in(spectrogram), g.frames, spectrogram_stride, &zero, dfb, filters,
      std::int64_t(g.bins) * filters, g.batch));
  launch_dq(ctx, g, in(q), dfb, out(dq));
}

}  // namespace cadenza::cuda
