// dense layer: (B, ...) read as (B, in_features) → (B, units); weight (units, in_features)
// as PyTorch's nn.Linear.
#include "host/core/error.hpp"
#include "host/model/layers.hpp"
#include "host/model/weight_init.hpp"

namespace cadenza {
namespace {

class DenseLayer final : public Layer {
 public:
  DenseLayer(const LayerConfig& c, int units) : Layer("dense", c.name), config_(c), units_(units) {}

  Shape plan(const Shape& input, ArenaPlan& plan, Backend&) override {
    geometry_.batch = int(input[0]);
    geometry_.in_features = int(input.numel() / input[0]);
    geometry_.out_features = units_;
    weight_ = plan.add_parameter(name() + ".weight", Shape{units_, geometry_.in_features});
    if (config_.bias) bias_ = plan.add_parameter(name() + ".bias", Shape{units_});
    return Shape{input[0], units_};
  }
  void bind(const Arena& arena) override {
    w_ = arena.value(weight_);
    dw_ = arena.gradient(weight_);
    if (config_.bias) {
      b_ = arena.value(bias_);
      db_ = arena.gradient(bias_);
    }
  }
  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo&) override {
    backend.dense_forward(geometry_, x, w_, b_, y);
  }
  void backward(Backend& backend, const Tensor& x, const Tensor&, const Tensor& dy, Tensor& dx,
                const StepInfo&) override {
    backend.dense_backward(geometry_, x, w_, dy, dx, dw_, db_);
  }
  std::vector<NamedParameter> parameters() const override {
    const WeightAndBiasInit init = weight_init(config_.init, geometry_.in_features, units_);
    std::vector<NamedParameter> out{{name() + ".weight", weight_, init.weight}};
    if (config_.bias) out.push_back({name() + ".bias", bias_, init.bias});
    return out;
  }
  std::int64_t forward_flops() const override {
    return 2 * std::int64_t(geometry_.in_features) * units_;
  }

 private:
  LayerConfig config_;
  int units_;
  DenseGeometry geometry_;
  ParameterId weight_, bias_;
  Tensor w_, dw_, b_, db_;
};

}  // namespace

std::unique_ptr<Layer> make_dense_layer(const LayerConfig& config, int units) {
  return std::make_unique<DenseLayer>(config, units);
}

}  // namespace cadenza
