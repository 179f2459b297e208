// Whether a run of the [cuda] tests runs, skips or fails for the GPUs it found.
//
// CADENZA_REQUIRE_GPU says how many GPUs the run must have: unset, "" or "0" none; a
// positive number that many; anything else one. A GPU validation run (tools/bench/gpu.sh)
// sets 1, or 2 on a machine with two or more. A process that needs more GPUs than it found
// (no usable CUDA, or fewer than its --min-devices) skips, with exit 77 that CTest lists as
// skipped, never as passed; it fails instead when the run must have that many.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

namespace cadenza::testing {

// A count of GPUs written as up to three digits, or nullopt for any other text.
inline std::optional<int> gpu_count(const std::string& text) {
  if (text.empty() || text.size() > 3 || text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoi(text);
}

// The number of GPUs CADENZA_REQUIRE_GPU's value (nullptr when unset) requires.
inline int gpus_required(const char* value) {
  if (value == nullptr || *value == '\0') return 0;
  return gpu_count(value).value_or(1);
}

inline int gpus_required() { return gpus_required(std::getenv("CADENZA_REQUIRE_GPU")); }

enum class GpuVerdict { run, skip, fail };

// For a process that needs `min_devices` GPUs and found `device_count` (`usable`: CUDA
// works at all), in a run that must have `required`.
inline GpuVerdict gpu_verdict(bool usable, int device_count, int min_devices, int required) {
  if (usable && device_count >= min_devices) return GpuVerdict::run;
  const int needed = usable ? min_devices : 1;
  return required >= needed ? GpuVerdict::fail : GpuVerdict::skip;
}

}  // namespace cadenza::testing
