// [cpu] The op-parity harness behind the [cuda] tests and gpu_selfcheck, run with the CPU
// backend on both sides: it covers every op of kBackendOps, and two CPU backends with
// different thread counts agree within every tolerance (most ops exactly).
#include <catch2/catch.hpp>
#include <cmath>

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

TEST_CASE("parity comparison: relative error, and NaN only where both sides are NaN", "[cpu][op]") {
  const float nan = std::nanf("");
  const float reference[] = {2.0f, 0.5f, -400.0f, nan};
  const float close[] = {2.002f, 0.5005f, -400.4f, nan};
  const ValueComparison ok = compare_values(reference, close, 4);
  CHECK(ok.finite);
  CHECK(ok.max_error == Approx(1e-3).epsilon(1e-3));  // relative to max(1, |reference|)

  const float finite_where_nan[] = {2.0f, 0.5f, -400.0f, 0.5f};  // a metric that should be NaN
  CHECK_FALSE(compare_values(reference, finite_where_nan, 4).finite);
  const float nan_where_finite[] = {nan, 0.5f, -400.0f, nan};
  CHECK_FALSE(compare_values(reference, nan_where_finite, 4).finite);
  const float infinite[] = {2.0f, INFINITY, -400.0f, nan};
  CHECK_FALSE(compare_values(reference, infinite, 4).finite);
}
