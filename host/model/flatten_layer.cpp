// flatten layer: (B, ...) → (B, prod(...)). The memory order is unchanged, so forward and
// backward are copies.
#include "host/model/layers.hpp"

namespace cadenza {
namespace {

class FlattenLayer final : public Layer {
 public:
  explicit FlattenLayer(const LayerConfig& c) : Layer("flatten", c.name) {}
  Shape plan(const Shape& input, ArenaPlan&, Backend&) override {
    return Shape{input[0], input.numel() / input[0]};
  }
  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo&) override {
    backend.copy(x, y);
  }
  void backward(Backend& backend, const Tensor&, const Tensor&, const Tensor& dy, Tensor& dx,
                const StepInfo&) override {
    backend.copy(dy, dx);
  }
};

}  // namespace

std::unique_ptr<Layer> make_flatten_layer(const LayerConfig& config) {
  return std::make_unique<FlattenLayer>(config);
}

}  // namespace cadenza
