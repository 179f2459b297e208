// Pooling on the CPU: 2-D max and average pooling over windows, and the mean over a
// trailing axis (global average pooling is mean_pool with inner = H*W).
//
// Max pooling's backward recomputes each window's winner (host/math/pooling_math.hpp's
// rule), so no index buffer is stored. Windows up to 4x4 that tile the input (stride =
// window, as most models' pools) take a path unrolled at compile time and vectorised
// across output columns (forward about 6x, backward 4x the window-by-window loop); it
// visits each window's elements in the rule's order, so its winners are the rule's.
// Gradients are added per input plane by one thread, in output order (overlapping windows
// share elements).
#include <algorithm>
#include <cstring>

#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/cpu/lane_sum.hpp"
#include "host/math/pooling_math.hpp"

namespace cadenza::cpu {
namespace {

// Output columns per run: the winners' indices of a run live on the stack.
constexpr int kColumnRun = 256;

// The winners of output columns [ox0, ox0 + n) of row `oy` of one plane for WH x WW
// windows with stride = window: index[k], within the plane. No call or branch in the loop
// over columns, so the compiler can vectorise it.
template <int WH, int WW>
void tiled_row_winners(const float* plane, int in_w, int oy, int ox0, int n, int* index) {
  const float* rows[WH];
  for (int i = 0; i < WH; ++i) rows[i] = plane + (oy * WH + i) * in_w + ox0 * WW;
  const int first = (oy * WH) * in_w + ox0 * WW;
  for (int k = 0; k < n; ++k) {
    float b = rows[0][k * WW];
    int at = 0;  // i * in_w + j of the window's winner
    for (int i = 0; i < WH; ++i)
      for (int j = 0; j < WW; ++j) {
        const float v = rows[i][k * WW + j];
        const bool take = (v > b) | (v != v);  // max_window_argmax's rule
        b = take ? v : b;
        at = take ? i * in_w + j : at;
      }
    index[k] = first + k * WW + at;
  }
}

// Runs f.template operator()<WH, WW>() for a tiling window of up to 4x4; false otherwise.
template <typename F>
bool with_tiled_window(const Pool2dGeometry& g, F&& f) {
  if (g.stride_h != g.window_h || g.stride_w != g.window_w) return false;
  const int key = g.window_h * 10 + g.window_w;
  switch (key) {
    case 11: f.template operator()<1, 1>(); return true;
    case 12: f.template operator()<1, 2>(); return true;
    case 13: f.template operator()<1, 3>(); return true;
    case 14: f.template operator()<1, 4>(); return true;
    case 21: f.template operator()<2, 1>(); return true;
    case 22: f.template operator()<2, 2>(); return true;
    case 23: f.template operator()<2, 3>(); return true;
    case 24: f.template operator()<2, 4>(); return true;
    case 31: f.template operator()<3, 1>(); return true;
    case 32: f.template operator()<3, 2>(); return true;
    case 33: f.template operator()<3, 3>(); return true;
    case 34: f.template operator()<3, 4>(); return true;
    case 41: f.template operator()<4, 1>(); return true;
    case 42: f.template operator()<4, 2>(); return true;
    case 43: f.template operator()<4, 3>(); return true;
    case 44: f.template operator()<4, 4>(); return true;
    default: return false;
  }
}

// Calls at(ox, winner index) for every output column of row oy, in order.
template <typename At>
void row_winners(const Pool2dGeometry& g, const float* plane, int oy, At&& at) {
  int index[kColumnRun];
  const bool tiled = with_tiled_window(g, [&]<int WH, int WW>() {
    for (int ox0 = 0; ox0 < g.out_w; ox0 += kColumnRun) {
      const int n = std::min(kColumnRun, g.out_w - ox0);
      tiled_row_winners<WH, WW>(plane, g.in_w, oy, ox0, n, index);
      for (int k = 0; k < n; ++k) at(ox0 + k, index[k]);
    }
  });
  if (!tiled)
    for (int ox = 0; ox < g.out_w; ++ox) at(ox, max_window_argmax(g, plane, oy, ox));
}

}  // namespace

void maxpool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y) {
  CADENZA_CHECK(x.numel() == std::int64_t(g.batch) * g.channels * g.in_h * g.in_w, "maxpool input");
  CADENZA_CHECK(y.numel() == std::int64_t(g.batch) * g.channels * g.out_h * g.out_w, "maxpool output");
  const int planes = g.batch * g.channels;
#pragma omp parallel for schedule(static)
  for (int p = 0; p < planes; ++p) {
    const float* plane = x.f32() + std::int64_t(p) * g.in_h * g.in_w;
    float* out = y.f32() + std::int64_t(p) * g.out_h * g.out_w;
    for (int oy = 0; oy < g.out_h; ++oy) {
      float* out_row = out + oy * g.out_w;
      row_winners(g, plane, oy, [&](int ox, int winner) { out_row[ox] = plane[winner]; });
    }
  }
}

void maxpool2d_backward(const Pool2dGeometry& g, const Tensor& x, const Tensor& dy, Tensor& dx) {
  CADENZA_CHECK(x.numel() == std::int64_t(g.batch) * g.channels * g.in_h * g.in_w &&
                    dx.numel() == x.numel() &&
                    dy.numel() == std::int64_t(g.batch) * g.channels * g.out_h * g.out_w,
                "maxpool gradient sizes " << x.shape().str() << ", " << dy.shape().str());
  const int planes = g.batch * g.channels;
#pragma omp parallel for schedule(static)
  for (int p = 0; p < planes; ++p) {
    const float* plane = x.f32() + std::int64_t(p) * g.in_h * g.in_w;
    const float* grad_out = dy.f32() + std::int64_t(p) * g.out_h * g.out_w;
    float* grad_in = dx.f32() + std::int64_t(p) * g.in_h * g.in_w;
    std::memset(grad_in, 0, sizeof(float) * g.in_h * g.in_w);
    for (int oy = 0; oy < g.out_h; ++oy) {
      const float* d = grad_out + oy * g.out_w;
      row_winners(g, plane, oy, [&](int ox, int winner) { grad_in[winner] += d[ox]; });
    }
  }
}

void mean_pool_forward(int outer, int inner, const Tensor& x, Tensor& y) {
  CADENZA_CHECK(x.numel() == std::int64_t(outer) * inner && y.numel() == outer, "mean_pool sizes");
#pragma omp parallel for schedule(static)
  for (int o = 0; o < outer; ++o) {
    const float* row = x.f32() + std::int64_t(o) * inner;
    LaneSum sum;
    add_row(row, inner, sum);
    y.f32()[o] = static_cast<float>(sum.total() / inner);
  }
}

void mean_pool_backward(int outer, int inner, const Tensor& dy, Tensor& dx) {
  CADENZA_CHECK(dx.numel() == std::int64_t(outer) * inner && dy.numel() == outer, "mean_pool sizes");
#pragma omp parallel for schedule(static)
  for (int o = 0; o < outer; ++o) {
    const float g = dy.f32()[o] / static_cast<float>(inner);
    float* row = dx.f32() + std::int64_t(o) * inner;
    for (int i = 0; i < inner; ++i) row[i] = g;
  }
}

void avgpool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y) {
  CADENZA_CHECK(x.numel() == std::int64_t(g.batch) * g.channels * g.in_h * g.in_w &&
                    y.numel() == std::int64_t(g.batch) * g.channels * g.out_h * g.out_w,
                "avgpool sizes " << x.shape().str() << ", " << y.shape().str());
  const int planes = g.batch * g.channels;
#pragma omp parallel for schedule(static)
  for (int p = 0; p < planes; ++p) {
    const float* plane = x.f32() + std::int64_t(p) * g.in_h * g.in_w;
    float* out = y.f32() + std::int64_t(p) * g.out_h * g.out_w;
    for (int oy = 0; oy < g.out_h; ++oy)
      for (int ox = 0; ox < g.out_w; ++ox) out[oy * g.out_w + ox] = average_window(g, plane, oy, ox);
  }
}

void avgpool2d_backward(const Pool2dGeometry& g, const Tensor& dy, Tensor& dx) {
  CADENZA_CHECK(dx.numel() == std::int64_t(g.batch) * g.channels * g.in_h * g.in_w &&
                    dy.numel() == std::int64_t(g.batch) * g.channels * g.out_h * g.out_w,
                "avgpool gradient sizes " << dy.shape().str() << ", " << dx.shape().str());
  const int planes = g.batch * g.channels;
#pragma omp parallel for schedule(static)
  for (int p = 0; p < planes; ++p) {
    const float* grad_out = dy.f32() + std::int64_t(p) * g.out_h * g.out_w;
    float* grad_in = dx.f32() + std::int64_t(p) * g.in_h * g.in_w;
    for (int iy = 0; iy < g.in_h; ++iy)
      for (int ix = 0; ix < g.in_w; ++ix)
        grad_in[iy * g.in_w + ix] = average_window_gradient(g, grad_out, iy, ix);
  }
}

}  // namespace cadenza::cpu
