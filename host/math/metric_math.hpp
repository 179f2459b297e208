// Per-row math of evaluation (CPU loops and CUDA kernels): class scores from logits, the
// argmax that decides a prediction, the multiframe average of window scores per clip, and
// the per-example terms of the per-tag ranking metrics (ROC-AUC, average precision).
//
// Conventions: softmax scores for single-label data, sigmoid per tag for multi-label (the
// probabilities scikit-learn's metrics and the reports read); argmax takes the first of
// equal maxima, as numpy.argmax; a target >= 0.5 is a positive; a tag is predicted when its
// score >= the threshold.
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

// ---- Per-tag metrics (multi-label) -------------------------------------------------------

// Rows of the (kTagMetricRows, K) matrix the tag_metrics op writes, one column per tag.
enum TagMetricRow : int {
  kTagRocAuc = 0,          // sklearn roc_auc_score; NaN with one class present or a NaN score
  kTagAveragePrecision,    // sklearn average_precision_score; NaN without positives or with a NaN score
  kTagTruePositives,       // examples with score >= threshold and a positive target
  kTagPredictedPositives,  // examples with score >= threshold
  kTagPositives,           // examples with a positive target
  kTagNanScores,           // examples whose score is NaN
  kTagMetricRows
};

CADENZA_HD bool is_positive_target(float target) { return target >= 0.5f; }
CADENZA_HD bool predicted_positive(float score, float threshold) { return score >= threshold; }

// Where one score stands in a tag column of n examples (element i at scores[i * stride]):
// exact integer counts in double.
struct ColumnRank {
  double negatives_below = 0.0;
  double negatives_tied = 0.0;
  double positives_at_or_above = 0.0;
  double at_or_above = 0.0;
};

CADENZA_HD ColumnRank rank_in_column(const float* scores, const float* targets, int n, int stride, float score) {
  ColumnRank rank;
  for (int i = 0; i < n; ++i) {
    const float other = scores[static_cast<std::int64_t>(i) * stride];
    const bool positive = is_positive_target(targets[static_cast<std::int64_t>(i) * stride]);
    if (other >= score) {
      rank.at_or_above += 1.0;
      if (positive) rank.positives_at_or_above += 1.0;
    }
    if (!positive) {
      if (other < score) rank.negatives_below += 1.0;
      if (other == score) rank.negatives_tied += 1.0;
    }
  }
  return rank;
}

// A positive example's share of the Mann-Whitney sum: the negatives it outranks, a tied
// one counting 1/2 (sklearn's trapezoidal ROC-AUC with ties). A half-integer: exact in
// double, so the sum over positives does not depend on its order.
CADENZA_HD double roc_auc_term(const ColumnRank& rank) { return rank.negatives_below + 0.5 * rank.negatives_tied; }

// A positive example's share of average precision times the number of positives: the
// precision at its own score taken as the threshold. A group of g tied positives adds g
// times the group's precision, which is sklearn's (R_t - R_{t-1}) * P_t for that threshold.
CADENZA_HD double average_precision_term(const ColumnRank& rank) {
  return rank.positives_at_or_above / rank.at_or_above;
}

CADENZA_HD float roc_auc_from_terms(double term_sum, double positives, double negatives) {
  return positives > 0.0 && negatives > 0.0 ? static_cast<float>(term_sum / (positives * negatives)) : NAN;
}

CADENZA_HD float average_precision_from_terms(double term_sum, double positives) {
  return positives > 0.0 ? static_cast<float>(term_sum / positives) : NAN;
}

}  // namespace cadenza
