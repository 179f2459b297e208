// StepValues: the values that change from one training step to the next, kept in device
// memory and read there by the ops that need them (dropout, augmentation, the optimizer
// updates). Because no op takes them as arguments, a step recorded once as a graph
// (Backend::capture) replays with each step's own values: the host writes the next
// step's StepValues into the tensor before each replay.
//
// Invariants:
// - A StepValues tensor is u8, kStepValuesBytes long, on the backend's device; ops read it
//   where they run (kernels through a device pointer), never on the host of a GPU run.
// - Every field is a pure function of (train.seed, the global step, the phase's step, the
//   learning rate), so a resumed run writes the same values as an unbroken one.
#pragma once

#include <cstdint>
#include <cstring>

#include "host/core/error.hpp"
#include "host/core/tensor.hpp"
#include "host/math/hd.hpp"
#include "host/math/optimizer_math.hpp"
#include "host/math/random_math.hpp"

namespace cadenza {

struct StepValues {
  std::uint64_t dropout_seed = 0;          // each dropout mask mixes in its layer's salt
  std::uint64_t waveform_augment_key = 0;  // augment_waveform's key
  std::uint64_t spectrogram_mask_key = 0;  // mask_spectrogram's key
  float lr = 0.0f;                         // the learning rate of this step
  // Adam's bias corrections for the phase's step t: lr / (1 - beta1^t), sqrt(1 - beta2^t)
  // (host/math/optimizer_math.hpp's set_adam_bias_corrections).
  float adam_step_size = 0.0f;
  float adam_bias_correction2_sqrt = 1.0f;
  // 1 on the phase's first step: SGD's momentum buffer starts as the gradient.
  std::int32_t first_step = 0;
};

inline constexpr std::size_t kStepValuesBytes = sizeof(StepValues);

// The mask key of the dropout op with `salt` (its layer's own number) under these values.
CADENZA_HD std::uint64_t dropout_key(const StepValues& values, std::uint64_t salt) {
  return hash64(values.dropout_seed, salt);
}

// Sets the optimizer's fields for the phase's 1-based step: the learning rate, Adam's bias
// corrections under beta1 and beta2 (unused by SGD), and first_step.
inline void set_optimizer_step_values(StepValues& values, float lr, float beta1, float beta2, std::int64_t step) {
  CADENZA_CHECK(step >= 1, "optimizer steps count from 1, got " << step);
  AdamStepConstants c{};
  c.lr = lr;
  c.beta1 = beta1;
  c.beta2 = beta2;
  set_adam_bias_corrections(c, step);
  values.lr = lr;
  values.adam_step_size = c.step_size;
  values.adam_bias_correction2_sqrt = c.bias_correction2_sqrt;
  values.first_step = step == 1 ? 1 : 0;
}

// A host tensor holding `values`, to copy to a device or to pass to CPU ops.
inline Tensor step_values_tensor(const StepValues& values) {
  Tensor t = Tensor::zeros(Shape{static_cast<std::int64_t>(kStepValuesBytes)}, DType::u8);
  std::memcpy(t.raw(), &values, kStepValuesBytes);
  return t;
}

// The values in a StepValues tensor on the host (the CPU backend's ops read them so).
inline const StepValues& read_step_values(const Tensor& t, const char* op) {
  CADENZA_CHECK(t.dtype() == DType::u8 && t.bytes() == kStepValuesBytes && t.device().is_cpu(),
                op << ": the step values must be a host u8 tensor of " << kStepValuesBytes << " bytes");
  return *static_cast<const StepValues*>(t.raw());
}

}  // namespace cadenza
