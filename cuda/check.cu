// The throwing half of CADENZA_CUDA_CHECK: adds the current device to the message.
#include "cuda/check.cuh"

namespace cadenza::cuda_check {

void fail(const char* call, const char* file, int line, const std::string& status) {
  int device = -1;
  const bool known = cudaGetDevice(&device) == cudaSuccess;
  throw Error(located_message(file, line,
                              std::string(call) + " failed on " +
                                  (known ? "cuda:" + std::to_string(device) : "no current device") +
                                  ": " + status));
}

}  // namespace cadenza::cuda_check
