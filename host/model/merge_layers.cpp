// Layers that read several inputs: the joints of residual blocks and parallel branches.
// - add: the elementwise sum of two or more inputs of one shape (residual connections).
// - concat: inputs joined along `axis` (default 1, the channels); every other axis equal.
// - scale_channels: inputs [x, gate]: x (B, C, ...) with each channel multiplied by
//   gate (B, C) — squeeze-excitation's recalibration.
// A shape mismatch names every input layer and its shape.
#include "host/core/error.hpp"
#include "host/model/layers.hpp"

namespace cadenza {
namespace {

// "'conv2' [1, 64, 10], 'conv3' [1, 32, 10]": the inputs as an error shows them.
std::string describe_inputs(const std::vector<std::string>& names, std::span<const Shape> shapes) {
  std::string text;
  for (std::size_t k = 0; k < shapes.size(); ++k)
    text += (k ? ", '" : "'") + (k < names.size() ? names[k] : std::string("input")) + "' " + shapes[k].str();
  return text;
}

class AddLayer final : public Layer {
 public:
  explicit AddLayer(const LayerConfig& c) : Layer("add", c.name), inputs_(c.inputs) {}

  Shape plan(std::span<const Shape> inputs, ArenaPlan&, Backend&) override {
    for (const Shape& shape : inputs)
      if (shape != inputs[0])
        CADENZA_USER_ERROR(describe() << ": inputs must have one shape, got "
                                      << describe_inputs(inputs_, inputs));
    count_ = inputs[0].numel();
    return inputs[0];
  }
  void forward(Backend& backend, std::span<const Tensor> inputs, Tensor& y, const StepInfo&) override {
    backend.copy(inputs[0], y);
    for (std::size_t k = 1; k < inputs.size(); ++k)
      backend.strided_copy(StridedCopy::whole(count_, true), inputs[k], y);
  }
  void backward(Backend& backend, std::span<const Tensor>, const Tensor&, const Tensor& dy,
                std::span<Tensor> dinputs, const StepInfo&) override {
    for (Tensor& dx : dinputs)
      if (dx.defined()) backend.copy(dy, dx);
  }

 private:
  std::vector<std::string> inputs_;
  std::int64_t count_ = 0;
};

class ConcatLayer final : public Layer {
 public:
  explicit ConcatLayer(const LayerConfig& c) : Layer("concat", c.name), inputs_(c.inputs), axis_(c.axis) {}

  Shape plan(std::span<const Shape> inputs, ArenaPlan&, Backend&) override {
    const int rank = inputs[0].rank();
    const int axis = axis_ < 0 ? axis_ + rank : axis_;
    if (axis < 1 || axis >= rank)
      CADENZA_USER_ERROR(describe() << ": axis " << axis_ << " is not an axis after the batch of "
                                    << inputs[0].str());
    std::int64_t joined = 0;
    for (const Shape& shape : inputs) {
      if (shape.rank() != rank || shape.with_dim(axis, 0) != inputs[0].with_dim(axis, 0))
        CADENZA_USER_ERROR(describe() << ": inputs must agree on every axis but " << axis
                                      << ", got " << describe_inputs(inputs_, inputs));
      joined += shape[axis];
    }
    // Each input is (rows, its width) with rows = the product of the axes before `axis`.
    rows_ = 1;
    for (int a = 0; a < axis; ++a) rows_ *= inputs[0][a];
    widths_.clear();
    for (const Shape& shape : inputs) widths_.push_back(shape.numel() / rows_);
    return inputs[0].with_dim(axis, joined);
  }
  void forward(Backend& backend, std::span<const Tensor> inputs, Tensor& y, const StepInfo&) override {
    for_each_part([&](std::size_t k, const StridedCopy& into_y) { backend.strided_copy(into_y, inputs[k], y); });
  }
  void backward(Backend& backend, std::span<const Tensor>, const Tensor&, const Tensor& dy,
                std::span<Tensor> dinputs, const StepInfo&) override {
    for_each_part([&](std::size_t k, const StridedCopy& into_y) {
      if (!dinputs[k].defined()) return;
      StridedCopy out_of_y = into_y;
      std::swap(out_of_y.src_stride, out_of_y.dst_stride);
      std::swap(out_of_y.src_offset, out_of_y.dst_offset);
      backend.strided_copy(out_of_y, dy, dinputs[k]);
    });
  }

 private:
  // Calls visit(k, copy of input k into its columns of y) for every input.
  template <typename Visit>
  void for_each_part(Visit&& visit) const {
    std::int64_t total = 0;
    for (std::int64_t w : widths_) total += w;
    std::int64_t offset = 0;
    for (std::size_t k = 0; k < widths_.size(); ++k) {
      StridedCopy c;
      c.rows = rows_;
      c.width = widths_[k];
      c.src_stride = widths_[k];
      c.dst_stride = total;
      c.dst_offset = offset;
      visit(k, c);
      offset += widths_[k];
    }
  }

  std::vector<std::string> inputs_;
  int axis_;
  std::int64_t rows_ = 0;
  std::vector<std::int64_t> widths_;
};

class ScaleChannelsLayer final : public Layer {
 public:
  explicit ScaleChannelsLayer(const LayerConfig& c) : Layer("scale_channels", c.name), inputs_(c.inputs) {}

  Shape plan(std::span<const Shape> inputs, ArenaPlan&, Backend&) override {
    const Shape& x = inputs[0];
    const Shape& gate = inputs[1];
    if (x.rank() < 2 || gate != Shape{x[0], x[1]})
      CADENZA_USER_ERROR(describe() << ": expects inputs [x (batch, channels, ...), gate (batch, "
                                    << "channels)], got " << describe_inputs(inputs_, inputs));
    rows_ = int(x[0] * x[1]);
    inner_ = int(x.numel() / (x[0] * x[1]));
    per_example_ = x.numel() / x[0];
    return x;
  }
  void forward(Backend& backend, std::span<const Tensor> inputs, Tensor& y, const StepInfo&) override {
    backend.scale_rows_forward(rows_, inner_, inputs[0], inputs[1], y);
  }
  void backward(Backend& backend, std::span<const Tensor> inputs, const Tensor&, const Tensor& dy,
                std::span<Tensor> dinputs, const StepInfo&) override {
    backend.scale_rows_backward(rows_, inner_, inputs[0], inputs[1], dy, dinputs[0], dinputs[1]);
  }
  std::int64_t forward_flops() const override { return per_example_; }

 private:
  std::vector<std::string> inputs_;
  int rows_ = 0, inner_ = 0;
  std::int64_t per_example_ = 0;
};

}  // namespace

std::unique_ptr<Layer> make_add_layer(const LayerConfig& config) {
  return std::make_unique<AddLayer>(config);
}
std::unique_ptr<Layer> make_concat_layer(const LayerConfig& config) {
  return std::make_unique<ConcatLayer>(config);
}
std::unique_ptr<Layer> make_scale_channels_layer(const LayerConfig& config) {
  return std::make_unique<ScaleChannelsLayer>(config);
}

}  // namespace cadenza
