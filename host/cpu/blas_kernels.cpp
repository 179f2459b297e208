// select_blas_kernels (see blas_kernels.hpp).
#include "host/cpu/blas_kernels.hpp"

#include <cstdlib>
#include <set>

// OpenBLAS's exported entry points; weak, so that another BLAS links too (then nothing is
// selected). gotoblas_dynamic_init reads OPENBLAS_CORETYPE exactly as at load time.
extern "C" {
char* openblas_get_corename() __attribute__((weak));
void gotoblas_dynamic_init() __attribute__((weak));
void gotoblas_dynamic_quit() __attribute__((weak));
}

namespace cadenza {
namespace {

// OpenBLAS's kernel sets that use AVX-512, and those that use at least AVX2 + FMA.
const std::set<std::string> kAvx512Kernels = {"SkylakeX", "Cooperlake", "SapphireRapids"};
const std::set<std::string> kAvx2Kernels = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"};

std::string running_kernels() { return openblas_get_corename ? openblas_get_corename() : ""; }

BlasKernels select() {
  BlasKernels k;
  k.chosen_by_blas = k.running = running_kernels();
  if (!openblas_get_corename || !gotoblas_dynamic_init || !gotoblas_dynamic_quit) {
    k.reason = "not OpenBLAS with dynamic kernel selection; left as it is";
    return k;
  }
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  const std::string chosen_by = forced ? "OPENBLAS_CORETYPE=" + std::string(forced) + " chose " : "OpenBLAS chose ";
  const std::string level = cpu_vector_level();
  std::string wanted;
  if (level == "avx512" && !kAvx512Kernels.count(k.running)) wanted = "SkylakeX";
  if (level == "avx2" && !kAvx2Kernels.count(k.running)) wanted = "Haswell";
  if (wanted.empty()) {
    k.reason = chosen_by + "kernels that use the CPU's " + (level.empty() ? std::string("instructions") : level);
    return k;
  }
  const std::string saved = forced ? forced : "";
  ::setenv("OPENBLAS_CORETYPE", wanted.c_str(), 1);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  if (forced)
    ::setenv("OPENBLAS_CORETYPE", saved.c_str(), 1);  // as it was, for child processes
  else
    ::unsetenv("OPENBLAS_CORETYPE");
  k.running = running_kernels();
  k.reason = chosen_by + k.chosen_by_blas + " but the CPU supports " + level + "; switched to " + k.running;
  return k;
}

}  // namespace

std::string cpu_vector_level() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "avx512";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
#endif
  return "";
}

const BlasKernels& select_blas_kernels() {
  static const BlasKernels kernels = select();
  return kernels;
}

}  // namespace cadenza
