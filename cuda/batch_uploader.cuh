// CudaBatchUploader: the double-buffered host-to-device batch path of the CUDA backend
// (host/ops/backend.hpp's BatchUploader).
//
// Two slots, each with page-locked host buffers, device buffers and two events:
//   copied   — recorded on the copy stream after the slot's upload; the compute stream
//              waits for it before reading the batch, the host before refilling the slot;
//   consumed — recorded on the compute stream by release_after_compute(); the copy stream
//              waits for it before overwriting the slot's device buffers.
// So the host fills batch s+1 and its copy runs while the device computes batch s.
#pragma once

#include <memory>
#include <vector>

#include "cuda/cuda_context.cuh"
#include "host/ops/backend.hpp"

namespace cadenza::cuda {

std::unique_ptr<BatchUploader> make_batch_uploader(CudaContext& ctx, const std::vector<Shape>& shapes);

}  // namespace cadenza::cuda
