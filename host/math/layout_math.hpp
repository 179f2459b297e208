// Index arithmetic of the data-movement ops (CPU loops and CUDA kernels): where an
// element of a permuted tensor comes from.
#pragma once

#include <cstdint>

#include "host/math/hd.hpp"
#include "host/ops/geometry.hpp"

namespace cadenza {

// The offset in x (row-major, g.in_dims) of element `out_index` of y = permute(x, g.order).
CADENZA_HD std::int64_t permuted_source_index(const PermuteGeometry& g, std::int64_t out_index) {
  std::int64_t in_strides[PermuteGeometry::kMaxRank];
  std::int64_t stride = 1;
  for (int axis = g.rank - 1; axis >= 0; --axis) {
    in_strides[axis] = stride;
    stride *= g.in_dims[axis];
  }
  std::int64_t source = 0;
  for (int axis = g.rank - 1; axis >= 0; --axis) {
    const std::int64_t dim = g.in_dims[g.order[axis]];
    source += (out_index % dim) * in_strides[g.order[axis]];
    out_index /= dim;
  }
  return source;
}

}  // namespace cadenza
