// Context: everything an engine instance needs that is not a tensor — the device it runs
// on, that device's Backend (which owns library handles, streams and plans) and a Logger.
//
// Invariants: nothing in the engine is process-global; two Contexts (say a CPU one and a
// CUDA one in the same test) are independent. A Context outlives every model, arena and
// tensor made with it.
#pragma once

#include <memory>
#include <string>

#include "host/core/logger.hpp"
#include "host/ops/backend.hpp"

namespace cadenza {

class Context {
 public:
  Context(std::unique_ptr<Backend> backend, Logger& logger);
  Backend& backend() { return *backend_; }
  Device device() const { return backend_->device(); }
  Logger& log() { return logger_; }

 private:
  std::unique_ptr<Backend> backend_;
  Logger& logger_;
};

// What a CUDA probe found (cuda/device_probe.cu), or that CUDA was not built in.
CudaAvailability probe_cuda();

// Resolves a device string (auto | cpu | cuda | cuda:N) to a Context. `auto` says through
// the logger what it found and which backend it uses; `cuda` with no usable GPU is a
// UserError saying what was found. Until the CUDA backend's ops exist, `auto` uses the CPU
// and `cuda` is refused with that reason.
std::unique_ptr<Context> make_context(const std::string& device, int cpu_threads, Logger& logger);

// Applies train.precision (fp32 | tf32 | bf16) to the context's backend; call before any
// model is built on it. tf32 or bf16 on the CPU says through the logger that the CPU
// computes in fp32.
void apply_precision(Context& context, const std::string& precision);

}  // namespace cadenza
