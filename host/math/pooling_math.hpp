// Max pooling's window choice (CPU loops and CUDA kernels): the index within an input
// plane of the element a window passes on, and so routes the gradient to.
//
// The largest value wins; among equal maxima the first (lowest index) wins; a NaN wins
// over numbers and the last NaN over earlier ones — PyTorch's CPU rule
// `(val > max) || isnan(val)`.
#pragma once

#include "host/math/hd.hpp"
#include "host/ops/geometry.hpp"

namespace cadenza {

CADENZA_HD int max_window_argmax(const Pool2dGeometry& g, const float* plane, int oy, int ox) {
  int best_index = (oy * g.stride_h) * g.in_w + ox * g.stride_w;
  float best = plane[best_index];
  for (int i = 0; i < g.window_h; ++i) {
    const int iy = oy * g.stride_h + i;
    for (int j = 0; j < g.window_w; ++j) {
      const int index = iy * g.in_w + ox * g.stride_w + j;
      const float v = plane[index];
      if (v > best || v != v) {  // v != v: NaN
        best = v;
        best_index = index;
      }
    }
  }
  return best_index;
}

}  // namespace cadenza
