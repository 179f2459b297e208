// Tests of how the [cuda] test runs treat the GPUs they find (tests/cuda/gpu_required.hpp):
// CADENZA_REQUIRE_GPU's values, and that a process needing two GPUs on a one-GPU machine
// skips (CTest's "Skipped", not "Passed") unless the run must have two, when it fails.
#include <catch2/catch.hpp>

#include "tests/cuda/gpu_required.hpp"

namespace cadenza::testing {
namespace {

TEST_CASE("CADENZA_REQUIRE_GPU: how many GPUs a run must have", "[cpu]") {
  CHECK(gpus_required(nullptr) == 0);
  CHECK(gpus_required("") == 0);
  CHECK(gpus_required("0") == 0);
  CHECK(gpus_required("1") == 1);
  CHECK(gpus_required("2") == 2);
  CHECK(gpus_required("yes") == 1);
}

TEST_CASE("gpu_verdict: run, skip or fail for the GPUs found", "[cpu]") {
  SECTION("the one-GPU cases") {
    CHECK(gpu_verdict(true, 1, 1, 0) == GpuVerdict::run);
    CHECK(gpu_verdict(true, 1, 1, 1) == GpuVerdict::run);
    CHECK(gpu_verdict(false, 0, 1, 0) == GpuVerdict::skip);
    CHECK(gpu_verdict(false, 0, 1, 1) == GpuVerdict::fail);
  }
  SECTION("the two-GPU cases (--min-devices 2)") {
    CHECK(gpu_verdict(true, 2, 2, 1) == GpuVerdict::run);
    CHECK(gpu_verdict(true, 8, 2, 2) == GpuVerdict::run);
    // A one-GPU validation run: skipped, neither passed nor failed.
    CHECK(gpu_verdict(true, 1, 2, 0) == GpuVerdict::skip);
    CHECK(gpu_verdict(true, 1, 2, 1) == GpuVerdict::skip);
    // A run that must have two GPUs and found one fails.
    CHECK(gpu_verdict(true, 1, 2, 2) == GpuVerdict::fail);
    // No usable CUDA fails any run that requires a GPU.
    CHECK(gpu_verdict(false, 0, 2, 1) == GpuVerdict::fail);
    CHECK(gpu_verdict(false, 0, 2, 0) == GpuVerdict::skip);
  }
}

}  // namespace
}  // namespace cadenza::testing
