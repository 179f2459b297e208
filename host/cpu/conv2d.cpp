// conv2d on the CPU: im2col + one SGEMM per image (BLAS), col2im for the input gradient.
//
// Layouts: x (N, Cin, H, W), w (Cout, Cin, kh, kw) = a (Cout, Cin*kh*kw) matrix,
// y (N, Cout, Ho, Wo). The workspace holds one image's column matrix
// (Cin*kh*kw, Ho*Wo). Images are processed in order, so the += into dw and dbias sums in a
// fixed order.
#include <cblas.h>

#include <cstring>

#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"

namespace cadenza::cpu {
namespace {

std::int64_t column_rows(const Conv2dGeometry& g) {
  return std::int64_t(g.in_channels) * g.kernel_h * g.kernel_w;
}
std::int64_t output_pixels(const Conv2dGeometry& g) { return std::int64_t(g.out_h) * g.out_w; }

// col[(c*kh + i)*kw + j][oy*Wo + ox] = x[c][oy*sh - pt + i*dh][ox*sw - pl + j*dw], 0 outside.
void im2col(const Conv2dGeometry& g, const float* image, float* col) {
  const int rows = static_cast<int>(column_rows(g));
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; ++r) {
    const int c = r / (g.kernel_h * g.kernel_w);
    const int i = (r / g.kernel_w) % g.kernel_h;
    const int j = r % g.kernel_w;
    const float* channel = image + std::int64_t(c) * g.in_h * g.in_w;
    float* out = col + std::int64_t(r) * output_pixels(g);
    for (int oy = 0; oy < g.out_h; ++oy) {
      const int iy = oy * g.stride_h - g.pad_top + i * g.dilation_h;
      float* out_row = out + std::int64_t(oy) * g.out_w;
      if (iy < 0 || iy >= g.in_h) {
        std::memset(out_row, 0, sizeof(float) * g.out_w);
        continue;
      }
      const float* in_row = channel + std::int64_t(iy) * g.in_w;
      for (int ox = 0; ox < g.out_w; ++ox) {
        const int ix = ox * g.stride_w - g.pad_left + j * g.dilation_w;
        out_row[ox] = (ix >= 0 && ix < g.in_w) ? in_row[ix] : 0.0f;
      }
    }
  }
}

// The adjoint of im2col: image = sum of the column entries that read each pixel.
// Parallel over channels: each channel's pixels are written by one thread only.
void col2im(const Conv2dGeometry& g, const float* col, float* image) {
  std::memset(image, 0, sizeof(float) * g.in_channels * g.in_h * g.in_w);
#pragma omp parallel for schedule(static)
  for (int c = 0; c < g.in_channels; ++c) {
    float* channel = image + std::int64_t(c) * g.in_h * g.in_w;
    for (int i = 0; i < g.kernel_h; ++i) {
      for (int j = 0; j < g.kernel_w; ++j) {
        const int r = (c * g.kernel_h + i) * g.kernel_w + j;
        const float* in = col + std::int64_t(r) * output_pixels(g);
        for (int oy = 0; oy < g.out_h; ++oy) {
          const int iy = oy * g.stride_h - g.pad_top + i * g.dilation_h;
          if (iy < 0 || iy >= g.in_h) continue;
          float* row = channel + std::int64_t(iy) * g.in_w;
          const float* in_row = in + std::int64_t(oy) * g.out_w;
          for (int ox = 0; ox < g.out_w; ++ox) {
            const int ix = ox * g.stride_w - g.pad_left + j * g.dilation_w;
            if (ix >= 0 && ix < g.in_w) row[ix] += in_row[ox];
          }
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

}  // namespace

std::size_t conv2d_workspace_bytes(const Conv2dGeometry& g) {
  return static_cast<std::size_t>(column_rows(g) * output_pixels(g)) * sizeof(float);
}

void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                    Tensor& y, Tensor& workspace) {
  check_shapes(g, x, w, y);
  CADENZA_CHECK(workspace.bytes() >= conv2d_workspace_bytes(g), "conv2d workspace too small");
  const std::int64_t k = column_rows(g), p = output_pixels(g);
  float* col = static_cast<float*>(workspace.raw());
  for (int n = 0; n < g.batch; ++n) {
    const float* image = x.f32() + n * std::int64_t(g.in_channels) * g.in_h * g.in_w;
    float* out = y.f32() + n * std::int64_t(g.out_channels) * p;
    im2col(g, image, col);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.out_channels, static_cast<int>(p),
                static_cast<int>(k), 1.0f, w.f32(), static_cast<int>(k), col,
                static_cast<int>(p), 0.0f, out, static_cast<int>(p));
    if (bias.defined()) {
      const float* b = bias.f32();
      for (int c = 0; c < g.out_channels; ++c) {
        float* plane = out + c * p;
        for (std::int64_t i = 0; i < p; ++i) plane[i] += b[c];
      }
    }
  }
}

void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy,
                     Tensor& dx, Tensor& dw, Tensor& dbias, Tensor& workspace) {
  check_shapes(g, x, w, dy);
  CADENZA_CHECK(workspace.bytes() >= conv2d_workspace_bytes(g), "conv2d workspace too small");
  const std::int64_t k = column_rows(g), p = output_pixels(g);
  float* col = static_cast<float*>(workspace.raw());
  const bool want_dx = dx.defined();
  const bool want_dbias = dbias.defined();
  for (int n = 0; n < g.batch; ++n) {
    const float* image = x.f32() + n * std::int64_t(g.in_channels) * g.in_h * g.in_w;
    const float* grad_out = dy.f32() + n * std::int64_t(g.out_channels) * p;
    // dw (Cout, k) += dy_n (Cout, p) * col^T (p, k)
    im2col(g, image, col);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.out_channels, static_cast<int>(k),
                static_cast<int>(p), 1.0f, grad_out, static_cast<int>(p), col,
                static_cast<int>(p), 1.0f, dw.f32(), static_cast<int>(k));
    if (want_dbias) {
      float* db = dbias.f32();
      for (int c = 0; c < g.out_channels; ++c) {
        const float* plane = grad_out + c * p;
        float sum = 0.0f;
        for (std::int64_t i = 0; i < p; ++i) sum += plane[i];
        db[c] += sum;
      }
    }
    if (want_dx) {
      // dcol (k, p) = w^T (k, Cout) * dy_n (Cout, p), then scattered back to pixels.
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(k),
                  static_cast<int>(p), g.out_channels, 1.0f, w.f32(), static_cast<int>(k),
                  grad_out, static_cast<int>(p), 0.0f, col, static_cast<int>(p));
      col2im(g, col, dx.f32() + n * std::int64_t(g.in_channels) * g.in_h * g.in_w);
    }
  }
}

}  // namespace cadenza::cpu
