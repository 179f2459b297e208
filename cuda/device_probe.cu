// probe_cuda_devices: device count, names, compute capabilities and the versions of the
// runtime, driver, cuDNN, cuBLAS and cuFFT, as one line; never throws for a missing GPU.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <cufft.h>

#include <sstream>
#include <utility>

#include "cuda/device_probe.cuh"

namespace cadenza {

CudaAvailability probe_cuda_devices() {
  CudaAvailability a;
  a.compiled = true;
  int driver = 0;
  cudaDriverGetVersion(&driver);
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    static_cast<void>(cudaGetLastError());  // the reason goes into the summary, not to the next call
    std::ostringstream os;
    if (driver == 0)
      os << "no NVIDIA driver found";
    else if (status == cudaErrorNoDevice)
      os << "the driver reports no CUDA device";
    else if (status == cudaErrorInsufficientDriver)
      os << "the NVIDIA driver (" << driver / 1000 << "." << driver % 1000 / 10
         << ") is older than this build's CUDA " << CUDART_VERSION / 1000 << "."
         << CUDART_VERSION % 1000 / 10;
    else
      os << "cudaGetDeviceCount failed: " << cudaGetErrorName(status) << " ("
         << cudaGetErrorString(status) << ")";
    a.summary = os.str();
    return a;
  }
  a.device_count = count;
  std::ostringstream os;
  int usable = 0;
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop{};
    int memory_khz = 0, bus_bits = 0;
    for (auto [value, attribute] : {std::pair{&memory_khz, cudaDevAttrMemoryClockRate},
                                    std::pair{&bus_bits, cudaDevAttrGlobalMemoryBusWidth}})
      if (cudaDeviceGetAttribute(value, attribute, d) != cudaSuccess) static_cast<void>(cudaGetLastError());
    a.peak_memory_bandwidth.push_back(2.0 * memory_khz * 1e3 * bus_bits / 8.0);
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) {
      static_cast<void>(cudaGetLastError());
      a.supported.push_back(false);
      continue;
    }
    const bool supported = prop.major >= kMinComputeCapabilityMajor;
    a.supported.push_back(supported);
    usable += supported;
    os << (d ? ", " : "") << "cuda:" << d << " " << prop.name << " (sm_" << prop.major
       << prop.minor << (supported ? "" : ", older than sm_80: unsupported") << ")";
  }
  int cufft = 0;
  cufftGetVersion(&cufft);
  int cublas_major = 0, cublas_minor = 0;
  cublasGetProperty(MAJOR_VERSION, &cublas_major);
  cublasGetProperty(MINOR_VERSION, &cublas_minor);
  const size_t cudnn = cudnnGetVersion();
  os << "; driver " << driver / 1000 << "." << driver % 1000 / 10 << ", cuDNN " << cudnn / 10000
     << "." << cudnn % 10000 / 100 << "." << cudnn % 100 << ", cuBLAS " << cublas_major << "."
     << cublas_minor << ", cuFFT " << cufft;
  a.usable = usable > 0;
  a.summary = (count == 0 ? std::string("no CUDA device") : os.str());
  return a;
}

}  // namespace cadenza
