// Dense (fully connected) layer on the CPU: SGEMMs on (B, in) x (out, in)^T.
#include <cblas.h>

#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"

namespace cadenza::cpu {

void dense_forward(const DenseGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                   Tensor& y) {
  CADENZA_CHECK(x.numel() == std::int64_t(g.batch) * g.in_features, "dense input " << x.shape().str());
  CADENZA_CHECK(w.shape() == (Shape{g.out_features, g.in_features}), "dense weight " << w.shape().str());
  CADENZA_CHECK(y.numel() == std::int64_t(g.batch) * g.out_features, "dense output " << y.shape().str());
  float* out = y.f32();
  const bool has_bias = bias.defined();
  if (has_bias) {
    for (int b = 0; b < g.batch; ++b)
      for (int o = 0; o < g.out_features; ++o) out[std::int64_t(b) * g.out_features + o] = bias.f32()[o];
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.batch, g.out_features, g.in_features,
              1.0f, x.f32(), g.in_features, w.f32(), g.in_features, has_bias ? 1.0f : 0.0f, out,
              g.out_features);
}

void dense_backward(const DenseGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy,
                    Tensor& dx, Tensor& dw, Tensor& dbias) {
  CADENZA_CHECK(dy.numel() == std::int64_t(g.batch) * g.out_features &&
                    dw.shape() == (Shape{g.out_features, g.in_features}),
                "dense gradient " << dy.shape().str() << ", " << dw.shape().str());
  // dw (out, in) += dy^T (out, B) x (B, in)
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g.out_features, g.in_features, g.batch,
              1.0f, dy.f32(), g.out_features, x.f32(), g.in_features, 1.0f, dw.f32(),
              g.in_features);
  if (dbias.defined()) {
    for (int o = 0; o < g.out_features; ++o) {
      float sum = 0.0f;
      for (int b = 0; b < g.batch; ++b) sum += dy.f32()[std::int64_t(b) * g.out_features + o];
      dbias.f32()[o] += sum;
    }
  }
  if (dx.defined()) {
    // dx (B, in) = dy (B, out) w (out, in)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.batch, g.in_features,
                g.out_features, 1.0f, dy.f32(), g.out_features, w.f32(), g.in_features, 0.0f,
                dx.f32(), g.in_features);
  }
}

}  // namespace cadenza::cpu
