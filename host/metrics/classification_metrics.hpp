// Classification and tagging metrics: accuracy, ROC-AUC and average precision (PR-AUC),
// computed as scikit-learn computes them.
//
// Invariants:
// - Matrices are row-major (n examples, k labels); a binary metric reads one column
//   through `stride` (element i at ptr[i * stride]).
// - A label value >= 0.5 is positive, anything else negative (targets are 0/1).
// - Ties in scores are handled as scikit-learn does: roc_auc_binary counts a tied
//   positive/negative pair as half a correct ordering (the trapezoid over the ROC curve);
//   average_precision_binary groups tied scores into one threshold. argmax ties go to the
//   lowest index (numpy.argmax).
// - Undefined values are NaN, never an exception: ROC-AUC with one class present, average
//   precision with no positives, accuracy of zero examples, any metric whose scores
//   contain NaN. Sorting makes each metric O(n log n).
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

}  // namespace cadenza
