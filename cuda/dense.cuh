// Dense layer on the GPU through cuBLAS SGEMM in the shared handle's math mode (plain FP32,
// as the CPU backend computes, unless train.precision allows TF32), with the bias added and
// its gradient summed by the custom kernels of elementwise_ops.cuh.
#pragma once

#include "cuda/cuda_context.cuh"
#include "host/ops/geometry.hpp"

namespace cadenza::cuda {

void dense_forward(CudaContext& ctx, const DenseGeometry& g, const Tensor& x, const Tensor& w,
                   const Tensor& bias, Tensor& y);
void dense_backward(CudaContext& ctx, const DenseGeometry& g, const Tensor& x, const Tensor& w,
                    const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& dbias);

}  // namespace cadenza::cuda
