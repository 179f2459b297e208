// CudaContext: the library handles and streams of one GPU, owned by its CudaBackend.
//
// Invariants: everything an op enqueues goes on `stream` (the compute stream), so ops are
// ordered without host synchronisation; `copy_stream` carries host-to-device batch copies
// that are ordered against the compute stream by events. The cuBLAS and cuDNN handles are
// bound to `stream`. No CUDA object is process-global: two contexts (two devices, or two
// engines on one device) are independent.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "host/core/tensor.hpp"
#include "host/ops/step_values.hpp"

namespace cadenza::cuda {

struct CudaContext {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudaStream_t copy_stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
  int max_threads_per_block = 1024;
  // train.precision tf32 or bf16: cuDNN convolutions and recurrent layers may use TF32
  // tensor cores (CUDNN_DEFAULT_MATH, which permits TF32 from sm_80 on) instead of
  // FMA-only math.
  bool tf32 = false;
  // train.precision bf16: convolutions run on bf16 NHWC copies (conv2d.cu).
  bool bf16_convolutions = false;
  // Device scratch for fixed-shape reductions (one double per block), allocated with the
  // context so that no op allocates.
  static constexpr int kReductionBlocks = 512;
  // Its length in doubles: kReductionBlocks and more (batchnorm keeps two partial sums per
  // block of its sliced grid there, batchnorm.cu).
  static constexpr int kReductionScratchDoubles = 65536;
  double* reduction_scratch = nullptr;
  // cuBLAS's workspace, ours rather than its pool: the same memory eagerly and inside a
  // graph capture (where cuBLAS would otherwise add allocation nodes to the graph), so a
  // captured GEMM is the eager one. 32 MiB, cuBLAS's recommendation for Hopper.
  static constexpr std::size_t kCublasWorkspaceBytes = std::size_t(32) << 20;
  void* cublas_workspace = nullptr;
};

// The public-entry checks of every op: the tensor is f32 (unless `dtype` says otherwise),
// lives on this context's device, and has `numel` elements. Throws naming the op and the
// argument.
void check_device_tensor(const CudaContext& ctx, const Tensor& t, const char* op, const char* name,
                         std::int64_t numel, DType dtype = DType::f32);

// Throws naming `what` when the compute stream is being captured into a graph: for the
// steps that allocate or synchronise (making a plan), which a capture cannot record.
// Plans are made when the model is planned, before any capture; this turns a geometry
// first seen inside a capture into a clear error instead of an invalidated capture.
void require_not_capturing(const CudaContext& ctx, const char* what);

// The device address of a StepValues tensor (host/ops/step_values.hpp), after the checks
// above (u8, kStepValuesBytes long, on this device). Kernels read the step's values there.
const StepValues* device_step_values(const CudaContext& ctx, const Tensor& t, const char* op);

// Makes `device` current on this thread for a scope and restores the previous device
// after. The checked form throws; the unchecked one (for destructors and cleanup) ignores
// errors and then leaves the current device as it was.
class ScopedDevice {
 public:
  ScopedDevice(int device, bool checked);
  ~ScopedDevice();
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;

 private:
  int previous_ = 0;
  bool switched_ = false;
};

// Blocks of 256 threads covering n elements (at least one block). A count beyond the
// unsigned range is clamped, never wrapped, so that its launch fails instead of covering
// a fraction of n.
inline unsigned int blocks_for(std::int64_t n, int threads = 256) {
  const std::int64_t blocks = n > 0 ? (n + threads - 1) / threads : 1;
  return static_cast<unsigned int>(std::min<std::int64_t>(blocks, std::numeric_limits<unsigned int>::max()));
}

// Threads per block of the elementwise grid-stride kernels.
constexpr int kElementwiseThreads = 256;

// The grid of a grid-stride loop over n elements with kElementwiseThreads per block:
// enough blocks to cover n, at most 2^20 (the loop covers the rest).
inline unsigned int grid_stride_blocks(std::int64_t n) {
  return std::min(blocks_for(n, kElementwiseThreads), 1u << 20);
}

}  // namespace cadenza::cuda
