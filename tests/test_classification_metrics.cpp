// Tests of accuracy, ROC-AUC and average precision: closed-form cases, then agreement
// with scikit-learn on the cases of tests/fixtures/metrics/metrics_cases.json (made by
// tools/fixtures/make_metric_fixtures.py; random scores, heavy ties, rare positives, tags
// with one class).
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

TEST_CASE("accuracy takes the lowest index among tied maxima", "[cpu][metrics]") {
  const std::vector<float> scores = {0.2f, 0.5f, 0.5f,   // tie: class 1
                                     0.7f, 0.1f, 0.7f,   // tie: class 0
                                     0.3f, 0.3f, 0.3f,   // all tied: class 0
                                     0.0f, 0.0f, 1.0f};  // class 2
  const std::vector<float> targets = {0, 1, 0,  0, 0, 1,  1, 0, 0,  0, 1, 0};
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
    check_close(macro.roc_auc, c.at("macro_roc_auc"));
    check_close(macro.pr_auc, c.at("macro_pr_auc"));
    CHECK(macro.evaluated_tags == c.at("evaluated_tags").get<int>());
    CHECK(macro.skipped_tags == c.at("skipped_tags").get<int>());
  }
}
