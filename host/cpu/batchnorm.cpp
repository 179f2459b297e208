// Batch normalisation on the CPU over a tensor seen as (outer, channels, inner).
//
// Training: biased batch variance normalises; the running variance is updated with the
// unbiased one (PyTorch's convention). Sums are accumulated in double, one channel per
// thread, in lane_sum.hpp's fixed order. saved_invstd = 1 / sqrt(var + eps) is what
// backward reads.
// The *_sums ops split the same functions at the channel sums, which synchronised
// batchnorm adds up over ranks in between (their per-channel math: batchnorm_math.hpp).
// With g.relu every op applies the fused ReLU: outputs are max(0, z), and the backward ops
// read the output y to pass dy only where y > 0.
#include <cmath>
#include <cstdint>
#include <utility>

#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/cpu/lane_sum.hpp"
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

// Channel c's sums of the upstream gradient d (dy, or with a fused ReLU dy where y > 0)
// and of d times xhat, in double.
std::pair<double, double> gradient_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& y,
                                        const Tensor& dy, float mean, float invstd, int c) {
  const auto terms = [mean, invstd](const Float8& upstream, const Float8& x_block) {
    const Double8 d = widen(upstream);
    return std::array<Double8, 2>{d, d * widen((x_block - mean) * invstd)};
  };
  LaneSum sums[2];
  for (int o = 0; o < g.outer; ++o) {
    const float* xp = x.f32() + offset(g, o, c);
    const float* dp = dy.f32() + offset(g, o, c);
    if (g.relu)
      add_rows<3, 2>({xp, dp, y.f32() + offset(g, o, c)}, g.inner, sums, [&](const std::array<Float8, 3>& in) {
        return terms(masked_where_positive(in[2], in[1]), in[0]);
      });
    else
      add_rows<2, 2>({xp, dp}, g.inner, sums,
                     [&](const std::array<Float8, 2>& in) { return terms(in[1], in[0]); });
  }
  return {sums[0].total(), sums[1].total()};
}

// Channel c's sum of x, or with `centre` its sum of (x - mean)^2, in double.
double channel_sum(const BatchNormGeometry& g, const float* x, int c, const double* centre) {
  LaneSum sum;
  for (int o = 0; o < g.outer; ++o) {
    const float* p = x + offset(g, o, c);
    if (!centre) {
      add_row(p, g.inner, sum);
      continue;
    }
    add_rows<1, 1>({p}, g.inner, &sum, [mean = *centre](const std::array<Float8, 1>& in) {
      const Double8 deviation = widen(in[0]) - mean;
      return std::array<Double8, 1>{deviation * deviation};
    });
  }
  return sum.total();
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
    const double mean = channel_sum(g, in, c, nullptr) / double(count);
    const double squares = channel_sum(g, in, c, &mean);
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
    out.f32()[c] = static_cast<float>(channel_sum(g, x.f32(), c, centred ? &mean : nullptr));
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
