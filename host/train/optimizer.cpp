// Optimizer: plans its moment buffers and dispatches the fused update to the backend.
#include "host/train/optimizer.hpp"

#include <algorithm>

#include "host/core/error.hpp"

namespace cadenza {

Optimizer::Optimizer(const TrainConfig& config, ArenaPlan& plan) : config_(config), kind_(config.optimizer) {
  std::vector<std::string> kinds{config.optimizer};
  if (!config.phases.epochs.empty() && !config.phases.optimizer.empty()) kinds.push_back(config.phases.optimizer);
  for (const std::string& kind : kinds) {
    std::vector<std::string> names;
    if (kind == "adam" || kind == "adamw") {
      names = {"optimizer.exp_avg", "optimizer.exp_avg_sq"};  // torch.optim.Adam's state names
    } else if (kind == "sgd") {
      names = {"optimizer.momentum_buffer"};
    } else {
      CADENZA_USER_ERROR("train.optimizer: expected adam, adamw or sgd, got '" << kind << "'");
    }
    for (const std::string& name : names)
      if (std::find(names_.begin(), names_.end(), name) == names_.end()) names_.push_back(name);
  }
  for (const auto& name : names_) ids_.push_back(plan.add_parameter_mirror(name));
}

Tensor& Optimizer::buffer(std::string_view name) {
  const auto found = std::find(names_.begin(), names_.end(), name);
  CADENZA_CHECK(found != names_.end(), "optimizer " << kind_ << " has no buffer " << name);
  return tensors_[found - names_.begin()];
}

void Optimizer::switch_to(const std::string& kind) {
  CADENZA_CHECK(kind == config_.optimizer || kind == config_.phases.optimizer, "optimizer kind " << kind);
  kind_ = kind;
}

void Optimizer::reset(Backend& backend) {
  for (Tensor& t : tensors_) backend.fill_zero(t);
}

namespace {

// Elements [range.first, range.end) of a flat f32 region.
Tensor slice(const Tensor& region, std::int64_t first, std::int64_t end) {
  return Tensor::view(static_cast<float*>(region.raw()) + first, Shape{end - first}, DType::f32, region.device());
}

}  // namespace

void Optimizer::bind(const Arena& arena, const std::vector<NamedParameter>& parameters,
                     const std::vector<bool>& frozen) {
  params_ = arena.region(Region::parameters);
  grads_ = arena.region(Region::gradients);
  tensors_.clear();
  for (BufferId id : ids_) tensors_.push_back(arena.get(id));
  trainable_.clear();
  frozen_.clear();
  if (std::find(frozen.begin(), frozen.end(), true) == frozen.end()) {
    trainable_.push_back({0, params_.numel()});  // one update over the whole region, gaps included
    return;
  }
  // Parameters in region order; adjacent ones of the same kind join one range.
  std::vector<std::pair<Range, bool>> pieces;
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    const Tensor value = arena.value(parameters[i].id);
    const std::int64_t first = static_cast<const float*>(value.raw()) - static_cast<const float*>(params_.raw());
    pieces.push_back({{first, first + value.numel()}, frozen[i]});
  }
  std::sort(pieces.begin(), pieces.end(), [](const auto& a, const auto& b) { return a.first.first < b.first.first; });
  for (const auto& [range, is_frozen] : pieces) {
    std::vector<Range>& ranges = is_frozen ? frozen_ : trainable_;
    if (!ranges.empty() && ranges.back().end == range.first) ranges.back().end = range.end;
    else ranges.push_back(range);
  }
}

void Optimizer::zero_frozen_gradients(Backend& backend) const {
  for (const Range& r : frozen_) {
    Tensor gradients = slice(grads_, r.first, r.end);
    backend.fill_zero(gradients);
  }
}

void Optimizer::set_step_values(StepValues& values, std::int64_t phase_step, float lr) const {
  set_optimizer_step_values(values, lr, static_cast<float>(config_.betas[0]), static_cast<float>(config_.betas[1]),
                            phase_step);
}

void Optimizer::step(Backend& backend, const Tensor& step_values) {
  if (kind_ == "sgd") {
    SgdHyper h;
    h.momentum = static_cast<float>(config_.momentum);
    h.weight_decay = static_cast<float>(config_.weight_decay);
    h.nesterov = config_.nesterov;
    for (const Range& r : trainable_) {
      Tensor params = slice(params_, r.first, r.end), momentum = slice(buffer("optimizer.momentum_buffer"), r.first, r.end);
      backend.sgd_step(h, step_values, params, slice(grads_, r.first, r.end), momentum);
    }
    return;
  }
  AdamHyper h;
  h.beta1 = static_cast<float>(config_.betas[0]);
  h.beta2 = static_cast<float>(config_.betas[1]);
  h.eps = static_cast<float>(config_.eps);
  h.weight_decay = static_cast<float>(config_.weight_decay);
  h.decoupled_weight_decay = kind_ == "adamw";
  for (const Range& r : trainable_) {
    Tensor params = slice(params_, r.first, r.end), exp_avg = slice(buffer("optimizer.exp_avg"), r.first, r.end),
           exp_avg_sq = slice(buffer("optimizer.exp_avg_sq"), r.first, r.end);
    backend.adam_step(h, step_values, params, slice(grads_, r.first, r.end), exp_avg, exp_avg_sq);
  }
}

std::vector<Optimizer::NamedBuffer> Optimizer::buffers() const {
  std::vector<NamedBuffer> out;
  for (std::size_t i = 0; i < names_.size(); ++i) out.push_back({names_[i], tensors_[i]});
  return out;
}

}  // namespace cadenza
