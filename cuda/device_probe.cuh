// probe_cuda_devices: asks the CUDA runtime what GPUs this process can use, without
// failing when there are none. Plain C++ declaration: host code includes it.
#pragma once

#include "host/core/device.hpp"

namespace cadenza {

// Minimum compute capability: the build targets sm_80 and sm_90 (+ PTX).
constexpr int kMinComputeCapabilityMajor = 8;

CudaAvailability probe_cuda_devices();

}  // namespace cadenza
