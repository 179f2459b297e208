// CADENZA_CUDA_CHECK: the one check for every CUDA-family status code.
//
// Works on cudaError_t, cudnnStatus_t, cublasStatus_t, cufftResult and (when built with
// NCCL) ncclResult_t: on failure it throws cadenza::Error naming the call, the file and
// line, the current device and the library's own description of the status.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <cufft.h>
#ifdef CADENZA_WITH_NCCL
#include <nccl.h>
#endif

#include <string>

#include "host/core/error.hpp"

namespace cadenza::cuda_check {

inline bool ok(cudaError_t s) { return s == cudaSuccess; }
inline bool ok(cudnnStatus_t s) { return s == CUDNN_STATUS_SUCCESS; }
inline bool ok(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS; }
inline bool ok(cufftResult s) { return s == CUFFT_SUCCESS; }

inline std::string describe(cudaError_t s) {
  return std::string(cudaGetErrorName(s)) + ": " + cudaGetErrorString(s);
}
inline std::string describe(cudnnStatus_t s) { return cudnnGetErrorString(s); }
inline std::string describe(cublasStatus_t s) {
  return std::string(cublasGetStatusName(s)) + ": " + cublasGetStatusString(s);
}
inline std::string describe(cufftResult s) { return "cufftResult " + std::to_string(int(s)); }

#ifdef CADENZA_WITH_NCCL
// ncclInProgress is not success: a non-blocking communicator's caller handles it before
// checking (see cuda/nccl_communicator.cu).
inline bool ok(ncclResult_t s) { return s == ncclSuccess; }
// NCCL's name for the code, then its last error message when it has one (that message
// may come from an earlier asynchronous failure, so it is labelled as such).
inline std::string describe(ncclResult_t s) {
  std::string text = ncclGetErrorString(s);
  const char* last = ncclGetLastError(nullptr);
  if (last != nullptr && last[0] != '\0') text += " (NCCL's last error: " + std::string(last) + ")";
  return text;
}
#endif

[[noreturn]] void fail(const char* call, const char* file, int line, const std::string& status);

}  // namespace cadenza::cuda_check

#define CADENZA_CUDA_CHECK(call)                                                           \
  do {                                                                                     \
    const auto cadenza_status_ = (call);                                                   \
    if (!::cadenza::cuda_check::ok(cadenza_status_))                                       \
      ::cadenza::cuda_check::fail(#call, __FILE__, __LINE__,                               \
                                  ::cadenza::cuda_check::describe(cadenza_status_));       \
  } while (0)
