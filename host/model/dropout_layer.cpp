// dropout layer: inverted dropout while training, identity (a copy) in evaluation.
// The mask key mixes the step's dropout seed with the layer's index (the salt), so two dropout layers in one
// step draw independent masks and a resumed run draws the same ones.
#include "host/model/layers.hpp"

namespace cadenza {
namespace {

class DropoutLayer final : public SingleInputLayer {
 public:
  DropoutLayer(const LayerConfig& c, int index)
      : SingleInputLayer("dropout", c.name), rate_(static_cast<float>(c.rate)), index_(index) {}

  Shape plan(const Shape& input, ArenaPlan&, Backend&) override { return input; }
  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo& step) override {
    if (step.training && rate_ > 0.0f)
      backend.dropout_forward(rate_, step.step_values, salt(), step.first_element(x), x, y);
    else
      backend.copy(x, y);
  }
  void backward(Backend& backend, const Tensor&, const Tensor&, const Tensor& dy, Tensor& dx,
                const StepInfo& step) override {
    if (step.training && rate_ > 0.0f)
      backend.dropout_backward(rate_, step.step_values, salt(), step.first_element(dy), dy, dx);
    else
      backend.copy(dy, dx);
  }

 private:
  std::uint64_t salt() const { return static_cast<std::uint64_t>(index_); }
  float rate_;
  int index_;
};

}  // namespace

std::unique_ptr<Layer> make_dropout_layer(const LayerConfig& config, int layer_index) {
  return std::make_unique<DropoutLayer>(config, layer_index);
}

}  // namespace cadenza
