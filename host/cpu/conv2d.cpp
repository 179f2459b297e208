// conv2d on the CPU: im2col + SGEMM (BLAS) on tiles of output rows, col2im for the input
// gradient.
//
// Layouts: x (N, Cin, H, W), w (Cout, Cin, kh, kw) = a (Cout, K) matrix with K =
// Cin*kh*kw, y (N, Cout, Ho, Wo).
//
// Speed: an image's whole column matrix (K, Ho*Wo) is tens of MB for a spectrogram, so it
// is built one tile of output rows at a time, a tile's columns fitting in a core's L2 cache
// (kTileBytes) while the GEMM reads them. Threads take whole work items (an image's tile,
// an image, a group of images) and run single-threaded GEMMs on them — OpenBLAS's OpenMP
// build runs one thread inside a parallel region — instead of splitting each small GEMM
// over every thread and meeting at a barrier after each.
//
// Workspace: the weight-gradient partial sums of kMaxGroups groups of images, then one slot
// per thread holding a column tile and a column-gradient tile. The number of slots is the
// thread count it was sized for; a call uses at most that many threads.
//
// A fused ReLU (g.relu) is applied to each output tile while it is in cache, and in
// backward each dy tile is masked in place by the output just before its GEMMs read it.
//
// Invariants: every floating-point sum runs in an order that depends on the geometry
// alone, never on the thread count: each output element's dot product is one GEMM's; dw is
// the sum, in group order, of per-group partials, each summing its images in order;
// dbias sums each channel's images in order, in double (lane_sum.hpp). So 1 and N threads give the same bits.
#include <omp.h>

#include <algorithm>
#include <cblas.h>
#include <cstring>
#include <utility>

#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/cpu/lane_sum.hpp"
#include "host/cpu/relu_mask.hpp"
#include "host/math/activation_math.hpp"

namespace cadenza::cpu {
namespace {

// A tile's column matrix: sized for a quarter of a 2 MiB L2, leaving room for the GEMM's
// packed weights and outputs.
constexpr std::size_t kTileBytes = 512 * 1024;
// The weight gradient is summed over at most this many groups of images at once.
constexpr int kMaxGroups = 8;

struct Plan {
  std::int64_t k = 0, pixels = 0;  // GEMM inner size K; output pixels per image Ho*Wo
  int tile_rows = 0, tiles = 0;    // output rows per tile; tiles per image
  std::int64_t tile_floats = 0;    // K * tile_rows * Wo
  int groups = 0;                  // weight-gradient groups of images
  std::size_t partial_bytes = 0, slot_bytes = 0;
};

Plan plan_for(const Conv2dGeometry& g) {
  Plan p;
  p.k = std::int64_t(g.in_channels) * g.kernel_h * g.kernel_w;
  p.pixels = std::int64_t(g.out_h) * g.out_w;
  const std::size_t row_bytes = static_cast<std::size_t>(p.k * g.out_w) * sizeof(float);
  p.tile_rows = static_cast<int>(std::clamp<std::size_t>(kTileBytes / std::max<std::size_t>(row_bytes, 1), 1,
                                                         static_cast<std::size_t>(g.out_h)));
  p.tiles = (g.out_h + p.tile_rows - 1) / p.tile_rows;
  p.tile_floats = p.k * p.tile_rows * g.out_w;
  p.groups = std::min(g.batch, kMaxGroups);
  p.partial_bytes = static_cast<std::size_t>(p.groups) * g.out_channels * p.k * sizeof(float);
  p.slot_bytes = 2 * static_cast<std::size_t>(p.tile_floats) * sizeof(float);
  return p;
}

// The output columns [begin, end) whose input column ox * stride_w + offset lies inside
// the image, for the kernel column at `offset` (j * dilation_w - pad_left).
std::pair<int, int> columns_inside(const Conv2dGeometry& g, int offset) {
  int begin = 0, end = g.out_w;
  while (begin < g.out_w && begin * g.stride_w + offset < 0) ++begin;
  while (end > begin && (end - 1) * g.stride_w + offset >= g.in_w) --end;
  return {begin, end};
}

// col[(c*kh + i)*kw + j][(oy - first_row)*Wo + ox] = x[c][oy*sh - pt + i*dh][ox*sw - pl + j*dw]
// for oy in [first_row, first_row + rows), 0 outside the image.
void im2col_tile(const Conv2dGeometry& g, const float* image, int first_row, int rows, float* col) {
  const std::int64_t k = std::int64_t(g.in_channels) * g.kernel_h * g.kernel_w;
  const std::int64_t tile_pixels = std::int64_t(rows) * g.out_w;
  for (std::int64_t r = 0; r < k; ++r) {
    const int c = static_cast<int>(r / (g.kernel_h * g.kernel_w));
    const int i = static_cast<int>((r / g.kernel_w) % g.kernel_h);
    const int j = static_cast<int>(r % g.kernel_w);
    const float* channel = image + std::int64_t(c) * g.in_h * g.in_w;
    float* out = col + r * tile_pixels;
    const int offset = j * g.dilation_w - g.pad_left;
    const auto [ox_begin, ox_end] = columns_inside(g, offset);
    for (int row = 0; row < rows; ++row) {
      const int iy = (first_row + row) * g.stride_h - g.pad_top + i * g.dilation_h;
      float* out_row = out + std::int64_t(row) * g.out_w;
      if (iy < 0 || iy >= g.in_h) {
        std::memset(out_row, 0, sizeof(float) * g.out_w);
        continue;
      }
      const float* in_row = channel + std::int64_t(iy) * g.in_w + offset;
      for (int ox = 0; ox < ox_begin; ++ox) out_row[ox] = 0.0f;
      if (g.stride_w == 1) {
        std::memcpy(out_row + ox_begin, in_row + ox_begin, sizeof(float) * (ox_end - ox_begin));
      } else {
        for (int ox = ox_begin; ox < ox_end; ++ox) out_row[ox] = in_row[ox * g.stride_w];
      }
      for (int ox = ox_end; ox < g.out_w; ++ox) out_row[ox] = 0.0f;
    }
  }
}

// The adjoint of im2col_tile: adds each column entry of the tile into the pixel it read.
void col2im_tile(const Conv2dGeometry& g, const float* col, int first_row, int rows, float* image) {
  const std::int64_t tile_pixels = std::int64_t(rows) * g.out_w;
  for (int c = 0; c < g.in_channels; ++c) {
    float* channel = image + std::int64_t(c) * g.in_h * g.in_w;
    for (int i = 0; i < g.kernel_h; ++i) {
      for (int j = 0; j < g.kernel_w; ++j) {
        const std::int64_t r = (std::int64_t(c) * g.kernel_h + i) * g.kernel_w + j;
        const float* in = col + r * tile_pixels;
        const int offset = j * g.dilation_w - g.pad_left;
        const auto [ox_begin, ox_end] = columns_inside(g, offset);
        for (int row = 0; row < rows; ++row) {
          const int iy = (first_row + row) * g.stride_h - g.pad_top + i * g.dilation_h;
          if (iy < 0 || iy >= g.in_h) continue;
          float* out_row = channel + std::int64_t(iy) * g.in_w + offset;
          const float* in_row = in + std::int64_t(row) * g.out_w;
          for (int ox = ox_begin; ox < ox_end; ++ox) out_row[ox * g.stride_w] += in_row[ox];
        }
      }
    }
  }
}

void check_shapes(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& y_like) {
  CADENZA_CHECK(x.shape() == (Shape{g.batch, g.in_channels, g.in_h, g.in_w}),
                "conv2d input " << x.shape().str());
  CADENZA_CHECK(w.shape() == (Shape{g.out_channels, g.in_channels, g.kernel_h, g.kernel_w}),
                "conv2d weight " << w.shape().str());
  CADENZA_CHECK(y_like.shape() == (Shape{g.batch, g.out_channels, g.out_h, g.out_w}),
                "conv2d output " << y_like.shape().str());
}

// The threads a call may use: the slots its workspace holds, at most OpenMP's count.
int usable_threads(const Plan& p, const Tensor& workspace) {
  CADENZA_CHECK(workspace.bytes() >= p.partial_bytes + p.slot_bytes, "conv2d workspace too small");
  const auto slots = static_cast<int>((workspace.bytes() - p.partial_bytes) / p.slot_bytes);
  return std::max(1, std::min(slots, omp_get_max_threads()));
}

float* slot_of(const Plan& p, Tensor& workspace, int thread) {
  return reinterpret_cast<float*>(static_cast<char*>(workspace.raw()) + p.partial_bytes +
                                  static_cast<std::size_t>(thread) * p.slot_bytes);
}

}  // namespace

std::size_t conv2d_workspace_bytes(const Conv2dGeometry& g, int threads) {
  const Plan p = plan_for(g);
  return p.partial_bytes + static_cast<std::size_t>(std::max(threads, 1)) * p.slot_bytes;
}

void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                    Tensor& y, Tensor& workspace) {
  check_shapes(g, x, w, y);
  const Plan p = plan_for(g);
  const int threads = usable_threads(p, workspace);
  const std::int64_t items = std::int64_t(g.batch) * p.tiles;
  const std::int64_t image_floats = std::int64_t(g.in_channels) * g.in_h * g.in_w;
  const int k = static_cast<int>(p.k), pixels = static_cast<int>(p.pixels);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::int64_t item = 0; item < items; ++item) {
    const int n = static_cast<int>(item / p.tiles), tile = static_cast<int>(item % p.tiles);
    const int first_row = tile * p.tile_rows, rows = std::min(p.tile_rows, g.out_h - first_row);
    const int tile_pixels = rows * g.out_w;
    float* col = slot_of(p, workspace, omp_get_thread_num());
    im2col_tile(g, x.f32() + n * image_floats, first_row, rows, col);
    float* out = y.f32() + (std::int64_t(n) * g.out_channels * p.pixels + std::int64_t(first_row) * g.out_w);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.out_channels, tile_pixels, k, 1.0f, w.f32(), k, col,
                tile_pixels, 0.0f, out, pixels);
    for (int c = 0; c < g.out_channels && (bias.defined() || g.relu); ++c) {
      float* row = out + std::int64_t(c) * p.pixels;
      if (bias.defined()) {
        const float b = bias.f32()[c];
        for (int i = 0; i < tile_pixels; ++i) row[i] += b;
      }
      if (g.relu)
        for (int i = 0; i < tile_pixels; ++i) row[i] = relu_forward(row[i]);
    }
  }
}

void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& y, Tensor& dy,
                     Tensor& dx, Tensor& dw, Tensor& dbias, Tensor& workspace) {
  check_shapes(g, x, w, dy);
  if (g.relu) CADENZA_CHECK(y.shape() == dy.shape(), "conv2d with a fused relu: output " << y.shape().str());
  const Plan p = plan_for(g);
  const int threads = usable_threads(p, workspace);
  const std::int64_t image_floats = std::int64_t(g.in_channels) * g.in_h * g.in_w;
  const std::int64_t out_floats = std::int64_t(g.out_channels) * p.pixels;
  const int k = static_cast<int>(p.k), pixels = static_cast<int>(p.pixels);
  const bool want_dx = dx.defined();
  float* partials = static_cast<float*>(workspace.raw());
  const std::int64_t dw_floats = std::int64_t(g.out_channels) * p.k;

  // Group `group` holds images [group * batch / groups, (group + 1) * batch / groups): its
  // weight-gradient partial sums their tiles in order; the input gradient of each of its
  // images is written whole by the same thread.
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int group = 0; group < p.groups; ++group) {
    float* slot = slot_of(p, workspace, omp_get_thread_num());
    float* col = slot;
    float* dcol = slot + p.tile_floats;
    float* partial = partials + group * dw_floats;
    bool first = true;
    const int begin = group * g.batch / p.groups, end = (group + 1) * g.batch / p.groups;
    for (int n = begin; n < end; ++n) {
      const float* image = x.f32() + n * image_floats;
      float* grad_out = dy.f32() + n * out_floats;
      float* grad_in = want_dx ? dx.f32() + n * image_floats : nullptr;
      if (want_dx) std::memset(grad_in, 0, sizeof(float) * image_floats);
      for (int tile = 0; tile < p.tiles; ++tile) {
        const int first_row = tile * p.tile_rows, rows = std::min(p.tile_rows, g.out_h - first_row);
        const int tile_pixels = rows * g.out_w;
        float* grad_tile = grad_out + std::int64_t(first_row) * g.out_w;
        if (g.relu) {
          const float* out = y.f32() + n * out_floats + std::int64_t(first_row) * g.out_w;
          for (int c = 0; c < g.out_channels; ++c)
            for (int i = 0; i < tile_pixels; ++i)
              grad_tile[c * p.pixels + i] = relu_masked(out[c * p.pixels + i], grad_tile[c * p.pixels + i]);
        }
        // partial (Cout, K) += dy_tile (Cout, tile) * col^T (tile, K)
        im2col_tile(g, image, first_row, rows, col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.out_channels, k, tile_pixels, 1.0f, grad_tile,
                    pixels, col, tile_pixels, first ? 0.0f : 1.0f, partial, k);
        first = false;
        if (want_dx) {
          // dcol (K, tile) = w^T (K, Cout) * dy_tile (Cout, tile), scattered back to pixels.
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, tile_pixels, g.out_channels, 1.0f, w.f32(), k,
                      grad_tile, pixels, 0.0f, dcol, tile_pixels);
          col2im_tile(g, dcol, first_row, rows, grad_in);
        }
      }
    }
  }

  // The bias gradient from the (masked) dy.
  if (dbias.defined()) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int c = 0; c < g.out_channels; ++c) {
      LaneSum sum;
      for (int n = 0; n < g.batch; ++n) add_row(dy.f32() + n * out_floats + std::int64_t(c) * p.pixels, p.pixels, sum);
      dbias.f32()[c] += static_cast<float>(sum.total());
    }
  }

#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::int64_t i = 0; i < dw_floats; ++i) {
    float sum = dw.f32()[i];
    for (int group = 0; group < p.groups; ++group) sum += partials[group * dw_floats + i];
    dw.f32()[i] = sum;
  }
}

}  // namespace cadenza::cpu
