// Tests of the report module: the PLplot charts (checked as PNG files: signature, size
// from the IHDR chunk, and more image data than one flat colour needs), drawn several in
// one process, and the self-contained HTML report, which headless Chromium renders to
// check that its embedded images decode.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "host/core/error.hpp"
#include "host/io/atomic_file.hpp"
#include "host/report/html_report.hpp"
#include "host/report/plots.hpp"
#include "tests/test_support.hpp"

namespace cadenza {
namespace {

using Catch::Matchers::Contains;
using testing::chromium_dom;
using testing::TempDir;
using testing::user_error_message;

// Checks that `png` is a chart (testing::check_png) of width x height pixels, within
// `tolerance`.
void check_chart(const std::filesystem::path& png, int width, int height, int tolerance = 2) {
  const auto [png_width, png_height] = testing::check_png(png);
  INFO(png.string() << " is " << png_width << "x" << png_height);
  CHECK(std::abs(png_width - width) <= tolerance);
  CHECK(std::abs(png_height - height) <= tolerance);
}

// The names of the files in `directory`, sorted.
std::vector<std::string> files_in(const std::filesystem::path& directory) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(directory))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

void draw_loss_chart(const std::filesystem::path& png) {
  const std::vector<double> epochs{1, 2, 3, 4, 5};
  plot_lines(
      png, "mtat_top10_crnn — loss", "epoch", "loss",
      {{"train", epochs, {2.30, 1.72, 1.31, 1.10, 0.95}}, {"val", epochs, {2.21, 1.80, 1.52, NAN, 1.46}}});
}

void draw_confusion_heatmap(const std::filesystem::path& png) {
  plot_heatmap(png, "confusion matrix (row-normalised)", {"hip-hop", "#1", "rock"},
               {0.90f, 0.05f, 0.05f, 0.20f, 0.70f, 0.10f, 0.00f, 0.33f, 0.67f});
}

// Five ROC panels, curves of growing quality; the fourth has no curve and says "no data".
std::vector<PlotPanel> roc_panels() {
  std::vector<PlotPanel> panels;
  for (int tag = 0; tag < 5; ++tag) {
    PlotPanel panel;
    panel.title = "tag_" + std::to_string(tag) + " (AUC 0.9" + std::to_string(tag) + ")";
    panel.diagonal = true;
    PlotSeries curve{"ROC", {}, {}};
    for (int i = 0; i <= 50; ++i) {
      curve.x.push_back(i / 50.0);
      curve.y.push_back(std::pow(i / 50.0, 0.6 - 0.1 * tag));
    }
    if (tag != 3) panel.series.push_back(curve);
    panels.push_back(panel);
  }
  return panels;
}

std::size_t count_occurrences(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++count;
  return count;
}

HtmlReport sample_report(const TempDir& dir) {
  HtmlReport report;
  report.title = "mtat_top10_crnn — test split";
  report.summary = {{"run dir", "runs/mtat_top10_crnn"}, {"split", "test"}, {"ROC-AUC (macro)", "0.912"}};
  report.tables.push_back({"per-class metrics",
                           {"class", "precision", "recall", "support"},
                           {{"<b>&", "0.91", "0.80", "120"}, {"jazz", "nan", "0.50", "3"}}});
  report.images = {{"loss", dir / "loss.png"}, {"confusion matrix", dir / "confusion.png"}};
  report.config_yaml = "model:\n  name: crnn  # <top10>\n";
  draw_loss_chart(dir / "loss.png");
  draw_confusion_heatmap(dir / "confusion.png");
  return report;
}

}  // namespace

TEST_CASE("report: charts of each kind, several in one process, written atomically", "[report]") {
  const TempDir dir;
  const std::filesystem::path charts = dir / "charts";  // created by the first chart
  draw_loss_chart(charts / "loss.png");
  check_chart(charts / "loss.png", 900, 600);

  draw_confusion_heatmap(charts / "confusion.png");
  check_chart(charts / "confusion.png", 700 + 30 * 3, 700 + 30 * 3);

  // 5 panels: 3 columns, 2 rows of about 260 px, plus margins for the shared labels.
  plot_panel_grid(charts / "roc.png", "ROC per tag", "false positive rate", "true positive rate",
                  roc_panels());
  check_chart(charts / "roc.png", 3 * 260 + 50, 2 * 260 + 50, 60);

  // Drawing over an existing chart replaces it; a fixed y range is accepted.
  plot_lines(charts / "loss.png", "accuracy", "epoch", "accuracy", {{"val", {1, 2, 3}, {0.5, 0.7, 0.8}}}, 0.0,
             1.0);
  check_chart(charts / "loss.png", 900, 600);
  CHECK(files_in(charts) == std::vector<std::string>{"confusion.png", "loss.png", "roc.png"});
}

TEST_CASE("report: a chart with nothing to draw names its file", "[report]") {
  const TempDir dir;
  const std::filesystem::path png = dir / "empty.png";
  const std::string message = user_error_message([&] {
    plot_lines(png, "loss", "epoch", "loss", {{"train", {1, 2, 3}, {NAN, NAN, NAN}}, {"val", {}, {}}});
  });
  CHECK_THAT(message, Contains(png.string()) && Contains("NaN"));
  CHECK_THAT(user_error_message([&] { plot_panel_grid(png, "ROC", "x", "y", {}); }), Contains(png.string()));
  CHECK(files_in(dir.path()).empty());
  // PLplot is still usable afterwards.
  draw_loss_chart(png);
  check_chart(png, 900, 600);
}

TEST_CASE("report: the HTML report stands alone and escapes its text", "[report]") {
  const TempDir dir;
  const HtmlReport report = sample_report(dir);
  const std::filesystem::path html = dir / "report" / "index.html";
  write_html_report(html, report);
  const std::string page = read_file(html);
  CHECK_THAT(page, Contains("<!DOCTYPE html>"));
  CHECK_THAT(page, Contains("mtat_top10_crnn — test split"));
  CHECK_THAT(page, Contains("&lt;b&gt;&amp;"));
  CHECK_THAT(page, Contains("# &lt;top10&gt;"));
  CHECK_THAT(page, !Contains("<b>&"));
  CHECK(count_occurrences(page, "data:image/png;base64,") == 2);
  CHECK_THAT(page, !Contains("src=\"http"));
  CHECK_THAT(page, !Contains("<script src"));
  CHECK_THAT(page, !Contains("<link"));
  CHECK_THAT(page, !Contains("url("));
  // Numeric columns align right, headers included.
  CHECK_THAT(page, Contains("<th class=\"num\">precision</th>"));
  CHECK_THAT(page, Contains("<td class=\"num\">nan</td>"));

  HtmlReport missing_image = report;
  missing_image.images.emplace_back("ROC", dir / "no_such.png");
  const std::string message = user_error_message([&] { write_html_report(html, missing_image); });
  CHECK_THAT(message, Contains((dir / "no_such.png").string()));
  CHECK(read_file(html) == page);  // the previous report stays
}

TEST_CASE("report: headless Chromium shows every image of the HTML report", "[report]") {
  const TempDir dir;
  const std::filesystem::path html = std::filesystem::absolute(dir / "report.html");
  write_html_report(html, sample_report(dir));
  const std::string dom = chromium_dom(html, dir / "home");
  CHECK_THAT(dom, Contains("data-images-loaded=\"2/2\""));
  CHECK_THAT(dom, Contains("mtat_top10_crnn — test split"));
}

}  // namespace cadenza
