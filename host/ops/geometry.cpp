// Output sizes and padding of the op geometries.
#include "host/ops/geometry.hpp"

#include <algorithm>

#include "host/core/error.hpp"

namespace cadenza {

Conv2dGeometry Conv2dGeometry::make(int batch, int in_channels, int in_h, int in_w,
                                    int out_channels, int kernel_h, int kernel_w, int stride_h,
                                    int stride_w, int dilation_h, int dilation_w,
                                    bool same_padding) {
  Conv2dGeometry g;
  g.batch = batch;
  g.in_channels = in_channels;
  g.in_h = in_h;
  g.in_w = in_w;
  g.out_channels = out_channels;
  g.kernel_h = kernel_h;
  g.kernel_w = kernel_w;
  g.stride_h = stride_h;
  g.stride_w = stride_w;
  g.dilation_h = dilation_h;
  g.dilation_w = dilation_w;
  const int span_h = dilation_h * (kernel_h - 1) + 1;
  const int span_w = dilation_w * (kernel_w - 1) + 1;
  if (same_padding) {
    g.out_h = (in_h + stride_h - 1) / stride_h;
    g.out_w = (in_w + stride_w - 1) / stride_w;
    const int total_h = std::max(0, (g.out_h - 1) * stride_h + span_h - in_h);
    const int total_w = std::max(0, (g.out_w - 1) * stride_w + span_w - in_w);
    g.pad_top = total_h / 2;
    g.pad_bottom = total_h - g.pad_top;
    g.pad_left = total_w / 2;
    g.pad_right = total_w - g.pad_left;
  } else {
    g.out_h = in_h >= span_h ? (in_h - span_h) / stride_h + 1 : 0;
    g.out_w = in_w >= span_w ? (in_w - span_w) / stride_w + 1 : 0;
  }
  return g;
}

Pool2dGeometry Pool2dGeometry::make(int batch, int channels, int in_h, int in_w, int window_h,
                                    int window_w, int stride_h, int stride_w) {
  Pool2dGeometry g;
  g.batch = batch;
  g.channels = channels;
  g.in_h = in_h;
  g.in_w = in_w;
  g.window_h = window_h;
  g.window_w = window_w;
  g.stride_h = stride_h;
  g.stride_w = stride_w;
  g.out_h = in_h >= window_h ? (in_h - window_h) / stride_h + 1 : 0;
  g.out_w = in_w >= window_w ? (in_w - window_w) / stride_w + 1 : 0;
  return g;
}

}  // namespace cadenza
