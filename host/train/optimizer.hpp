// Optimizer: Adam, AdamW or SGD (train.optimizer) over the model's flat parameter region.
//
// Invariants: its moment buffers mirror the arena's parameter region (arena.hpp), so one
// fused update runs over all parameters at once. step() is called with the 1-based global
// step; the learning rate may change between steps (schedules).
#pragma once

#include <string>
#include <vector>

#include "host/config/config.hpp"
#include "host/core/arena.hpp"
#include "host/ops/backend.hpp"

namespace cadenza {

class Optimizer {
 public:
  Optimizer(const TrainConfig& config, ArenaPlan& plan);
  void bind(const Arena& arena);
  void step(Backend& backend, std::int64_t global_step, float lr);

  // The buffers a checkpoint saves, with their names ("optimizer.exp_avg", ...).
  struct NamedBuffer {
    std::string name;
    Tensor tensor;
  };
  std::vector<NamedBuffer> buffers() const;

 private:
  TrainConfig config_;
  std::vector<BufferId> ids_;
  std::vector<std::string> names_;
  Tensor params_, grads_;
  std::vector<Tensor> tensors_;
};

}  // namespace cadenza
