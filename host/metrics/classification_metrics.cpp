// Classification and tagging metrics (see classification_metrics.hpp).
//
// The binary metrics and the curves sort the column once by descending score and walk
// groups of equal scores (one threshold each); counts are exact integers in double, so
// the only rounding is in the final divisions (and, in the report's averages, the sums of
// per-class values, added in class order).
#include "host/metrics/classification_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "host/core/error.hpp"
#include "host/math/metric_math.hpp"

namespace cadenza {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct ScoredLabel {
  float score = 0.0f;
  bool positive = false;
};

// The column sorted by descending score; false (and no column) when a score is NaN.
bool sorted_by_descending_score(const float* scores, const float* labels01, int n, int stride,
                                std::vector<ScoredLabel>& column) {
  CADENZA_CHECK(n >= 0 && stride >= 1, "n " << n << ", stride " << stride);
  column.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const std::size_t at = static_cast<std::size_t>(i) * stride;
    if (std::isnan(scores[at])) return false;
    column[i] = {scores[at], is_positive_target(labels01[at])};
  }
  std::sort(column.begin(), column.end(),
            [](const ScoredLabel& a, const ScoredLabel& b) { return a.score > b.score; });
  return true;
}

// Calls visit(score, positives, negatives) for each group of equal scores, highest score
// first.
template <typename Visit>
void for_each_tie_group(const std::vector<ScoredLabel>& column, Visit visit) {
  for (std::size_t begin = 0; begin < column.size();) {
    double positives = 0.0;
    double negatives = 0.0;
    std::size_t end = begin;
    for (; end < column.size() && column[end].score == column[begin].score; ++end) {
      (column[end].positive ? positives : negatives) += 1.0;
    }
    visit(column[begin].score, positives, negatives);
    begin = end;
  }
}

// sklearn's confusion_matrix_at_thresholds: for each distinct score, highest first, the
// positives and negatives scoring at least that much.
struct CountsAtThresholds {
  std::vector<double> thresholds;
  std::vector<double> true_positives;
  std::vector<double> false_positives;
};

CountsAtThresholds counts_at_thresholds(const std::vector<ScoredLabel>& column) {
  CountsAtThresholds counts;
  double true_positives = 0.0;
  double false_positives = 0.0;
  for_each_tie_group(column, [&](float score, double positives, double negatives) {
    true_positives += positives;
    false_positives += negatives;
    counts.thresholds.push_back(score);
    counts.true_positives.push_back(true_positives);
    counts.false_positives.push_back(false_positives);
  });
  return counts;
}

// count / total, or 0 when total is 0 (sklearn's zero_division=0).
double ratio_or_zero(double count, double total) { return total > 0.0 ? count / total : 0.0; }

// The per-tag values and counts the multi-label figures are made of: the rows of the
// tag_metrics matrix, each of k tags.
struct TagColumns {
  explicit TagColumns(int k)
      : roc_auc(std::size_t(k)), average_precision(std::size_t(k)), true_positives(std::size_t(k)),
        predicted_positives(std::size_t(k)), positives(std::size_t(k)), nan_scores(std::size_t(k)) {}
  TagColumns(const float* tag_metrics, int k) : TagColumns(k) {
    auto row = [&](int r, std::vector<double>& out) {
      std::copy_n(tag_metrics + std::size_t(r) * k, k, out.begin());
    };
    row(kTagRocAuc, roc_auc);
    row(kTagAveragePrecision, average_precision);
    row(kTagTruePositives, true_positives);
    row(kTagPredictedPositives, predicted_positives);
    row(kTagPositives, positives);
    row(kTagNanScores, nan_scores);
  }
  std::vector<double> roc_auc, average_precision, true_positives, predicted_positives, positives, nan_scores;
};

MacroAuc macro_of_tags(TagColumns tags, int n) {
  MacroAuc result;
  double roc_sum = 0.0;
  double pr_sum = 0.0;
  for (std::size_t tag = 0; tag < tags.positives.size(); ++tag) {
    if (tags.positives[tag] == 0.0 || tags.positives[tag] == n) {
      ++result.skipped_tags;
      continue;
    }
    ++result.evaluated_tags;
    roc_sum += tags.roc_auc[tag];
    pr_sum += tags.average_precision[tag];
  }
  result.roc_auc = result.evaluated_tags > 0 ? roc_sum / result.evaluated_tags : kNaN;
  result.pr_auc = result.evaluated_tags > 0 ? pr_sum / result.evaluated_tags : kNaN;
  result.per_tag_roc_auc = std::move(tags.roc_auc);
  result.per_tag_pr_auc = std::move(tags.average_precision);
  return result;
}

// Precision, recall and support per tag, and the binary accuracy: an entry is right when
// its prediction equals its target, so a tag has n - predicted - positives + 2 * tp right.
ThresholdedTagMetrics thresholded_of_tags(const TagColumns& tags, int n, float threshold) {
  const std::size_t k = tags.positives.size();
  ThresholdedTagMetrics metrics;
  metrics.threshold = threshold;
  metrics.precision.resize(k);
  metrics.recall.resize(k);
  metrics.support.resize(k);
  double correct = 0.0;
  bool any_nan = false;
  for (std::size_t tag = 0; tag < k; ++tag) {
    const bool tag_has_nan = tags.nan_scores[tag] > 0.0;
    const double true_positives = tags.true_positives[tag];
    metrics.support[tag] = static_cast<int>(tags.positives[tag]);
    metrics.precision[tag] = tag_has_nan ? kNaN : ratio_or_zero(true_positives, tags.predicted_positives[tag]);
    metrics.recall[tag] = tag_has_nan ? kNaN : ratio_or_zero(true_positives, tags.positives[tag]);
    correct += n - tags.predicted_positives[tag] - tags.positives[tag] + 2.0 * true_positives;
    any_nan = any_nan || tag_has_nan;
  }
  metrics.binary_accuracy = n > 0 && !any_nan ? correct / (static_cast<double>(n) * double(k)) : kNaN;
  return metrics;
}

}  // namespace

double accuracy(const float* scores, const float* targets, int n, int k) {
  CADENZA_CHECK(n >= 0 && k >= 1, "n " << n << ", k " << k);
  if (n == 0) return kNaN;
  const std::size_t size = static_cast<std::size_t>(n) * k;
  if (std::any_of(scores, scores + size, [](float s) { return std::isnan(s); })) return kNaN;
  int correct = 0;
  for (int i = 0; i < n; ++i) {
    const std::size_t row = static_cast<std::size_t>(i) * k;
    correct += argmax_row(scores + row, k) == argmax_row(targets + row, k);
  }
  return static_cast<double>(correct) / n;
}

double roc_auc_binary(const float* scores, const float* labels01, int n, int stride) {
  std::vector<ScoredLabel> column;
  if (!sorted_by_descending_score(scores, labels01, n, stride, column)) return kNaN;
  // Walking down from the highest score, each positive outranks every negative below it
  // and ties with the negatives of its own group (worth 1/2 each).
  double total_negatives = 0.0;
  for (const ScoredLabel& s : column) total_negatives += s.positive ? 0.0 : 1.0;
  const double total_positives = static_cast<double>(n) - total_negatives;
  if (total_positives == 0.0 || total_negatives == 0.0) return kNaN;
  double negatives_at_or_above = 0.0;
  double correctly_ordered_pairs = 0.0;
  for_each_tie_group(column, [&](float, double positives, double negatives) {
    negatives_at_or_above += negatives;
    const double negatives_below = total_negatives - negatives_at_or_above;
    correctly_ordered_pairs += positives * (negatives_below + 0.5 * negatives);
  });
  return correctly_ordered_pairs / (total_positives * total_negatives);
}

double average_precision_binary(const float* scores, const float* labels01, int n,
                                int stride) {
  std::vector<ScoredLabel> column;
  if (!sorted_by_descending_score(scores, labels01, n, stride, column)) return kNaN;
  double total_positives = 0.0;
  for (const ScoredLabel& s : column) total_positives += s.positive ? 1.0 : 0.0;
  if (total_positives == 0.0) return kNaN;
  double true_positives = 0.0;
  double false_positives = 0.0;
  double average_precision = 0.0;
  for_each_tie_group(column, [&](float, double positives, double negatives) {
    true_positives += positives;
    false_positives += negatives;
    const double recall_gain = positives / total_positives;
    average_precision += recall_gain * (true_positives / (true_positives + false_positives));
  });
  return average_precision;
}

MacroAuc macro_roc_auc_pr_auc(const float* scores, const float* targets, int n, int k) {
  CADENZA_CHECK(n >= 0 && k >= 1, "n " << n << ", k " << k);
  TagColumns tags(k);
  for (int tag = 0; tag < k; ++tag) {
    tags.roc_auc[tag] = roc_auc_binary(scores + tag, targets + tag, n, k);
    tags.average_precision[tag] = average_precision_binary(scores + tag, targets + tag, n, k);
    for (int i = 0; i < n; ++i) tags.positives[tag] += is_positive_target(targets[static_cast<std::size_t>(i) * k + tag]);
  }
  return macro_of_tags(std::move(tags), n);
}

std::vector<float> confusion_matrix(const float* scores, const float* targets, int n, int k) {
  CADENZA_CHECK(n >= 0 && k >= 1, "n " << n << ", k " << k);
  std::vector<float> confusion(static_cast<std::size_t>(k) * k, 0.0f);
  for (int i = 0; i < n; ++i) {
    const std::size_t row = static_cast<std::size_t>(i) * k;
    const int truth = argmax_row(targets + row, k);
    const int predicted = argmax_row(scores + row, k);
    confusion[static_cast<std::size_t>(truth) * k + predicted] += 1.0f;
  }
  return confusion;
}

ClassificationReport classification_report(const float* confusion, int k) {
  CADENZA_CHECK(k >= 1, "k " << k);
  const std::size_t classes = static_cast<std::size_t>(k);
  ClassificationReport report;
  report.confusion.assign(confusion, confusion + classes * classes);
  std::vector<double> predicted(classes, 0.0);
  report.classes.resize(classes);
  for (std::size_t truth = 0; truth < classes; ++truth) {
    for (std::size_t guess = 0; guess < classes; ++guess) {
      const double count = report.confusion[truth * classes + guess];
      CADENZA_CHECK(count >= 0.0, "confusion count " << count << " at (" << truth << ", "
                                                     << guess << ")");
      report.classes[truth].support += count;
      predicted[guess] += count;
    }
  }

  report.normalized_confusion.resize(classes * classes);
  double total = 0.0;
  double diagonal = 0.0;
  ReportRow weighted_sums;
  for (std::size_t c = 0; c < classes; ++c) {
    ReportRow& row = report.classes[c];
    const double true_positives = report.confusion[c * classes + c];
    row.precision = ratio_or_zero(true_positives, predicted[c]);
    row.recall = ratio_or_zero(true_positives, row.support);
    row.f1 = ratio_or_zero(2.0 * true_positives, row.support + predicted[c]);
    for (std::size_t guess = 0; guess < classes; ++guess) {
      report.normalized_confusion[c * classes + guess] =
          ratio_or_zero(report.confusion[c * classes + guess], row.support);
    }
    total += row.support;
    diagonal += true_positives;
    report.macro_avg.precision += row.precision;
    report.macro_avg.recall += row.recall;
    report.macro_avg.f1 += row.f1;
    weighted_sums.precision += row.precision * row.support;
    weighted_sums.recall += row.recall * row.support;
    weighted_sums.f1 += row.f1 * row.support;
  }
  report.accuracy = total > 0.0 ? diagonal / total : kNaN;
  report.macro_avg.precision /= k;
  report.macro_avg.recall /= k;
  report.macro_avg.f1 /= k;
  report.macro_avg.support = total;
  // sklearn falls back to the unweighted mean when all weights are zero.
  report.weighted_avg = total > 0.0 ? ReportRow{weighted_sums.precision / total,
                                                weighted_sums.recall / total,
                                                weighted_sums.f1 / total, total}
                                    : report.macro_avg;
  return report;
}

ThresholdedTagMetrics thresholded_tag_metrics(const float* scores, const float* targets, int n,
                                              int k, float threshold) {
  CADENZA_CHECK(n >= 0 && k >= 1, "n " << n << ", k " << k);
  TagColumns tags(k);
  for (int tag = 0; tag < k; ++tag) {
    for (int i = 0; i < n; ++i) {
      const std::size_t at = static_cast<std::size_t>(i) * k + tag;
      const bool predicted = predicted_positive(scores[at], threshold);
      const bool positive = is_positive_target(targets[at]);
      tags.nan_scores[tag] += std::isnan(scores[at]);
      tags.positives[tag] += positive;
      tags.predicted_positives[tag] += predicted;
      tags.true_positives[tag] += predicted && positive;
    }
  }
  return thresholded_of_tags(tags, n, threshold);
}

MacroAuc macro_auc_from_tag_metrics(const float* tag_metrics, int n, int k) {
  CADENZA_CHECK(n >= 0 && k >= 1, "n " << n << ", k " << k);
  return macro_of_tags(TagColumns(tag_metrics, k), n);
}

ThresholdedTagMetrics thresholded_from_tag_metrics(const float* tag_metrics, int n, int k, float threshold) {
  CADENZA_CHECK(n >= 0 && k >= 1, "n " << n << ", k " << k);
  return thresholded_of_tags(TagColumns(tag_metrics, k), n, threshold);
}

RocCurve roc_curve(const float* scores, const float* labels01, int n, int stride) {
  std::vector<ScoredLabel> column;
  RocCurve curve;
  if (!sorted_by_descending_score(scores, labels01, n, stride, column)) return curve;
  const CountsAtThresholds counts = counts_at_thresholds(column);
  const double total_positives =
      counts.true_positives.empty() ? 0.0 : counts.true_positives.back();
  const double total_negatives =
      counts.false_positives.empty() ? 0.0 : counts.false_positives.back();
  const std::size_t points = counts.thresholds.size() + 1;
  curve.thresholds.reserve(points);
  curve.fpr.reserve(points);
  curve.tpr.reserve(points);
  curve.thresholds.push_back(std::numeric_limits<double>::infinity());
  curve.fpr.push_back(total_negatives > 0.0 ? 0.0 : kNaN);
  curve.tpr.push_back(total_positives > 0.0 ? 0.0 : kNaN);
  for (std::size_t t = 0; t < counts.thresholds.size(); ++t) {
    curve.thresholds.push_back(counts.thresholds[t]);
    curve.fpr.push_back(total_negatives > 0.0 ? counts.false_positives[t] / total_negatives
                                              : kNaN);
    curve.tpr.push_back(total_positives > 0.0 ? counts.true_positives[t] / total_positives
                                              : kNaN);
  }
  return curve;
}

PrecisionRecallCurve precision_recall_curve(const float* scores, const float* labels01, int n,
                                            int stride) {
  std::vector<ScoredLabel> column;
  PrecisionRecallCurve curve;
  if (!sorted_by_descending_score(scores, labels01, n, stride, column)) return curve;
  const CountsAtThresholds counts = counts_at_thresholds(column);
  const double total_positives =
      counts.true_positives.empty() ? 0.0 : counts.true_positives.back();
  const std::size_t thresholds = counts.thresholds.size();
  curve.thresholds.reserve(thresholds);
  curve.precision.reserve(thresholds + 1);
  curve.recall.reserve(thresholds + 1);
  // Lowest threshold first: the reverse of the descending walk.
  for (std::size_t t = thresholds; t-- > 0;) {
    const double true_positives = counts.true_positives[t];
    curve.thresholds.push_back(counts.thresholds[t]);
    curve.precision.push_back(true_positives / (true_positives + counts.false_positives[t]));
    curve.recall.push_back(total_positives > 0.0 ? true_positives / total_positives : 1.0);
  }
  curve.precision.push_back(1.0);
  curve.recall.push_back(0.0);
  return curve;
}

}  // namespace cadenza
