// Batch normalisation on the CPU over a tensor seen as (outer, channels, inner).
//
// Training: biased batch variance normalises; the running variance is updated with the
// unbiased one (PyTorch's convention). Sums are accumulated in double, one channel per
// thread, in a fixed order. saved_invstd = 1 / sqrt(var + eps) is what backward reads.
// The *_sums ops split the same functions at the channel sums, which synchronised
// batchnorm adds up over ranks in between (their per-channel math: batchnorm_math.hpp).
// With g.relu every op applies the fused ReLU: outputs are max(0, z), and the backward ops
// read the output y to pass dy only where y > 0.
#include <cmath>
#include <cstdint>
#include <utility>

#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/cpu/relu_mask.hpp"
#include "host/math/batchnorm_math.hpp"

namespace cadenza::cpu {
namespace {

std::int64_t offset(const BatchNormGeometry& g, int o, int c) {
  return (std::int64_t(o) * g.channels + c) * g.inner;
}

// Row (o, c) of the forward output a fused ReLU masks dy with, or null without one.
const float* relu_output_row(const BatchNormGeometry& g, const Tensor& y, int o, int c) {
  return g.relu ? y.f32() + offset(g, o, c) : nullptr;
}

// The gradient reaching the normalisation: dy, or with a fused ReLU dy where y > 0.
float upstream(const float* y_row, const float* dy_row, int i) {
  return y_row ? relu_masked(y_row[i], dy_row[i]) : dy_row[i];
}

// Channel c's sum of the upstream gradient and of it times xhat, in double, in a fixed order.
std::pair<double, double> gradient_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& y,
                                        const Tensor& dy, float mean, float invstd, int c) {
  double sum_dy = 0.0, sum_dy_xhat = 0.0;
  for (int o = 0; o < g.outer; ++o) {
    const float* xp = x.f32() + offset(g, o, c);
    const float* dp = dy.f32() + offset(g, o, c);
    const float* yp = relu_output_row(g, y, o, c);
    for (int i = 0; i < g.inner; ++i) {
      const float d = upstream(yp, dp, i);
      sum_dy += d;
      sum_dy_xhat += double(d) * ((xp[i] - mean) * invstd);
    }
  }
  return {sum_dy, sum_dy_xhat};
}

// Normalises channel c with its batch mean and sum of squared deviations over `count`
// values, and updates the running and saved statistics.
void normalize_channel(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma, const Tensor& beta, int c,
                       double mean, double squares, double count, Tensor& y, Tensor& running_mean,
                       Tensor& running_var, Tensor& saved_mean, Tensor& saved_invstd) {
  const float invstd = batchnorm_invstd(squares, count, g.eps);
  const float scale = gamma.f32()[c] * invstd;
  const float shift = beta.f32()[c] - static_cast<float>(mean) * scale;
  for (int o = 0; o < g.outer; ++o) {
    const float* p = x.f32() + offset(g, o, c);
    float* q = y.f32() + offset(g, o, c);
    for (int i = 0; i < g.inner; ++i) q[i] = batchnorm_output(g.relu, p[i] * scale + shift);
  }
  saved_mean.f32()[c] = static_cast<float>(mean);
  saved_invstd.f32()[c] = invstd;
  running_mean.f32()[c] = batchnorm_running(running_mean.f32()[c], mean, g.momentum);
  running_var.f32()[c] =
      batchnorm_running(running_var.f32()[c], batchnorm_unbiased_variance(squares, count), g.momentum);
}

void check(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma) {
  CADENZA_CHECK(x.numel() == std::int64_t(g.outer) * g.channels * g.inner,
                "batchnorm input " << x.shape().str());
  CADENZA_CHECK(gamma.numel() == g.channels, "batchnorm gamma " << gamma.shape().str());
}

}  // namespace

void batchnorm_forward_train(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                             const Tensor& beta, Tensor& y, Tensor& running_mean,
                             Tensor& running_var, Tensor& saved_mean, Tensor& saved_invstd) {
  check(g, x, gamma);
  const std::int64_t count = std::int64_t(g.outer) * g.inner;
  const float* in = x.f32();
#pragma omp parallel for schedule(static)
  for (int c = 0; c < g.channels; ++c) {
    double sum = 0.0;
    for (int o = 0; o < g.outer; ++o) {
      const float* p = in + offset(g, o, c);
      for (int i = 0; i < g.inner; ++i) sum += p[i];
    }
    const double mean = sum / double(count);
    double squares = 0.0;
    for (int o = 0; o < g.outer; ++o) {
      const float* p = in + offset(g, o, c);
      for (int i = 0; i < g.inner; ++i) squares += (p[i] - mean) * (p[i] - mean);
    }
    normalize_channel(g, x, gamma, beta, c, mean, squares, double(count), y, running_mean, running_var, saved_mean,
                      saved_invstd);
  }
}

void batchnorm_forward_inference(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                                 const Tensor& beta, const Tensor& running_mean,
                                 const Tensor& running_var, Tensor& y) {
  check(g, x, gamma);
  const float* in = x.f32();
  float* out = y.f32();
#pragma omp parallel for schedule(static)
  for (int c = 0; c < g.channels; ++c) {
    const float invstd = 1.0f / std::sqrt(running_var.f32()[c] + g.eps);
    const float scale = gamma.f32()[c] * invstd;
    const float shift = beta.f32()[c] - running_mean.f32()[c] * scale;
    for (int o = 0; o < g.outer; ++o) {
      const float* p = in + offset(g, o, c);
      float* q = out + offset(g, o, c);
      for (int i = 0; i < g.inner; ++i) q[i] = batchnorm_output(g.relu, p[i] * scale + shift);
    }
  }
}

// With xhat = (x - mean) invstd:  dbeta = sum dy,  dgamma = sum dy xhat,
// dx = gamma invstd / n (n dy - dbeta - xhat dgamma).
void batchnorm_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                        const Tensor& gamma, const Tensor& saved_mean, const Tensor& saved_invstd,
                        Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  check(g, x, gamma);
  const std::int64_t count = std::int64_t(g.outer) * g.inner;
  const bool want_dx = dx.defined();
#pragma omp parallel for schedule(static)
  for (int c = 0; c < g.channels; ++c) {
    const float mean = saved_mean.f32()[c];
    const float invstd = saved_invstd.f32()[c];
    const auto [sum_dy, sum_dy_xhat] = gradient_sums(g, x, y, dy, mean, invstd, c);
    dbeta.f32()[c] += static_cast<float>(sum_dy);
    dgamma.f32()[c] += static_cast<float>(sum_dy_xhat);
    if (!want_dx) continue;
    const float gamma_c = gamma.f32()[c], n = static_cast<float>(count);
    const float total_dy = static_cast<float>(sum_dy);
    const float total_dy_xhat = static_cast<float>(sum_dy_xhat);
    for (int o = 0; o < g.outer; ++o) {
      const float* xp = x.f32() + offset(g, o, c);
      const float* dp = dy.f32() + offset(g, o, c);
      const float* yp = relu_output_row(g, y, o, c);
      float* out = dx.f32() + offset(g, o, c);
      for (int i = 0; i < g.inner; ++i)
        out[i] = batchnorm_dx(gamma_c, invstd, n, upstream(yp, dp, i), (xp[i] - mean) * invstd, total_dy,
                              total_dy_xhat);
    }
  }
}

void batchnorm_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& sums, double count, Tensor& out) {
  CADENZA_CHECK(out.numel() == g.channels, "batchnorm_sums: out " << out.shape().str());
  const bool centred = sums.defined();
#pragma omp parallel for schedule(static)
  for (int c = 0; c < g.channels; ++c) {
    const double mean = centred ? double(sums.f32()[c]) / count : 0.0;
    double total = 0.0;
    for (int o = 0; o < g.outer; ++o) {
      const float* p = x.f32() + offset(g, o, c);
      for (int i = 0; i < g.inner; ++i) total += centred ? (p[i] - mean) * (p[i] - mean) : double(p[i]);
    }
    out.f32()[c] = static_cast<float>(total);
  }
}

void batchnorm_forward_from_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                 const Tensor& sums, const Tensor& squares, double count, Tensor& y,
                                 Tensor& running_mean, Tensor& running_var, Tensor& saved_mean,
                                 Tensor& saved_invstd) {
  check(g, x, gamma);
#pragma omp parallel for schedule(static)
  for (int c = 0; c < g.channels; ++c) {
    normalize_channel(g, x, gamma, beta, c, double(sums.f32()[c]) / count, squares.f32()[c], count, y, running_mean,
                      running_var, saved_mean, saved_invstd);
  }
}

void batchnorm_backward_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                             const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& sums, Tensor& dgamma,
                             Tensor& dbeta) {
  CADENZA_CHECK(sums.numel() == 2 * std::int64_t(g.channels), "batchnorm_backward_sums: sums " << sums.shape().str());
#pragma omp parallel for schedule(static)
  for (int c = 0; c < g.channels; ++c) {
    const auto [sum_dy, sum_dy_xhat] = gradient_sums(g, x, y, dy, saved_mean.f32()[c], saved_invstd.f32()[c], c);
    sums.f32()[c] = static_cast<float>(sum_dy);
    sums.f32()[g.channels + c] = static_cast<float>(sum_dy_xhat);
    dbeta.f32()[c] += static_cast<float>(sum_dy);
    dgamma.f32()[c] += static_cast<float>(sum_dy_xhat);
  }
}

void batchnorm_backward_from_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                                  const Tensor& gamma, const Tensor& saved_mean, const Tensor& saved_invstd,
                                  const Tensor& sums, double count, Tensor& dx) {
  check(g, x, gamma);
#pragma omp parallel for schedule(static)
  for (int c = 0; c < g.channels; ++c) {
    const float mean = saved_mean.f32()[c], invstd = saved_invstd.f32()[c];
    const float sum_dy = sums.f32()[c], sum_dy_xhat = sums.f32()[g.channels + c];
    for (int o = 0; o < g.outer; ++o) {
      const float* xp = x.f32() + offset(g, o, c);
      const float* dp = dy.f32() + offset(g, o, c);
      const float* yp = relu_output_row(g, y, o, c);
      float* out = dx.f32() + offset(g, o, c);
      for (int i = 0; i < g.inner; ++i)
        out[i] = batchnorm_dx(gamma.f32()[c], invstd, static_cast<float>(count), upstream(yp, dp, i),
                              (xp[i] - mean) * invstd, sum_dy, sum_dy_xhat);
    }
  }
}

}  // namespace cadenza::cpu
