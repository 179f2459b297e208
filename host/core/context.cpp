// Context construction and device selection (--device / train.device).
#include "host/core/context.hpp"

#include "host/core/error.hpp"
#include "host/cpu/cpu_backend.hpp"
#ifdef CADENZA_WITH_CUDA
#include "cuda/device_probe.cuh"
#endif

namespace cadenza {

Context::Context(std::unique_ptr<Backend> backend, Logger& logger)
    : backend_(std::move(backend)), logger_(logger) {}

CudaAvailability probe_cuda() {
#ifdef CADENZA_WITH_CUDA
  return probe_cuda_devices();
#else
  CudaAvailability a;
  a.summary = "this build has no CUDA backend (configured with -DCADENZA_CUDA=OFF)";
  return a;
#endif
}

std::unique_ptr<Context> make_context(const std::string& device, int cpu_threads, Logger& logger) {
  auto cpu = [&]() {
    auto backend = std::make_unique<CpuBackend>(cpu_threads);
    logger.info("device: cpu (" + std::to_string(backend->threads()) + " threads)");
    return std::make_unique<Context>(std::move(backend), logger);
  };
  if (device == "cpu") return cpu();
  const bool wants_cuda = device == "cuda" || device.rfind("cuda:", 0) == 0;
  if (!wants_cuda && device != "auto")
    CADENZA_USER_ERROR("train.device: expected auto, cpu, cuda or cuda:N, got '" << device << "'");
  const CudaAvailability cuda = probe_cuda();
  if (device == "auto") {
    if (!cuda.usable) {
      logger.info("device auto: no usable GPU (" + cuda.summary + "); using the CPU backend");
      return cpu();
    }
    logger.info("device auto: found " + cuda.summary +
                "; the CUDA backend's training ops are not in this build yet, using the CPU backend");
    return cpu();
  }
  if (!cuda.usable) CADENZA_USER_ERROR("train.device " << device << ": " << cuda.summary);
  CADENZA_USER_ERROR("train.device " << device << ": found " << cuda.summary
                                     << ", but the CUDA backend's training ops are not in this "
                                        "build yet; use --device cpu");
}

}  // namespace cadenza
