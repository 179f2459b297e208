// [cpu] The op-parity harness behind the [cuda] tests and gpu_selfcheck, run with the CPU
// backend on both sides: it covers every op of kBackendOps, and two CPU backends with
// different thread counts agree within every tolerance (most ops exactly).
#include <catch2/catch.hpp>

#include "host/cpu/cpu_backend.hpp"
#include "host/selfcheck/op_parity.hpp"

using namespace cadenza;

TEST_CASE("the parity harness covers every op and passes CPU against CPU", "[cpu][op]") {
  CpuBackend one_thread(1);
  CpuBackend two_threads(2);
  const std::vector<ParityResult> results = run_op_parity(one_thread, two_threads);
  CHECK(uncovered_ops(results).empty());
  REQUIRE(results.size() > 50);
  for (const ParityResult& r : results) {
    INFO(r.op << " " << r.output << " (" << r.shape_case << "): " << r.max_error);
    CHECK(r.passed());
    CHECK(r.guards_intact);
  }
}
