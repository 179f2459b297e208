// Entry point of the [cuda] tests: they need a working CUDA device. Without one this
// prints one line saying what was found and exits 77, which CTest reports as skipped.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <iostream>

#include "host/core/context.hpp"

int main(int argc, char** argv) {
  const cadenza::CudaAvailability cuda = cadenza::probe_cuda();
  if (!cuda.usable) {
    std::cout << "SKIP: no CUDA device: " << cuda.summary << std::endl;
    return 77;
  }
  std::cout << "CUDA: " << cuda.summary << std::endl;
  return Catch::Session().run(argc, argv);
}
