// batchnorm layer over one axis (`axis`, default 1: the channels) of any (B, C, ...)
// input: statistics per index of that axis over all the others. Axis 2 of (B, C, F, T)
// normalises each frequency bin (Choi's Keras CRNN).
// Parameters weight (gamma, init 1) and bias (beta, init 0); state running_mean (0) and
// running_var (1), named as PyTorch's BatchNorm2d. Training uses batch statistics and
// updates the running ones; evaluation uses the running ones. With StepInfo::sync_batchnorm
// the training statistics and the gradient sums are those of every rank's batch together
// (PyTorch's SyncBatchNorm), through the backend's split *_sums ops.
// The model fuses a relu that alone reads a batchnorm's output into it (model.cpp): the
// layer "batchnorm+relu" then writes max(0, batchnorm(x)) and masks dy by its output in
// the same passes (BatchNormGeometry::relu).
#include "host/core/error.hpp"
#include "host/dist/communicator.hpp"
#include "host/model/layers.hpp"

namespace cadenza {
namespace {

class BatchNormLayer final : public SingleInputLayer {
 public:
  BatchNormLayer(const LayerConfig& c, bool fused_relu)
      : SingleInputLayer(fused_relu ? "batchnorm+relu" : "batchnorm", c.name), config_(c) {
    geometry_.relu = fused_relu;
  }

  Shape plan(const Shape& input, ArenaPlan& plan, Backend&) override {
    const int axis = config_.axis < 0 ? config_.axis + input.rank() : config_.axis;
    if (input.rank() < 2 || axis < 1 || axis >= input.rank())
      CADENZA_USER_ERROR(describe() << ": axis " << config_.axis << " is not an axis after the batch "
                                    << "of its input " << input.str());
    geometry_.outer = 1;
    for (int a = 0; a < axis; ++a) geometry_.outer *= int(input[a]);
    geometry_.channels = int(input[axis]);
    geometry_.inner = int(input.numel() / (std::int64_t(geometry_.outer) * geometry_.channels));
    geometry_.eps = static_cast<float>(config_.eps);
    geometry_.momentum = static_cast<float>(config_.momentum);
    const Shape per_channel{input[axis]};
    gamma_ = plan.add_parameter(name() + ".weight", per_channel);
    beta_ = plan.add_parameter(name() + ".bias", per_channel);
    running_mean_ = plan.add(Region::state, name() + ".running_mean", per_channel);
    running_var_ = plan.add(Region::state, name() + ".running_var", per_channel);
    saved_mean_ = plan.add(Region::activations, name() + ".saved_mean", per_channel);
    saved_invstd_ = plan.add(Region::activations, name() + ".saved_invstd", per_channel);
    sums_ = plan.add(Region::activations, name() + ".sums", per_channel);
    squares_ = plan.add(Region::activations, name() + ".squares", per_channel);
    gradient_sums_ = plan.add(Region::activations, name() + ".gradient_sums", Shape{2, input[axis]});
    return input;
  }

  void bind(const Arena& arena) override {
    gamma_t_ = arena.value(gamma_);
    dgamma_t_ = arena.gradient(gamma_);
    beta_t_ = arena.value(beta_);
    dbeta_t_ = arena.gradient(beta_);
    running_mean_t_ = arena.get(running_mean_);
    running_var_t_ = arena.get(running_var_);
    saved_mean_t_ = arena.get(saved_mean_);
    saved_invstd_t_ = arena.get(saved_invstd_);
    sums_t_ = arena.get(sums_);
    squares_t_ = arena.get(squares_);
    gradient_sums_t_ = arena.get(gradient_sums_);
  }

  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo& step) override {
    if (step.training && std::int64_t(geometry_.outer) * geometry_.inner <= 1)
      CADENZA_USER_ERROR(describe() << ": training needs more than one value per channel, but each "
                                    << "batch has " << geometry_.outer * geometry_.inner
                                    << "; use a larger train.batch_size");
    if (step.training && step.sync_batchnorm) {
      Communicator& ranks = *step.sync_batchnorm;
      const double count = synchronised_count(ranks);
      backend.batchnorm_sums(geometry_, x, Tensor(), count, sums_t_);
      ranks.all_reduce(sums_t_, Reduction::sum);
      backend.batchnorm_sums(geometry_, x, sums_t_, count, squares_t_);
      ranks.all_reduce(squares_t_, Reduction::sum);
      backend.batchnorm_forward_from_sums(geometry_, x, gamma_t_, beta_t_, sums_t_, squares_t_, count, y,
                                          running_mean_t_, running_var_t_, saved_mean_t_, saved_invstd_t_);
    } else if (step.training) {
      backend.batchnorm_forward_train(geometry_, x, gamma_t_, beta_t_, y, running_mean_t_,
                                      running_var_t_, saved_mean_t_, saved_invstd_t_);
    } else {
      backend.batchnorm_forward_inference(geometry_, x, gamma_t_, beta_t_, running_mean_t_,
                                          running_var_t_, y);
    }
  }

  void backward(Backend& backend, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx,
                const StepInfo& step) override {
    if (!step.sync_batchnorm) {
      backend.batchnorm_backward(geometry_, x, y, dy, gamma_t_, saved_mean_t_, saved_invstd_t_, dx,
                                 dgamma_t_, dbeta_t_);
      return;
    }
    // dgamma and dbeta keep this rank's sums (the gradient reduction averages them); dx
    // needs the sums over every rank.
    Communicator& ranks = *step.sync_batchnorm;
    backend.batchnorm_backward_sums(geometry_, x, y, dy, saved_mean_t_, saved_invstd_t_, gradient_sums_t_, dgamma_t_,
                                    dbeta_t_);
    ranks.all_reduce(gradient_sums_t_, Reduction::sum);
    if (dx.defined())
      backend.batchnorm_backward_from_sums(geometry_, x, y, dy, gamma_t_, saved_mean_t_, saved_invstd_t_,
                                           gradient_sums_t_, synchronised_count(ranks), dx);
  }

  std::vector<NamedParameter> parameters() const override {
    return {{name() + ".weight", gamma_, {TensorInit::Kind::constant, 1.0f}},
            {name() + ".bias", beta_, {TensorInit::Kind::constant, 0.0f}}};
  }
  std::vector<NamedState> state() const override {
    return {{name() + ".running_mean", running_mean_, {TensorInit::Kind::constant, 0.0f}},
            {name() + ".running_var", running_var_, {TensorInit::Kind::constant, 1.0f}}};
  }
  std::int64_t forward_flops() const override {
    return (geometry_.relu ? 3 : 2) * std::int64_t(geometry_.channels) * geometry_.inner;
  }

 private:
  // A channel's values in the batches of every rank (all ranks have the same batch).
  double synchronised_count(const Communicator& ranks) const {
    return double(geometry_.outer) * geometry_.inner * ranks.world_size();
  }

  LayerConfig config_;
  BatchNormGeometry geometry_;
  ParameterId gamma_, beta_;
  BufferId running_mean_, running_var_, saved_mean_, saved_invstd_, sums_, squares_, gradient_sums_;
  Tensor gamma_t_, dgamma_t_, beta_t_, dbeta_t_, running_mean_t_, running_var_t_, saved_mean_t_,
      saved_invstd_t_, sums_t_, squares_t_, gradient_sums_t_;
};

}  // namespace

std::unique_ptr<Layer> make_batchnorm_layer(const LayerConfig& config) {
  return std::make_unique<BatchNormLayer>(config, false);
}

std::unique_ptr<Layer> make_batchnorm_relu_layer(const LayerConfig& config) {
  return std::make_unique<BatchNormLayer>(config, true);
}

}  // namespace cadenza
