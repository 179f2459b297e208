// Context construction and device selection (--device / train.device).
#include "host/core/context.hpp"

#include "host/core/error.hpp"
#include "host/cpu/blas_kernels.hpp"
#include "host/cpu/cpu_backend.hpp"
#ifdef CADENZA_WITH_CUDA
#include "cuda/cuda_backend.cuh"
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
    const BlasKernels& blas = select_blas_kernels();
    logger.info("device: cpu (" + std::to_string(backend->threads()) + " threads; OpenBLAS " +
                (blas.running.empty() ? std::string("kernels unknown") : blas.running + " kernels") + ": " +
                blas.reason + ")");
    return std::make_unique<Context>(std::move(backend), logger);
  };
  if (device == "cpu") return cpu();
  const bool wants_cuda = device == "cuda" || device.rfind("cuda:", 0) == 0;
  if (!wants_cuda && device != "auto")
    CADENZA_USER_ERROR("train.device: expected auto, cpu, cuda or cuda:N, got '" << device << "'");
  const CudaAvailability cuda = probe_cuda();
  if (device == "auto") {
    // The CUDA backend is compiled but has not yet been checked against the CPU backend on
    // a GPU (docs/GPU_VALIDATION.md); until it has, `auto` keeps to the CPU.
    logger.info("device auto: " + (cuda.usable ? "found " + cuda.summary +
                                                     "; the CUDA backend is not yet validated, "
                                                     "so auto uses the CPU (--device cuda to use it)"
                                               : "no usable GPU (" + cuda.summary + ")") +
                "; using the CPU backend");
    return cpu();
  }
  if (!cuda.usable) CADENZA_USER_ERROR("train.device " << device << ": " << cuda.summary);
  int index = 0;
  if (device != "cuda") {
    const std::string digits = device.substr(5);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
      CADENZA_USER_ERROR("train.device: expected cuda:N with N a device number, got '" << device << "'");
    index = std::stoi(digits);
  }
  if (index >= cuda.device_count)
    CADENZA_USER_ERROR("train.device " << device << ": this machine has " << cuda.device_count
                                       << " CUDA device(s): " << cuda.summary);
  if (index >= int(cuda.supported.size()) || !cuda.supported[std::size_t(index)])
    CADENZA_USER_ERROR("train.device " << device << ": this GPU cannot run this build, which needs sm_80 or newer ("
                                       << cuda.summary << ")");
#ifdef CADENZA_WITH_CUDA
  logger.info("device: cuda:" + std::to_string(index) + " (" + cuda.summary + ")");
  return std::make_unique<Context>(std::make_unique<cuda::CudaBackend>(index), logger);
#else
  CADENZA_USER_ERROR("train.device " << device << ": " << cuda.summary);
#endif
}

void apply_precision(Context& context, const std::string& precision) {
  const Precision p = precision == "bf16" ? Precision::bf16 : precision == "tf32" ? Precision::tf32 : Precision::fp32;
  if (p != Precision::fp32 && context.device().is_cpu())
    context.log().info("train.precision: " + precision + " applies to GPUs; the CPU backend computes in fp32");
  context.backend().set_precision(p);
}

}  // namespace cadenza
