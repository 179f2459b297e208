// LrSchedule: closed forms of the learning-rate schedules (see lr_schedule.hpp).
#include "host/train/lr_schedule.hpp"

#include <algorithm>
#include <cmath>

#include "host/core/error.hpp"

namespace cadenza {
namespace {

constexpr double kPi = 3.14159265358979323846;
// torch's ReduceLROnPlateau skips a reduction smaller than this (its `eps`).
constexpr double kPlateauMinChange = 1e-8;

}  // namespace

LrSchedule::LrSchedule(const TrainConfig& config, int steps_per_epoch)
    : config_(config), steps_per_epoch_(std::max(1, steps_per_epoch)) {
  const ScheduleConfig& s = config_.schedule;
  warmup_steps_ = std::llround(s.warmup_epochs * double(steps_per_epoch_));
  total_steps_ = std::int64_t(config_.epochs) * steps_per_epoch_;
  for (std::size_t i = 1; i < s.milestones.size(); ++i) {
    if (s.milestones[i] <= s.milestones[i - 1])
      CADENZA_USER_ERROR("train.schedule.milestones: expected increasing epochs, got "
                         << s.milestones[i - 1] << " before " << s.milestones[i]);
  }
  if (s.type == "multistep" && s.milestones.empty())
    CADENZA_USER_ERROR("train.schedule.milestones: a multistep schedule needs at least one epoch");
  if ((s.type == "cosine" || s.type == "plateau") && s.min_lr > config_.lr)
    CADENZA_USER_ERROR("train.schedule.min_lr: " << s.min_lr << " is above train.lr " << config_.lr);
  if (warmup_steps_ >= total_steps_ && s.warmup_epochs > 0)
    CADENZA_USER_ERROR("train.schedule.warmup_epochs: " << s.warmup_epochs
                                                        << " leaves no step of the run's train.epochs ("
                                                        << config_.epochs << ") after the warm-up");
}

double LrSchedule::lr(std::int64_t step, const PlateauState& plateau) const {
  const ScheduleConfig& s = config_.schedule;
  const double base = config_.lr;
  if (step < warmup_steps_) return base * double(step + 1) / double(warmup_steps_);
  const std::int64_t epoch = step / steps_per_epoch_;
  if (s.type == "step") return base * std::pow(s.gamma, double(epoch / s.step_epochs));
  if (s.type == "multistep") {
    const auto passed = std::count_if(s.milestones.begin(), s.milestones.end(),
                                      [&](int milestone) { return milestone <= epoch; });
    return base * std::pow(s.gamma, double(passed));
  }
  if (s.type == "cosine") {
    const double progress = double(step - warmup_steps_) / double(total_steps_ - warmup_steps_);
    return s.min_lr + (base - s.min_lr) * 0.5 * (1.0 + std::cos(kPi * std::min(progress, 1.0)));
  }
  if (s.type == "plateau") return base * plateau.scale;
  return base;
}

bool LrSchedule::observe(double value, bool minimize, PlateauState& plateau) const {
  const ScheduleConfig& s = config_.schedule;
  if (s.type != "plateau") return false;
  const bool improved =
      !std::isnan(value) &&
      (std::isnan(plateau.best) || (minimize ? value < plateau.best * (1.0 - s.threshold)
                                             : value > plateau.best * (1.0 + s.threshold)));
  if (improved) {
    plateau.best = value;
    plateau.bad_epochs = 0;
    return false;
  }
  ++plateau.bad_epochs;
  if (plateau.bad_epochs <= s.patience) return false;
  plateau.bad_epochs = 0;
  const double old_lr = config_.lr * plateau.scale;
  const double new_lr = std::max(old_lr * s.factor, s.min_lr);
  if (old_lr - new_lr <= kPlateauMinChange) return false;
  plateau.scale = new_lr / config_.lr;
  return true;
}

}  // namespace cadenza
