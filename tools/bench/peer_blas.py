"""The BLAS kernels of the PyTorch peer: the same set cadenza runs.

Debian's torch calls OpenBLAS for its matrix products (dense layers, recurrent cells);
OpenBLAS picks its kernels once, when it is loaded, from OPENBLAS_CORETYPE or the CPU. An
environment that sets OPENBLAS_CORETYPE=Haswell on an AVX-512 CPU would give the peer AVX2
kernels while cadenza (host/cpu/blas_kernels.cpp) switches itself to SkylakeX's: a
comparison of two BLAS builds, not of two engines. Importing this module before torch
applies cadenza's rule to the peer: the widest kernel set the CPU supports, unless the one
asked for is already that wide. It prints what it changed on stderr.
"""
import os
import sys

AVX512_KERNELS = {"SkylakeX", "Cooperlake", "SapphireRapids"}
AVX2_KERNELS = {"Haswell", "Zen"} | AVX512_KERNELS


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def widest_kernels(flags):
    """OpenBLAS's kernel set for the CPU's widest vectors, as cadenza chooses it."""
    if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        return "SkylakeX", AVX512_KERNELS
    if {"avx2", "fma"} <= flags:
        return "Haswell", AVX2_KERNELS
    return None, set()


def use_widest_kernels():
    if "torch" in sys.modules:
        raise RuntimeError("peer_blas must be imported before torch: OpenBLAS reads its kernels once")
    wanted, wide_enough = widest_kernels(cpu_flags())
    asked = os.environ.get("OPENBLAS_CORETYPE")
    if wanted is None or asked is None or asked in wide_enough:
        return  # OpenBLAS's own detection, or a set as wide as the CPU's
    os.environ["OPENBLAS_CORETYPE"] = wanted
    print(f"peer: OPENBLAS_CORETYPE={asked} replaced by {wanted}, the kernels cadenza runs on this CPU",
          file=sys.stderr)


use_widest_kernels()
