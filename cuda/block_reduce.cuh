// A deterministic block-wide sum for the one-block-per-row reductions (mean pooling, the
// squeeze-excitation gate's gradient).
//
// Invariants: blockDim.x is a multiple of 32 and at most kMaxRowThreads; the block's
// partial sums are added in a fixed tree (shuffles within each warp, then thread 0 adds
// the warps' totals in warp order), so a row's result depends only on its values and its
// length, never on scheduling: bit-identical run to run.
#pragma once

#include <algorithm>
#include <cstdint>

namespace cadenza::cuda {

constexpr int kWarpSize = 32;
constexpr int kMaxRowThreads = 256;

// Threads for a row of `inner` values: inner rounded up to whole warps, at most
// kMaxRowThreads (a function of inner only, so the reduction's shape is too).
inline int row_reduction_threads(std::int64_t inner) {
  const std::int64_t whole_warps = (inner + kWarpSize - 1) / kWarpSize * kWarpSize;
  return static_cast<int>(std::clamp<std::int64_t>(whole_warps, kWarpSize, kMaxRowThreads));
}

// Every thread of the block calls this with its partial sum; thread 0 gets the total (the
// other threads' return values are unspecified). It ends with a barrier, so a kernel may
// call it again at once (the shared warp sums are free again).
__device__ inline double block_sum_in_order(double partial) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    partial += __shfl_down_sync(0xffffffffu, partial, offset);
  __shared__ double warp_sums[kMaxRowThreads / kWarpSize];
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  if (threadIdx.x % kWarpSize == 0) warp_sums[warp] = partial;
  __syncthreads();
  double total = 0.0;
  if (threadIdx.x == 0) {
    const int warps = static_cast<int>(blockDim.x) / kWarpSize;
    for (int w = 0; w < warps; ++w) total += warp_sums[w];
  }
  __syncthreads();
  return total;
}

}  // namespace cadenza::cuda
