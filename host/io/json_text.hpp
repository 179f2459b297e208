// JSON text for the files and output cadenza writes. File and folder names are bytes, not
// always UTF-8 (a Latin-1 name from an old archive), and JSON is UTF-8: an invalid sequence
// is written as U+FFFD, as Python's errors="replace" does, instead of failing the write.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace cadenza {

// value as JSON text (indent < 0: one line), invalid UTF-8 in its strings replaced.
std::string json_text(const nlohmann::json& value, int indent = -1);
std::string json_text(const nlohmann::ordered_json& value, int indent = -1);

// text with each invalid UTF-8 sequence replaced by U+FFFD: what json_text writes for it.
std::string valid_utf8(const std::string& text);

// A float32 value as the double its shortest decimal form reads as, so that JSON shows
// 0.002 for the float nearest 0.002 rather than 0.0020000000949949026; read back as a
// float it is the same value.
double shortest_double(float value);

}  // namespace cadenza
