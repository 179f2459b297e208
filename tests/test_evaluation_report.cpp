// gpu_eval's text table: scikit-learn's classification_report layout, with columns that
// line up in a terminal when label names are not ASCII (a byte count put "é" one column
// off). Code points are counted as columns: wide CJK glyphs (two columns) are not handled.
#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "host/report/evaluation_report.hpp"

namespace cadenza {

TEST_CASE("the evaluation table lines up labels that are not ASCII", "[cpu][report]") {
  EvaluationReport report;
  report.labels = {"hip hop \xc3\xa9t\xc3\xa9", "rock", "forr\xc3\xb3"};  // "hip hop été", "rock", "forró"
  report.classification.classes.resize(3, ReportRow{0.5, 0.25, 0.3333, 4});
  report.classification.macro_avg = report.classification.weighted_avg = ReportRow{0.5, 0.25, 0.3333, 12};
  report.classification.accuracy = 0.25;
  std::istringstream table(format_evaluation_report(report));
  // Every row ends its last column at the same terminal column: count code points.
  std::vector<std::size_t> widths;
  for (std::string line; std::getline(table, line);) {
    if (line.empty()) continue;
    widths.push_back(std::count_if(line.begin(), line.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
  }
  REQUIRE(widths.size() == 7);  // header, 3 classes, accuracy, 2 averages
  CHECK(std::all_of(widths.begin(), widths.end(), [&](std::size_t w) { return w == widths[0]; }));
}

}  // namespace cadenza
