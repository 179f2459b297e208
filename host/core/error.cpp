// Formatting for the check macros of error.hpp.
#include "host/core/error.hpp"

namespace cadenza {

std::string located_message(const char* file, int line, const std::string& message) {
  return std::string(file) + ":" + std::to_string(line) + ": " + message;
}

}  // namespace cadenza
