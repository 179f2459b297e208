// Losses on one row of logits, fused with their gradient (CPU loops and CUDA kernels).
//
// Conventions (PyTorch's):
// - softmax cross-entropy: loss = -sum_k t'_k log_softmax(z)_k with
//   t' = (1 - smoothing) t + smoothing / K (torch.nn.CrossEntropyLoss(label_smoothing)).
//   Gradient: softmax(z) * sum(t') - t'.
// - sigmoid BCE: per element max(z, 0) - z y + log1p(exp(-|z|)) (never overflows);
//   gradient sigmoid(z) - y. A row's loss is the mean over its K elements, so the mean of
//   row losses equals torch.nn.BCEWithLogitsLoss() on the whole batch.
// The gradient written is grad_scale times the derivative of the row's loss.
#pragma once

#include <cmath>

#include "host/math/activation_math.hpp"
#include "host/math/hd.hpp"

namespace cadenza {

CADENZA_HD float smoothed_target(float target, float smoothing, int num_classes) {
  return (1.0f - smoothing) * target + smoothing / static_cast<float>(num_classes);
}

// Returns the row's loss; writes dlogits[k] when dlogits is not null.
CADENZA_HD float softmax_cross_entropy_row(const float* logits, const float* targets, int k,
                                           float smoothing, float grad_scale, float* dlogits) {
  float max_logit = logits[0];
  for (int i = 1; i < k; ++i) max_logit = fmaxf(max_logit, logits[i]);
  float sum_exp = 0.0f;
  for (int i = 0; i < k; ++i) sum_exp += expf(logits[i] - max_logit);
  const float log_sum_exp = max_logit + logf(sum_exp);
  float loss = 0.0f;
  float target_sum = 0.0f;
  for (int i = 0; i < k; ++i) {
    const float t = smoothed_target(targets[i], smoothing, k);
    loss -= t * (logits[i] - log_sum_exp);
    target_sum += t;
  }
  if (dlogits) {
    for (int i = 0; i < k; ++i) {
      const float softmax = expf(logits[i] - log_sum_exp);
      dlogits[i] = grad_scale * (softmax * target_sum - smoothed_target(targets[i], smoothing, k));
    }
  }
  return loss;
}

// The sigmoid activation's stable form (host/math/activation_math.hpp), one definition for both.
CADENZA_HD float sigmoid(float z) { return sigmoid_forward(z); }

CADENZA_HD float bce_with_logits(float z, float y) {
  return fmaxf(z, 0.0f) - z * y + log1pf(expf(-fabsf(z)));
}

// Returns the row's mean loss over k elements; writes dlogits when not null.
CADENZA_HD float sigmoid_bce_row(const float* logits, const float* targets, int k,
                                 float grad_scale, float* dlogits) {
  float sum = 0.0f;
  const float per_element_scale = grad_scale / static_cast<float>(k);
  for (int i = 0; i < k; ++i) {
    sum += bce_with_logits(logits[i], targets[i]);
    if (dlogits) dlogits[i] = per_element_scale * (sigmoid(logits[i]) - targets[i]);
  }
  return sum / static_cast<float>(k);
}

}  // namespace cadenza
