// Optimizer: Adam, AdamW or SGD (train.optimizer) over the model's flat parameter region.
//
// Invariants: its moment buffers mirror the arena's parameter region (arena.hpp), so one
// fused update runs over all parameters at once — or, with frozen parameters, one update
// per run of adjacent trainable ones; frozen parameters and their moments never change.
// The per-step constants (learning rate, bias corrections, SGD's first step) go into the
// step's StepValues by set_step_values, for the 1-based step of the current phase (the
// global step when the run has no train.phases); step() enqueues the update that reads
// them there. The learning rate may change between steps (schedules).
// A run whose phases switch optimizer keeps the moments of both kinds (and saves both);
// switch_to() changes the kind, reset() zeroes every moment, as a new torch optimizer
// starts.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "host/config/config.hpp"
#include "host/core/arena.hpp"
#include "host/model/layer.hpp"
#include "host/ops/backend.hpp"

namespace cadenza {

class Optimizer {
 public:
  Optimizer(const TrainConfig& config, ArenaPlan& plan);
  // `frozen[i]` keeps parameters[i] fixed (train.freeze); empty: all train.
  void bind(const Arena& arena, const std::vector<NamedParameter>& parameters, const std::vector<bool>& frozen);
  // Zeroes the frozen parameters' gradients, so gradient clipping measures the trainable
  // ones only (torch's clip_grad_norm_ over parameters that require gradients).
  void zero_frozen_gradients(Backend& backend) const;
  // Fills values.lr, the Adam bias corrections and values.first_step.
  void set_step_values(StepValues& values, std::int64_t phase_step, float lr) const;
  void step(Backend& backend, const Tensor& step_values);
  // adam, adamw or sgd: one of train.optimizer and train.phases.optimizer.
  void switch_to(const std::string& kind);
  void reset(Backend& backend);

  // The buffers a checkpoint saves, with their names ("optimizer.exp_avg", ...).
  struct NamedBuffer {
    std::string name;
    Tensor tensor;
  };
  std::vector<NamedBuffer> buffers() const;

 private:
  TrainConfig config_;
  std::string kind_;
  std::vector<BufferId> ids_;
  std::vector<std::string> names_;
  // [first, end) element ranges of the parameter region that train, and that are frozen.
  struct Range {
    std::int64_t first, end;
  };
  std::vector<Range> trainable_, frozen_;
  Tensor params_, grads_;
  std::vector<Tensor> tensors_;
  // The tensors of the moment buffer `name`.
  Tensor& buffer(std::string_view name);
};

}  // namespace cadenza
