// The harmonic filterbank on the GPU (Won et al. 2020), with the CPU backend's semantics
// (backend.hpp; host/cpu/harmonic_filterbank.cpp): a kernel rebuilds the filterbank from
// q on the device with host/math/harmonic_math.hpp's functions, cuBLAS strided batched
// SGEMMs in the shared handle's math mode (plain FP32 unless train.precision allows TF32)
// give y, dx and one dfb per example, and a two-pass fixed-grid reduction in double adds dq, deterministic run to run.
// Compiled, not yet run on a GPU.
#pragma once

#include <cstddef>

#include "cuda/cuda_context.cuh"
#include "host/ops/geometry.hpp"

namespace cadenza::cuda {

// Bytes of the backward pass's workspace: dfb for each example, (batch, bins, filters) f32.
std::size_t harmonic_filterbank_workspace_bytes(const HarmonicFilterbankGeometry& g);
void harmonic_filterbank_forward(CudaContext& ctx, const HarmonicFilterbankGeometry& g,
                                 const Tensor& spectrogram, const Tensor& q, Tensor& filterbank,
                                 Tensor& y);
void harmonic_filterbank_backward(CudaContext& ctx, const HarmonicFilterbankGeometry& g,
                                  const Tensor& spectrogram, const Tensor& q,
                                  const Tensor& filterbank, const Tensor& dy, Tensor& dx,
                                  Tensor& dq, Tensor& workspace);

}  // namespace cadenza::cuda
