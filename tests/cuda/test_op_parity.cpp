// [cuda] Every op of the CUDA backend against the CPU backend (host/selfcheck/op_parity):
// fresh random inputs, sentinel guards around every output, finite results, per-op
// tolerances; and every op of kBackendOps has at least one case.
#include <catch2/catch.hpp>

#include "cuda/cuda_backend.cuh"
#include "host/cpu/cpu_backend.hpp"
#include "host/selfcheck/op_parity.hpp"

using namespace cadenza;

TEST_CASE("every CUDA op equals the CPU backend's", "[cuda][op]") {
  CpuBackend cpu(2);
  cuda::CudaBackend gpu(0);
  const std::vector<ParityResult> results = run_op_parity(cpu, gpu);
  for (const ParityResult& r : results) {
    INFO(r.op << " " << r.output << " (" << r.shape_case << "): max error " << r.max_error
              << ", tolerance " << r.tolerance << (r.finite ? "" : ", NOT FINITE")
              << (r.guards_intact ? "" : ", GUARD BYTES OVERWRITTEN"));
    CHECK(r.passed());
  }
  CHECK(uncovered_ops(results).empty());
}
