// Evaluation report: figures, text table, report.json, predictions.csv and plots.
#include "host/report/evaluation_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "host/core/error.hpp"
#include "host/core/text.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/csv.hpp"
#include "host/io/jsonl.hpp"
#include "host/report/plots.hpp"

namespace cadenza {
namespace fs = std::filesystem;
namespace {

// A JSON number, or null for NaN (JSON has no NaN).
nlohmann::json number(double value) { return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(); }

nlohmann::json row_json(const ReportRow& row) {
  return {{"precision", number(row.precision)}, {"recall", number(row.recall)}, {"f1", number(row.f1)},
          {"support", row.support}};
}

std::string fixed(double value, int digits) {
  if (!std::isfinite(value)) return "nan";
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

// The columns a UTF-8 label takes in a terminal: its code points (one byte each in ASCII;
// "é" is two bytes and one column). Wide CJK glyphs are counted as one.
std::size_t display_width(const std::string& text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// Right-aligns `cells` in columns of `width` after a label column of `label_width`.
std::string table_line(const std::string& label, const std::vector<std::string>& cells, std::size_t label_width,
                       std::size_t width = 10) {
  const std::size_t label_columns = display_width(label);
  std::string line(label_width > label_columns ? label_width - label_columns : 0, ' ');
  line += label;
  for (const std::string& cell : cells) line += std::string(width > cell.size() ? width - cell.size() : 1, ' ') + cell;
  return line + "\n";
}

std::string support_text(double support) { return std::to_string(std::llround(support)); }

}  // namespace

EvaluationReport make_evaluation_report(const ClipEvaluation& evaluation, const std::vector<std::string>& labels,
                                        bool multi_label) {
  CADENZA_CHECK(int(labels.size()) == evaluation.labels, "make_evaluation_report: " << labels.size() << " names for "
                                                                                    << evaluation.labels << " labels");
  EvaluationReport report;
  report.labels = labels;
  report.multi_label = multi_label;
  report.clips = evaluation.clips;
  report.loss = evaluation.loss;
  const int k = evaluation.labels;
  if (multi_label) {
    report.auc = macro_auc_from_tag_metrics(evaluation.tag_metrics.data(), evaluation.clips, k);
    report.at_threshold = thresholded_from_tag_metrics(evaluation.tag_metrics.data(), evaluation.clips, k, evaluation.threshold);
  } else {
    report.classification = classification_report(evaluation.confusion.data(), k);
  }
  return report;
}

std::string format_evaluation_report(const EvaluationReport& report) {
  std::size_t width = std::string("weighted avg").size();
  for (const std::string& label : report.labels) width = std::max(width, display_width(label));
  std::ostringstream os;
  if (!report.multi_label) {
    const ClassificationReport& c = report.classification;
    os << table_line("", {"precision", "recall", "f1-score", "support"}, width) << "\n";
    for (std::size_t i = 0; i < report.labels.size(); ++i) {
      const ReportRow& r = c.classes[i];
      os << table_line(report.labels[i], {fixed(r.precision, 4), fixed(r.recall, 4), fixed(r.f1, 4), support_text(r.support)},
                       width);
    }
    os << "\n"
       << table_line("accuracy", {"", "", fixed(c.accuracy, 4), support_text(c.macro_avg.support)}, width);
    for (const auto& [name, r] : {std::pair{"macro avg", c.macro_avg}, std::pair{"weighted avg", c.weighted_avg}})
      os << table_line(name, {fixed(r.precision, 4), fixed(r.recall, 4), fixed(r.f1, 4), support_text(r.support)},
                       width);
    return os.str();
  }
  const MacroAuc& auc = report.auc;
  const ThresholdedTagMetrics& t = report.at_threshold;
  os << table_line("", {"roc-auc", "pr-auc", "precision", "recall", "support"}, width) << "\n";
  double precision_sum = 0.0, recall_sum = 0.0;
  int support_sum = 0;
  for (std::size_t i = 0; i < report.labels.size(); ++i) {
    os << table_line(report.labels[i],
                     {fixed(auc.per_tag_roc_auc[i], 4), fixed(auc.per_tag_pr_auc[i], 4), fixed(t.precision[i], 4),
                      fixed(t.recall[i], 4), std::to_string(t.support[i])},
                     width);
    precision_sum += t.precision[i];
    recall_sum += t.recall[i];
    support_sum += t.support[i];
  }
  const double k = double(report.labels.size());
  os << "\n"
     << table_line("macro avg", {fixed(auc.roc_auc, 4), fixed(auc.pr_auc, 4), fixed(precision_sum / k, 4),
                                 fixed(recall_sum / k, 4), std::to_string(support_sum)},
                   width);
  os << "\n"
     << report.clips << " clips; binary accuracy " << fixed(t.binary_accuracy, 4) << " at threshold "
     << fixed(t.threshold, 2);
  if (auc.skipped_tags > 0)
    os << "; " << count_of(auc.skipped_tags, "tag") << " with one class present left out of the AUC means";
  os << "\n";
  return os.str();
}

HtmlTable evaluation_table(const EvaluationReport& report) {
  HtmlTable table;
  const std::size_t k = report.labels.size();
  if (!report.multi_label) {
    const ClassificationReport& c = report.classification;
    table.caption = "Per-class figures (accuracy " + fixed(c.accuracy, 4) + ")";
    table.header = {"class", "precision", "recall", "f1-score", "support"};
    auto add = [&](const std::string& name, const ReportRow& r) {
      table.rows.push_back({name, fixed(r.precision, 4), fixed(r.recall, 4), fixed(r.f1, 4), support_text(r.support)});
    };
    for (std::size_t i = 0; i < k; ++i) add(report.labels[i], c.classes[i]);
    add("macro avg", c.macro_avg);
    add("weighted avg", c.weighted_avg);
    return table;
  }
  const MacroAuc& auc = report.auc;
  const ThresholdedTagMetrics& t = report.at_threshold;
  table.caption = "Per-tag figures (precision and recall at threshold " + fixed(t.threshold, 2) + ")";
  table.header = {"tag", "ROC-AUC", "PR-AUC", "precision", "recall", "support"};
  for (std::size_t i = 0; i < k; ++i)
    table.rows.push_back({report.labels[i], fixed(auc.per_tag_roc_auc[i], 4), fixed(auc.per_tag_pr_auc[i], 4),
                          fixed(t.precision[i], 4), fixed(t.recall[i], 4), std::to_string(t.support[i])});
  table.rows.push_back({"macro avg", fixed(auc.roc_auc, 4), fixed(auc.pr_auc, 4), "", "", ""});
  return table;
}

nlohmann::json evaluation_report_json(const EvaluationReport& report, const nlohmann::json& context) {
  nlohmann::json j = context;
  j["clips"] = report.clips;
  j["loss"] = number(report.loss);
  j["labels"] = report.labels;
  nlohmann::json per_class = nlohmann::json::object();
  if (!report.multi_label) {
    const ClassificationReport& c = report.classification;
    j["accuracy"] = number(c.accuracy);
    j["macro_avg"] = row_json(c.macro_avg);
    j["weighted_avg"] = row_json(c.weighted_avg);
    for (std::size_t i = 0; i < report.labels.size(); ++i) per_class[report.labels[i]] = row_json(c.classes[i]);
    const std::size_t k = report.labels.size();
    nlohmann::json counts = nlohmann::json::array(), normalized = nlohmann::json::array();
    for (std::size_t r = 0; r < k; ++r) {
      counts.push_back(std::vector<double>(c.confusion.begin() + r * k, c.confusion.begin() + (r + 1) * k));
      normalized.push_back(
          std::vector<double>(c.normalized_confusion.begin() + r * k, c.normalized_confusion.begin() + (r + 1) * k));
    }
    j["confusion_matrix"] = counts;
    j["normalized_confusion_matrix"] = normalized;
  } else {
    const MacroAuc& auc = report.auc;
    const ThresholdedTagMetrics& t = report.at_threshold;
    j["roc_auc_macro"] = number(auc.roc_auc);
    j["pr_auc_macro"] = number(auc.pr_auc);
    j["evaluated_tags"] = auc.evaluated_tags;
    j["skipped_tags"] = auc.skipped_tags;
    j["threshold"] = t.threshold;
    j["binary_accuracy"] = number(t.binary_accuracy);
    for (std::size_t i = 0; i < report.labels.size(); ++i)
      per_class[report.labels[i]] = {{"roc_auc", number(auc.per_tag_roc_auc[i])},
                                     {"pr_auc", number(auc.per_tag_pr_auc[i])},
                                     {"precision", number(t.precision[i])},
                                     {"recall", number(t.recall[i])},
                                     {"support", t.support[i]}};
  }
  j["per_class"] = per_class;
  return j;
}

void write_predictions_csv(const fs::path& csv, const std::vector<std::string>& clip_ids,
                           const std::vector<std::string>& labels, const ClipEvaluation& evaluation) {
  CADENZA_CHECK(int(clip_ids.size()) == evaluation.clips && int(labels.size()) == evaluation.labels,
                "write_predictions_csv: " << clip_ids.size() << " clip ids and " << labels.size()
                                          << " labels for an evaluation of " << evaluation.clips << " x "
                                          << evaluation.labels);
  std::vector<std::string> fields{"clip"};
  for (const std::string& label : labels) fields.push_back("true_" + label);
  for (const std::string& label : labels) fields.push_back("score_" + label);
  std::string text = csv_record(fields);
  const std::size_t k = labels.size();
  for (std::size_t c = 0; c < clip_ids.size(); ++c) {
    fields.assign(1, clip_ids[c]);
    for (std::size_t i = 0; i < k; ++i) fields.push_back(fixed(evaluation.targets[c * k + i], 0));
    for (std::size_t i = 0; i < k; ++i) fields.push_back(float_text(evaluation.scores[c * k + i]));
    text += csv_record(fields);
  }
  write_file_atomically(csv, text);
}

std::vector<std::pair<std::string, fs::path>> write_evaluation_plots(const fs::path& dir,
                                                                     const EvaluationReport& report,
                                                                     const ClipEvaluation& evaluation) {
  std::vector<std::pair<std::string, fs::path>> plots;
  const int k = evaluation.labels;
  const std::string noun = report.multi_label ? "tag" : "class";
  if (!report.multi_label) {
    const std::vector<double>& normalized = report.classification.normalized_confusion;
    std::vector<float> matrix(normalized.begin(), normalized.end());
    for (int r = 0; r < k; ++r)  // a class without examples is grey, not a row of zeros
      if (report.classification.classes[r].support == 0)
        std::fill_n(matrix.begin() + std::size_t(r) * k, k, std::nanf(""));
    plots.push_back({"Normalised confusion matrix", dir / "confusion_matrix.png"});
    plot_heatmap(plots.back().second, "Confusion matrix (each row sums to 1)", report.labels, matrix);
  }
  std::vector<PlotPanel> roc_panels, pr_panels;
  for (int i = 0; i < k; ++i) {
    const float* scores = evaluation.scores.data() + i;
    const float* targets = evaluation.targets.data() + i;
    const RocCurve roc = roc_curve(scores, targets, evaluation.clips, k);
    const double auc = roc_auc_binary(scores, targets, evaluation.clips, k);
    roc_panels.push_back({report.labels[i] + " (AUC " + fixed(auc, 3) + ")", {{"ROC", roc.fpr, roc.tpr}}, true});
    const PrecisionRecallCurve pr = precision_recall_curve(scores, targets, evaluation.clips, k);
    const double ap = average_precision_binary(scores, targets, evaluation.clips, k);
    pr_panels.push_back({report.labels[i] + " (AP " + fixed(ap, 3) + ")", {{"PR", pr.recall, pr.precision}}, false});
  }
  plots.push_back({"ROC curve of each " + noun, dir / "roc_curves.png"});
  plot_panel_grid(plots.back().second, "ROC curves (one " + noun + " against the rest)", "false positive rate",
                  "true positive rate", roc_panels);
  plots.push_back({"Precision-recall curve of each " + noun, dir / "pr_curves.png"});
  plot_panel_grid(plots.back().second, "Precision-recall curves", "recall", "precision", pr_panels);
  return plots;
}

std::vector<std::pair<std::string, fs::path>> write_training_curves(const fs::path& metrics_jsonl,
                                                                    const fs::path& dir) {
  std::map<std::string, PlotSeries> series;  // by key
  for (const nlohmann::json& j : read_jsonl(metrics_jsonl)) {
    if (!j.contains("epoch") || !j["epoch"].is_number()) continue;
    const double epoch = j["epoch"].get<double>();
    for (const auto& [key, value] : j.items()) {
      if (key == "epoch") continue;
      PlotSeries& s = series[key];
      s.x.push_back(epoch);
      s.y.push_back(value.is_number() ? value.get<double>() : std::nan(""));
    }
  }
  std::vector<std::pair<std::string, fs::path>> plots;
  auto pick = [&](const std::vector<std::pair<std::string, std::string>>& wanted) {
    std::vector<PlotSeries> picked;
    for (const auto& [key, name] : wanted) {
      const auto found = series.find(key);
      if (found == series.end()) continue;
      picked.push_back(found->second);
      picked.back().name = name;
    }
    return picked;
  };
  const std::vector<PlotSeries> losses = pick({{"train_loss", "training"}, {"val_loss", "validation"}});
  if (losses.empty()) return plots;
  plots.push_back({"Loss per epoch", dir / "loss.png"});
  plot_lines(plots.back().second, "Loss", "epoch", "loss", losses);
  const bool tags = series.count("val_roc_auc") || series.count("train_roc_auc");
  const std::vector<PlotSeries> metrics =
      tags ? pick({{"train_roc_auc", "training ROC-AUC"}, {"val_roc_auc", "validation ROC-AUC"},
                   {"val_pr_auc", "validation PR-AUC"}})
           : pick({{"train_accuracy", "training"}, {"val_accuracy", "validation"}});
  if (!metrics.empty()) {
    plots.push_back({tags ? "ROC-AUC and PR-AUC per epoch" : "Accuracy per epoch", dir / "metric.png"});
    plot_lines(plots.back().second, tags ? "ROC-AUC and PR-AUC" : "Accuracy", "epoch", tags ? "area under curve" : "accuracy",
               metrics, 0.0, 1.0);
  }
  return plots;
}

}  // namespace cadenza
