// Device: where memory lives and an op runs (the host CPU, or CUDA device N), and what a
// probe found about CUDA devices.
#pragma once

#include <string>
#include <vector>

namespace cadenza {

struct Device {
  enum class Kind { cpu, cuda };
  Kind kind = Kind::cpu;
  int index = 0;

  static Device cpu() { return {Kind::cpu, 0}; }
  static Device cuda(int index) { return {Kind::cuda, index}; }
  bool is_cpu() const { return kind == Kind::cpu; }
  bool is_cuda() const { return kind == Kind::cuda; }
  bool operator==(const Device& other) const { return kind == other.kind && index == other.index; }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
};

// Whether a usable CUDA device exists and, if not, why.
struct CudaAvailability {
  bool compiled = false;  // the CUDA backend was built into this binary
  bool usable = false;    // a device of a supported compute capability answered
  int device_count = 0;
  std::string summary;    // one line: the devices and library versions found, or why none works
  // Per device: the memory's peak bandwidth in bytes/s (memory clock x bus width x 2).
  std::vector<double> peak_memory_bandwidth;
  // Per device: whether its compute capability is one this build runs on (sm_80 or newer).
  std::vector<bool> supported;
};

}  // namespace cadenza
