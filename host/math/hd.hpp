// CADENZA_HD marks math shared by the CPU backend and the CUDA kernels.
//
// Functions marked CADENZA_HD are `__host__ __device__` under nvcc and plain inline
// functions in host C++. They take and return scalars (or pointers plus a count), touch
// no globals and allocate nothing, so the same line of math runs in the CPU loop and in
// the kernel; the CPU tests of that math therefore test the kernels' arithmetic too.
#pragma once

#if defined(__CUDACC__)
#define CADENZA_HD __host__ __device__ __forceinline__
#else
#define CADENZA_HD inline
#endif
