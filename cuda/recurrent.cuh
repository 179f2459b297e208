// Recurrent layers (RNN tanh/relu, GRU, LSTM) on the GPU through cuDNN's RNN API
// (cudnnRNNForward, cudnnRNNBackwardData_v8, cudnnRNNBackwardWeights_v8).
// Compiled, not yet run on a GPU: the recurrent cases of the op parity test
// (host/selfcheck/op_parity.cpp) are the first thing to run on one.
//
// Each geometry gets a plan once (descriptors, the device copy of the sequence lengths,
// the sizes cuDNN asks for and where each PyTorch weight block lies in cuDNN's weight
// space), cached in the RecurrentPlans of the backend. One call runs one layer, one or two
// directions, from zero initial states; data is batch-major and unpacked, as PyTorch's
// batch_first tensors; math is FP32 FMA (no tensor-op conversion) so results compare with
// the CPU backend's, or TF32 with train.precision tf32. The algorithm is cuDNN's standard
// one: its persistent kernels reject many geometries only at run time, and PyTorch uses
// them for fp16 alone.
//
// Reserve (per layer, from the arena): cuDNN's weight space, filled from the PyTorch-layout
// parameters by every forward and read again by the backward, then cuDNN's reserve space.
// Workspace (shared): forward uses cuDNN's workspace only; backward also holds the weight-
// space gradient (zeroed, accumulated by cuDNN, then added into the parameter gradients)
// and a dx buffer for the layer that has none.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <tuple>

#include "cuda/cuda_context.cuh"
#include "host/ops/backend.hpp"
#include "host/ops/geometry.hpp"

namespace cadenza::cuda {

class RecurrentPlans {
 public:
  RecurrentPlans();
  ~RecurrentPlans();
  struct Plan;
  // The plan of `g`, made on first use.
  const Plan& get(CudaContext& ctx, const RecurrentGeometry& g);

 private:
  std::map<std::tuple<int, int, int, int, int, bool, bool>, std::unique_ptr<Plan>> plans_;  // ..., tf32
};

std::size_t recurrent_reserve_bytes(CudaContext& ctx, RecurrentPlans& plans, const RecurrentGeometry& g);
std::size_t recurrent_workspace_bytes(CudaContext& ctx, RecurrentPlans& plans, const RecurrentGeometry& g);
void recurrent_forward(CudaContext& ctx, RecurrentPlans& plans, const RecurrentGeometry& g,
                       const RecurrentWeights& weights, const Tensor& x, Tensor& y, Tensor& reserve,
                       Tensor& workspace);
void recurrent_backward(CudaContext& ctx, RecurrentPlans& plans, const RecurrentGeometry& g,
                        const RecurrentWeights& weights, const Tensor& x, const Tensor& y,
                        const Tensor& dy, Tensor& reserve, Tensor& dx, RecurrentWeights& dweights,
                        Tensor& workspace);

}  // namespace cadenza::cuda
