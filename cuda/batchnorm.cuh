// Batch normalisation on the GPU over (outer, channels, inner), with the CPU backend's
// semantics (host/cpu/batchnorm.cpp): biased variance to normalise, unbiased for the
// running variance, PyTorch's momentum convention, saved mean and 1/sqrt(var + eps).
//
// Custom kernels rather than cuDNN: cuDNN 9 deprecates its batchnorm entry points, and
// per-axis normalisation (Choi's per-frequency BN) is one geometry here. Each channel is
// split into slices, one block each, so few channels of many elements still fill the GPU;
// sums are in double, per block in a fixed tree, then over the slices in order, so results
// are deterministic. A fused ReLU
// (BatchNormGeometry::relu) is applied as the normalised values are written and as the
// backward reads dy, so batchnorm + relu costs the passes of batchnorm alone.
#pragma once

#include "cuda/cuda_context.cuh"
#include "host/ops/geometry.hpp"

namespace cadenza::cuda {

void batchnorm_forward_train(CudaContext& ctx, const BatchNormGeometry& g, const Tensor& x,
                             const Tensor& gamma, const Tensor& beta, Tensor& y, Tensor& running_mean,
                             Tensor& running_var, Tensor& saved_mean, Tensor& saved_invstd);
void batchnorm_forward_inference(CudaContext& ctx, const BatchNormGeometry& g, const Tensor& x,
                                 const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                                 const Tensor& running_var, Tensor& y);
void batchnorm_backward(CudaContext& ctx, const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                        const Tensor& gamma, const Tensor& saved_mean, const Tensor& saved_invstd,
                        Tensor& dx, Tensor& dgamma, Tensor& dbeta);
// Synchronised batchnorm's split ops (backend.hpp).
void batchnorm_sums(CudaContext& ctx, const BatchNormGeometry& g, const Tensor& x, const Tensor& sums, double count,
                    Tensor& out);
void batchnorm_forward_from_sums(CudaContext& ctx, const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                                 const Tensor& beta, const Tensor& sums, const Tensor& squares, double count,
                                 Tensor& y, Tensor& running_mean, Tensor& running_var, Tensor& saved_mean,
                                 Tensor& saved_invstd);
void batchnorm_backward_sums(CudaContext& ctx, const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                             const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& sums, Tensor& dgamma,
                             Tensor& dbeta);
void batchnorm_backward_from_sums(CudaContext& ctx, const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                                  const Tensor& gamma, const Tensor& saved_mean, const Tensor& saved_invstd,
                                  const Tensor& sums, double count, Tensor& dx);

}  // namespace cadenza::cuda
