// Classification and tagging metrics, computed as scikit-learn computes them: accuracy,
// ROC-AUC and average precision (PR-AUC); the single-label classification report of a
// confusion matrix; multi-label precision, recall and binary accuracy at a score
// threshold; ROC and precision-recall curves for plotting.
//
// Invariants:
// - Matrices are row-major (n examples, k labels); a binary metric or curve reads one
//   column through `stride` (element i at ptr[i * stride]).
// - A label value >= 0.5 is positive, anything else negative (targets are 0/1).
// - Ties in scores are handled as scikit-learn does: roc_auc_binary counts a tied
//   positive/negative pair as half a correct ordering (the trapezoid over the ROC curve);
//   average_precision_binary and the curves group tied scores into one threshold. argmax
//   ties go to the lowest index (numpy.argmax).
// - Undefined values are NaN, never an exception: ROC-AUC with one class present, average
//   precision with no positives, accuracy of zero examples, any metric whose scores
//   contain NaN. Sorting makes each metric O(n log n).
// - Where scikit-learn's zero_division=0 applies (precision without predicted positives,
//   recall without positives, F1 with neither), the value is 0, not NaN.
#pragma once

#include <vector>

namespace cadenza {

// Fraction of the n rows whose highest score sits at the highest target entry (argmax of
// a one-hot row is its class). NaN when n == 0.
double accuracy(const float* scores, const float* targets, int n, int k);

// Area under the ROC curve of one column, as sklearn.metrics.roc_auc_score: the
// Mann-Whitney statistic (pairs ranked correctly, ties counting 1/2) over positives times
// negatives. NaN when all n labels are of one class.
double roc_auc_binary(const float* scores, const float* labels01, int n, int stride);

// Average precision of one column, as sklearn.metrics.average_precision_score: the sum
// over distinct score thresholds, from the highest, of (R_t - R_{t-1}) * P_t, with
// recall R and precision P of "score >= threshold". NaN when there are no positives.
double average_precision_binary(const float* scores, const float* labels01, int n,
                                int stride);

// Tag-wise metrics of an (n, k) score matrix against (n, k) multi-hot targets.
struct MacroAuc {
  // Unweighted means over the evaluated tags: those with both a positive and a negative
  // example among the n. NaN when no tag qualifies.
  double roc_auc = 0.0;
  double pr_auc = 0.0;
  int evaluated_tags = 0;
  int skipped_tags = 0;  // tags with a single class among the n examples
  // Each tag's roc_auc_binary and average_precision_binary (k each), skipped tags
  // included (ROC-AUC NaN; average precision NaN without positives, 1 with only positives).
  std::vector<double> per_tag_roc_auc;
  std::vector<double> per_tag_pr_auc;
};

// sklearn's roc_auc_score / average_precision_score with average="macro", except that a
// tag with one class present is skipped (and counted) instead of raising.
MacroAuc macro_roc_auc_pr_auc(const float* scores, const float* targets, int n, int k);

// ---- Single-label classification report ------------------------------------------------

// The (k, k) confusion matrix of argmax(scores) against argmax(targets), row = true class,
// column = predicted class, row-major: the counts cpu::accumulate_confusion adds up (same
// argmax), as sklearn.metrics.confusion_matrix(labels=range(k)) for finite scores.
std::vector<float> confusion_matrix(const float* scores, const float* targets, int n, int k);

// One line of sklearn's classification_report.
struct ReportRow {
  double precision = 0.0;
  double recall = 0.0;
  double f1 = 0.0;
  double support = 0.0;  // examples of the class (in the averages: of all classes)
};

// sklearn.metrics.classification_report(labels=range(k), output_dict=True,
// zero_division=0) of the examples a confusion matrix counts.
struct ClassificationReport {
  // Per class c: precision = tp / predicted as c, recall = tp / support, f1 = 2 tp /
  // (support + predicted as c); 0 where the denominator is 0 (zero_division=0).
  std::vector<ReportRow> classes;
  // Diagonal over all counted examples; NaN when the matrix counts none.
  double accuracy = 0.0;
  // Unweighted mean over all k classes, those without examples or predictions included.
  ReportRow macro_avg;
  // Mean weighted by support (the unweighted mean when no class has examples).
  ReportRow weighted_avg;
  // The (k, k) counts, and each row divided by its sum: the fractions of a class's
  // examples predicted as each class (confusion_matrix(normalize="true")). The row of a
  // class without examples is all 0, as sklearn writes it.
  std::vector<double> confusion;
  std::vector<double> normalized_confusion;
};

// The report of a (k, k) confusion matrix of counts (row = true class, column = predicted
// class, row-major), such as confusion_matrix() or the float matrix the device accumulates.
// Counts must be non-negative.
ClassificationReport classification_report(const float* confusion, int k);

// ---- Multi-label figures at a threshold --------------------------------------------------

// An (n, k) score matrix against (n, k) multi-hot targets, each score predicting its tag
// when score >= threshold.
struct ThresholdedTagMetrics {
  float threshold = 0.5f;
  // Fraction of the n * k entries whose prediction equals the target: Keras's
  // BinaryAccuracy, except that Keras predicts positive when score > threshold. NaN when
  // n == 0 or a score is NaN.
  double binary_accuracy = 0.0;
  // Per tag (k each), as sklearn precision_score / recall_score(average=None,
  // zero_division=0): 0 without predicted positives (precision) or without positives
  // (recall); NaN for a tag whose scores contain NaN.
  std::vector<double> precision;
  std::vector<double> recall;
  std::vector<int> support;  // positives per tag
};

ThresholdedTagMetrics thresholded_tag_metrics(const float* scores, const float* targets, int n,
                                              int k, float threshold);

// ---- The same figures from the device's per-tag matrix -----------------------------------

// macro_roc_auc_pr_auc and thresholded_tag_metrics of n examples, read from the
// (kTagMetricRows, k) matrix of the backends' tag_metrics op (host/math/metric_math.hpp's
// TagMetricRow): per-tag values in float, averages and ratios in double as above.
MacroAuc macro_auc_from_tag_metrics(const float* tag_metrics, int n, int k);
ThresholdedTagMetrics thresholded_from_tag_metrics(const float* tag_metrics, int n, int k, float threshold);

// ---- Curves ------------------------------------------------------------------------------

// sklearn.metrics.roc_curve(drop_intermediate=False) of one column: a first point at
// threshold +inf (nothing predicted positive), then one point per distinct score,
// descending, each for "score >= threshold". fpr is NaN throughout when there are no
// negatives and tpr when there are no positives (sklearn warns and does the same). Empty
// when a score is NaN (sklearn raises).
struct RocCurve {
  std::vector<double> fpr;
  std::vector<double> tpr;
  std::vector<double> thresholds;
};

RocCurve roc_curve(const float* scores, const float* labels01, int n, int stride);

// sklearn.metrics.precision_recall_curve (1.x, drop_intermediate=False) of one column: one
// point per distinct score in ascending order of threshold (recall descending), each for
// "score >= threshold", then a final point precision 1, recall 0 without a threshold, so
// thresholds has one element fewer than precision and recall. Without positives recall is
// 1 at every threshold, as sklearn sets it. Only the final point when n == 0; empty when a
// score is NaN (sklearn raises).
struct PrecisionRecallCurve {
  std::vector<double> precision;
  std::vector<double> recall;
  std::vector<double> thresholds;
};

PrecisionRecallCurve precision_recall_curve(const float* scores, const float* labels01, int n,
                                            int stride);

}  // namespace cadenza
