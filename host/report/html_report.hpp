// A self-contained HTML report of a run: a summary, tables, embedded PNG charts and the
// configuration, in one file that opens anywhere without a network or other files.
//
// Invariants:
// - The file references nothing outside itself: images are embedded as base64 data:
//   URIs, the style sheet and the one script are inline, no fonts are loaded.
// - Every piece of text from the report (title, keys, values, cells, captions, the
//   configuration) is HTML-escaped, so it shows exactly as given.
// - The file is written atomically (host/io/atomic_file.hpp); its directory is created
//   when missing. A missing or non-PNG image throws UserError naming it before anything
//   is written.
// - Once the page has loaded, its script sets the body's data-images-loaded attribute to
//   "<decoded images>/<images>" and shows a warning line when an image did not decode.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace cadenza {

struct HtmlTable {
  std::string caption;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // cells are text, escaped by the writer
};

struct HtmlReport {
  std::string title;  // e.g. "mtat_top10_crnn — test split"
  // key → value lines at the top (run dir, checkpoint, split, clips, headline metric)
  std::vector<std::pair<std::string, std::string>> summary;
  std::vector<HtmlTable> tables;  // e.g. the per-class metrics table; numeric columns align right
  // caption → PNG file, embedded as base64 data: URIs
  std::vector<std::pair<std::string, std::filesystem::path>> images;
  std::string config_yaml;  // shown in a <pre> block
};

// Writes `report` to `html` atomically. Images are read now and embedded, so the file
// stands alone. Throws UserError naming a missing image.
void write_html_report(const std::filesystem::path& html, const HtmlReport& report);

}  // namespace cadenza
