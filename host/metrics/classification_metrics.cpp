// Accuracy, ROC-AUC and average precision (see classification_metrics.hpp).
//
// The binary metrics sort the column once by descending score and walk groups of equal
// scores (one threshold each); counts are exact integers in double, so the only rounding
// is in the final divisions.
#include "host/metrics/classification_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "host/core/error.hpp"

namespace cadenza {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct ScoredLabel {
  float score = 0.0f;
  bool positive = false;
};

bool is_positive(float label) { return label >= 0.5f; }

// The column sorted by descending score; false (and no column) when a score is NaN.
bool sorted_by_descending_score(const float* scores, const float* labels01, int n, int stride,
                                std::vector<ScoredLabel>& column) {
  CADENZA_CHECK(n >= 0 && stride >= 1, "n " << n << ", stride " << stride);
  column.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const std::size_t at = static_cast<std::size_t>(i) * stride;
    if (std::isnan(scores[at])) return false;
    column[i] = {scores[at], is_positive(labels01[at])};
  }
  std::sort(column.begin(), column.end(),
            [](const ScoredLabel& a, const ScoredLabel& b) { return a.score > b.score; });
  return true;
}

// Calls visit(positives, negatives) for each group of equal scores, highest score first.
template <typename Visit>
void for_each_tie_group(const std::vector<ScoredLabel>& column, Visit visit) {
  for (std::size_t begin = 0; begin < column.size();) {
    double positives = 0.0;
    double negatives = 0.0;
    std::size_t end = begin;
    for (; end < column.size() && column[end].score == column[begin].score; ++end) {
      (column[end].positive ? positives : negatives) += 1.0;
    }
    visit(positives, negatives);
    begin = end;
  }
}

int argmax_row(const float* row, int k) {
  int best = 0;
  for (int j = 1; j < k; ++j) {
    if (row[j] > row[best]) best = j;
  }
  return best;
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
  for_each_tie_group(column, [&](double positives, double negatives) {
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
  for_each_tie_group(column, [&](double positives, double negatives) {
    true_positives += positives;
    false_positives += negatives;
    const double recall_gain = positives / total_positives;
    average_precision += recall_gain * (true_positives / (true_positives + false_positives));
  });
  return average_precision;
}

MacroAuc macro_roc_auc_pr_auc(const float* scores, const float* targets, int n, int k) {
  CADENZA_CHECK(n >= 0 && k >= 1, "n " << n << ", k " << k);
  MacroAuc result;
  result.per_tag_roc_auc.resize(static_cast<std::size_t>(k));
  result.per_tag_pr_auc.resize(static_cast<std::size_t>(k));
  double roc_sum = 0.0;
  double pr_sum = 0.0;
  for (int tag = 0; tag < k; ++tag) {
    result.per_tag_roc_auc[tag] = roc_auc_binary(scores + tag, targets + tag, n, k);
    result.per_tag_pr_auc[tag] = average_precision_binary(scores + tag, targets + tag, n, k);
    int positives = 0;
    for (int i = 0; i < n; ++i) {
      positives += is_positive(targets[static_cast<std::size_t>(i) * k + tag]);
    }
    if (positives == 0 || positives == n) {
      ++result.skipped_tags;
      continue;
    }
    ++result.evaluated_tags;
    roc_sum += result.per_tag_roc_auc[tag];
    pr_sum += result.per_tag_pr_auc[tag];
  }
  result.roc_auc = result.evaluated_tags > 0 ? roc_sum / result.evaluated_tags : kNaN;
  result.pr_auc = result.evaluated_tags > 0 ? pr_sum / result.evaluated_tags : kNaN;
  return result;
}

}  // namespace cadenza
