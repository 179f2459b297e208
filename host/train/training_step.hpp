// TrainingStep: one optimisation step of a model whose input features are already in
// model().input() — forward, the loss and its gradient, backward, gradient clipping and the
// optimizer's update — enqueued on the backend without a host synchronisation. The
// trainer and bench_train run this same code, so the benchmark times what training does.
//
// Invariants:
// - The loss gradient is scaled by 1 / batch (the mean over this rank's examples; the
//   gradient reducer then averages over ranks): torch's reduction='mean'.
// - Gradients are zeroed at each step's start of backward, never accumulated across steps.
// - Frozen parameters (train.freeze) get zero gradients before clipping, so the clipping
//   norm and the optimizer see the trainable ones only.
// - Every value that changes between steps reaches the ops through step_values() (set by
//   set_step_values before the step's ops are enqueued), never as an op argument: the ops
//   forward_and_loss and backward_and_update enqueue are the same at every step, so they
//   may be captured once as a graph and replayed.
#pragma once

#include <memory>
#include <vector>

#include "host/config/config.hpp"
#include "host/core/arena.hpp"
#include "host/model/model.hpp"
#include "host/train/optimizer.hpp"

namespace cadenza {

class GradientReducer;

class TrainingStep {
 public:
  // Declares the model (for `input`, batch first), the optimizer and the loss buffers on
  // `plan`. `sigmoid_loss`: sigmoid BCE against multi-hot targets; else softmax cross-
  // entropy with loss.label_smoothing. `config` must outlive the step.
  TrainingStep(const Config& config, const Shape& input, int num_labels, bool sigmoid_loss, ArenaPlan& plan,
               Backend& backend);
  // Binds to the arena; the parameters train.freeze names stay fixed.
  void bind(const Arena& arena);

  Model& model() { return *model_; }
  const Model& model() const { return *model_; }
  Optimizer& optimizer() { return *optimizer_; }
  const std::vector<bool>& frozen() const { return frozen_; }
  // (batch): each example's loss of the last forward_and_loss.
  const Tensor& loss() const { return loss_; }
  // The step's StepValues on the backend's device; StepInfo::step_values while training.
  const Tensor& step_values() const { return step_values_; }

  // Enqueues the upload of `values` with the optimizer's constants for the phase's 1-based
  // step and the learning rate filled in, ordered before the ops enqueued after it.
  void set_step_values(Backend& backend, StepValues values, std::int64_t phase_step, float lr);

  // Forward pass and the loss against `targets` ((batch, labels): one-hot or multi-hot).
  // The logits stay in model().output() until backward_and_update.
  void forward_and_loss(Backend& backend, const StepInfo& step, const Tensor& targets);
  // Backward pass (gradients reduced over ranks by `reducer` when given), clipping to
  // train.grad_clip_norm, then the optimizer's update.
  void backward_and_update(Backend& backend, const StepInfo& step, GradientReducer* reducer);

 private:
  const Config& config_;
  int batch_ = 0;
  bool sigmoid_loss_ = false;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<bool> frozen_;
  BufferId loss_id_, grad_norm_id_, step_values_id_;
  Tensor loss_, grad_norm_, gradients_, step_values_;
  // Pinned (on a GPU) staging for the step values, double-buffered so that the host writes
  // step s + 1's while step s's copy may still be queued.
  std::unique_ptr<BatchUploader> values_uploader_;
};

}  // namespace cadenza
