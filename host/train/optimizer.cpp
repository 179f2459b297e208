// Optimizer: plans its moment buffers and dispatches the fused update to the backend.
#include "host/train/optimizer.hpp"

#include <algorithm>

#include "host/core/error.hpp"

namespace cadenza {

Optimizer::Optimizer(const TrainConfig& config, ArenaPlan& plan) : config_(config) {
  if (config.optimizer == "adam" || config.optimizer == "adamw") {
    names_ = {"optimizer.exp_avg", "optimizer.exp_avg_sq"};  // torch.optim.Adam's state names
  } else if (config.optimizer == "sgd") {
    names_ = {"optimizer.momentum_buffer"};
  } else {
    CADENZA_USER_ERROR("train.optimizer: expected adam, adamw or sgd, got '" << config.optimizer << "'");
  }
  for (const auto& name : names_) ids_.push_back(plan.add_parameter_mirror(name));
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

void Optimizer::step(Backend& backend, std::int64_t global_step, float lr) {
  if (config_.optimizer == "sgd") {
    SgdHyper h;
    h.lr = lr;
    h.momentum = static_cast<float>(config_.momentum);
    h.weight_decay = static_cast<float>(config_.weight_decay);
    h.nesterov = config_.nesterov;
    for (const Range& r : trainable_) {
      Tensor params = slice(params_, r.first, r.end), momentum = slice(tensors_[0], r.first, r.end);
      backend.sgd_step(h, global_step, params, slice(grads_, r.first, r.end), momentum);
    }
    return;
  }
  AdamHyper h;
  h.lr = lr;
  h.beta1 = static_cast<float>(config_.betas[0]);
  h.beta2 = static_cast<float>(config_.betas[1]);
  h.eps = static_cast<float>(config_.eps);
  h.weight_decay = static_cast<float>(config_.weight_decay);
  h.decoupled_weight_decay = config_.optimizer == "adamw";
  for (const Range& r : trainable_) {
    Tensor params = slice(params_, r.first, r.end), exp_avg = slice(tensors_[0], r.first, r.end),
           exp_avg_sq = slice(tensors_[1], r.first, r.end);
    backend.adam_step(h, global_step, params, slice(grads_, r.first, r.end), exp_avg, exp_avg_sq);
  }
}

std::vector<Optimizer::NamedBuffer> Optimizer::buffers() const {
  std::vector<NamedBuffer> out;
  for (std::size_t i = 0; i < names_.size(); ++i) out.push_back({names_[i], tensors_[i]});
  return out;
}

}  // namespace cadenza
