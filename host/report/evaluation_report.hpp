// The report of one evaluation (gpu_eval): the figures papers quote, computed from the
// clip scores and targets a ClipEvaluator returns, in three forms — a text table like
// scikit-learn's classification_report, report.json, and predictions.csv — plus the
// plots and the HTML page that shows them.
//
// Invariants:
// - Single-label runs report accuracy, per-class precision / recall / F1 / support and
//   their macro and weighted averages, and the confusion matrix (counts and row-normalised);
//   multi-label runs report per-tag and macro ROC-AUC and PR-AUC, binary accuracy and
//   per-tag precision / recall at the threshold. Both come from
//   host/metrics/classification_metrics.hpp, checked against scikit-learn.
// - In report.json an undefined figure (ROC-AUC of a tag with one class present) is null.
// - predictions.csv has one row per clip in evaluation order: `clip`, then true_<label>
//   for every label, then score_<label> for every label.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "host/inference/clip_evaluator.hpp"
#include "host/metrics/classification_metrics.hpp"
#include "host/report/html_report.hpp"

namespace cadenza {

struct EvaluationReport {
  std::vector<std::string> labels;
  bool multi_label = false;
  int clips = 0;
  double loss = 0.0;
  ClassificationReport classification;  // single-label
  MacroAuc auc;                          // multi-label
  ThresholdedTagMetrics at_threshold;    // multi-label
};

// Multi-label figures at a threshold use the one the evaluation counted at.
EvaluationReport make_evaluation_report(const ClipEvaluation& evaluation, const std::vector<std::string>& labels,
                                        bool multi_label);

// The text table gpu_eval prints: scikit-learn's classification_report layout (4 digits)
// for classes; per-tag ROC-AUC, PR-AUC, precision, recall and support, then the macro
// averages, for tags.
std::string format_evaluation_report(const EvaluationReport& report);

// The same figures as a table for the HTML report (one row per label, then the averages).
HtmlTable evaluation_table(const EvaluationReport& report);

// The report's figures as JSON: `accuracy` or `roc_auc_macro` and `pr_auc_macro`, the
// averages, and `per_class` (an object keyed by label). `context` keys (split, checkpoint,
// windows per clip, ...) are copied in first.
nlohmann::json evaluation_report_json(const EvaluationReport& report, const nlohmann::json& context);

// Writes predictions.csv atomically; clip_ids[c] names row c.
void write_predictions_csv(const std::filesystem::path& csv, const std::vector<std::string>& clip_ids,
                           const std::vector<std::string>& labels, const ClipEvaluation& evaluation);

// Draws the evaluation plots into `dir`: the normalised confusion heatmap (single-label)
// and per-label ROC and precision-recall curves (one-vs-rest for classes). Returns each
// plot's caption and file, in the order a report shows them.
std::vector<std::pair<std::string, std::filesystem::path>> write_evaluation_plots(
    const std::filesystem::path& dir, const EvaluationReport& report, const ClipEvaluation& evaluation);

// Draws the training curves of a run's metrics.jsonl into `dir`: loss.png (train and
// validation loss per epoch) and metric.png (training and validation accuracy or ROC-AUC,
// and validation PR-AUC when present). Returns caption and file of each plot drawn; none
// when metrics.jsonl holds no epoch.
std::vector<std::pair<std::string, std::filesystem::path>> write_training_curves(
    const std::filesystem::path& metrics_jsonl, const std::filesystem::path& dir);

}  // namespace cadenza
