// JSON text with invalid UTF-8 replaced, and floats in their shortest form (json_text.hpp).
#include "host/io/json_text.hpp"

#include <charconv>
#include <cstdlib>

namespace cadenza {

std::string json_text(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string json_text(const nlohmann::ordered_json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string valid_utf8(const std::string& text) {
  return nlohmann::json::parse(json_text(nlohmann::json(text))).get<std::string>();
}

double shortest_double(float value) {
  char text[32];
  const auto end = std::to_chars(text, text + sizeof(text) - 1, value).ptr;  // shortest round-trip form
  *end = '\0';
  return std::strtod(text, nullptr);  // inf and nan as they are
}

}  // namespace cadenza
