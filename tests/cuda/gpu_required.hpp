// Whether this run must have GPUs: CADENZA_REQUIRE_GPU set to anything but "" or "0" (a
// GPU validation run, tools/bench/gpu.sh). Then what a machine without them would skip
// fails instead.
#pragma once

#include <cstdlib>
#include <string>

namespace cadenza::testing {

inline bool gpu_required() {
  const char* value = std::getenv("CADENZA_REQUIRE_GPU");
  return value != nullptr && *value != '\0' && std::string(value) != "0";
}

}  // namespace cadenza::testing
