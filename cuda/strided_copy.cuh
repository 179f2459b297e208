// strided_copy and permute on the GPU, with the CPU backend's semantics
// (host/cpu/strided_copy.cpp): one thread per element moved, indices from the shared
// host/math/layout_math.hpp. Every entry checks its tensors and enqueues on ctx.stream.
#pragma once

#include "cuda/cuda_context.cuh"
#include "host/ops/geometry.hpp"

namespace cadenza::cuda {

void strided_copy(CudaContext& ctx, const StridedCopy& c, const Tensor& src, Tensor& dst);
void permute(CudaContext& ctx, const PermuteGeometry& g, const Tensor& x, Tensor& y);

}  // namespace cadenza::cuda
