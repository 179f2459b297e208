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

TEST_CASE("parity comparison: relative errors by element or by tensor; NaN only where defined",
          "[cpu][op]") {
  const float nan = std::nanf("");
  const float reference[] = {2.0f, 0.01f, -400.0f};
  const float candidate[] = {2.002f, 0.02f, -400.4f};
  // By element: 0.01 against max(1, |0.01|) = 1 is the worst.
  CHECK(compare_values(reference, candidate, 3).max_error == Approx(0.01).epsilon(1e-3));
  // By tensor: every error against max(1, 400); the worst is 0.4 / 400.
  CHECK(compare_values(reference, candidate, 3, ErrorScale::tensor).max_error == Approx(1e-3).epsilon(1e-3));
  CHECK(compare_values(reference, candidate, 3).finite);

  const float metric_reference[] = {0.5f, nan};
  const float both_nan[] = {0.5f, nan};
  const float finite_where_nan[] = {0.5f, 0.5f};  // a metric that should be NaN
  const float nan_where_finite[] = {nan, nan};
  CHECK(compare_values(metric_reference, both_nan, 2, ErrorScale::element, NanRule::defined).finite);
  CHECK_FALSE(compare_values(metric_reference, finite_where_nan, 2, ErrorScale::element, NanRule::defined).finite);
  CHECK_FALSE(compare_values(metric_reference, nan_where_finite, 2, ErrorScale::element, NanRule::defined).finite);
  // Elsewhere NaN fails even where both sides agree (both read scratch they never wrote).
  CHECK_FALSE(compare_values(metric_reference, both_nan, 2).finite);
  const float infinite_reference[] = {INFINITY, 1.0f}, finite[] = {3.0f, 1.0f};
  CHECK_FALSE(compare_values(infinite_reference, finite, 2).finite);
  CHECK_FALSE(compare_values(finite, infinite_reference, 2).finite);
}
