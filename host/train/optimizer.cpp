// Optimizer: plans its moment buffers and dispatches the fused update to the backend.
#include "host/train/optimizer.hpp"

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

void Optimizer::bind(const Arena& arena) {
  params_ = arena.region(Region::parameters);
  grads_ = arena.region(Region::gradients);
  tensors_.clear();
  for (BufferId id : ids_) tensors_.push_back(arena.get(id));
}

void Optimizer::step(Backend& backend, std::int64_t global_step, float lr) {
  if (config_.optimizer == "sgd") {
    SgdHyper h;
    h.lr = lr;
    h.momentum = static_cast<float>(config_.momentum);
    h.weight_decay = static_cast<float>(config_.weight_decay);
    h.nesterov = config_.nesterov;
    backend.sgd_step(h, global_step, params_, grads_, tensors_[0]);
    return;
  }
  AdamHyper h;
  h.lr = lr;
  h.beta1 = static_cast<float>(config_.betas[0]);
  h.beta2 = static_cast<float>(config_.betas[1]);
  h.eps = static_cast<float>(config_.eps);
  h.weight_decay = static_cast<float>(config_.weight_decay);
  h.decoupled_weight_decay = config_.optimizer == "adamw";
  backend.adam_step(h, global_step, params_, grads_, tensors_[0], tensors_[1]);
}

std::vector<Optimizer::NamedBuffer> Optimizer::buffers() const {
  std::vector<NamedBuffer> out;
  for (std::size_t i = 0; i < names_.size(); ++i) out.push_back({names_[i], tensors_[i]});
  return out;
}

}  // namespace cadenza
