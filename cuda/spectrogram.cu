// CudaSpectrogram: the CPU front-end (host/cpu/spectrogram.cpp) on the device, with its
// window, filterbank and DCT matrix (built by the same host functions, uploaded once) and
// its scalar math (host/math/spectral_math.hpp, called in the kernels).
//
// Pipeline of compute(), all enqueued on ctx.stream:
//   1. frame_kernel:      pcm (B, N) -> frames (max_batch * T, n_fft), windowed rows; centre
//                         padding by n_fft/2 is reflect (numpy/torch: no repeated edge) or zeros.
//   2. cufftExecR2C:      frames -> spectrum (max_batch * T, F) complex, F = n_fft/2 + 1.
//   3a. type mel, mfcc:   power_kernel: spectrum -> power (B * T, F), stored in the frames
//                         buffer (free once the FFT has read it; F <= n_fft floats a row), then
//                         one strided-batched GEMM:
//                         mel[b] (n_mels, T) = fb (n_mels, F) x power[b]^T,
//                         where mel is out, or for mfcc the log_mel buffer.
//   3b. type stft:        power_transpose_kernel: spectrum (B, T, F) -> out (B, F, T), |X|^p.
//   4. log, in place on out (log_mel for mfcc): db (+ per-example max and top_db
//      clipping), log1p, or none.
//   5. type mfcc:         one strided-batched GEMM:
//                         out[b] (n_mfcc, T) = dct (n_mfcc, n_mels) x log_mel[b].
//
// Invariants:
// - Layouts are row-major float32: pcm (batch, num_samples), out (batch, num_bins,
//   num_frames), window (n_fft), filterbank (n_mels, F), dct (n_mfcc, n_mels), log_mel
//   (max_batch, n_mels, num_frames); the frames and spectrum buffers hold max_batch *
//   num_frames rows, example b's frames at rows [b T, (b + 1) T).
// - Batch rule: the cuFFT plan is made once for max_batch * T transforms and always runs on
//   all of them. compute() with batch < max_batch refreshes only the first batch * T rows of
//   the frames buffer; the rest keep zeros (from construction) or whatever an earlier call
//   left there (its frames, or for mel and mfcc its power values), whose spectra are
//   computed and never read. Every step after the FFT touches only the
//   first batch examples, so out holds exactly batch examples.
// - The mel and DCT GEMMs use CUBLAS_COMPUTE_32F_PEDANTIC: plain float32 whatever math mode
//   (TF32) the shared cuBLAS handle or NVIDIA_TF32_OVERRIDE select, because TF32 would move
//   mel values by ~1e-3 relative. The mel GEMM sums the dense rows (zeros included) in
//   cuBLAS's order; the CPU sums each filter's band in order, so the two agree to float32
//   rounding. The DCT GEMM sums over the mels in float32, the CPU in float64 rounded once,
//   so they differ by this float32 rounding (~1e-6 of the frame's largest coefficient).
// - All CUDA objects are made on ctx.device (made current for the duration of each entry
//   point and restored after). compute() allocates nothing and does not synchronise; it must
//   not run concurrently on one object (the cuFFT plan and work buffers are shared).
// - pcm is read only by the first kernel, before anything writes out, so out may alias pcm.
#include "cuda/spectrogram.cuh"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "cuda/check.cuh"
#include "host/core/error.hpp"
#include "host/cpu/spectrogram.hpp"
#include "host/math/spectral_math.hpp"

namespace cadenza::cuda {
namespace {

constexpr int kThreads = 256;        // elementwise kernels
constexpr int kReduceThreads = 512;  // example_max_kernel, one block per example
constexpr int kTile = 32;            // power_transpose_kernel: 32 x 32 tiles ...
constexpr int kTileRows = 8;         // ... loaded by 32 x 8 threads

// ---- kernels -------------------------------------------------------------------------

struct FramingParams {
  std::int64_t total;  // batch * num_frames * n_fft
  int num_samples;
  int n_fft;
  int hop_length;
  int num_frames;
  int pad;  // n_fft / 2 when centred, else 0
  bool reflect;
};

// frames[(b T + t) n_fft + n] = window[n] * padded(b, t hop + n), where padded is the clip
// with `pad` samples of padding on each side, as CpuSpectrogram::compute_one builds it:
// reflect sets padded[pad - i] = pcm[i] and padded[pad + N - 1 + i] = pcm[N - 1 - i]
// (1 <= i <= pad), constant leaves zeros. In clip coordinates p = t hop + n - pad that is
// pcm[-p] for p < 0 and pcm[2 (N - 1) - p] for p >= N; validate_frontend_spec guarantees
// N > pad for reflect, so both indices lie in [0, N).
__global__ void frame_kernel(const float* __restrict__ pcm, const float* __restrict__ window,
                             float* __restrict__ frames, FramingParams p) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < p.total; i += stride) {
    const int n = static_cast<int>(i % p.n_fft);
    const std::int64_t row = i / p.n_fft;
    const int t = static_cast<int>(row % p.num_frames);
    const std::int64_t b = row / p.num_frames;
    const float* clip = pcm + b * p.num_samples;
    const std::int64_t pos = static_cast<std::int64_t>(t) * p.hop_length + n - p.pad;
    float sample = 0.0f;
    if (pos < 0) {
      if (p.reflect) sample = clip[-pos];
    } else if (pos >= p.num_samples) {
      if (p.reflect) sample = clip[2 * (static_cast<std::int64_t>(p.num_samples) - 1) - pos];
    } else {
      sample = clip[pos];
    }
    frames[i] = window[n] * sample;
  }
}

// power[i] = |spectrum[i]|^power over (batch * T, F), both row-major with the same index.
__global__ void power_kernel(const cufftComplex* __restrict__ spectrum, float* __restrict__ power,
                             std::int64_t total, float exponent) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < total; i += stride) {
    const cufftComplex c = spectrum[i];
    power[i] = spectral_power(c.x, c.y, exponent);
  }
}

// out[b, f, t] = |spectrum[b, t, f]|^power: spectrum (batch, T, F) complex, out (batch, F, T).
// Grid (ceil(T / 32), ceil(F / 32), batch), blocks of 32 x 8 threads; each block moves one
// 32 x 32 tile through shared memory so that both the reads (along f) and the writes (along
// t) are coalesced. The tile has 33 columns so the transposed reads avoid bank conflicts.
__global__ void power_transpose_kernel(const cufftComplex* __restrict__ spectrum,
                                       float* __restrict__ out, int num_frames, int num_freqs,
                                       float exponent) {
  __shared__ float tile[kTile][kTile + 1];  // [t - t0][f - f0]
  const std::int64_t example = static_cast<std::int64_t>(blockIdx.z) * num_frames * num_freqs;
  const cufftComplex* in = spectrum + example;
  float* dst = out + example;
  const int t0 = static_cast<int>(blockIdx.x) * kTile;
  const int f0 = static_cast<int>(blockIdx.y) * kTile;
  const int x = static_cast<int>(threadIdx.x);
  for (int r = static_cast<int>(threadIdx.y); r < kTile; r += kTileRows) {
    const int t = t0 + r, f = f0 + x;
    if (t < num_frames && f < num_freqs) {
      const cufftComplex c = in[static_cast<std::int64_t>(t) * num_freqs + f];
      tile[r][x] = spectral_power(c.x, c.y, exponent);
    }
  }
  __syncthreads();
  for (int r = static_cast<int>(threadIdx.y); r < kTile; r += kTileRows) {
    const int f = f0 + r, t = t0 + x;
    if (f < num_freqs && t < num_frames) {
      dst[static_cast<std::int64_t>(f) * num_frames + t] = tile[x][r];
    }
  }
}

__global__ void db_kernel(float* __restrict__ values, std::int64_t total, float amin,
                          float multiplier, float reference_db) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < total; i += stride) {
    values[i] = to_db(values[i], amin, multiplier, reference_db);
  }
}

__global__ void log1p_kernel(float* __restrict__ values, std::int64_t total, float scale) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < total; i += stride) {
    values[i] = log1p_compress(values[i], scale);
  }
}

// max_db[b] = max of example b's per_example values; one block of kReduceThreads per
// example. Max is exact, so the result does not depend on the reduction order. dB values
// are never NaN (to_db floors its argument with fmaxf), so fmaxf agrees with the CPU's
// std::max scan.
__global__ void __launch_bounds__(kReduceThreads)
    example_max_kernel(const float* __restrict__ values, std::int64_t per_example,
                       float* __restrict__ max_db) {
  __shared__ float partial[kReduceThreads];
  const float* example = values + static_cast<std::int64_t>(blockIdx.x) * per_example;
  float best = -INFINITY;
  for (std::int64_t i = threadIdx.x; i < per_example; i += kReduceThreads) {
    best = fmaxf(best, example[i]);
  }
  partial[threadIdx.x] = best;
  __syncthreads();
  for (int half = kReduceThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) {
      partial[threadIdx.x] = fmaxf(partial[threadIdx.x], partial[threadIdx.x + half]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) max_db[blockIdx.x] = partial[0];
}

__global__ void clip_top_db_kernel(float* __restrict__ values, std::int64_t total,
                                   std::int64_t per_example, const float* __restrict__ max_db,
                                   float top_db) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < total; i += stride) {
    values[i] = clip_db_below_peak(values[i], max_db[i / per_example], top_db);
  }
}

// ---- host-side resources ---------------------------------------------------------------

struct DeviceFree {
  void operator()(void* memory) const noexcept { static_cast<void>(cudaFree(memory)); }
};
template <typename T>
using DeviceBuffer = std::unique_ptr<T, DeviceFree>;

// cudaMalloc of `count` elements; running out of device memory is reported as something
// the user can change (the batch size or the clip length), other failures as CUDA errors.
template <typename T>
DeviceBuffer<T> device_alloc(std::size_t count, const char* what, int device) {
  void* memory = nullptr;
  const std::size_t bytes = count * sizeof(T);
  const cudaError_t status = cudaMalloc(&memory, bytes);
  if (status == cudaErrorMemoryAllocation) {
    static_cast<void>(cudaGetLastError());  // clear the error
    std::size_t free_bytes = 0, total_bytes = 0;
    static_cast<void>(cudaMemGetInfo(&free_bytes, &total_bytes));
    CADENZA_USER_ERROR("out of GPU memory on cuda:"
                       << device << ": the spectrogram's " << what << " needs "
                       << (bytes + (1 << 20) - 1) / (1 << 20) << " MiB, "
                       << free_bytes / (1 << 20) << " MiB free of " << total_bytes / (1 << 20)
                       << " MiB; try a smaller train.batch_size or data.clip_seconds");
  }
  CADENZA_CUDA_CHECK(status);
  return DeviceBuffer<T>(static_cast<T*>(memory));
}

// A cuFFT plan handle, destroyed once if it was created.
class FftPlan {
 public:
  FftPlan() = default;
  ~FftPlan() { reset(); }
  FftPlan(const FftPlan&) = delete;
  FftPlan& operator=(const FftPlan&) = delete;
  void create() {
    reset();
    CADENZA_CUDA_CHECK(cufftCreate(&handle_));
    created_ = true;
  }
  void reset() noexcept {
    if (created_) static_cast<void>(cufftDestroy(handle_));
    created_ = false;
  }
  cufftHandle get() const { return handle_; }

 private:
  cufftHandle handle_ = 0;
  bool created_ = false;
};

enum class LogKind { none, db, log1p };

LogKind log_kind_of(const FrontendSpec& spec) {
  if (spec.log == "db") return LogKind::db;
  if (spec.log == "log1p") return LogKind::log1p;
  return LogKind::none;
}

}  // namespace

struct CudaSpectrogram::Impl {
  Impl(CudaContext& context, const FrontendSpec& spec, int sample_rate, int num_samples_in,
       int max_batch_in);
  ~Impl() { release(); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void build(const FrontendSpec& spec, int sample_rate);
  void release() noexcept;
  unsigned int grid_for(std::int64_t n) const {
    return std::min(blocks_for(n, kThreads), max_blocks);
  }
  void compute(const Tensor& pcm, Tensor& out);

  CudaContext& ctx;
  int num_samples;
  int max_batch;
  int n_fft = 0;
  int hop_length = 0;
  int num_frames = 0;
  int num_freqs = 0;  // n_fft / 2 + 1
  int num_bins = 0;   // n_mels, num_freqs or n_mfcc
  int n_mels = 0;     // types mel and mfcc, else 0
  int n_mfcc = 0;     // type mfcc, else 0
  int pad = 0;
  bool mel = false;   // types mel and mfcc: the mel GEMM runs
  bool reflect = false;
  LogKind log = LogKind::none;
  float power = 2.0f;
  float amin = 0.0f;
  float db_multiplier_f32 = 0.0f;
  float reference_db = 0.0f;
  float top_db = 0.0f;
  float log1p_scale = 0.0f;
  unsigned int max_blocks = 1;

  DeviceBuffer<float> window;      // (n_fft)
  DeviceBuffer<float> filterbank;  // (n_mels, num_freqs); null for type stft
  DeviceBuffer<float> dct;         // (n_mfcc, n_mels); only for type mfcc
  DeviceBuffer<float> log_mel;     // (max_batch, n_mels, num_frames); only for type mfcc
  DeviceBuffer<float> frames;      // (max_batch * num_frames, n_fft); later the power
                                   // (batch * num_frames, num_freqs) of types mel, mfcc
  DeviceBuffer<cufftComplex> spectrum;  // (max_batch * num_frames, num_freqs)
  DeviceBuffer<float> max_db;           // (max_batch); only for db with top_db > 0
  FftPlan plan;
};

CudaSpectrogram::Impl::Impl(CudaContext& context, const FrontendSpec& spec, int sample_rate,
                            int num_samples_in, int max_batch_in)
    : ctx(context), num_samples(num_samples_in), max_batch(max_batch_in) {
  validate_frontend_spec(spec, sample_rate, num_samples);
  CADENZA_CHECK(max_batch > 0, "CudaSpectrogram: max_batch must be positive, got " << max_batch);
  n_fft = spec.n_fft;
  hop_length = spec.hop_length;
  num_frames = stft_num_frames(num_samples, spec.n_fft, spec.hop_length, spec.center);
  num_freqs = spec.n_fft / 2 + 1;
  mel = spec.type == "mel" || spec.type == "mfcc";
  n_mels = mel ? spec.n_mels : 0;
  n_mfcc = spec.type == "mfcc" ? spec.n_mfcc : 0;
  num_bins = n_mfcc > 0 ? n_mfcc : mel ? n_mels : num_freqs;
  pad = spec.center ? spec.n_fft / 2 : 0;
  reflect = spec.pad_mode == "reflect";
  log = log_kind_of(spec);
  // The float32 constants exactly as CpuSpectrogram rounds them.
  power = static_cast<float>(spec.power);
  amin = static_cast<float>(spec.amin);
  db_multiplier_f32 = static_cast<float>(db_multiplier(spec.power));
  reference_db = static_cast<float>(
      db_of_reference(spec.amin, spec.db_ref, db_multiplier(spec.power)));
  top_db = static_cast<float>(spec.top_db);
  log1p_scale = static_cast<float>(spec.log1p_scale);

  // Launch limits: the transpose grid's y and z dimensions (65535), the GEMM's int sizes.
  CADENZA_CHECK(mel || (num_freqs + kTile - 1) / kTile <= 65535,
                "CudaSpectrogram: n_fft " << n_fft << " is too large for type stft");
  CADENZA_CHECK(mel || max_batch <= 65535,
                "CudaSpectrogram: max_batch " << max_batch << " is too large for type stft");
  CADENZA_CHECK(static_cast<std::int64_t>(max_batch) * num_frames * n_fft < (std::int64_t{1} << 62),
                "CudaSpectrogram: work buffer size overflows");

  try {
    build(spec, sample_rate);
  } catch (...) {
    release();
    throw;
  }
}

void CudaSpectrogram::Impl::build(const FrontendSpec& spec, int sample_rate) {
  const ScopedDevice on_device(ctx.device, true);
  int sms = 0;
  CADENZA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, ctx.device));
  max_blocks = static_cast<unsigned int>(std::max(sms, 1)) * 32u;

  // cuBLAS reads alpha and beta of the mel and DCT GEMMs from host memory.
  if (mel) {
    cublasPointerMode_t mode = CUBLAS_POINTER_MODE_HOST;
    CADENZA_CUDA_CHECK(cublasGetPointerMode(ctx.cublas, &mode));
    CADENZA_CHECK(mode == CUBLAS_POINTER_MODE_HOST,
                  "CudaSpectrogram: the cuBLAS handle must be in host pointer mode");
  }

  const std::vector<float> host_window = stft_window(spec);
  CADENZA_CHECK(static_cast<int>(host_window.size()) == n_fft,
                "stft_window returned " << host_window.size() << " values for n_fft " << n_fft);
  const std::size_t rows = static_cast<std::size_t>(max_batch) * num_frames;

  window = device_alloc<float>(static_cast<std::size_t>(n_fft), "window", ctx.device);
  frames = device_alloc<float>(rows * n_fft, "frame buffer", ctx.device);
  spectrum = device_alloc<cufftComplex>(rows * num_freqs, "spectrum buffer", ctx.device);
  CADENZA_CUDA_CHECK(cudaMemcpyAsync(window.get(), host_window.data(), sizeof(float) * n_fft,
                                     cudaMemcpyHostToDevice, ctx.stream));
  // Rows beyond a call's batch are transformed too (see the batch rule above): start them
  // as zeros rather than uninitialised memory.
  CADENZA_CUDA_CHECK(cudaMemsetAsync(frames.get(), 0, sizeof(float) * rows * n_fft, ctx.stream));

  std::vector<float> host_filterbank;
  if (mel) {
    host_filterbank = mel_filterbank(spec, sample_rate);
    const std::size_t count = static_cast<std::size_t>(n_mels) * num_freqs;
    CADENZA_CHECK(host_filterbank.size() == count,
                  "mel_filterbank returned " << host_filterbank.size() << " values, expected "
                                             << count);
    filterbank = device_alloc<float>(count, "mel filterbank", ctx.device);
    CADENZA_CUDA_CHECK(cudaMemcpyAsync(filterbank.get(), host_filterbank.data(),
                                       sizeof(float) * count, cudaMemcpyHostToDevice,
                                       ctx.stream));
  }
  std::vector<float> host_dct;
  if (n_mfcc > 0) {
    host_dct = dct_matrix(spec);
    const std::size_t count = static_cast<std::size_t>(n_mfcc) * n_mels;
    CADENZA_CHECK(host_dct.size() == count,
                  "dct_matrix returned " << host_dct.size() << " values, expected " << count);
    dct = device_alloc<float>(count, "DCT matrix", ctx.device);
    CADENZA_CUDA_CHECK(cudaMemcpyAsync(dct.get(), host_dct.data(), sizeof(float) * count,
                                       cudaMemcpyHostToDevice, ctx.stream));
    log_mel = device_alloc<float>(static_cast<std::size_t>(max_batch) * n_mels * num_frames,
                                  "log-mel buffer", ctx.device);
  }
  if (log == LogKind::db && top_db > 0.0f) {
    max_db = device_alloc<float>(static_cast<std::size_t>(max_batch), "top_db maxima", ctx.device);
  }

  // max_batch * T real-to-complex transforms of size n_fft: input rows of n_fft floats,
  // output rows of num_freqs complex values, both contiguous (stride 1, distance = row).
  plan.create();
  long long size[1] = {n_fft};
  long long in_embed[1] = {n_fft};
  long long out_embed[1] = {num_freqs};
  std::size_t work_bytes = 0;
  CADENZA_CUDA_CHECK(cufftMakePlanMany64(plan.get(), 1, size, in_embed, 1, n_fft, out_embed, 1,
                                         num_freqs, CUFFT_R2C, static_cast<long long>(rows),
                                         &work_bytes));
  CADENZA_CUDA_CHECK(cufftSetStream(plan.get(), ctx.stream));

  // The host vectors may go out of scope only after their copies are done.
  CADENZA_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
}

void CudaSpectrogram::Impl::release() noexcept {
  const ScopedDevice on_device(ctx.device, false);
  // Work enqueued by compute() may still be reading these buffers.
  if (ctx.stream != nullptr) static_cast<void>(cudaStreamSynchronize(ctx.stream));
  plan.reset();
  max_db.reset();
  spectrum.reset();
  frames.reset();
  log_mel.reset();
  dct.reset();
  filterbank.reset();
  window.reset();
}

void CudaSpectrogram::Impl::compute(const Tensor& pcm, Tensor& out) {
  CADENZA_CHECK(pcm.shape().rank() == 2 && pcm.dim(1) == num_samples,
                "CudaSpectrogram: pcm must be (batch, " << num_samples << "), got "
                                                        << pcm.shape().str());
  const std::int64_t batch = pcm.dim(0);
  CADENZA_CHECK(batch <= max_batch,
                "CudaSpectrogram: batch " << batch << " exceeds max_batch " << max_batch);
  if (batch == 0) return;
  const std::int64_t per_example = static_cast<std::int64_t>(num_bins) * num_frames;
  check_device_tensor(ctx, pcm, "spectrogram", "pcm", batch * num_samples);
  check_device_tensor(ctx, out, "spectrogram", "out", batch * per_example);
  const ScopedDevice on_device(ctx.device, true);
  const float* pcm_data = static_cast<const float*>(pcm.raw());
  float* out_data = static_cast<float*>(out.raw());
  // Steps 3 and 4 write the spectrogram before any DCT here: out, or log_mel for mfcc.
  float* spectrogram = n_mfcc > 0 ? log_mel.get() : out_data;
  const std::int64_t spectrogram_per_example =
      static_cast<std::int64_t>(n_mfcc > 0 ? n_mels : num_bins) * num_frames;

  // 1. Windowed frames of the batch's examples.
  FramingParams framing{};
  framing.total = batch * num_frames * n_fft;
  framing.num_samples = num_samples;
  framing.n_fft = n_fft;
  framing.hop_length = hop_length;
  framing.num_frames = num_frames;
  framing.pad = pad;
  framing.reflect = reflect;
  frame_kernel<<<grid_for(framing.total), kThreads, 0, ctx.stream>>>(pcm_data, window.get(),
                                                                     frames.get(), framing);
  CADENZA_CUDA_CHECK(cudaGetLastError());

  // 2. All max_batch * T rows (the plan's fixed batch).
  CADENZA_CUDA_CHECK(cufftExecR2C(plan.get(), frames.get(), spectrum.get()));

  if (mel) {
    // 3a. power (B T, F) into the frames buffer, then the mel projection into spectrogram.
    float* power_rows = frames.get();
    const std::int64_t power_count = batch * num_frames * num_freqs;
    power_kernel<<<grid_for(power_count), kThreads, 0, ctx.stream>>>(spectrum.get(), power_rows,
                                                                     power_count, power);
    CADENZA_CUDA_CHECK(cudaGetLastError());

    // For each example b we want, row-major, with out meaning spectrogram,
    //   out_b (M x T) = FB (M x F) * P_b^T,   P_b = power rows of b, (T x F) row-major,
    // i.e. out[b, m, t] = sum_f fb[m, f] * power[b, t, f].
    // cuBLAS is column-major, and a row-major (r x c) matrix with leading dimension c is,
    // read column-major, its transpose (c x r) with the same leading dimension. So:
    //   out_b row-major (M x T)  = column-major out_b^T (T x M), ldc = T,
    //   P_b   row-major (T x F)  = column-major P_b^T   (F x T), lda = F,
    //   FB    row-major (M x F)  = column-major FB^T    (F x M), ldb = F.
    // Transposing the wanted product, out_b^T (T x M) = P_b (T x F) * FB^T (F x M), which
    // column-major is C = op(A) * op(B) with
    //   A = power_b, op(A) = A^T (transa = T: the stored F x T turned into T x F), lda = F,
    //   B = fb,      op(B) = B   (transb = N: the stored F x M),                   ldb = F,
    //   C = out_b   (T x M), ldc = T,  m = T, n = M, k = F,
    // batched over b with strideA = T F, strideB = 0 (one filterbank), strideC = M T.
    const float alpha = 1.0f, beta = 0.0f;
    CADENZA_CUDA_CHECK(cublasGemmStridedBatchedEx(
        ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, num_frames, n_mels, num_freqs, &alpha, power_rows,
        CUDA_R_32F, num_freqs, static_cast<long long>(num_frames) * num_freqs, filterbank.get(),
        CUDA_R_32F, num_freqs, 0LL, &beta, spectrogram, CUDA_R_32F, num_frames,
        static_cast<long long>(n_mels) * num_frames, static_cast<int>(batch),
        CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT));
  } else {
    // 3b. |X|^p transposed straight into out.
    const dim3 grid(static_cast<unsigned int>((num_frames + kTile - 1) / kTile),
                    static_cast<unsigned int>((num_freqs + kTile - 1) / kTile),
                    static_cast<unsigned int>(batch));
    const dim3 block(kTile, kTileRows);
    power_transpose_kernel<<<grid, block, 0, ctx.stream>>>(spectrum.get(), out_data, num_frames,
                                                           num_freqs, power);
    CADENZA_CUDA_CHECK(cudaGetLastError());
  }

  // 4. Log compression in place.
  const std::int64_t total = batch * spectrogram_per_example;
  if (log == LogKind::log1p) {
    log1p_kernel<<<grid_for(total), kThreads, 0, ctx.stream>>>(spectrogram, total, log1p_scale);
    CADENZA_CUDA_CHECK(cudaGetLastError());
  } else if (log == LogKind::db) {
    db_kernel<<<grid_for(total), kThreads, 0, ctx.stream>>>(spectrogram, total, amin,
                                                            db_multiplier_f32, reference_db);
    CADENZA_CUDA_CHECK(cudaGetLastError());
    if (top_db > 0.0f) {
      example_max_kernel<<<static_cast<unsigned int>(batch), kReduceThreads, 0, ctx.stream>>>(
          spectrogram, spectrogram_per_example, max_db.get());
      CADENZA_CUDA_CHECK(cudaGetLastError());
      clip_top_db_kernel<<<grid_for(total), kThreads, 0, ctx.stream>>>(
          spectrogram, total, spectrogram_per_example, max_db.get(), top_db);
      CADENZA_CUDA_CHECK(cudaGetLastError());
    }
  }

  if (n_mfcc > 0) {
    // 5. The DCT over the mel axis. Row-major, for each example b,
    //   out_b (C x T) = D (C x M) * L_b (M x T),   L_b = log_mel of b,
    // i.e. out[b, c, t] = sum_m dct[c, m] * log_mel[b, m, t]. Read column-major (as in
    // step 3a), out_b is out_b^T (T x C) with ldc = T, L_b is L_b^T (T x M) with lda = T,
    // and D is D^T (M x C) with ldb = M; transposing the wanted product,
    //   out_b^T (T x C) = L_b^T (T x M) * D^T (M x C),
    // which column-major is C = A * B, transa = transb = N, m = T, n = C, k = M,
    // batched over b with strideA = M T, strideB = 0 (one matrix), strideC = C T.
    const float alpha = 1.0f, beta = 0.0f;
    CADENZA_CUDA_CHECK(cublasGemmStridedBatchedEx(
        ctx.cublas, CUBLAS_OP_N, CUBLAS_OP_N, num_frames, n_mfcc, n_mels, &alpha, log_mel.get(),
        CUDA_R_32F, num_frames, static_cast<long long>(n_mels) * num_frames, dct.get(),
        CUDA_R_32F, n_mels, 0LL, &beta, out_data, CUDA_R_32F, num_frames,
        static_cast<long long>(n_mfcc) * num_frames, static_cast<int>(batch),
        CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT));
  }
}

CudaSpectrogram::CudaSpectrogram(CudaContext& ctx, const FrontendSpec& spec, int sample_rate,
                                 int num_samples, int max_batch)
    : impl_(std::make_unique<Impl>(ctx, spec, sample_rate, num_samples, max_batch)) {}

CudaSpectrogram::~CudaSpectrogram() = default;

int CudaSpectrogram::num_frames() const { return impl_->num_frames; }

int CudaSpectrogram::num_bins() const { return impl_->num_bins; }

void CudaSpectrogram::compute(const Tensor& pcm, Tensor& out) { impl_->compute(pcm, out); }

}  // namespace cadenza::cuda
