// check_device_tensor: the argument checks every CUDA op runs before it enqueues work;
// require_not_capturing, device_step_values and ScopedDevice.
//
// Invariants: a tensor that passes is defined, lives on the context's device, has the
// dtype asked for and exactly `numel` elements, so the kernel behind the op may read or
// write numel elements through its raw pointer. A failure throws cadenza::Error naming the
// op and the argument; nothing is enqueued.
#include "cuda/cuda_context.cuh"

#include "cuda/check.cuh"
#include "host/core/error.hpp"

namespace cadenza::cuda {

void check_device_tensor(const CudaContext& ctx, const Tensor& t, const char* op, const char* name,
                         std::int64_t numel, DType dtype) {
  CADENZA_CHECK(t.defined(), op << ": " << name << " is not defined");
  CADENZA_CHECK(t.device() == Device::cuda(ctx.device),
                op << ": " << name << " is on " << t.device().str() << ", expected cuda:"
                   << ctx.device);
  CADENZA_CHECK(t.dtype() == dtype, op << ": " << name << " is " << dtype_name(t.dtype())
                                       << ", expected " << dtype_name(dtype));
  CADENZA_CHECK(t.numel() == numel, op << ": " << name << " " << t.shape().str() << " has "
                                       << t.numel() << " elements, expected " << numel);
}

void require_not_capturing(const CudaContext& ctx, const char* what) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  CADENZA_CUDA_CHECK(cudaStreamIsCapturing(ctx.stream, &status));
  CADENZA_CHECK(status == cudaStreamCaptureStatusNone,
                what << " during a graph capture: plans are made before the step is captured");
}

ScopedDevice::ScopedDevice(int device, bool checked) {
  if (checked) {
    CADENZA_CUDA_CHECK(cudaGetDevice(&previous_));
  } else if (cudaGetDevice(&previous_) != cudaSuccess) {
    return;
  }
  if (previous_ == device) return;
  if (checked) {
    CADENZA_CUDA_CHECK(cudaSetDevice(device));
  } else if (cudaSetDevice(device) != cudaSuccess) {
    return;
  }
  switched_ = true;
}

ScopedDevice::~ScopedDevice() {
  if (switched_) static_cast<void>(cudaSetDevice(previous_));
}

const StepValues* device_step_values(const CudaContext& ctx, const Tensor& t, const char* op) {
  check_device_tensor(ctx, t, op, "step_values", static_cast<std::int64_t>(kStepValuesBytes), DType::u8);
  return static_cast<const StepValues*>(t.raw());
}

}  // namespace cadenza::cuda
