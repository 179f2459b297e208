// The CPU backend's BLAS kernels: which of OpenBLAS's per-CPU kernel sets runs the GEMMs,
// and making it the fastest this CPU supports.
//
// Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its kernels from a table of CPU models at
// load time; a CPU it does not know gets an older set: AMD Zen 4 with AVX-512 runs the
// AVX2 "Haswell" kernels at half the sgemm rate of the "SkylakeX" ones, and some virtual
// CPUs fall back to SSE3 "Prescott" at a fifth. select_blas_kernels() asks the CPU itself
// (CPUID, and the OS's saved register state, through the compiler's cpu-supports checks)
// what it can run and, when OpenBLAS chose less, re-selects through OpenBLAS's own
// initialisation with that choice.
//
// Invariants:
// - Kernels at least as wide as the CPU supports are kept, whoever chose them (OpenBLAS's
//   detection or OPENBLAS_CORETYPE); narrower ones are replaced, and the reason says so
//   (the device line of the log). Environments that set OPENBLAS_CORETYPE=Haswell for
//   portability would otherwise halve sgemm on AVX-512 machines.
// - It runs once per process (later calls return the first result), before the first
//   CpuBackend's first GEMM; results of every GEMM are unchanged in meaning (the kernels
//   differ in speed and in the last bits of sums).
// - A BLAS without OpenBLAS's dynamic kernel selection is left as it is.
#pragma once

#include <string>

namespace cadenza {

struct BlasKernels {
  std::string chosen_by_blas;  // the kernel set OpenBLAS chose ("Haswell"), or "" when unknown
  std::string running;         // the one running now ("SkylakeX")
  std::string reason;          // one line: why it was changed or kept
};

const BlasKernels& select_blas_kernels();

// The widest x86 vector instruction set the CPU and OS support for OpenBLAS's kernel sets:
// "avx512" (F, CD, BW, DQ, VL), "avx2" (with FMA), or "" for anything older or not x86.
std::string cpu_vector_level();

}  // namespace cadenza
