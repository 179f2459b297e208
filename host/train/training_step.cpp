// TrainingStep: forward, loss, backward, clipping and update of one step (see the header).
#include "host/train/training_step.hpp"

#include <cstring>

#include "host/dist/gradient_reducer.hpp"
#include "host/train/transfer.hpp"

namespace cadenza {

TrainingStep::TrainingStep(const Config& config, const Shape& input, int num_labels, bool sigmoid_loss,
                           ArenaPlan& plan, Backend& backend)
    : config_(config), batch_(static_cast<int>(input[0])), sigmoid_loss_(sigmoid_loss) {
  loss_id_ = plan.add(Region::activations, "loss", Shape{batch_});
  grad_norm_id_ = plan.add(Region::activations, "grad_norm", Shape{1});
  step_values_id_ =
      plan.add(Region::activations, "step_values", Shape{static_cast<std::int64_t>(kStepValuesBytes)}, DType::u8);
  static_assert(kStepValuesBytes % sizeof(float) == 0, "the uploader moves f32 tensors");
  values_uploader_ = backend.make_uploader({Shape{static_cast<std::int64_t>(kStepValuesBytes / sizeof(float))}});
  model_ = std::make_unique<Model>(config.model, input, num_labels, plan, backend,
                                   describe_model_input(config.features, config.data.sample_rate, window_samples(config.data), input));
  optimizer_ = std::make_unique<Optimizer>(config.train, plan);
}

void TrainingStep::bind(const Arena& arena) {
  model_->bind(arena);
  frozen_ = frozen_parameters(model_->parameters(), config_.train.freeze);
  optimizer_->bind(arena, model_->parameters(), frozen_);
  loss_ = arena.get(loss_id_);
  grad_norm_ = arena.get(grad_norm_id_);
  step_values_ = arena.get(step_values_id_);
  gradients_ = arena.region(Region::gradients);
}

void TrainingStep::set_step_values(Backend& backend, StepValues values, std::int64_t phase_step, float lr) {
  optimizer_->set_step_values(values, phase_step, lr);
  const Tensor& host = values_uploader_->next_host_buffers()[0];
  std::memcpy(host.raw(), &values, kStepValuesBytes);
  const Tensor& uploaded = values_uploader_->submit()[0];
  backend.copy(Tensor::view(uploaded.raw(), step_values_.shape(), DType::u8, uploaded.device()), step_values_);
  values_uploader_->release_after_compute();  // the copy just enqueued is its only reader
}

void TrainingStep::forward_and_loss(Backend& backend, const StepInfo& step, const Tensor& targets) {
  model_->forward(backend, step);
  Tensor logits = model_->output();
  Tensor dlogits = model_->output_gradient();
  const float scale = 1.0f / static_cast<float>(batch_);
  if (sigmoid_loss_)
    backend.sigmoid_bce(logits, targets, loss_, dlogits, scale);
  else
    backend.softmax_cross_entropy(logits, targets, static_cast<float>(config_.loss.label_smoothing), loss_,
                                  dlogits, scale);
}

void TrainingStep::backward_and_update(Backend& backend, const StepInfo& step, GradientReducer* reducer) {
  backend.fill_zero(gradients_);
  if (reducer) reducer->begin_step();
  model_->backward(backend, step, reducer);
  if (reducer) reducer->finish();
  optimizer_->zero_frozen_gradients(backend);
  if (config_.train.grad_clip_norm > 0)
    backend.clip_gradient_norm(static_cast<float>(config_.train.grad_clip_norm), gradients_, grad_norm_);
  optimizer_->step(backend, step_values_);
}

}  // namespace cadenza
