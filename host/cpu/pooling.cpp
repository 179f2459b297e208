// Pooling on the CPU: 2-D max and average pooling over windows, and the mean over a
// trailing axis (global average pooling is mean_pool with inner = H*W).
//
// Max pooling's backward recomputes each window's winner (host/math/pooling_math.hpp),
// so no index buffer is stored; windows may overlap when stride < window, so gradients
// are added per input plane by one thread.
#include <cstring>

#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/pooling_math.hpp"

namespace cadenza::cpu {

void maxpool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y) {
  CADENZA_CHECK(x.numel() == std::int64_t(g.batch) * g.channels * g.in_h * g.in_w, "maxpool input");
  CADENZA_CHECK(y.numel() == std::int64_t(g.batch) * g.channels * g.out_h * g.out_w, "maxpool output");
  const int planes = g.batch * g.channels;
#pragma omp parallel for schedule(static)
  for (int p = 0; p < planes; ++p) {
    const float* plane = x.f32() + std::int64_t(p) * g.in_h * g.in_w;
    float* out = y.f32() + std::int64_t(p) * g.out_h * g.out_w;
    for (int oy = 0; oy < g.out_h; ++oy)
      for (int ox = 0; ox < g.out_w; ++ox) out[oy * g.out_w + ox] = plane[max_window_argmax(g, plane, oy, ox)];
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
    for (int oy = 0; oy < g.out_h; ++oy)
      for (int ox = 0; ox < g.out_w; ++ox)
        grad_in[max_window_argmax(g, plane, oy, ox)] += grad_out[oy * g.out_w + ox];
  }
}

void mean_pool_forward(int outer, int inner, const Tensor& x, Tensor& y) {
  CADENZA_CHECK(x.numel() == std::int64_t(outer) * inner && y.numel() == outer, "mean_pool sizes");
#pragma omp parallel for schedule(static)
  for (int o = 0; o < outer; ++o) {
    const float* row = x.f32() + std::int64_t(o) * inner;
    double sum = 0.0;
    for (int i = 0; i < inner; ++i) sum += row[i];
    y.f32()[o] = static_cast<float>(sum / inner);
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
