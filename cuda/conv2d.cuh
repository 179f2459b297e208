// conv2d on the GPU through cuDNN: forward, backward-data and backward-filter.
//
// Each geometry gets a plan once (descriptors and the three algorithms, chosen by cuDNN's
// heuristics among deterministic algorithms whose workspace fits the limit), cached in
// the backend's Conv2dPlans under every field that shapes the problem; the workspace comes
// from the model's arena.
// FP32 math (no TF32) so results compare with the CPU backend's; train.precision tf32
// lets cuDNN use TF32 tensor cores, bf16 runs cuDNN on bf16 NHWC copies (conv2d.cu) for
// every geometry where cuDNN has deterministic bf16 forward and backward-filter
// algorithms, and on the fp32 tensors (with TF32) where it has not.
// Uneven 'same' padding (even kernels), which cuDNN's convolution cannot express, goes
// through an explicitly padded copy of the input in the workspace.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <memory>
#include <tuple>

#include "cuda/cuda_context.cuh"
#include "host/ops/geometry.hpp"

namespace cadenza::cuda {

class Conv2dPlans {
 public:
  Conv2dPlans();
  ~Conv2dPlans();
  struct Plan;
  // The plan of `g`, made on first use.
  const Plan& get(CudaContext& ctx, const Conv2dGeometry& g);

 private:
  // Every field of the geometry but the fused ReLU (applied outside cuDNN), then tf32
  // and bf16: two geometries that differ in any padding side have different plans.
  using Key = std::tuple<std::array<int, 15>, bool, bool>;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

std::size_t conv2d_workspace_bytes(CudaContext& ctx, Conv2dPlans& plans, const Conv2dGeometry& g);
void conv2d_forward(CudaContext& ctx, Conv2dPlans& plans, const Conv2dGeometry& g, const Tensor& x,
                    const Tensor& w, const Tensor& bias, Tensor& y, Tensor& workspace);
void conv2d_backward(CudaContext& ctx, Conv2dPlans& plans, const Conv2dGeometry& g, const Tensor& x,
                     const Tensor& w, const Tensor& y, Tensor& dy, Tensor& dx, Tensor& dw, Tensor& dbias,
                     Tensor& workspace);

}  // namespace cadenza::cuda
