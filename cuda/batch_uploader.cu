// CudaBatchUploader; see batch_uploader.cuh for the slot and event protocol.
#include "cuda/batch_uploader.cuh"

#include <algorithm>
#include <array>

#include "cuda/check.cuh"

namespace cadenza::cuda {
namespace {

class CudaBatchUploader final : public BatchUploader {
 public:
  CudaBatchUploader(CudaContext& ctx, const std::vector<Shape>& shapes) : ctx_(ctx) {
    try {
      allocate(shapes);
    } catch (...) {
      release();
      throw;
    }
  }

  ~CudaBatchUploader() override { release(); }

  const std::vector<Tensor>& next_host_buffers() override {
    Slot& slot = slots_[next_];
    // The last upload from these host buffers must have read them.
    if (slot.used) CADENZA_CUDA_CHECK(cudaEventSynchronize(slot.copied));
    return slot.host;
  }

  const std::vector<Tensor>& submit() override {
    Slot& slot = slots_[next_];
    // The compute that read this slot's device buffers last time must be done with them.
    if (slot.used) CADENZA_CUDA_CHECK(cudaStreamWaitEvent(ctx_.copy_stream, slot.consumed, 0));
    for (std::size_t i = 0; i < slot.host.size(); ++i)
      CADENZA_CUDA_CHECK(cudaMemcpyAsync(slot.device[i].raw(), slot.host[i].raw(), slot.host[i].bytes(),
                                         cudaMemcpyHostToDevice, ctx_.copy_stream));
    CADENZA_CUDA_CHECK(cudaEventRecord(slot.copied, ctx_.copy_stream));
    CADENZA_CUDA_CHECK(cudaStreamWaitEvent(ctx_.stream, slot.copied, 0));
    slot.used = true;
    current_ = next_;
    next_ = 1 - next_;
    return slot.device;
  }

  void release_after_compute() override {
    CADENZA_CUDA_CHECK(cudaEventRecord(slots_[current_].consumed, ctx_.stream));
  }

 private:
  struct Slot {
    std::vector<Tensor> host, device;
    std::vector<void*> owned_host, owned_device;
    cudaEvent_t copied = nullptr, consumed = nullptr;
    bool used = false;
  };

  void allocate(const std::vector<Shape>& shapes) {
    CADENZA_CUDA_CHECK(cudaSetDevice(ctx_.device));
    for (Slot& slot : slots_) {
      for (const Shape& shape : shapes) {
        const std::size_t bytes = std::max<std::size_t>(1, std::size_t(shape.numel()) * sizeof(float));
        void* host = nullptr;
        void* device = nullptr;
        CADENZA_CUDA_CHECK(cudaMallocHost(&host, bytes));
        slot.owned_host.push_back(host);
        CADENZA_CUDA_CHECK(cudaMalloc(&device, bytes));
        slot.owned_device.push_back(device);
        slot.host.push_back(Tensor::view(host, shape, DType::f32, Device::cpu()));
        slot.device.push_back(Tensor::view(device, shape, DType::f32, Device::cuda(ctx_.device)));
      }
      // The host waits on `copied` once per step: sleeping, not spinning, leaves the core
      // to the loader threads.
      CADENZA_CUDA_CHECK(cudaEventCreateWithFlags(&slot.copied, cudaEventDisableTiming | cudaEventBlockingSync));
      CADENZA_CUDA_CHECK(cudaEventCreateWithFlags(&slot.consumed, cudaEventDisableTiming));
    }
  }

  // Waits for any copy or compute still using the buffers, then frees everything
  // (never throws: it runs in the destructor).
  void release() {
    const ScopedDevice device(ctx_.device, false);  // another engine's device may be current
    cudaStreamSynchronize(ctx_.copy_stream);
    cudaStreamSynchronize(ctx_.stream);
    for (Slot& slot : slots_) {
      for (void* p : slot.owned_host) cudaFreeHost(p);
      for (void* p : slot.owned_device) cudaFree(p);
      if (slot.copied) cudaEventDestroy(slot.copied);
      if (slot.consumed) cudaEventDestroy(slot.consumed);
      slot = Slot{};
    }
  }

  CudaContext& ctx_;
  std::array<Slot, 2> slots_;
  int next_ = 0, current_ = 0;
};

}  // namespace

std::unique_ptr<BatchUploader> make_batch_uploader(CudaContext& ctx, const std::vector<Shape>& shapes) {
  return std::make_unique<CudaBatchUploader>(ctx, shapes);
}

}  // namespace cadenza::cuda
