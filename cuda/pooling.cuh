// 2-D max and average pooling on the GPU with the CPU backend's semantics
// (host/cpu/pooling.cpp): no padding, floor division, each max window's gradient routed
// to its first maximum (a NaN wins, the last one), average windows summed in double. Custom kernels rather than cuDNN (whose pooling entry points
// cuDNN 9 deprecates): the backward pass gathers per input element, so it is deterministic
// even when windows overlap.
#pragma once

#include "cuda/cuda_context.cuh"
#include "host/ops/geometry.hpp"

namespace cadenza::cuda {

void maxpool2d_forward(CudaContext& ctx, const Pool2dGeometry& g, const Tensor& x, Tensor& y);
void maxpool2d_backward(CudaContext& ctx, const Pool2dGeometry& g, const Tensor& x, const Tensor& dy,
                        Tensor& dx);
void avgpool2d_forward(CudaContext& ctx, const Pool2dGeometry& g, const Tensor& x, Tensor& y);
void avgpool2d_backward(CudaContext& ctx, const Pool2dGeometry& g, const Tensor& dy, Tensor& dx);

}  // namespace cadenza::cuda
