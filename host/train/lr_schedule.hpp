// LrSchedule: the learning rate of every step of a run (train.lr and train.schedule).
//
// lr(step) for the 0-based step about to be taken, with W = round(warmup_epochs × steps
// per epoch) warm-up steps and S = epochs × steps per epoch steps in all:
//   step < W:   lr × (step + 1) / W                      (linear warm-up, never 0)
//   constant:   lr
//   step:       lr × gamma^floor(epoch / step_epochs)     (torch's StepLR per epoch)
//   multistep:  lr × gamma^(milestones <= epoch)          (torch's MultiStepLR per epoch)
//   cosine:     min_lr + (lr − min_lr)(1 + cos(π (step − W) / (S − W))) / 2, per step
//   plateau:    lr × scale, where scale is multiplied by factor (not below min_lr / lr)
//               when the monitored metric has not improved for more than `patience`
//               epochs, as torch.optim.lr_scheduler.ReduceLROnPlateau (threshold_mode
//               rel, cooldown 0); `epoch` is the 0-based epoch of the step.
// Invariants: lr(step) is a pure function of the config, the step and PlateauState, and
// PlateauState is saved in checkpoints, so a resumed run takes the steps an unbroken run
// would.
#pragma once

#include <cstdint>
#include <limits>

#include "host/config/config.hpp"

namespace cadenza {

// ReduceLROnPlateau's memory: the best value seen, epochs since it, and the lr factor so far.
struct PlateauState {
  double best = std::numeric_limits<double>::quiet_NaN();  // NaN: nothing observed yet
  int bad_epochs = 0;
  double scale = 1.0;
};

class LrSchedule {
 public:
  // Throws UserError naming train.schedule.* when the keys contradict each other.
  LrSchedule(const TrainConfig& config, int steps_per_epoch);

  double lr(std::int64_t step, const PlateauState& plateau) const;

  // Plateau schedules: records one epoch's value of the monitored metric (lower is better
  // when `minimize`) and reduces the scale when it has stalled; returns true when it did.
  // A NaN value counts as no improvement. Other schedules ignore it and return false.
  bool observe(double value, bool minimize, PlateauState& plateau) const;

  bool uses_validation() const { return config_.schedule.type == "plateau"; }

 private:
  TrainConfig config_;
  std::int64_t steps_per_epoch_;
  std::int64_t warmup_steps_;
  std::int64_t total_steps_;
};

}  // namespace cadenza
