// Adam/AdamW, SGD and gradient-norm clipping on the CPU over flat parameter buffers; the
// per-element math is host/math/optimizer_math.hpp's, the per-step constants the step
// values'.
#include <algorithm>
#include <cmath>
#include <vector>

#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/optimizer_math.hpp"
#include "host/ops/step_values.hpp"

namespace cadenza::cpu {

void adam_step(const AdamHyper& h, const Tensor& step_values, Tensor& params, const Tensor& grads,
               Tensor& m, Tensor& v) {
  CADENZA_CHECK(params.numel() == grads.numel() && m.numel() == params.numel() &&
                    v.numel() == params.numel(),
                "adam buffer sizes");
  const AdamStepConstants c = adam_step_constants(h, read_step_values(step_values, "adam_step"));
  const std::int64_t n = params.numel();
  float* p = params.f32();
  const float* g = grads.f32();
  float* mp = m.f32();
  float* vp = v.f32();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) adam_update(c, p[i], g[i], mp[i], vp[i]);
}

void sgd_step(const SgdHyper& h, const Tensor& step_values, Tensor& params, const Tensor& grads,
              Tensor& momentum_buffer) {
  CADENZA_CHECK(params.numel() == grads.numel() && momentum_buffer.numel() == params.numel(),
                "sgd buffer sizes");
  const StepValues& values = read_step_values(step_values, "sgd_step");
  const float lr = values.lr;
  const bool first = values.first_step != 0;
  const std::int64_t n = params.numel();
  float* p = params.f32();
  const float* g = grads.f32();
  float* b = momentum_buffer.f32();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i)
    sgd_update(lr, h.momentum, h.weight_decay, h.nesterov, first, p[i], g[i], b[i]);
}

// Partial sums over fixed chunks (whatever the thread count), added in chunk order.
void clip_gradient_norm(float max_norm, Tensor& grads, Tensor& total_norm) {
  CADENZA_CHECK(total_norm.numel() == 1, "clip_gradient_norm: total_norm has one element");
  // kChunks fixed runs of the gradient, each summed by one thread, then in order: the
  // same bits on any thread count, and no allocation.
  constexpr std::int64_t kChunks = 64;
  const std::int64_t n = grads.numel();
  const std::int64_t chunk = (n + kChunks - 1) / kChunks;
  double partial[kChunks] = {};
  float* g = grads.f32();
#pragma omp parallel for schedule(static)
  for (std::int64_t c = 0; c < kChunks; ++c) {
    double sum = 0.0;
    for (std::int64_t i = c * chunk; i < std::min(n, (c + 1) * chunk); ++i) sum += double(g[i]) * g[i];
    partial[c] = sum;
  }
  double squares = 0.0;
  for (double p : partial) squares += p;
  const double norm = std::sqrt(squares);
  total_norm.f32()[0] = static_cast<float>(norm);
  const float coefficient = clip_coefficient(norm, max_norm);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) g[i] *= coefficient;
}

}  // namespace cadenza::cpu
