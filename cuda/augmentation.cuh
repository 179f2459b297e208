// On-line augmentation on the GPU with the CPU backend's semantics and draws
// (host/cpu/augmentation.cpp, host/math/augment_math.hpp): augment_waveform (shift, gain,
// noise at a drawn SNR; writes out, never in place) and mask_spectrogram (SpecAugment time
// and frequency masks set to the example's pre-mask mean, in place).
//
// Invariants: the decisions, shifts, gains and mask spans are the CPU's bit for bit (same
// integer hashes); the per-row sums (RMS, mean) are fixed-shape double reductions in
// CudaContext::reduction_scratch, so results are deterministic run to run but may differ
// from the CPU's index-order sums in the last double bits (one float ulp of sigma or of the
// mean at most, in practice none). Entries enqueue on ctx.stream, allocate nothing and do
// not synchronise.
#pragma once

#include <cstdint>

#include "cuda/cuda_context.cuh"
#include "host/ops/backend.hpp"

namespace cadenza::cuda {

// pcm and out (B, S), distinct buffers.
void augment_waveform(CudaContext& ctx, const WaveformAugment& a, const Tensor& step_values, const Tensor& pcm,
                      Tensor& out);
// features (B, C, F, T), masked in place.
void mask_spectrogram(CudaContext& ctx, const SpectrogramMask& m, const Tensor& step_values, Tensor& features);

}  // namespace cadenza::cuda
