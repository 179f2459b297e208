// Activation layers (relu, elu, leaky_relu, sigmoid, tanh, power_to_db): elementwise, output
// shaped as the input. The op's one parameter is elu's `alpha` or leaky_relu's
// `negative_slope`; power_to_db's amin is fixed (activation_math.hpp).
#include "host/core/error.hpp"
#include "host/model/layers.hpp"

namespace cadenza {
namespace {

class ActivationLayer final : public SingleInputLayer {
 public:
  ActivationLayer(const LayerConfig& c, Activation kind)
      : SingleInputLayer(c.type, c.name),
        kind_(kind),
        alpha_(static_cast<float>(kind == Activation::leaky_relu ? c.negative_slope : c.alpha)) {}

  Shape plan(const Shape& input, ArenaPlan&, Backend&) override {
    per_example_ = input.numel() / input[0];
    return input;
  }
  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo&) override {
    backend.activation_forward(kind_, alpha_, x, y);
  }
  void backward(Backend& backend, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx,
                const StepInfo&) override {
    backend.activation_backward(kind_, alpha_, x, y, dy, dx);
  }
  std::int64_t forward_flops() const override { return per_example_; }

 private:
  Activation kind_;
  float alpha_;
  std::int64_t per_example_ = 0;
};

}  // namespace

std::unique_ptr<Layer> make_activation_layer(const LayerConfig& config) {
  for (Activation kind : {Activation::relu, Activation::elu, Activation::leaky_relu,
                          Activation::sigmoid, Activation::tanh, Activation::power_to_db}) {
    if (config.type == activation_name(kind)) return std::make_unique<ActivationLayer>(config, kind);
  }
  CADENZA_CHECK(false, "not an activation type: " << config.type);
  return nullptr;
}

}  // namespace cadenza
