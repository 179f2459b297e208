// Evaluation accumulators on the CPU: class scores, the confusion matrix, running sums,
// the multiframe clip scores and the per-tag metrics; the per-row math is
// host/math/metric_math.hpp's. The per-tag ranking metrics sort each column once
// (classification_metrics.hpp, checked against scikit-learn), where the CUDA kernel ranks
// every example against its column; both count ties as scikit-learn does.
#include <cmath>

#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/metric_math.hpp"
#include "host/metrics/classification_metrics.hpp"

namespace cadenza::cpu {

void output_scores(bool multi_label, const Tensor& logits, Tensor& scores) {
  CADENZA_CHECK(logits.shape().rank() == 2 && scores.shape() == logits.shape(),
                "output_scores: logits " << logits.shape().str() << ", scores " << scores.shape().str());
  const int rows = static_cast<int>(logits.dim(0)), k = static_cast<int>(logits.dim(1));
  for (int r = 0; r < rows; ++r) {
    const float* in = logits.f32() + std::int64_t(r) * k;
    float* out = scores.f32() + std::int64_t(r) * k;
    if (multi_label)
      sigmoid_row(in, k, out);
    else
      softmax_row(in, k, out);
  }
}

void accumulate_confusion(const Tensor& scores, const Tensor& targets, int count, Tensor& confusion) {
  CADENZA_CHECK(scores.shape().rank() == 2 && targets.shape() == scores.shape() && count >= 0 &&
                    count <= scores.dim(0),
                "accumulate_confusion: scores " << scores.shape().str() << ", targets "
                                                << targets.shape().str() << ", count " << count);
  const int k = static_cast<int>(scores.dim(1));
  CADENZA_CHECK(confusion.numel() == std::int64_t(k) * k, "accumulate_confusion: confusion " << confusion.shape().str());
  for (int r = 0; r < count; ++r) {
    const int truth = argmax_row(targets.f32() + std::int64_t(r) * k, k);
    const int predicted = argmax_row(scores.f32() + std::int64_t(r) * k, k);
    confusion.f32()[truth * k + predicted] += 1.0f;
  }
}

void tag_metrics(const Tensor& scores, const Tensor& targets, int count, float threshold, Tensor& metrics) {
  CADENZA_CHECK(scores.shape().rank() == 2 && targets.shape() == scores.shape() && count >= 0 &&
                    count <= scores.dim(0),
                "tag_metrics: scores " << scores.shape().str() << ", targets " << targets.shape().str()
                                       << ", count " << count);
  const int k = static_cast<int>(scores.dim(1));
  CADENZA_CHECK(metrics.shape() == Shape({std::int64_t(kTagMetricRows), k}),
                "tag_metrics: metrics " << metrics.shape().str() << " for " << k << " tags");
  float* out = metrics.f32();
  for (int tag = 0; tag < k; ++tag) {
    const float* column = scores.f32() + tag;
    const float* labels = targets.f32() + tag;
    out[kTagRocAuc * k + tag] = static_cast<float>(roc_auc_binary(column, labels, count, k));
    out[kTagAveragePrecision * k + tag] = static_cast<float>(average_precision_binary(column, labels, count, k));
    float true_positives = 0.0f, predicted = 0.0f, positives = 0.0f, nan_scores = 0.0f;
    for (int i = 0; i < count; ++i) {
      nan_scores += std::isnan(column[std::int64_t(i) * k]);
      const bool is_predicted = predicted_positive(column[std::int64_t(i) * k], threshold);
      const bool is_positive = is_positive_target(labels[std::int64_t(i) * k]);
      true_positives += is_predicted && is_positive;
      predicted += is_predicted;
      positives += is_positive;
    }
    out[kTagTruePositives * k + tag] = true_positives;
    out[kTagPredictedPositives * k + tag] = predicted;
    out[kTagPositives * k + tag] = positives;
    out[kTagNanScores * k + tag] = nan_scores;
  }
}

void accumulate_sum(const Tensor& values, int count, Tensor& sum) {
  CADENZA_CHECK(count >= 0 && count <= values.numel() && sum.numel() == 1,
                "accumulate_sum: " << count << " of " << values.shape().str());
  float total = sum.f32()[0];
  for (int i = 0; i < count; ++i) total += values.f32()[i];
  sum.f32()[0] = total;
}

void accumulate_window_scores(const Tensor& scores, std::int64_t first_window, int count, int windows_per_clip,
                              Tensor& clip_scores) {
  CADENZA_CHECK(scores.shape().rank() == 2 && count >= 0 && count <= scores.dim(0) && first_window >= 0 &&
                    windows_per_clip >= 1,
                "accumulate_window_scores: scores " << scores.shape().str() << ", first_window " << first_window
                                                    << ", count " << count << ", windows_per_clip "
                                                    << windows_per_clip);
  const int k = static_cast<int>(scores.dim(1));
  CADENZA_CHECK(clip_scores.shape().rank() == 2 && clip_scores.dim(1) == k,
                "accumulate_window_scores: clip_scores " << clip_scores.shape().str() << " for scores "
                                                         << scores.shape().str());
  if (count == 0) return;
  const std::int64_t last_clip = clip_of_window(first_window + count - 1, windows_per_clip);
  CADENZA_CHECK(last_clip < clip_scores.dim(0), "accumulate_window_scores: window "
                                                    << first_window + count - 1 << " is in clip " << last_clip
                                                    << ", clip_scores " << clip_scores.shape().str());
  // Rows in window order: each clip row receives its windows' terms in that order.
  for (int r = 0; r < count; ++r) {
    const float* in = scores.f32() + std::int64_t(r) * k;
    float* out = clip_scores.f32() + clip_of_window(first_window + r, windows_per_clip) * k;
    for (int j = 0; j < k; ++j) out[j] += window_score_term(in[j], windows_per_clip);
  }
}

}  // namespace cadenza::cpu
