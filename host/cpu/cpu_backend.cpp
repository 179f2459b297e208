// CpuBackend: host memory, copies, thread set-up, the front-end adapter and the recorded
// step graphs.
#include "host/cpu/cpu_backend.hpp"

#include <cblas.h>
#include <omp.h>

#include <array>
#include <cstdlib>
#include <cstring>

#include "host/core/error.hpp"
#include "host/cpu/blas_kernels.hpp"
#include "host/cpu/spectrogram.hpp"
#include "host/features/waveform_frontend.hpp"

namespace cadenza {
namespace {

// The Backend's Frontend over CpuSpectrogram: (B, S) PCM → (B, 1, bins, frames), enqueued
// on the backend like an op.
class CpuFrontend final : public Frontend {
 public:
  CpuFrontend(CpuBackend& backend, const FrontendSpec& spec, int sample_rate, int num_samples)
      : backend_(backend), spectrogram_(spec, sample_rate, num_samples), num_samples_(num_samples) {}
  Shape features_shape(int batch) const override {
    return Shape{batch, 1, spectrogram_.num_bins(), spectrogram_.num_frames()};
  }
  void compute(const Tensor& pcm, Tensor& features) override {
    const int batch = static_cast<int>(pcm.dim(0));
    CADENZA_CHECK(pcm.numel() == std::int64_t(batch) * num_samples_, "front-end input " << pcm.shape().str());
    CADENZA_CHECK(features.numel() == features_shape(batch).numel(),
                  "front-end output " << features.shape().str());
    backend_.enqueue([this, pcm, batch, features] { spectrogram_.compute(pcm.f32(), batch, features.f32()); });
  }

 private:
  CpuBackend& backend_;
  CpuSpectrogram spectrogram_;
  int num_samples_;
};

// On the CPU the batch is filled where the ops read it, so nothing is copied; two sets of
// buffers alternate, so the next batch can be filled while a step reads this one.
class CpuBatchUploader final : public BatchUploader {
 public:
  explicit CpuBatchUploader(const std::vector<Shape>& shapes) {
    for (auto& slot : slots_)
      for (const Shape& s : shapes) slot.push_back(Tensor::zeros(s));
  }
  const std::vector<Tensor>& next_host_buffers() override { return slots_[next_]; }
  const std::vector<Tensor>& submit() override {
    const int current = next_;
    next_ = 1 - next_;
    return slots_[current];
  }
  void release_after_compute() override {}

 private:
  std::array<std::vector<Tensor>, 2> slots_;
  int next_ = 0;
};

class CpuStepGraph final : public StepGraph {
 public:
  explicit CpuStepGraph(std::vector<std::function<void()>> ops) : ops_(std::move(ops)) {}
  void replay() override {
    for (const auto& op : ops_) op();
  }

 private:
  std::vector<std::function<void()>> ops_;
};

}  // namespace

CpuBackend::CpuBackend(int threads) : threads_(threads > 0 ? threads : omp_get_num_procs()) {
  select_blas_kernels();
  omp_set_num_threads(threads_);
  openblas_set_num_threads(threads_);
}

void* CpuBackend::allocate(std::size_t bytes) {
  const std::size_t rounded = (bytes + 255) / 256 * 256;
  void* memory = std::aligned_alloc(256, rounded);
  if (!memory)
    CADENZA_USER_ERROR("out of host memory: asked for " << (rounded + (1 << 20) - 1) / (1 << 20)
                                                         << " MiB; try a smaller train.batch_size");
  std::memset(memory, 0, rounded);
  return memory;
}

void CpuBackend::release(void* memory) { std::free(memory); }

void CpuBackend::copy(const Tensor& src, Tensor& dst) {
  CADENZA_CHECK(src.device().is_cpu() && dst.device().is_cpu(),
                "the CPU backend copies host memory only, not " << src.device().str() << " → "
                                                                << dst.device().str());
  CADENZA_CHECK(src.bytes() == dst.bytes(), "copy of " << src.bytes() << " bytes into " << dst.bytes());
  if (src.bytes()) enqueue([src, dst] { std::memmove(dst.raw(), src.raw(), src.bytes()); });
}

void CpuBackend::fill_zero(Tensor& t) {
  if (t.bytes()) enqueue([t] { std::memset(t.raw(), 0, t.bytes()); });
}

// The CPU records any work; an error while recording propagates as it would have eagerly.
std::unique_ptr<StepGraph> CpuBackend::capture(const std::function<void()>& enqueue, std::string& /*why_not*/) {
  CADENZA_CHECK(!recording_, "CpuBackend::capture: a capture is already under way");
  std::vector<std::function<void()>> ops;
  recording_ = &ops;
  struct StopRecording {
    std::vector<std::function<void()>>*& recording;
    ~StopRecording() { recording = nullptr; }
  } stop{recording_};
  enqueue();
  return std::make_unique<CpuStepGraph>(std::move(ops));
}

std::unique_ptr<BatchUploader> CpuBackend::make_uploader(const std::vector<Shape>& shapes) {
  return std::make_unique<CpuBatchUploader>(shapes);
}

std::unique_ptr<Frontend> CpuBackend::make_frontend(const FrontendSpec& spec, int sample_rate,
                                                    int num_samples, int /*max_batch*/) {
  if (spec.type == "waveform") return std::make_unique<WaveformFrontend>(*this, num_samples);
  return std::make_unique<CpuFrontend>(*this, spec, sample_rate, num_samples);
}

}  // namespace cadenza
