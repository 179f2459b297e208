// The waveform front-end: the model reads the samples themselves, (B, S) → (B, 1, S), as
// the sample-level CNNs do. One implementation serves every backend: it is a copy on the
// backend's device.
#pragma once

#include "host/ops/backend.hpp"

namespace cadenza {

class WaveformFrontend final : public Frontend {
 public:
  WaveformFrontend(Backend& backend, int num_samples) : backend_(backend), num_samples_(num_samples) {}
  Shape features_shape(int batch) const override { return Shape{batch, 1, num_samples_}; }
  void compute(const Tensor& pcm, Tensor& features) override { backend_.copy(pcm, features); }

 private:
  Backend& backend_;
  int num_samples_;
};

}  // namespace cadenza
