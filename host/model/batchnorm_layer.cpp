// batchnorm layer over one axis (`axis`, default 1: the channels) of any (B, C, ...)
// input: statistics per index of that axis over all the others. Axis 2 of (B, C, F, T)
// normalises each frequency bin (Choi's Keras CRNN).
// Parameters weight (gamma, init 1) and bias (beta, init 0); state running_mean (0) and
// running_var (1), named as PyTorch's BatchNorm2d. Training uses batch statistics and
// updates the running ones; evaluation uses the running ones.
#include "host/core/error.hpp"
#include "host/model/layers.hpp"

namespace cadenza {
namespace {

class BatchNormLayer final : public SingleInputLayer {
 public:
  explicit BatchNormLayer(const LayerConfig& c) : SingleInputLayer("batchnorm", c.name), config_(c) {}

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
  }

  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo& step) override {
    if (step.training && std::int64_t(geometry_.outer) * geometry_.inner <= 1)
      CADENZA_USER_ERROR(describe() << ": training needs more than one value per channel, but each "
                                    << "batch has " << geometry_.outer * geometry_.inner
                                    << "; use a larger train.batch_size");
    if (step.training)
      backend.batchnorm_forward_train(geometry_, x, gamma_t_, beta_t_, y, running_mean_t_,
                                      running_var_t_, saved_mean_t_, saved_invstd_t_);
    else
      backend.batchnorm_forward_inference(geometry_, x, gamma_t_, beta_t_, running_mean_t_,
                                          running_var_t_, y);
  }

  void backward(Backend& backend, const Tensor& x, const Tensor&, const Tensor& dy, Tensor& dx,
                const StepInfo&) override {
    backend.batchnorm_backward(geometry_, x, dy, gamma_t_, saved_mean_t_, saved_invstd_t_, dx,
                               dgamma_t_, dbeta_t_);
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
    return 2 * std::int64_t(geometry_.channels) * geometry_.inner;
  }

 private:
  LayerConfig config_;
  BatchNormGeometry geometry_;
  ParameterId gamma_, beta_;
  BufferId running_mean_, running_var_, saved_mean_, saved_invstd_;
  Tensor gamma_t_, dgamma_t_, beta_t_, dbeta_t_, running_mean_t_, running_var_t_, saved_mean_t_,
      saved_invstd_t_;
};

}  // namespace

std::unique_ptr<Layer> make_batchnorm_layer(const LayerConfig& config) {
  return std::make_unique<BatchNormLayer>(config);
}

}  // namespace cadenza
