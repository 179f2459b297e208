// Entry point of the [cuda] tests: they need a working CUDA device, and with
// `--min-devices N` (taken off the command line before Catch2 reads it) at least N of
// them. With fewer this prints one line saying what was found and exits 77, which CTest
// reports as skipped (the [multigpu] cases run as their own CTest entry, cuda_multigpu,
// with --min-devices 2, so a one-GPU machine shows them as skipped rather than passed).
// When CADENZA_REQUIRE_GPU asks for at least that many GPUs (gpu_required.hpp), as on a
// machine meant to validate them, the same line is a failure (exit 1), so a driver too
// old, a build without CUDA or a missing second GPU cannot pass for a green run.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "host/core/context.hpp"
#include "tests/cuda/gpu_required.hpp"

int main(int argc, char** argv) {
  int min_devices = 1;
  std::vector<char*> catch_args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--min-devices") != 0) {
      catch_args.push_back(argv[i]);
      continue;
    }
    const std::string value = i + 1 < argc ? argv[i + 1] : "";
    const std::optional<int> count = cadenza::testing::gpu_count(value);
    if (!count || *count < 1) {
      std::cout << "FAIL: --min-devices is '" << value << "'; expected a number of GPUs, 1 or more" << std::endl;
      return 1;
    }
    min_devices = *count;
    ++i;
  }
  const cadenza::CudaAvailability cuda = cadenza::probe_cuda();
  using cadenza::testing::GpuVerdict;
  const GpuVerdict verdict =
      cadenza::testing::gpu_verdict(cuda.usable, cuda.device_count, min_devices, cadenza::testing::gpus_required());
  if (verdict != GpuVerdict::run) {
    const bool required = verdict == GpuVerdict::fail;
    std::cout << (required ? "FAIL" : "SKIP") << ": ";
    if (cuda.usable)
      std::cout << "needs " << min_devices << " CUDA devices, found " << cuda.device_count << ": " << cuda.summary;
    else
      std::cout << "no CUDA device: " << cuda.summary;
    std::cout << std::endl;
    return required ? 1 : 77;
  }
  std::cout << "CUDA: " << cuda.summary << std::endl;
  return Catch::Session().run(static_cast<int>(catch_args.size()), catch_args.data());
}
