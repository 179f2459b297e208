// Per-row math of evaluation (CPU loops and CUDA kernels): class scores from logits and
// the argmax that decides a prediction.
//
// Conventions: softmax scores for single-label data, sigmoid per tag for multi-label (the
// probabilities scikit-learn's metrics and the reports read); argmax takes the first of
// equal maxima, as numpy.argmax.
#pragma once

#include <cmath>

#include "host/math/hd.hpp"
#include "host/math/loss_math.hpp"

namespace cadenza {

CADENZA_HD void softmax_row(const float* logits, int k, float* out) {
  float max_logit = logits[0];
  for (int i = 1; i < k; ++i) max_logit = fmaxf(max_logit, logits[i]);
  float sum = 0.0f;
  for (int i = 0; i < k; ++i) {
    out[i] = expf(logits[i] - max_logit);
    sum += out[i];
  }
  for (int i = 0; i < k; ++i) out[i] /= sum;
}

CADENZA_HD void sigmoid_row(const float* logits, int k, float* out) {
  for (int i = 0; i < k; ++i) out[i] = sigmoid(logits[i]);
}

CADENZA_HD int argmax_row(const float* values, int k) {
  int best = 0;
  for (int i = 1; i < k; ++i)
    if (values[i] > values[best]) best = i;
  return best;
}

}  // namespace cadenza
