// PNG charts on PLplot's pngcairo device, laid out in pixels of the output image.
//
// Invariants:
// - PngPage owns one page from start to finish: it takes the process-wide PLplot lock,
//   creates the temporary file (so that PLplot's own fopen() cannot fail: PLplot answers
//   that by prompting on stdin and ending the process), starts the page, and on commit()
//   ends it and renames the file over the target. Every other way out ends the page too
//   and removes the temporary file, leaving PLplot ready for the next chart.
// - PLplot's errors go into the page's message buffer (plsError) instead of stderr; any
//   error turns into UserError naming the target after the page has ended.
// - Colour map 0 is fixed: kBackground, kInk, kGrid and kReference, the series palette
//   from kFirstSeriesColour, then kMissingCell. Colour map 1 is the heatmap's sequential
//   map.
// - Sizes are given in pixels. The pngcairo device has 72 pixels per inch, so one of
//   PLplot's millimetres (character heights, viewport margins) is kPixelsPerMm pixels.
// - Every string shown goes through plplot_text(), which escapes '#'.
#include "host/report/plots.hpp"

#include <fcntl.h>
#include <plplot/plplot.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "host/core/error.hpp"

namespace cadenza {
namespace {

constexpr double kPixelsPerMm = 72.0 / 25.4;

// Colour map 0.
constexpr PLINT kBackground = 0;
constexpr PLINT kInk = 1;
constexpr PLINT kGrid = 2;
constexpr PLINT kReference = 3;
constexpr PLINT kFirstSeriesColour = 4;

struct Rgb {
  int r, g, b;
};

constexpr Rgb kBackgroundRgb{255, 255, 255};
constexpr Rgb kInkRgb{34, 34, 34};
constexpr Rgb kGridRgb{221, 221, 221};
constexpr Rgb kReferenceRgb{140, 140, 140};
// The Okabe-Ito palette, which colour-blind readers can tell apart, without its yellow
// (too faint on white). Series beyond it repeat the colours with another dash pattern.
constexpr std::array<Rgb, 7> kSeriesPalette{
    {{0, 114, 178}, {230, 159, 0}, {0, 158, 115}, {213, 94, 0}, {204, 121, 167}, {86, 180, 233}, {0, 0, 0}}};
// A sequential white-to-blue map (matplotlib's "Blues"), evenly spaced stops over [0, 1].
constexpr std::array<Rgb, 5> kSequentialStops{
    {{247, 251, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}}};
constexpr int kSequentialColours = 256;
constexpr Rgb kMissingCellRgb{200, 200, 200};
// After the series palette in colour map 0.
constexpr PLINT kMissingCell = kFirstSeriesColour + static_cast<PLINT>(kSeriesPalette.size());

// Text heights in pixels, and the width of an average glyph in text heights, measured on
// DejaVu Sans as pngcairo draws it (a little generous), to estimate how wide a string is.
constexpr double kTitlePx = 18.0;
constexpr double kLabelPx = 15.0;
constexpr double kTickPx = 13.0;
constexpr double kAverageGlyphWidth = 0.72;

constexpr double kSeriesLineWidth = 2.0;
constexpr double kAxisLineWidth = 1.0;

std::mutex& plplot_mutex() {
  static std::mutex mutex;
  return mutex;
}

// `text` for PLplot's text functions, which read '#' as the start of an escape
// sequence: "##" stands for one '#'.
std::string plplot_text(const std::string& text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (const char c : text) {
    escaped += c;
    if (c == '#') escaped += '#';
  }
  return escaped;
}

// An estimate of the width in pixels of `text` (UTF-8) drawn `height_px` high.
double text_width_px(const std::string& text, double height_px) {
  const auto code_points = std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;  // not a continuation byte
  });
  return static_cast<double>(code_points) * kAverageGlyphWidth * height_px;
}

// `text`, or its beginning and an ellipsis when it would be wider than `max_width_px`
// drawn `height_px` high.
std::string shortened(const std::string& text, double height_px, double max_width_px) {
  if (text_width_px(text, height_px) <= max_width_px) return text;
  const auto keep = std::max<std::ptrdiff_t>(
      1, static_cast<std::ptrdiff_t>(max_width_px / (kAverageGlyphWidth * height_px)) - 1);
  std::ptrdiff_t code_points = 0;
  std::size_t end = 0;
  while (end < text.size()) {
    if ((static_cast<unsigned char>(text[end]) & 0xC0) != 0x80 && code_points++ == keep) break;
    ++end;
  }
  return text.substr(0, end) + "\u2026";
}

void set_text_height(double height_px) { plschr(height_px / kPixelsPerMm, 1.0); }

// The colour of `value` (clamped to [0, 1]) on the sequential map.
Rgb sequential_colour(double value) {
  const double position = std::clamp(value, 0.0, 1.0) * (kSequentialStops.size() - 1);
  const std::size_t lower = std::min(static_cast<std::size_t>(position), kSequentialStops.size() - 2);
  const double fraction = position - static_cast<double>(lower);
  const Rgb& a = kSequentialStops[lower];
  const Rgb& b = kSequentialStops[lower + 1];
  const auto mix = [fraction](int from, int to) {
    return static_cast<int>(std::lround(from + fraction * (to - from)));
  };
  return {mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b)};
}

bool is_dark(const Rgb& colour) { return 0.2126 * colour.r + 0.7152 * colour.g + 0.0722 * colour.b < 128.0; }

// Throws unless PLplot has the pngcairo device (a separate package: plplot-driver-cairo).
void require_pngcairo(const std::filesystem::path& png) {
  static const bool available = [] {
    std::array<const char*, 256> menu_entries{};
    std::array<const char*, 256> device_names{};
    const char** menu_entries_data = menu_entries.data();
    const char** device_names_data = device_names.data();
    int count = static_cast<int>(device_names.size());
    plgDevs(&menu_entries_data, &device_names_data, &count);
    return std::any_of(device_names.begin(), device_names.begin() + count,
                       [](const char* name) { return std::strcmp(name, "pngcairo") == 0; });
  }();
  if (!available) {
    CADENZA_USER_ERROR("cannot draw " << png.string()
                                      << ": PLplot has no pngcairo device; run tools/setup.sh "
                                         "(it installs plplot-driver-cairo)");
  }
}

// One PNG page of width x height pixels; see the invariants at the top of the file.
class PngPage {
 public:
  PngPage(const std::filesystem::path& png, int width_px, int height_px)
      : lock_(plplot_mutex()), target_(png), width_px_(width_px), height_px_(height_px) {
    require_pngcairo(target_);
    const std::filesystem::path directory =
        target_.has_parent_path() ? target_.parent_path() : std::filesystem::path(".");
    std::error_code error;
    std::filesystem::create_directories(directory, error);
    if (error) {
      CADENZA_USER_ERROR("cannot write " << target_.string() << ": cannot create directory "
                                         << directory.string() << ": " << error.message());
    }
    temp_ = target_;
    temp_ += ".tmp." + std::to_string(::getpid()) + ".png";
    const int fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
      const int error_number = errno;
      CADENZA_USER_ERROR("cannot write " << target_.string() << ": cannot create " << temp_.string() << ": "
                                         << std::strerror(error_number));
    }
    ::close(fd);

    plsError(&error_code_, error_message_.data());
    plsdev("pngcairo");
    plsfnam(temp_.c_str());
    plspage(0.0, 0.0, width_px_, height_px_, 0, 0);
    set_colour_maps();
    plinit();
    started_ = true;
    pladv(0);
  }

  ~PngPage() {
    if (started_) plend1();
    if (!committed_) {
      std::error_code ignored;
      std::filesystem::remove(temp_, ignored);
    }
  }

  PngPage(const PngPage&) = delete;
  PngPage& operator=(const PngPage&) = delete;

  // Sets the viewport to the rectangle [left, right] x [bottom, top], in pixels from the
  // page's lower left corner.
  void set_viewport(double left, double right, double bottom, double top) const {
    plvpor(left / width_px_, right / width_px_, bottom / height_px_, top / height_px_);
  }

  // Ends the page and puts the file in place.
  void commit() {
    plend1();
    started_ = false;
    if (error_code_ != 0) {
      std::string message(error_message_.data());
      while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) message.pop_back();
      CADENZA_USER_ERROR("cannot draw " << target_.string() << ": PLplot: " << message);
    }
    std::error_code error;
    if (std::filesystem::file_size(temp_, error) == 0 || error) {
      CADENZA_USER_ERROR("cannot write " << target_.string() << ": PLplot wrote nothing to "
                                         << temp_.string());
    }
    std::filesystem::rename(temp_, target_, error);
    if (error) {
      CADENZA_USER_ERROR("cannot write " << target_.string() << ": rename of " << temp_.string()
                                         << " failed: " << error.message());
    }
    committed_ = true;
  }

 private:
  static void set_colour_maps() {
    std::vector<Rgb> map0 = {kBackgroundRgb, kInkRgb, kGridRgb, kReferenceRgb};
    map0.insert(map0.end(), kSeriesPalette.begin(), kSeriesPalette.end());
    map0.push_back(kMissingCellRgb);
    set_colour_map(map0, plscmap0);
    std::vector<Rgb> map1;
    for (int i = 0; i < kSequentialColours; ++i)
      map1.push_back(sequential_colour(i / (kSequentialColours - 1.0)));
    set_colour_map(map1, plscmap1);
  }

  template <typename SetMap>
  static void set_colour_map(const std::vector<Rgb>& colours, SetMap set_map) {
    std::vector<PLINT> r, g, b;
    for (const Rgb& colour : colours) {
      r.push_back(colour.r);
      g.push_back(colour.g);
      b.push_back(colour.b);
    }
    set_map(r.data(), g.data(), b.data(), static_cast<PLINT>(colours.size()));
  }

  std::unique_lock<std::mutex> lock_;
  std::filesystem::path target_;
  std::filesystem::path temp_;
  int width_px_;
  int height_px_;
  bool started_ = false;
  bool committed_ = false;
  PLINT error_code_ = 0;
  std::array<char, 4096> error_message_{};
};

// The colour (in colour map 0) and dash pattern (PLplot's 1 to 8) of the series at `index`.
PLINT series_colour(std::size_t index) {
  return kFirstSeriesColour + static_cast<PLINT>(index % kSeriesPalette.size());
}
PLINT series_line_style(std::size_t index) {
  return 1 + static_cast<PLINT>((index / kSeriesPalette.size()) % 8);
}

void use_series_style(std::size_t index) {
  plcol0(series_colour(index));
  pllsty(series_line_style(index));
  plwidth(kSeriesLineWidth);
}

void use_plain_line() {
  pllsty(1);
  plwidth(kAxisLineWidth);
}

bool is_point(const PlotSeries& series, std::size_t i) {
  return std::isfinite(series.x[i]) && std::isfinite(series.y[i]);
}

// The series that have at least one point to draw; checks that x and y match in length.
std::vector<const PlotSeries*> drawable_series(const std::vector<PlotSeries>& series,
                                               const std::filesystem::path& png) {
  std::vector<const PlotSeries*> drawable;
  for (const PlotSeries& one : series) {
    CADENZA_CHECK(one.x.size() == one.y.size(), "series \"" << one.name << "\" of " << png.string() << " has "
                                                            << one.x.size() << " x values but "
                                                            << one.y.size() << " y values");
    for (std::size_t i = 0; i < one.x.size(); ++i) {
      if (is_point(one, i)) {
        drawable.push_back(&one);
        break;
      }
    }
  }
  return drawable;
}

// Calls `run(first, end)` for every maximal run of consecutive points of `series`.
template <typename Run>
void for_each_run(const PlotSeries& series, Run run) {
  std::size_t i = 0;
  while (i < series.x.size()) {
    if (!is_point(series, i)) {
      ++i;
      continue;
    }
    const std::size_t first = i;
    while (i < series.x.size() && is_point(series, i)) ++i;
    run(first, i);
  }
}

// Draws `series` in the current window: a line through each run of points, a dot for a
// point on its own.
void draw_series(const PlotSeries& series, std::size_t style_index) {
  use_series_style(style_index);
  for_each_run(series, [&](std::size_t first, std::size_t end) {
    const PLINT count = static_cast<PLINT>(end - first);
    if (count == 1) {
      constexpr PLINT kFilledCircle = 17;  // PLplot's symbol code
      plssym(0.0, 1.5);
      plpoin(1, &series.x[first], &series.y[first], kFilledCircle);
    } else {
      plline(count, &series.x[first], &series.y[first]);
    }
  });
  use_plain_line();
}

struct Range {
  double low = std::numeric_limits<double>::infinity();
  double high = -std::numeric_limits<double>::infinity();

  void include(double value) {
    low = std::min(low, value);
    high = std::max(high, value);
  }
  // The range widened by `fraction` of its width on each side; a single value gets a
  // width of its own.
  Range padded(double fraction) const {
    if (high > low) return {low - fraction * (high - low), high + fraction * (high - low)};
    const double half_width = low != 0.0 ? 0.05 * std::abs(low) : 0.5;
    return {low - half_width, high + half_width};
  }
};

// Draws the light grid at the major ticks, then the frame with ticks and numbers, in the
// current window. A tick spacing of 0 lets PLplot choose.
void draw_axes(double x_tick, double y_tick) {
  use_plain_line();
  plcol0(kGrid);
  plbox("g", x_tick, 0, "g", y_tick, 0);
  plcol0(kInk);
  plbox("bcnst", x_tick, 0, "bcnstv", y_tick, 0);
}

// A legend for `series` (style i for entry i) inside the current viewport, which is
// `viewport_width_px` x `viewport_height_px`, in the corner its lines cross least.
// `x` and `y` are the current window.
void draw_legend(const std::vector<const PlotSeries*>& series, const Range& x, const Range& y,
                 double viewport_width_px, double viewport_height_px, double text_px) {
  constexpr double kLineSamplePx = 36.0;
  constexpr double kTextSpacing = 2.0;  // text heights per entry
  set_text_height(text_px);
  double longest_name_px = 0.0;
  for (const PlotSeries* one : series)
    longest_name_px = std::max(longest_name_px, text_width_px(one->name, text_px));
  const double line_sample = kLineSamplePx / viewport_width_px;
  const double width = line_sample + (longest_name_px + 3.0 * text_px) / viewport_width_px;
  const double height = (series.size() * kTextSpacing + 1.0) * text_px / viewport_height_px;

  // Count, for each corner, the points of the lines (each segment sampled) under the legend.
  struct Corner {
    PLINT position;
    bool right, top;
    int covered = 0;
  };
  std::array<Corner, 4> corners{{{PL_POSITION_RIGHT | PL_POSITION_TOP, true, true},
                                 {PL_POSITION_LEFT | PL_POSITION_TOP, false, true},
                                 {PL_POSITION_LEFT | PL_POSITION_BOTTOM, false, false},
                                 {PL_POSITION_RIGHT | PL_POSITION_BOTTOM, true, false}}};
  const auto count_sample = [&](double sample_x, double sample_y) {
    const double u = (sample_x - x.low) / (x.high - x.low);
    const double v = (sample_y - y.low) / (y.high - y.low);
    for (Corner& corner : corners) {
      const bool inside_x = corner.right ? u > 1.0 - width : u < width;
      const bool inside_y = corner.top ? v > 1.0 - height : v < height;
      if (inside_x && inside_y) ++corner.covered;
    }
  };
  for (const PlotSeries* one : series) {
    for_each_run(*one, [&](std::size_t first, std::size_t end) {
      count_sample(one->x[first], one->y[first]);
      for (std::size_t i = first + 1; i < end; ++i) {
        constexpr int kSamplesPerSegment = 16;
        for (int s = 1; s <= kSamplesPerSegment; ++s) {
          const double t = static_cast<double>(s) / kSamplesPerSegment;
          count_sample(one->x[i - 1] + t * (one->x[i] - one->x[i - 1]),
                       one->y[i - 1] + t * (one->y[i] - one->y[i - 1]));
        }
      }
    });
  }
  const Corner& emptiest = *std::min_element(
      corners.begin(), corners.end(), [](const Corner& a, const Corner& b) { return a.covered < b.covered; });

  const PLINT count = static_cast<PLINT>(series.size());
  std::vector<std::string> names;
  std::vector<const char*> name_pointers;
  std::vector<PLINT> entry_options(series.size(), PL_LEGEND_LINE);
  std::vector<PLINT> text_colours(series.size(), kInk);
  std::vector<PLINT> line_colours, line_styles;
  std::vector<PLFLT> line_widths(series.size(), kSeriesLineWidth);
  for (std::size_t i = 0; i < series.size(); ++i) {
    names.push_back(plplot_text(series[i]->name));
    line_colours.push_back(series_colour(i));
    line_styles.push_back(series_line_style(i));
  }
  for (const std::string& name : names) name_pointers.push_back(name.c_str());
  PLFLT legend_width = 0.0;
  PLFLT legend_height = 0.0;
  plcol0(kInk);
  pllegend(&legend_width, &legend_height, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
           emptiest.position | PL_POSITION_INSIDE | PL_POSITION_VIEWPORT, 0.02, 0.03, line_sample,
           kBackground, kGrid, 1, 0, 0, count, entry_options.data(), 1.0, 1.0, kTextSpacing, 0.0,
           text_colours.data(), name_pointers.data(), nullptr, nullptr, nullptr, nullptr, line_colours.data(),
           line_styles.data(), line_widths.data(), nullptr, nullptr, nullptr, nullptr);
  use_plain_line();
}

// Writes `text` `height_px` high beside the current viewport (plmtex: `side` "t", "b",
// "l", ...), its middle `offset_px` out from the edge, at `position` along it with
// `justification`.
void write_beside_viewport(const char* side, double offset_px, double position, double justification,
                           const std::string& text, double height_px) {
  set_text_height(height_px);
  plcol0(kInk);
  plmtex(side, offset_px / height_px, position, justification, plplot_text(text).c_str());
}

}  // namespace

void plot_lines(const std::filesystem::path& png, const std::string& title, const std::string& x_label,
                const std::string& y_label, const std::vector<PlotSeries>& series, double y_min,
                double y_max) {
  const std::vector<const PlotSeries*> drawn = drawable_series(series, png);
  if (drawn.empty()) {
    CADENZA_USER_ERROR("cannot draw " << png.string()
                                      << ": no series has a point to plot (each is empty or "
                                         "all NaN)");
  }
  Range x, y;
  for (const PlotSeries* one : drawn) {
    for (std::size_t i = 0; i < one->x.size(); ++i) {
      if (!is_point(*one, i)) continue;
      x.include(one->x[i]);
      y.include(one->y[i]);
    }
  }
  x = x.padded(0.02);
  y = y_min < y_max ? Range{y_min, y_max} : y.padded(0.05);

  constexpr int kWidth = 900, kHeight = 600;
  constexpr double kLeft = 95, kRight = kWidth - 30, kBottom = 70, kTop = kHeight - 50;
  PngPage page(png, kWidth, kHeight);
  page.set_viewport(kLeft, kRight, kBottom, kTop);
  plwind(x.low, x.high, y.low, y.high);
  set_text_height(kTickPx);
  draw_axes(0.0, 0.0);
  for (std::size_t i = 0; i < drawn.size(); ++i) draw_series(*drawn[i], i);
  if (drawn.size() > 1) draw_legend(drawn, x, y, kRight - kLeft, kTop - kBottom, kTickPx);
  write_beside_viewport("t", 18, 0.5, 0.5, title, kTitlePx);
  write_beside_viewport("b", 50, 0.5, 0.5, x_label, kLabelPx);
  write_beside_viewport("l", 65, 0.5, 0.5, y_label, kLabelPx);
  page.commit();
}

void plot_panel_grid(const std::filesystem::path& png, const std::string& title, const std::string& x_label,
                     const std::string& y_label, const std::vector<PlotPanel>& panels) {
  if (panels.empty()) CADENZA_USER_ERROR("cannot draw " << png.string() << ": no panels to plot");
  const int count = static_cast<int>(panels.size());
  const int columns = std::min(8, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(count)))));
  const int rows = (count + columns - 1) / columns;

  // Page margins hold the shared title and axis labels; each panel's cell holds its
  // title above and its tick labels left of and below its plot.
  constexpr double kCell = 260;
  constexpr double kPageLeft = 40, kPageRight = 15, kPageBottom = 45, kPageTop = 50;
  constexpr double kCellLeft = 42, kCellRight = 14, kCellBottom = 30, kCellTop = 28;
  constexpr double kPanelTitlePx = 13.0, kPanelTickPx = 11.0, kMinimumTitlePx = 8.0;
  const int width = static_cast<int>(kPageLeft + columns * kCell + kPageRight);
  const int height = static_cast<int>(kPageBottom + rows * kCell + kPageTop);
  std::vector<std::vector<const PlotSeries*>> drawn_per_panel;
  for (const PlotPanel& panel : panels) drawn_per_panel.push_back(drawable_series(panel.series, png));
  PngPage page(png, width, height);

  const Range unit{0.0, 1.0};
  for (int p = 0; p < count; ++p) {
    const PlotPanel& panel = panels[p];
    const std::vector<const PlotSeries*>& drawn = drawn_per_panel[p];
    const double cell_left = kPageLeft + (p % columns) * kCell;
    const double cell_top = height - kPageTop - (p / columns) * kCell;
    const double left = cell_left + kCellLeft, right = cell_left + kCell - kCellRight;
    const double top = cell_top - kCellTop, bottom = cell_top - kCell + kCellBottom;
    page.set_viewport(left, right, bottom, top);
    plwind(unit.low, unit.high, unit.low, unit.high);
    set_text_height(kPanelTickPx);
    draw_axes(0.2, 0.2);
    if (panel.diagonal) {
      plcol0(kReference);
      pllsty(2);
      pljoin(0.0, 0.0, 1.0, 1.0);
      use_plain_line();
    }
    for (std::size_t i = 0; i < drawn.size(); ++i) draw_series(*drawn[i], i);
    if (drawn.empty()) {
      set_text_height(kPanelTitlePx);
      plcol0(kReference);
      plptex(0.5, 0.5, 1.0, 0.0, 0.5, "no data");
    }
    if (drawn.size() > 1) draw_legend(drawn, unit, unit, right - left, top - bottom, kPanelTickPx);
    // A long title shrinks to fit across its plot and a little beyond.
    const double title_width = text_width_px(panel.title, kPanelTitlePx);
    const double room = right - left + kCellRight;
    const double title_px = std::max(kMinimumTitlePx, kPanelTitlePx * std::min(1.0, room / title_width));
    write_beside_viewport("t", 6 + 0.5 * title_px, 0.5, 0.5, panel.title, title_px);
  }

  page.set_viewport(kPageLeft, width - kPageRight, kPageBottom, height - kPageTop);
  write_beside_viewport("t", 20, 0.5, 0.5, title, kTitlePx);
  write_beside_viewport("b", 30, 0.5, 0.5, x_label, kLabelPx);
  write_beside_viewport("l", 14, 0.5, 0.5, y_label, kLabelPx);
  page.commit();
}

void plot_heatmap(const std::filesystem::path& png, const std::string& title,
                  const std::vector<std::string>& labels, const std::vector<float>& matrix,
                  const std::string& x_label, const std::string& y_label) {
  const int k = static_cast<int>(labels.size());
  if (k == 0) CADENZA_USER_ERROR("cannot draw " << png.string() << ": no classes to plot");
  CADENZA_CHECK(matrix.size() == labels.size() * labels.size(),
                "heatmap " << png.string() << " has " << k << " labels but " << matrix.size() << " values");

  constexpr int kMaximumSize = 2000;
  const int size = std::min(kMaximumSize, 700 + 30 * k);
  // Margins: title above; colour bar and its numbers right; class names and axis labels
  // left and below. Class names are sized from a first guess of the cell size.
  constexpr double kMargin = 20, kGap = 10, kColourBarWidth = 22, kColourBarNumbers = 45;
  const double first_cell_guess = (size - 300.0) / k;
  const double name_px = std::clamp(0.6 * first_cell_guess, 8.0, kLabelPx);
  std::vector<std::string> names;
  double longest_name_px = 0.0;
  for (const std::string& label : labels) {
    names.push_back(shortened(label, name_px, 0.25 * size));
    longest_name_px = std::max(longest_name_px, text_width_px(names.back(), name_px));
  }
  const bool vertical_x_names = longest_name_px > 0.9 * first_cell_guess;
  const double x_names_px = vertical_x_names ? longest_name_px : name_px;

  const double left_limit = kMargin + 1.5 * kLabelPx + kGap + longest_name_px + kGap;
  const double bottom_limit = kMargin + 1.5 * kLabelPx + kGap + x_names_px + kGap;
  const double right_limit = size - (kMargin + kColourBarNumbers + kColourBarWidth + 2 * kGap);
  const double top_limit = size - (kMargin + 2.0 * kTitlePx);
  // The square of cells, centred in the room the margins leave.
  const double side = std::min(right_limit - left_limit, top_limit - bottom_limit);
  const double left = left_limit + 0.5 * (right_limit - left_limit - side);
  const double bottom = bottom_limit + 0.5 * (top_limit - bottom_limit - side);
  const double right = left + side, top = bottom + side;
  const double cell = side / k;

  PngPage page(png, size, size);
  page.set_viewport(left, right, bottom, top);
  plwind(0.0, k, 0.0, k);
  const double value_px = std::clamp(0.28 * cell, 7.0, 14.0);
  for (int row = 0; row < k; ++row) {
    for (int column = 0; column < k; ++column) {
      const double value = matrix[static_cast<std::size_t>(row) * k + column];
      // Row 0 at the top.
      const double y0 = k - row - 1.0;
      const std::array<PLFLT, 4> xs{double(column), column + 1.0, column + 1.0, double(column)};
      const std::array<PLFLT, 4> ys{y0, y0, y0 + 1.0, y0 + 1.0};
      if (std::isnan(value)) {
        plcol0(kMissingCell);
      } else {
        plcol1(std::clamp(value, 0.0, 1.0));
      }
      plfill(4, xs.data(), ys.data());
      if (k <= 20 && !std::isnan(value)) {
        char text[32];
        std::snprintf(text, sizeof text, "%.2f", value);
        set_text_height(value_px);
        plcol0(is_dark(sequential_colour(value)) ? kBackground : kInk);
        plptex(column + 0.5, y0 + 0.5, 1.0, 0.0, 0.5, text);
      }
    }
  }
  plcol0(kInk);
  use_plain_line();
  plbox("bc", 0, 0, "bc", 0, 0);
  for (int i = 0; i < k; ++i) {
    const double along = (i + 0.5) / k;
    write_beside_viewport("lv", kGap, 1.0 - along, 1.0, names[i], name_px);
    if (vertical_x_names) {
      write_beside_viewport("bv", kGap, along, 1.0, names[i], name_px);
    } else {
      write_beside_viewport("b", kGap + 0.5 * name_px, along, 0.5, names[i], name_px);
    }
  }
  write_beside_viewport("t", 0.8 * kTitlePx, 0.5, 0.5, title, kTitlePx);
  const double axis_label_offset = kGap + kGap + 0.5 * kLabelPx;  // beyond the class names
  write_beside_viewport("b", x_names_px + axis_label_offset, 0.5, 0.5, x_label, kLabelPx);
  write_beside_viewport("l", longest_name_px + axis_label_offset, 0.5, 0.5, y_label, kLabelPx);

  // The colour bar: a strip of the sequential map with numbers on its right.
  constexpr int kColourBarSteps = 128;
  page.set_viewport(right + 2 * kGap, right + 2 * kGap + kColourBarWidth, bottom, top);
  plwind(0.0, 1.0, 0.0, 1.0);
  for (int step = 0; step < kColourBarSteps; ++step) {
    const double low = static_cast<double>(step) / kColourBarSteps;
    const double high = static_cast<double>(step + 1) / kColourBarSteps;
    const std::array<PLFLT, 4> xs{0.0, 1.0, 1.0, 0.0};
    const std::array<PLFLT, 4> ys{low, low, high, high};
    plcol1(0.5 * (low + high));
    plfill(4, xs.data(), ys.data());
  }
  plcol0(kInk);
  set_text_height(kTickPx);
  plbox("bc", 0, 0, "bcmstv", 0.2, 2);
  page.commit();
}

}  // namespace cadenza
