// Pooling windows' arithmetic (CPU loops and CUDA kernels).
//
// Max pooling: the index within an input plane of the element a window passes on, and so
// routes the gradient to. The largest value wins; among equal maxima the first (lowest index) wins; a NaN wins
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

// Average pooling: the mean of one window, summed in double in row-major window order
// (immune to the compilers' choice of fused multiply-adds, so both backends agree).
CADENZA_HD float average_window(const Pool2dGeometry& g, const float* plane, int oy, int ox) {
  double sum = 0.0;
  for (int i = 0; i < g.window_h; ++i) {
    const float* row = plane + (oy * g.stride_h + i) * g.in_w + ox * g.stride_w;
    for (int j = 0; j < g.window_w; ++j) sum += row[j];
  }
  return static_cast<float>(sum / (double(g.window_h) * g.window_w));
}

// Average pooling's gradient at input element (iy, ix): the mean of dy over the windows
// that contain it (each window passes dy / window size to every element), in window order.
CADENZA_HD float average_window_gradient(const Pool2dGeometry& g, const float* grad_out, int iy,
                                         int ix) {
  // Windows starting at oy*stride_h <= iy < oy*stride_h + window_h.
  const int oy_first = iy >= g.window_h ? (iy - g.window_h) / g.stride_h + 1 : 0;
  const int ox_first = ix >= g.window_w ? (ix - g.window_w) / g.stride_w + 1 : 0;
  const int oy_last = iy / g.stride_h < g.out_h - 1 ? iy / g.stride_h : g.out_h - 1;
  const int ox_last = ix / g.stride_w < g.out_w - 1 ? ix / g.stride_w : g.out_w - 1;
  double sum = 0.0;
  for (int oy = oy_first; oy <= oy_last; ++oy)
    for (int ox = ox_first; ox <= ox_last; ++ox) sum += grad_out[oy * g.out_w + ox];
  return static_cast<float>(sum / (double(g.window_h) * g.window_w));
}

}  // namespace cadenza
