// Tests of accuracy, ROC-AUC, average precision, the classification report, the
// thresholded multi-label figures and the ROC / precision-recall curves: closed-form
// cases, then agreement with scikit-learn on the cases of
// tests/fixtures/metrics/metrics_cases.json (made by tools/fixtures/make_metric_fixtures.py;
// random scores, heavy ties, rare positives, tags with one class, a class never predicted,
// a class without examples, scores at the threshold, a batch of one).
//
// The figures added with the report, thresholds and curves are compared with sklearn to
// within 1e-12 absolute or 1e-9 relative (check_matches_sklearn); NaN must meet NaN and
// +inf must meet +inf.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/core/error.hpp"
#include "host/core/tensor.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/metric_math.hpp"
#include "host/metrics/classification_metrics.hpp"

#ifndef CADENZA_TEST_FIXTURES
#define CADENZA_TEST_FIXTURES "tests/fixtures"
#endif

using namespace cadenza;

namespace {

double roc(const std::vector<float>& scores, const std::vector<float>& labels) {
  return roc_auc_binary(scores.data(), labels.data(), static_cast<int>(scores.size()), 1);
}

double ap(const std::vector<float>& scores, const std::vector<float>& labels) {
  return average_precision_binary(scores.data(), labels.data(), static_cast<int>(scores.size()),
                                  1);
}

nlohmann::json load_cases() {
  const std::string path = std::string(CADENZA_TEST_FIXTURES) + "/metrics/metrics_cases.json";
  std::ifstream file(path);
  INFO("fixture " << path);
  REQUIRE(file.good());
  return nlohmann::json::parse(file);
}

// A fixture value that may be null (undefined): NaN then.
double value_or_nan(const nlohmann::json& value) {
  return value.is_null() ? std::nan("") : value.get<double>();
}

void check_close(double actual, double expected) {
  if (std::isnan(expected)) {
    CHECK(std::isnan(actual));
  } else {
    CHECK(std::abs(actual - expected) <= 1e-9);
  }
}

// A curve fixture value: null is NaN, the string "inf" is +inf.
double curve_value(const nlohmann::json& value) {
  if (value.is_string()) {
    REQUIRE(value.get<std::string>() == "inf");
    return std::numeric_limits<double>::infinity();
  }
  return value_or_nan(value);
}

// Within 1e-12 absolute or 1e-9 relative of sklearn's value; NaN and infinities exactly.
void check_matches_sklearn(double actual, double expected) {
  INFO("actual " << actual << ", sklearn " << expected);
  if (std::isnan(expected) || std::isinf(expected)) {
    CHECK((std::isnan(expected) ? std::isnan(actual) : actual == expected));
  } else {
    CHECK(std::abs(actual - expected) <= std::max(1e-12, 1e-9 * std::abs(expected)));
  }
}

template <typename Actual>
void check_matches_sklearn(const std::vector<Actual>& actual, const nlohmann::json& expected) {
  REQUIRE(actual.size() == expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i) {
    INFO("element " << i);
    check_matches_sklearn(static_cast<double>(actual[i]), curve_value(expected[i]));
  }
}

void check_row(const ReportRow& actual, const nlohmann::json& expected) {
  check_matches_sklearn(actual.precision, expected.at("precision").get<double>());
  check_matches_sklearn(actual.recall, expected.at("recall").get<double>());
  check_matches_sklearn(actual.f1, expected.at("f1").get<double>());
  CHECK(actual.support == expected.at("support").get<double>());
}

ClassificationReport report_of(const std::vector<float>& confusion, int k) {
  return classification_report(confusion.data(), k);
}

RocCurve roc_of(const std::vector<float>& scores, const std::vector<float>& labels) {
  return roc_curve(scores.data(), labels.data(), static_cast<int>(scores.size()), 1);
}

PrecisionRecallCurve pr_of(const std::vector<float>& scores, const std::vector<float>& labels) {
  return precision_recall_curve(scores.data(), labels.data(), static_cast<int>(scores.size()),
                                1);
}

bool all_nan(const std::vector<double>& values) {
  return std::all_of(values.begin(), values.end(), [](double v) { return std::isnan(v); });
}

// Each fixture case's name, n, k, scores and targets.
struct FixtureCase {
  std::string name;
  int n = 0;
  int k = 0;
  std::vector<float> scores;
  std::vector<float> targets;
};

FixtureCase read_case(const nlohmann::json& c) {
  FixtureCase fixture_case{c.at("name"), c.at("n"), c.at("k"),
                           c.at("scores").get<std::vector<float>>(),
                           c.at("targets").get<std::vector<float>>()};
  const std::size_t entries = static_cast<std::size_t>(fixture_case.n) * fixture_case.k;
  REQUIRE(fixture_case.scores.size() == entries);
  REQUIRE(fixture_case.targets.size() == entries);
  return fixture_case;
}

}  // namespace

TEST_CASE("roc_auc_binary closed forms", "[cpu][metrics]") {
  const std::vector<float> labels = {0, 0, 1, 0, 1, 1};
  CHECK(roc({0.1f, 0.2f, 0.7f, 0.3f, 0.8f, 0.9f}, labels) == 1.0);  // perfect ranking
  CHECK(roc({0.9f, 0.8f, 0.2f, 0.7f, 0.1f, 0.0f}, labels) == 0.0);  // reversed
  CHECK(roc({0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f}, labels) == 0.5);  // all tied
  // One positive tied with one of two negatives, above the other: (1 + 1/2) / 2.
  CHECK(roc({0.3f, 0.5f, 0.5f}, {0, 0, 1}) == 0.75);
  CHECK(roc({-INFINITY, 0.0f, INFINITY}, {0, 0, 1}) == 1.0);
}

TEST_CASE("roc_auc_binary is NaN with one class or NaN scores", "[cpu][metrics]") {
  CHECK(std::isnan(roc({0.1f, 0.2f, 0.3f}, {0, 0, 0})));
  CHECK(std::isnan(roc({0.1f, 0.2f, 0.3f}, {1, 1, 1})));
  CHECK(std::isnan(roc({}, {})));
  CHECK(std::isnan(roc({0.1f, NAN, 0.3f}, {0, 1, 1})));
}

TEST_CASE("average_precision_binary closed forms", "[cpu][metrics]") {
  CHECK(ap({0.1f, 0.2f, 0.7f, 0.3f, 0.8f, 0.9f}, {0, 0, 1, 0, 1, 1}) == 1.0);
  // All tied: one threshold, precision = prevalence.
  CHECK(ap({0.5f, 0.5f, 0.5f, 0.5f}, {0, 1, 0, 0}) == 0.25);
  // Ranked positive, negative, positive: 1/2 * 1 + 1/2 * 2/3.
  CHECK(ap({0.9f, 0.8f, 0.7f}, {1, 0, 1}) == Approx(0.5 + 1.0 / 3.0).epsilon(1e-15));
  CHECK(ap({0.9f, 0.8f}, {1, 1}) == 1.0);  // only positives
  CHECK(std::isnan(ap({0.9f, 0.8f}, {0, 0})));
  CHECK(std::isnan(ap({NAN, 0.8f}, {1, 0})));
}

TEST_CASE("binary metrics read a column through the stride", "[cpu][metrics]") {
  // Column 1 of a (4, 3) matrix ranks perfectly; columns 0 and 2 would not.
  const std::vector<float> scores = {9, 0.1f, 9, 0, 0.2f, 0, 9, 0.8f, 9, 0, 0.9f, 0};
  const std::vector<float> targets = {0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0};
  CHECK(roc_auc_binary(scores.data() + 1, targets.data() + 1, 4, 3) == 1.0);
  CHECK(average_precision_binary(scores.data() + 1, targets.data() + 1, 4, 3) == 1.0);
}

// Four examples of three classes whose top scores tie in three rows, and their targets.
const std::vector<float> kTiedScores = {0.2f, 0.5f, 0.5f,   // tie: class 1
                                        0.7f, 0.1f, 0.7f,   // tie: class 0
                                        0.3f, 0.3f, 0.3f,   // all tied: class 0
                                        0.0f, 0.0f, 1.0f};  // class 2
const std::vector<float> kTiedTargets = {0, 1, 0,  0, 0, 1,  1, 0, 0,  0, 1, 0};

TEST_CASE("accuracy takes the lowest index among tied maxima", "[cpu][metrics]") {
  const std::vector<float>& scores = kTiedScores;
  const std::vector<float>& targets = kTiedTargets;
  CHECK(accuracy(scores.data(), targets.data(), 4, 3) == 0.5);
  CHECK(std::isnan(accuracy(scores.data(), targets.data(), 0, 3)));
}

TEST_CASE("macro ROC-AUC and PR-AUC skip tags with one class", "[cpu][metrics]") {
  // Tag 0 ranks perfectly, tag 1 is reversed, tag 2 has no positives, tag 3 only positives.
  const std::vector<float> scores = {0.9f, 0.1f, 0.5f, 0.5f,  //
                                     0.8f, 0.2f, 0.4f, 0.6f,  //
                                     0.1f, 0.9f, 0.3f, 0.7f};
  const std::vector<float> targets = {1, 1, 0, 1,  //
                                      1, 1, 0, 1,  //
                                      0, 0, 0, 1};
  const MacroAuc macro = macro_roc_auc_pr_auc(scores.data(), targets.data(), 3, 4);
  CHECK(macro.evaluated_tags == 2);
  CHECK(macro.skipped_tags == 2);
  CHECK(macro.roc_auc == 0.5);  // (1 + 0) / 2
  // Tag 1 ranks negative, positive, positive: AP = 1/2 * 1/2 + 1/2 * 2/3 = 7/12.
  CHECK(macro.pr_auc == Approx((1.0 + 7.0 / 12.0) / 2.0).epsilon(1e-15));
  REQUIRE(macro.per_tag_roc_auc.size() == 4);
  CHECK(macro.per_tag_roc_auc[0] == 1.0);
  CHECK(macro.per_tag_roc_auc[1] == 0.0);
  CHECK(std::isnan(macro.per_tag_roc_auc[2]));
  CHECK(std::isnan(macro.per_tag_roc_auc[3]));
  CHECK(std::isnan(macro.per_tag_pr_auc[2]));
  CHECK(macro.per_tag_pr_auc[3] == 1.0);

  const std::vector<float> zeros(6, 0.0f);
  const MacroAuc none = macro_roc_auc_pr_auc(scores.data(), zeros.data(), 3, 2);
  CHECK(none.evaluated_tags == 0);
  CHECK(none.skipped_tags == 2);
  CHECK(std::isnan(none.roc_auc));
  CHECK(std::isnan(none.pr_auc));
}

TEST_CASE("metrics agree with scikit-learn", "[cpu][metrics]") {
  const nlohmann::json fixture = load_cases();
  REQUIRE(fixture.at("cases").size() >= 6);
  for (const nlohmann::json& c : fixture.at("cases")) {
    const std::string name = c.at("name");
    const int n = c.at("n");
    const int k = c.at("k");
    const std::vector<float> scores = c.at("scores").get<std::vector<float>>();
    const std::vector<float> targets = c.at("targets").get<std::vector<float>>();
    INFO("case " << name);
    REQUIRE(scores.size() == static_cast<std::size_t>(n) * k);
    REQUIRE(targets.size() == scores.size());

    check_close(accuracy(scores.data(), targets.data(), n, k), c.at("accuracy"));
    const MacroAuc macro = macro_roc_auc_pr_auc(scores.data(), targets.data(), n, k);
    for (int tag = 0; tag < k; ++tag) {
      INFO("tag " << tag);
      const double expected_roc = value_or_nan(c.at("roc_auc")[tag]);
      const double expected_ap = value_or_nan(c.at("average_precision")[tag]);
      check_close(roc_auc_binary(scores.data() + tag, targets.data() + tag, n, k), expected_roc);
      check_close(average_precision_binary(scores.data() + tag, targets.data() + tag, n, k),
                  expected_ap);
      check_close(macro.per_tag_roc_auc[tag], expected_roc);
      check_close(macro.per_tag_pr_auc[tag], expected_ap);
    }
    check_close(macro.roc_auc, value_or_nan(c.at("macro_roc_auc")));
    check_close(macro.pr_auc, value_or_nan(c.at("macro_pr_auc")));
    CHECK(macro.evaluated_tags == c.at("evaluated_tags").get<int>());
    CHECK(macro.skipped_tags == c.at("skipped_tags").get<int>());
  }
}

TEST_CASE("confusion_matrix counts argmax pairs, ties to the lowest index", "[cpu][metrics]") {
  const std::vector<float>& scores = kTiedScores;
  const std::vector<float>& targets = kTiedTargets;
  // (true, predicted): (1, 1), (2, 0), (0, 0), (1, 2).
  CHECK(confusion_matrix(scores.data(), targets.data(), 4, 3) ==
        std::vector<float>{1, 0, 0,  0, 1, 1,  1, 0, 0});
  CHECK(confusion_matrix(scores.data(), targets.data(), 0, 3) == std::vector<float>(9, 0.0f));
}

TEST_CASE("classification_report of a 2x2 confusion matrix", "[cpu][metrics]") {
  // True 0: 3 predicted 0, 1 predicted 1. True 1: 2 predicted 0, 4 predicted 1.
  // Class 0: tp 3 of 5 predicted, support 4: precision 3/5, recall 3/4, f1 6/9 = 2/3.
  // Class 1: tp 4 of 5 predicted, support 6: precision 4/5, recall 4/6, f1 8/11.
  // Accuracy 7/10. Macro: precision 7/10, recall 17/24, f1 (2/3 + 8/11) / 2 = 23/33.
  // Weighted by 4 and 6: precision 0.72, recall 7/10 (the accuracy), f1 116/165.
  const ClassificationReport report = report_of({3, 1, 2, 4}, 2);
  REQUIRE(report.classes.size() == 2);
  CHECK(report.classes[0].precision == Approx(0.6).epsilon(1e-15));
  CHECK(report.classes[0].recall == 0.75);
  CHECK(report.classes[0].f1 == Approx(2.0 / 3.0).epsilon(1e-15));
  CHECK(report.classes[0].support == 4.0);
  CHECK(report.classes[1].precision == Approx(0.8).epsilon(1e-15));
  CHECK(report.classes[1].recall == Approx(2.0 / 3.0).epsilon(1e-15));
  CHECK(report.classes[1].f1 == Approx(8.0 / 11.0).epsilon(1e-15));
  CHECK(report.classes[1].support == 6.0);
  CHECK(report.accuracy == Approx(0.7).epsilon(1e-15));
  CHECK(report.macro_avg.precision == Approx(0.7).epsilon(1e-15));
  CHECK(report.macro_avg.recall == Approx(17.0 / 24.0).epsilon(1e-15));
  CHECK(report.macro_avg.f1 == Approx(23.0 / 33.0).epsilon(1e-15));
  CHECK(report.macro_avg.support == 10.0);
  CHECK(report.weighted_avg.precision == Approx(0.72).epsilon(1e-15));
  CHECK(report.weighted_avg.recall == Approx(0.7).epsilon(1e-15));
  CHECK(report.weighted_avg.f1 == Approx(116.0 / 165.0).epsilon(1e-15));
  CHECK(report.weighted_avg.support == 10.0);
  CHECK(report.confusion == std::vector<double>{3, 1, 2, 4});
  REQUIRE(report.normalized_confusion.size() == 4);
  CHECK(report.normalized_confusion[0] == 0.75);
  CHECK(report.normalized_confusion[1] == 0.25);
  CHECK(report.normalized_confusion[2] == Approx(1.0 / 3.0).epsilon(1e-15));
  CHECK(report.normalized_confusion[3] == Approx(2.0 / 3.0).epsilon(1e-15));
}

TEST_CASE("classification_report: a class never predicted, a class without examples",
          "[cpu][metrics]") {
  // Class 0: tp 2 of 3 predicted, support 3: precision = recall = f1 = 2/3.
  // Class 1 (one example, never predicted) and class 2 (no examples, predicted once): 0.
  const ClassificationReport report = report_of({2, 0, 1,  1, 0, 0,  0, 0, 0}, 3);
  CHECK(report.classes[0].precision == Approx(2.0 / 3.0).epsilon(1e-15));
  CHECK(report.classes[0].f1 == Approx(2.0 / 3.0).epsilon(1e-15));
  for (int c : {1, 2}) {
    INFO("class " << c);
    CHECK(report.classes[c].precision == 0.0);
    CHECK(report.classes[c].recall == 0.0);
    CHECK(report.classes[c].f1 == 0.0);
  }
  CHECK(report.classes[2].support == 0.0);
  CHECK(report.accuracy == 0.5);
  // The macro average counts all three classes; the weighted one only those with examples.
  CHECK(report.macro_avg.precision == Approx(2.0 / 9.0).epsilon(1e-15));
  CHECK(report.weighted_avg.precision == Approx(0.5).epsilon(1e-15));
  CHECK(report.weighted_avg.recall == Approx(0.5).epsilon(1e-15));
  CHECK(report.normalized_confusion[3] == 1.0);  // the one example of class 1
  CHECK(std::all_of(report.normalized_confusion.begin() + 6, report.normalized_confusion.end(),
                    [](double v) { return v == 0.0; }));

  const ClassificationReport empty = report_of(std::vector<float>(4, 0.0f), 2);
  CHECK(std::isnan(empty.accuracy));
  CHECK(empty.macro_avg.f1 == 0.0);
  CHECK(empty.weighted_avg.f1 == 0.0);
  CHECK(empty.weighted_avg.support == 0.0);

  CHECK_THROWS_AS(report_of({1, -1, 0, 2}, 2), Error);
}

TEST_CASE("thresholded_tag_metrics predicts positive at score >= threshold",
          "[cpu][metrics]") {
  // Tag 0: scores 0.5 (at the threshold), 0.2, 0.9 against 1, 1, 0: predicted 1, 0, 1.
  //   tp 1 of 2 predicted, 2 positives: precision 1/2, recall 1/2.
  // Tag 1: scores all below the threshold against 0, 1, 0: nothing predicted, precision 0,
  //   recall 0 of 1 positive.
  // Entries right: tag 0 rows 0; tag 1 rows 0 and 2: 3 of 6.
  const std::vector<float> scores = {0.5f, 0.1f,  0.2f, 0.4f,  0.9f, 0.0f};
  const std::vector<float> targets = {1, 0,  1, 1,  0, 0};
  const ThresholdedTagMetrics metrics =
      thresholded_tag_metrics(scores.data(), targets.data(), 3, 2, 0.5f);
  CHECK(metrics.threshold == 0.5f);
  CHECK(metrics.binary_accuracy == 0.5);
  CHECK(metrics.precision == std::vector<double>{0.5, 0.0});
  CHECK(metrics.recall == std::vector<double>{0.5, 0.0});
  CHECK(metrics.support == std::vector<int>{2, 1});

  // At 0.1 every tag-1 score but 0.0 is predicted: tp 1 of 2 predicted, all of 1 positive.
  const ThresholdedTagMetrics low =
      thresholded_tag_metrics(scores.data(), targets.data(), 3, 2, 0.1f);
  CHECK(low.precision[1] == 0.5);
  CHECK(low.recall[1] == 1.0);

  const ThresholdedTagMetrics none =
      thresholded_tag_metrics(scores.data(), targets.data(), 0, 2, 0.5f);
  CHECK(std::isnan(none.binary_accuracy));
  CHECK(none.precision == std::vector<double>{0.0, 0.0});
  CHECK(none.support == std::vector<int>{0, 0});

  const std::vector<float> with_nan = {0.5f, NAN,  0.2f, 0.4f,  0.9f, 0.0f};
  const ThresholdedTagMetrics nan =
      thresholded_tag_metrics(with_nan.data(), targets.data(), 3, 2, 0.5f);
  CHECK(std::isnan(nan.binary_accuracy));
  CHECK(nan.precision[0] == 0.5);
  CHECK(std::isnan(nan.precision[1]));
  CHECK(std::isnan(nan.recall[1]));
  CHECK(nan.support[1] == 1);
}

TEST_CASE("roc_curve closed forms", "[cpu][metrics]") {
  // Scores 0.9 (positive), 0.5 (positive and negative, tied), 0.1 (negative): after +inf,
  // the thresholds 0.9, 0.5, 0.1 admit 1, 2, 2 of the 2 positives and 0, 1, 2 of the 2
  // negatives.
  const RocCurve curve = roc_of({0.5f, 0.9f, 0.1f, 0.5f}, {1, 1, 0, 0});
  CHECK(curve.thresholds == std::vector<double>{std::numeric_limits<double>::infinity(),
                                                0.9f, 0.5f, 0.1f});
  CHECK(curve.tpr == std::vector<double>{0.0, 0.5, 1.0, 1.0});
  CHECK(curve.fpr == std::vector<double>{0.0, 0.0, 0.5, 1.0});

  const RocCurve no_positives = roc_of({0.3f, 0.2f}, {0, 0});
  CHECK(no_positives.thresholds.size() == 3);
  CHECK(all_nan(no_positives.tpr));
  CHECK(no_positives.fpr == std::vector<double>{0.0, 0.5, 1.0});
  const RocCurve no_negatives = roc_of({0.3f}, {1});
  CHECK(all_nan(no_negatives.fpr));
  CHECK(no_negatives.tpr == std::vector<double>{0.0, 1.0});

  const RocCurve empty = roc_of({}, {});
  CHECK(empty.thresholds.size() == 1);
  CHECK(all_nan(empty.fpr));
  CHECK(all_nan(empty.tpr));
  const RocCurve with_nan = roc_of({0.3f, NAN}, {0, 1});
  CHECK(with_nan.thresholds.empty());
  CHECK(with_nan.fpr.empty());
  CHECK(with_nan.tpr.empty());
}

TEST_CASE("precision_recall_curve closed forms", "[cpu][metrics]") {
  // The scores of the ROC case: from the lowest threshold, 0.1 admits 2 positives of 4
  // examples, 0.5 admits 2 of 3, 0.9 admits 1 of 1; then the final point (1, 0).
  const PrecisionRecallCurve curve = pr_of({0.5f, 0.9f, 0.1f, 0.5f}, {1, 1, 0, 0});
  CHECK(curve.thresholds == std::vector<double>{0.1f, 0.5f, 0.9f});
  CHECK(curve.precision == std::vector<double>{0.5, 2.0 / 3.0, 1.0, 1.0});
  CHECK(curve.recall == std::vector<double>{1.0, 1.0, 0.5, 0.0});

  // Without positives sklearn sets recall to 1 at every threshold; precision is 0.
  const PrecisionRecallCurve no_positives = pr_of({0.3f, 0.2f, 0.3f}, {0, 0, 0});
  CHECK(no_positives.thresholds == std::vector<double>{0.2f, 0.3f});
  CHECK(no_positives.precision == std::vector<double>{0.0, 0.0, 1.0});
  CHECK(no_positives.recall == std::vector<double>{1.0, 1.0, 0.0});

  const PrecisionRecallCurve empty = pr_of({}, {});
  CHECK(empty.thresholds.empty());
  CHECK(empty.precision == std::vector<double>{1.0});
  CHECK(empty.recall == std::vector<double>{0.0});
  const PrecisionRecallCurve with_nan = pr_of({NAN, 0.2f}, {1, 0});
  CHECK(with_nan.thresholds.empty());
  CHECK(with_nan.precision.empty());
  CHECK(with_nan.recall.empty());
}

TEST_CASE("curves read a column through the stride", "[cpu][metrics]") {
  // Column 1 of a (3, 2) matrix: 0.2 (negative), 0.8 (positive), 0.5 (negative).
  const std::vector<float> scores = {9, 0.2f, 9, 0.8f, 9, 0.5f};
  const std::vector<float> targets = {1, 0, 0, 1, 1, 0};
  const RocCurve roc = roc_curve(scores.data() + 1, targets.data() + 1, 3, 2);
  CHECK(roc.tpr == std::vector<double>{0.0, 1.0, 1.0, 1.0});
  CHECK(roc.fpr == std::vector<double>{0.0, 0.0, 0.5, 1.0});
  const PrecisionRecallCurve pr = precision_recall_curve(scores.data() + 1, targets.data() + 1,
                                                         3, 2);
  CHECK(pr.thresholds == std::vector<double>{0.2f, 0.5f, 0.8f});
  CHECK(pr.precision == std::vector<double>{1.0 / 3.0, 0.5, 1.0, 1.0});
}

TEST_CASE("classification report agrees with scikit-learn", "[cpu][metrics]") {
  const nlohmann::json fixture = load_cases();
  for (const nlohmann::json& c : fixture.at("cases")) {
    const FixtureCase fc = read_case(c);
    INFO("case " << fc.name);
    const std::vector<float> confusion =
        confusion_matrix(fc.scores.data(), fc.targets.data(), fc.n, fc.k);
    CHECK(confusion == c.at("confusion_matrix").get<std::vector<float>>());

    const ClassificationReport report = classification_report(confusion.data(), fc.k);
    const nlohmann::json& expected = c.at("report");
    REQUIRE(report.classes.size() == static_cast<std::size_t>(fc.k));
    for (int cls = 0; cls < fc.k; ++cls) {
      INFO("class " << cls);
      check_matches_sklearn(report.classes[cls].precision,
                            expected.at("precision")[cls].get<double>());
      check_matches_sklearn(report.classes[cls].recall,
                            expected.at("recall")[cls].get<double>());
      check_matches_sklearn(report.classes[cls].f1, expected.at("f1")[cls].get<double>());
      CHECK(report.classes[cls].support == expected.at("support")[cls].get<double>());
    }
    check_matches_sklearn(report.accuracy, expected.at("accuracy").get<double>());
    check_row(report.macro_avg, expected.at("macro_avg"));
    check_row(report.weighted_avg, expected.at("weighted_avg"));
    check_matches_sklearn(report.confusion, c.at("confusion_matrix"));
    check_matches_sklearn(report.normalized_confusion, c.at("normalized_confusion_matrix"));
  }
}

TEST_CASE("thresholded tag metrics agree with scikit-learn", "[cpu][metrics]") {
  const nlohmann::json fixture = load_cases();
  for (const nlohmann::json& c : fixture.at("cases")) {
    const FixtureCase fc = read_case(c);
    INFO("case " << fc.name);
    REQUIRE(c.at("thresholded").size() == 2);
    for (const nlohmann::json& expected : c.at("thresholded")) {
      const float threshold = expected.at("threshold").get<float>();
      INFO("threshold " << threshold);
      const ThresholdedTagMetrics metrics =
          thresholded_tag_metrics(fc.scores.data(), fc.targets.data(), fc.n, fc.k, threshold);
      check_matches_sklearn(metrics.binary_accuracy,
                            expected.at("binary_accuracy").get<double>());
      check_matches_sklearn(metrics.precision, expected.at("precision"));
      check_matches_sklearn(metrics.recall, expected.at("recall"));
      CHECK(metrics.support == expected.at("support").get<std::vector<int>>());
    }
  }
}

// The CUDA tag_metrics kernel ranks each positive example against its whole column
// (metric_math.hpp's rank_in_column) instead of sorting; the same terms, summed here in
// example order, must give scikit-learn's figures, ties and one-class tags included.
TEST_CASE("the per-example ranking terms give scikit-learn's ROC-AUC and average precision",
          "[cpu][metrics]") {
  const nlohmann::json fixture = load_cases();
  for (const nlohmann::json& c : fixture.at("cases")) {
    const FixtureCase fc = read_case(c);
    INFO("case " << fc.name);
    for (int tag = 0; tag < fc.k; ++tag) {
      INFO("tag " << tag);
      const float* column = fc.scores.data() + tag;
      const float* labels = fc.targets.data() + tag;
      double roc_terms = 0.0, ap_terms = 0.0, positives = 0.0;
      for (int i = 0; i < fc.n; ++i) {
        if (!is_positive_target(labels[std::size_t(i) * fc.k])) continue;
        const ColumnRank rank = rank_in_column(column, labels, fc.n, fc.k, column[std::size_t(i) * fc.k]);
        roc_terms += roc_auc_term(rank);
        ap_terms += average_precision_term(rank);
        positives += 1.0;
      }
      // Float results: within a float rounding of sklearn's double.
      const double roc = roc_auc_from_terms(roc_terms, positives, fc.n - positives);
      const double ap = average_precision_from_terms(ap_terms, positives);
      const double expected_roc = value_or_nan(c.at("roc_auc")[tag]);
      const double expected_ap = value_or_nan(c.at("average_precision")[tag]);
      CHECK(std::isnan(roc) == std::isnan(expected_roc));
      CHECK(std::isnan(ap) == std::isnan(expected_ap));
      if (!std::isnan(expected_roc)) CHECK(roc == Approx(expected_roc).epsilon(1e-7));
      if (!std::isnan(expected_ap)) CHECK(ap == Approx(expected_ap).epsilon(1e-7));
    }
  }
}

// The CPU backend's tag_metrics op, read back through the *_from_tag_metrics reducers the
// evaluator uses, gives the figures computed from the scores (to float rounding).
TEST_CASE("tag_metrics op and its reducers agree with the figures from scores", "[cpu][metrics]") {
  const nlohmann::json fixture = load_cases();
  for (const nlohmann::json& c : fixture.at("cases")) {
    FixtureCase fc = read_case(c);
    INFO("case " << fc.name);
    Tensor scores = Tensor::view(fc.scores.data(), Shape{fc.n, fc.k}, DType::f32, Device::cpu());
    Tensor targets = Tensor::view(fc.targets.data(), Shape{fc.n, fc.k}, DType::f32, Device::cpu());
    Tensor matrix = Tensor::zeros(Shape{std::int64_t(kTagMetricRows), fc.k});
    for (const float threshold : {0.5f, 0.3f}) {
      cpu::tag_metrics(scores, targets, fc.n, threshold, matrix);
      const MacroAuc from_scores = macro_roc_auc_pr_auc(fc.scores.data(), fc.targets.data(), fc.n, fc.k);
      const MacroAuc from_op = macro_auc_from_tag_metrics(matrix.f32(), fc.n, fc.k);
      CHECK(from_op.evaluated_tags == from_scores.evaluated_tags);
      CHECK(from_op.skipped_tags == from_scores.skipped_tags);
      auto close = [](double a, double b) { return std::isnan(b) ? std::isnan(a) : a == Approx(b).epsilon(1e-7); };
      CHECK(close(from_op.roc_auc, from_scores.roc_auc));
      CHECK(close(from_op.pr_auc, from_scores.pr_auc));
      const ThresholdedTagMetrics expected =
          thresholded_tag_metrics(fc.scores.data(), fc.targets.data(), fc.n, fc.k, threshold);
      const ThresholdedTagMetrics actual = thresholded_from_tag_metrics(matrix.f32(), fc.n, fc.k, threshold);
      CHECK(close(actual.binary_accuracy, expected.binary_accuracy));
      CHECK(actual.support == expected.support);
      for (int tag = 0; tag < fc.k; ++tag) {
        CHECK(close(actual.precision[tag], expected.precision[tag]));
        CHECK(close(actual.recall[tag], expected.recall[tag]));
      }
    }
  }
  // Counts of a NaN score: the tag's precision and the binary accuracy are NaN.
  std::vector<float> scores = {0.5f, NAN, 0.2f, 0.4f, 0.9f, 0.0f}, targets = {1, 0, 1, 1, 0, 0};
  Tensor matrix = Tensor::zeros(Shape{std::int64_t(kTagMetricRows), 2});
  cpu::tag_metrics(Tensor::view(scores.data(), Shape{3, 2}, DType::f32, Device::cpu()),
                   Tensor::view(targets.data(), Shape{3, 2}, DType::f32, Device::cpu()), 3, 0.5f, matrix);
  CHECK(matrix.f32()[kTagNanScores * 2 + 1] == 1.0f);
  CHECK(matrix.f32()[kTagTruePositives * 2 + 0] == 1.0f);
  CHECK(matrix.f32()[kTagPredictedPositives * 2 + 0] == 2.0f);
  CHECK(matrix.f32()[kTagPositives * 2 + 0] == 2.0f);
  CHECK(std::isnan(matrix.f32()[kTagRocAuc * 2 + 1]));
  const ThresholdedTagMetrics t = thresholded_from_tag_metrics(matrix.f32(), 3, 2, 0.5f);
  CHECK(std::isnan(t.binary_accuracy));
  CHECK(std::isnan(t.precision[1]));
  CHECK(t.precision[0] == 0.5);
}

TEST_CASE("ROC and precision-recall curves agree with scikit-learn", "[cpu][metrics]") {
  const nlohmann::json fixture = load_cases();
  for (const nlohmann::json& c : fixture.at("cases")) {
    const FixtureCase fc = read_case(c);
    INFO("case " << fc.name);
    for (int tag = 0; tag < fc.k; ++tag) {
      INFO("tag " << tag);
      const float* scores = fc.scores.data() + tag;
      const float* labels = fc.targets.data() + tag;
      const RocCurve roc = roc_curve(scores, labels, fc.n, fc.k);
      const nlohmann::json& expected_roc = c.at("roc_curves")[tag];
      check_matches_sklearn(roc.thresholds, expected_roc.at("thresholds"));
      check_matches_sklearn(roc.fpr, expected_roc.at("fpr"));
      check_matches_sklearn(roc.tpr, expected_roc.at("tpr"));

      const PrecisionRecallCurve pr = precision_recall_curve(scores, labels, fc.n, fc.k);
      const nlohmann::json& expected_pr = c.at("pr_curves")[tag];
      check_matches_sklearn(pr.thresholds, expected_pr.at("thresholds"));
      check_matches_sklearn(pr.precision, expected_pr.at("precision"));
      check_matches_sklearn(pr.recall, expected_pr.at("recall"));
    }
  }
}
