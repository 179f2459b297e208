// dense layer: (B, ...) read as (B, in_features) → (B, units); weight (units, in_features)
// as PyTorch's nn.Linear.
#include "host/core/error.hpp"
#include "host/model/layers.hpp"
#include "host/model/weight_and_bias.hpp"

namespace cadenza {
namespace {

class DenseLayer final : public SingleInputLayer {
 public:
  DenseLayer(const LayerConfig& c, int units) : SingleInputLayer("dense", c.name), config_(c), units_(units) {}

  Shape plan(const Shape& input, ArenaPlan& plan, Backend&) override {
    geometry_.batch = int(input[0]);
    geometry_.in_features = int(input.numel() / input[0]);
    geometry_.out_features = units_;
    params_.plan(plan, name(), Shape{units_, geometry_.in_features}, config_.bias);
    return Shape{input[0], units_};
  }
  void bind(const Arena& arena) override { params_.bind(arena); }
  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo&) override {
    backend.dense_forward(geometry_, x, params_.weight, params_.bias, y);
  }
  void backward(Backend& backend, const Tensor& x, const Tensor&, const Tensor& dy, Tensor& dx,
                const StepInfo&) override {
    backend.dense_backward(geometry_, x, params_.weight, dy, dx, params_.weight_grad,
                           params_.bias_grad);
  }
  std::vector<NamedParameter> parameters() const override {
    return params_.parameters(name(), config_.init, geometry_.in_features, units_);
  }
  std::int64_t forward_flops() const override {
    return 2 * std::int64_t(geometry_.in_features) * units_;
  }

 private:
  LayerConfig config_;
  int units_;
  DenseGeometry geometry_;
  WeightAndBias params_;
};

}  // namespace

std::unique_ptr<Layer> make_dense_layer(const LayerConfig& config, int units) {
  return std::make_unique<DenseLayer>(config, units);
}

}  // namespace cadenza
