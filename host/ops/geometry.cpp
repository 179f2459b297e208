// Output sizes and padding of the op geometries.
#include "host/ops/geometry.hpp"

#include <algorithm>

#include "host/core/error.hpp"
#include "host/core/tensor.hpp"
#include "host/math/harmonic_math.hpp"

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

std::string Conv2dGeometry::str() const {
  return "x " + Shape{batch, in_channels, in_h, in_w}.str() + ", " + std::to_string(out_channels) + "x" +
         std::to_string(kernel_h) + "x" + std::to_string(kernel_w) + " stride " + std::to_string(stride_h) + "x" +
         std::to_string(stride_w) + " dilation " + std::to_string(dilation_h) + "x" + std::to_string(dilation_w) +
         " pad " + std::to_string(pad_top) + "/" + std::to_string(pad_bottom) + "/" + std::to_string(pad_left) + "/" +
         std::to_string(pad_right);
}

Conv2dGeometry Conv2dGeometry::with_padding(int pad_h, int pad_w) const {
  Conv2dGeometry g = *this;
  g.pad_top = g.pad_bottom = pad_h;
  g.pad_left = g.pad_right = pad_w;
  const int span_h = dilation_h * (kernel_h - 1) + 1;
  const int span_w = dilation_w * (kernel_w - 1) + 1;
  const int padded_h = in_h + 2 * pad_h, padded_w = in_w + 2 * pad_w;
  g.out_h = padded_h >= span_h ? (padded_h - span_h) / stride_h + 1 : 0;
  g.out_w = padded_w >= span_w ? (padded_w - span_w) / stride_w + 1 : 0;
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

HarmonicFilterbankGeometry HarmonicFilterbankGeometry::make(int batch, int bins, int frames,
                                                            int sample_rate, int harmonics,
                                                            int semitone_scale) {
  HarmonicFilterbankGeometry g;
  g.batch = batch;
  g.bins = bins;
  g.frames = frames;
  g.sample_rate = sample_rate;
  g.harmonics = harmonics;
  g.semitone_scale = semitone_scale;
  g.bands = harmonic_bands(sample_rate, harmonics, semitone_scale);
  return g;
}

StridedCopy StridedCopy::whole(std::int64_t count, bool accumulate) {
  StridedCopy c;
  c.rows = 1;
  c.width = count;
  c.src_stride = count;
  c.dst_stride = count;
  c.accumulate = accumulate;
  return c;
}

namespace {

void check_rows_fit(std::int64_t rows, std::int64_t stride, std::int64_t offset, std::int64_t width,
                    std::int64_t numel, const char* what) {
  CADENZA_CHECK(rows >= 0 && width >= 0 && offset >= 0 && offset + width <= stride,
                "strided_copy " << what << ": rows " << rows << ", stride " << stride << ", offset "
                                << offset << ", width " << width);
  CADENZA_CHECK(rows == 0 || (rows - 1) * stride + offset + width <= numel,
                "strided_copy " << what << " of " << numel << " elements is too short for " << rows
                                << " rows of stride " << stride);
}

}  // namespace

void StridedCopy::check_fits(std::int64_t src_numel, std::int64_t dst_numel) const {
  check_rows_fit(rows, src_stride, src_offset, width, src_numel, "src");
  check_rows_fit(rows, dst_stride, dst_offset, width, dst_numel, "dst");
}

PermuteGeometry PermuteGeometry::make(const Shape& input, const std::vector<int>& order) {
  CADENZA_CHECK(input.rank() == int(order.size()) && input.rank() <= kMaxRank,
                "permute of " << input.str() << " by " << order.size() << " axes");
  PermuteGeometry g;
  g.rank = input.rank();
  bool seen[kMaxRank] = {};
  for (int i = 0; i < g.rank; ++i) {
    CADENZA_CHECK(order[i] >= 0 && order[i] < g.rank && !seen[order[i]],
                  "permute order is not a permutation of 0.." << g.rank - 1);
    seen[order[i]] = true;
    g.in_dims[i] = input[i];
    g.order[i] = order[i];
  }
  return g;
}

PermuteGeometry PermuteGeometry::inverse() const {
  PermuteGeometry g;
  g.rank = rank;
  for (int i = 0; i < rank; ++i) {
    g.in_dims[i] = out_dim(i);
    g.order[order[i]] = i;
  }
  return g;
}

std::int64_t PermuteGeometry::numel() const {
  std::int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= in_dims[i];
  return n;
}

}  // namespace cadenza
