// CudaSpectrogram: the front-end on the device — framing + window, batched cuFFT R2C,
// |X|^p, the mel filterbank as a cuBLAS GEMM, dB / log1p, and for mfcc the DCT as a
// second GEMM — with the conventions and options of the CPU front-end
// (host/cpu/spectrogram.hpp), whose window, filterbank and DCT matrix construction it
// reuses so both sides use the same coefficients.
//
// Invariants: the cuFFT plan and all device buffers are made once in the constructor for
// (batch, num_samples); compute() enqueues on ctx.stream, allocates nothing and does not
// synchronise.
#pragma once

#include <memory>

#include "cuda/cuda_context.cuh"
#include "host/features/frontend_spec.hpp"

namespace cadenza::cuda {

class CudaSpectrogram {
 public:
  CudaSpectrogram(CudaContext& ctx, const FrontendSpec& spec, int sample_rate, int num_samples,
                  int max_batch);
  ~CudaSpectrogram();
  CudaSpectrogram(const CudaSpectrogram&) = delete;
  CudaSpectrogram& operator=(const CudaSpectrogram&) = delete;

  int num_frames() const;
  int num_bins() const;
  // pcm (batch, num_samples) → out (batch, num_bins, num_frames), both on the device;
  // batch <= max_batch.
  void compute(const Tensor& pcm, Tensor& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cadenza::cuda
