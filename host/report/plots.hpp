// PNG charts for training and evaluation reports, drawn by PLplot's pngcairo device: line
// charts (loss and metric curves), small multiples (per-tag ROC and precision-recall
// curves) and heatmaps (confusion matrices).
//
// Invariants:
// - A chart file is either absent, the previous content, or complete: PLplot draws into
//   "<name>.tmp.<pid>.png" beside the target, which is renamed over it only after PLplot
//   has closed it; on failure the temporary file is removed. The directory is created
//   when missing. The file is not fsync()ed: a chart is cheap to draw again.
// - PLplot keeps its state in globals; every function here holds one process-wide lock
//   from its first PLplot call to the end of the page, so charts may be drawn from any
//   thread, one at a time, and many per process.
// - Text (titles, labels, legend entries, class names) is shown literally, any UTF-8
//   included: '#', PLplot's escape character, is escaped.
// - A point whose x or y is not finite (NaN marks a missing value) is a gap in its line,
//   never drawn and never counted in an axis range.
// - A normal call prints nothing. Problems throw UserError naming the PNG: nothing to
//   draw, PLplot's pngcairo device missing (tools/setup.sh installs it), a file that
//   cannot be written, or an operation PLplot refused.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace cadenza {

struct PlotSeries {
  std::string name;          // legend entry
  std::vector<double> x, y;  // same length; NaN y values are gaps (skip those points)
};

struct PlotPanel {
  std::string title;  // e.g. "rock (AUC 0.912)"
  std::vector<PlotSeries> series;
  bool diagonal = false;  // draw the y = x reference line (ROC chance line), dashed grey
};

// A line chart, 900x600 px: one panel with a title, axis labels, a legend when more than
// one series is drawn, and a light grid. Empty or all-NaN series are left out; throws
// UserError naming `png` when nothing is left to draw. The x and y ranges come from the
// data with a small margin, unless `y_min < y_max` fixes the y range.
void plot_lines(const std::filesystem::path& png, const std::string& title, const std::string& x_label,
                const std::string& y_label, const std::vector<PlotSeries>& series, double y_min = 0.0,
                double y_max = 0.0);

// Small multiples: a grid of panels, about 260 px each (columns chosen so that the grid
// is roughly square, at most 8), each with its own title, shared axis labels and both
// axes fixed to [0, 1]; used for per-tag ROC curves (diagonal = true) and
// precision-recall curves. A panel with nothing to draw says "no data". Throws UserError
// naming `png` when `panels` is empty.
void plot_panel_grid(const std::filesystem::path& png, const std::string& title, const std::string& x_label,
                     const std::string& y_label, const std::vector<PlotPanel>& panels);

// A heatmap of a k x k matrix of values in [0, 1] (row-major; row = true class, column =
// predicted class), 700 + 30 k px square (at most 2000): class names on both axes
// (vertical on x when they would not fit across a cell; cut short with an ellipsis beyond
// a quarter of the image's width), a colour bar, and each cell's value with 2 decimals
// (white on dark cells, black on light ones) when k <= 20. A NaN cell (a class without
// examples) is grey. `matrix` must hold labels.size()^2 values.
void plot_heatmap(const std::filesystem::path& png, const std::string& title,
                  const std::vector<std::string>& labels, const std::vector<float>& matrix,
                  const std::string& x_label = "predicted", const std::string& y_label = "true");

}  // namespace cadenza
