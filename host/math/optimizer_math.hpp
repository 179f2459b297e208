// Optimizer updates of one parameter element (CPU loops and the fused CUDA kernel).
//
// The arithmetic follows torch.optim's single-tensor implementations so that a run can be
// compared with PyTorch step by step:
// - Adam:  g += wd p (L2, unless decoupled); AdamW: p *= 1 - lr wd.
//          m += (1 - b1) (g - m);  v = b2 v + (1 - b2) g^2;
//          p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
// - SGD:   g += wd p; buf = g on the first step, else momentum buf + g;
//          g = nesterov ? g + momentum buf : buf;  p -= lr g.
// Bias corrections depend only on the step, so they are computed once per step, on the
// host, with set_adam_bias_corrections, and reach the updates through the step values.
#pragma once

#include <cmath>
#include <cstdint>

#include "host/math/hd.hpp"

namespace cadenza {

struct AdamStepConstants {
  float lr, beta1, beta2, eps, weight_decay;
  bool decoupled_weight_decay;
  float step_size;              // lr / (1 - beta1^t)
  float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};

// Sets c.step_size and c.bias_correction2_sqrt for step `step` (>= 1) from c.lr, c.beta1
// and c.beta2, the powers in double. Host only (not CADENZA_HD): the CPU loop and the CUDA
// kernel both take these two floats from here, so they use the same constants.
inline void set_adam_bias_corrections(AdamStepConstants& c, std::int64_t step) {
  c.step_size = c.lr / static_cast<float>(1.0 - std::pow(double(c.beta1), double(step)));
  c.bias_correction2_sqrt =
      static_cast<float>(std::sqrt(1.0 - std::pow(double(c.beta2), double(step))));
}

CADENZA_HD void adam_update(const AdamStepConstants& c, float& param, float grad, float& m,
                            float& v) {
  if (c.weight_decay != 0.0f) {
    if (c.decoupled_weight_decay)
      param *= 1.0f - c.lr * c.weight_decay;
    else
      grad += c.weight_decay * param;
  }
  m += (1.0f - c.beta1) * (grad - m);  // torch: exp_avg.lerp_(grad, 1 - beta1)
  v = c.beta2 * v + (1.0f - c.beta2) * grad * grad;
  const float denom = sqrtf(v) / c.bias_correction2_sqrt + c.eps;
  param -= c.step_size * m / denom;
}

// Gradient-norm clipping as torch.nn.utils.clip_grad_norm_: every gradient is multiplied
// by min(1, max_norm / (total_norm + 1e-6)), total_norm being the 2-norm of all of them.
CADENZA_HD float clip_coefficient(double total_norm, float max_norm) {
  const double coefficient = double(max_norm) / (total_norm + 1e-6);
  return coefficient < 1.0 ? static_cast<float>(coefficient) : 1.0f;
}

CADENZA_HD void sgd_update(float lr, float momentum, float weight_decay, bool nesterov,
                           bool first_step, float& param, float grad, float& buffer) {
  if (weight_decay != 0.0f) grad += weight_decay * param;
  if (momentum != 0.0f) {
    buffer = first_step ? grad : momentum * buffer + grad;
    grad = nesterov ? grad + momentum * buffer : buffer;
  }
  param -= lr * grad;
}

}  // namespace cadenza
