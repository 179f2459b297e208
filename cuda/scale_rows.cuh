// scale_rows on the GPU (squeeze-excitation's gate), with the CPU backend's semantics
// (host/cpu/scale_rows.cpp): the forward pass and dx elementwise, dscale one block per row
// summed in double by block_sum_in_order, so it is deterministic.
#pragma once

#include "cuda/cuda_context.cuh"

namespace cadenza::cuda {

void scale_rows_forward(CudaContext& ctx, int rows, int inner, const Tensor& x, const Tensor& scale,
                        Tensor& y);
void scale_rows_backward(CudaContext& ctx, int rows, int inner, const Tensor& x, const Tensor& scale,
                         const Tensor& dy, Tensor& dx, Tensor& dscale);

}  // namespace cadenza::cuda
