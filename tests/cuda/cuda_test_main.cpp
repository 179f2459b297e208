// Entry point of the [cuda] tests: they need a working CUDA device. Without one this
// prints one line saying what was found and exits 77, which CTest reports as skipped;
// with CADENZA_REQUIRE_GPU set (not "0"), as on a machine meant to validate the GPU, the
// same line is a failure (exit 1), so a driver too old or a build without CUDA cannot
// pass for a green run.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <iostream>

#include "host/core/context.hpp"
#include "tests/cuda/gpu_required.hpp"

int main(int argc, char** argv) {
  const cadenza::CudaAvailability cuda = cadenza::probe_cuda();
  if (!cuda.usable) {
    const bool required = cadenza::testing::gpu_required();
    std::cout << (required ? "FAIL" : "SKIP") << ": no CUDA device: " << cuda.summary << std::endl;
    return required ? 1 : 77;
  }
  std::cout << "CUDA: " << cuda.summary << std::endl;
  return Catch::Session().run(argc, argv);
}
