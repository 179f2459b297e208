// The HTML report writer: HTML5 with an inline style sheet and script, text escaped,
// PNG images embedded as base64.
//
// Invariants:
// - All images are read and checked before the output file is opened, so a missing
//   image leaves the previous report untouched.
// - Text reaches the page only through escape_html(); the only unescaped strings are the
//   fixed markup, style and script of this file and the base64 data.
// - A table column is numeric, and aligned right with its header, when every non-empty
//   cell in it is a number (a trailing '%' allowed) and at least one is.
#include "host/report/html_report.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "host/core/error.hpp"
#include "host/io/atomic_file.hpp"

namespace cadenza {
namespace {

constexpr std::string_view kPngSignature = "\x89PNG\r\n\x1a\n";

constexpr std::string_view kStyle = R"(
body { font-family: system-ui, "DejaVu Sans", sans-serif; color: #222; line-height: 1.4;
       max-width: 1200px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 1rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; padding-bottom: 0.3rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1rem 0; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.4rem; }
th, td { padding: 0.3rem 0.8rem; border-bottom: 1px solid #e5e5e5; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid #bbb; }
tbody tr:nth-child(even) { background: #f7f7f7; }
th.num, td.num { text-align: right; }
table.summary th { font-weight: 600; color: #555; }
figure { margin: 1.5rem 0; }
img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9rem; margin-top: 0.3rem; }
pre { background: #f5f5f5; padding: 1rem; overflow-x: auto; font-size: 0.85rem; }
.warning { color: #b00020; font-weight: 600; }
)";

// Counts the images that decoded; see the invariants in html_report.hpp.
constexpr std::string_view kImageCheckScript = R"(
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (image) { return image.complete && image.naturalWidth > 0; }).length;
  document.body.dataset.imagesLoaded = loaded + "/" + images.length;
  if (loaded < images.length) {
    var warning = document.getElementById("image-warning");
    warning.textContent = (images.length - loaded) + " of " + images.length + " images could not be shown.";
    warning.hidden = false;
  }
});
)";

std::string escape_html(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': escaped += "&amp;"; break;
      case '<': escaped += "&lt;"; break;
      case '>': escaped += "&gt;"; break;
      case '"': escaped += "&quot;"; break;
      case '\'': escaped += "&#39;"; break;
      default: escaped += c;
    }
  }
  return escaped;
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string encoded;
  encoded.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t count = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t group = 0;
    for (std::size_t j = 0; j < 3; ++j) {
      group = (group << 8) | (j < count ? static_cast<unsigned char>(bytes[i + j]) : 0u);
    }
    for (std::size_t j = 0; j < 4; ++j) {
      encoded += j <= count ? kAlphabet[(group >> (18 - 6 * j)) & 0x3F] : '=';
    }
  }
  return encoded;
}

bool is_number(std::string_view cell) {
  if (!cell.empty() && cell.back() == '%') cell.remove_suffix(1);
  double value = 0.0;
  const auto [end, error] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  return !cell.empty() && error == std::errc() && end == cell.data() + cell.size();
}

std::vector<bool> numeric_columns(const HtmlTable& table) {
  std::size_t columns = table.header.size();
  for (const auto& row : table.rows) columns = std::max(columns, row.size());
  std::vector<bool> numeric(columns, true);
  std::vector<bool> seen_number(columns, false);
  for (const auto& row : table.rows) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (row[c].empty()) continue;
      if (is_number(row[c])) {
        seen_number[c] = true;
      } else {
        numeric[c] = false;
      }
    }
  }
  for (std::size_t c = 0; c < columns; ++c) numeric[c] = numeric[c] && seen_number[c];
  return numeric;
}

void write_cell(std::ostream& out, const char* tag, const std::string& text, bool numeric) {
  out << '<' << tag << (numeric ? " class=\"num\">" : ">") << escape_html(text) << "</" << tag << '>';
}

void write_table(std::ostream& out, const HtmlTable& table) {
  const std::vector<bool> numeric = numeric_columns(table);
  out << "<table>\n";
  if (!table.caption.empty()) out << "<caption>" << escape_html(table.caption) << "</caption>\n";
  if (!table.header.empty()) {
    out << "<thead><tr>";
    for (std::size_t c = 0; c < table.header.size(); ++c) write_cell(out, "th", table.header[c], numeric[c]);
    out << "</tr></thead>\n";
  }
  out << "<tbody>\n";
  for (const auto& row : table.rows) {
    out << "<tr>";
    for (std::size_t c = 0; c < row.size(); ++c) write_cell(out, "td", row[c], numeric[c]);
    out << "</tr>\n";
  }
  out << "</tbody>\n</table>\n";
}

// The bytes of every image, read and checked to be PNG files.
std::vector<std::string> read_images(const std::filesystem::path& html, const HtmlReport& report) {
  std::vector<std::string> images;
  for (const auto& [caption, png] : report.images) {
    std::error_code error;
    if (!std::filesystem::is_regular_file(png, error)) {
      CADENZA_USER_ERROR("cannot write " << html.string() << ": the image \"" << caption << "\", "
                                         << png.string() << ", does not exist");
    }
    images.push_back(read_file(png));
    if (!images.back().starts_with(kPngSignature)) {
      CADENZA_USER_ERROR("cannot write " << html.string() << ": the image \"" << caption << "\", "
                                         << png.string() << ", is not a PNG file");
    }
  }
  return images;
}

}  // namespace

void write_html_report(const std::filesystem::path& html, const HtmlReport& report) {
  const std::vector<std::string> images = read_images(html, report);
  if (html.has_parent_path()) {
    std::error_code error;
    std::filesystem::create_directories(html.parent_path(), error);
    if (error) {
      CADENZA_USER_ERROR("cannot write " << html.string() << ": cannot create directory "
                                         << html.parent_path().string() << ": " << error.message());
    }
  }
  write_file_atomically(html, [&](std::ostream& out) {
    out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        << "<title>" << escape_html(report.title) << "</title>\n"
        << "<style>" << kStyle << "</style>\n</head>\n<body>\n"
        << "<h1>" << escape_html(report.title) << "</h1>\n"
        << "<p id=\"image-warning\" class=\"warning\" hidden></p>\n";
    if (!report.summary.empty()) {
      out << "<table class=\"summary\">\n";
      for (const auto& [key, value] : report.summary) {
        out << "<tr><th>" << escape_html(key) << "</th><td>" << escape_html(value) << "</td></tr>\n";
      }
      out << "</table>\n";
    }
    for (const HtmlTable& table : report.tables) write_table(out, table);
    if (!report.images.empty()) out << "<h2>Charts</h2>\n";
    for (std::size_t i = 0; i < images.size(); ++i) {
      const std::string caption = escape_html(report.images[i].first);
      out << "<figure><img alt=\"" << caption << "\" src=\"data:image/png;base64," << base64(images[i])
          << "\"><figcaption>" << caption << "</figcaption></figure>\n";
    }
    if (!report.config_yaml.empty()) {
      out << "<h2>Configuration</h2>\n<pre>" << escape_html(report.config_yaml) << "</pre>\n";
    }
    out << "<script>" << kImageCheckScript << "</script>\n</body>\n</html>\n";
  });
}

}  // namespace cadenza
