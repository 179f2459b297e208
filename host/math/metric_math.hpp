// Per-row math of evaluation (CPU loops and CUDA kernels): class scores from logits, the
// argmax that decides a prediction, and the multiframe average of window scores per clip.
//
// Conventions: softmax scores for single-label data, sigmoid per tag for multi-label (the
// probabilities scikit-learn's metrics and the reports read); argmax takes the first of
// equal maxima, as numpy.argmax.
#pragma once

#include <cmath>
#include <cstdint>

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

// Multiframe evaluation: every clip has windows_per_clip consecutive windows, so window w
// belongs to clip row w / windows_per_clip and adds score / windows_per_clip to it (a
// division, as the mean over the clip's windows would be written, not a product with the
// reciprocal).
CADENZA_HD std::int64_t clip_of_window(std::int64_t window, int windows_per_clip) {
  return window / windows_per_clip;
}

CADENZA_HD float window_score_term(float score, int windows_per_clip) {
  return score / static_cast<float>(windows_per_clip);
}

}  // namespace cadenza
