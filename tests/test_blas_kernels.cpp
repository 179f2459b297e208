// The CPU backend runs OpenBLAS's fastest kernel set the CPU supports, whatever OpenBLAS
// chose at load time (tools/setup.sh's Debian OpenBLAS picks AVX2 or SSE3 kernels on CPUs
// it does not know, or that an OPENBLAS_CORETYPE in the environment names), without any
// setting; and GEMMs stay correct.
#include <catch2/catch.hpp>

#include <cblas.h>

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "host/cpu/blas_kernels.hpp"
#include "host/cpu/cpu_backend.hpp"

using namespace cadenza;

TEST_CASE("a CPU backend runs the widest BLAS kernels the CPU supports", "[cpu][blas]") {
  CpuBackend backend(1);
  const BlasKernels& kernels = select_blas_kernels();
  INFO("OpenBLAS chose " << kernels.chosen_by_blas << ", running " << kernels.running << ": " << kernels.reason
                         << "; CPU level " << cpu_vector_level());
  REQUIRE_FALSE(kernels.running.empty());  // the build links Debian's OpenBLAS
  // Whatever OpenBLAS or OPENBLAS_CORETYPE chose (this machine's environment sets Haswell).
  const std::string level = cpu_vector_level();
  if (level == "avx512") CHECK(std::set<std::string>{"SkylakeX", "Cooperlake", "SapphireRapids"}.count(kernels.running));
  if (level == "avx2")
    CHECK(std::set<std::string>{"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"}.count(kernels.running));
  CHECK(&select_blas_kernels() == &kernels);  // once per process
}

TEST_CASE("sgemm through the selected kernels matches a plain triple loop", "[cpu][blas]") {
  CpuBackend backend(2);
  const int m = 67, n = 129, k = 95;  // odd sizes: edges of every kernel block
  std::vector<float> a(std::size_t(m) * k), b(std::size_t(k) * n), c(std::size_t(m) * n);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = float((i * 37) % 23) / 11.0f - 1.0f;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = float((i * 53) % 19) / 9.0f - 1.0f;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double expected = 0.0;
      for (int p = 0; p < k; ++p) expected += double(a[std::size_t(i) * k + p]) * b[std::size_t(p) * n + j];
      REQUIRE(c[std::size_t(i) * n + j] == Approx(expected).margin(1e-4));
    }
}
