// conv2d layer: NCHW input, PyTorch weight layout, 'same' or 'valid' zero padding.
#include "host/core/error.hpp"
#include "host/model/layers.hpp"
#include "host/model/weight_and_bias.hpp"

namespace cadenza {
namespace {

class Conv2dLayer final : public Layer {
 public:
  explicit Conv2dLayer(const LayerConfig& c) : Layer("conv2d", c.name), config_(c) {}

  Shape plan(const Shape& input, ArenaPlan& plan, Backend& backend) override {
    if (input.rank() != 4)
      CADENZA_USER_ERROR(describe() << ": expects a (batch, channels, height, width) input, got "
                                    << input.str() << " — add a reshape before it");
    geometry_ = Conv2dGeometry::make(
        int(input[0]), int(input[1]), int(input[2]), int(input[3]), config_.filters,
        config_.kernel[0], config_.kernel[1], config_.stride[0], config_.stride[1],
        config_.dilation[0], config_.dilation[1], config_.padding == "same");
    if (geometry_.out_h <= 0 || geometry_.out_w <= 0)
      CADENZA_USER_ERROR(describe() << ": kernel " << config_.kernel[0] << "x" << config_.kernel[1]
                                    << " with dilation " << config_.dilation[0] << "x"
                                    << config_.dilation[1] << " spans "
                                    << config_.dilation[0] * (config_.kernel[0] - 1) + 1 << "x"
                                    << config_.dilation[1] * (config_.kernel[1] - 1) + 1
                                    << ", more than its input " << input.str()
                                    << " with padding 'valid'");
    params_.plan(plan, name(), Shape{config_.filters, input[1], config_.kernel[0], config_.kernel[1]},
                 config_.bias);
    plan.reserve_workspace(backend.conv2d_workspace_bytes(geometry_));
    return Shape{input[0], config_.filters, geometry_.out_h, geometry_.out_w};
  }

  void bind(const Arena& arena) override {
    params_.bind(arena);
    workspace_ = arena.workspace();
  }

  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo&) override {
    backend.conv2d_forward(geometry_, x, params_.weight, params_.bias, y, workspace_);
  }

  void backward(Backend& backend, const Tensor& x, const Tensor&, const Tensor& dy, Tensor& dx,
                const StepInfo&) override {
    backend.conv2d_backward(geometry_, x, params_.weight, dy, dx, params_.weight_grad,
                            params_.bias_grad, workspace_);
  }

  std::vector<NamedParameter> parameters() const override {
    const int fan_in = geometry_.in_channels * geometry_.kernel_h * geometry_.kernel_w;
    const int fan_out = geometry_.out_channels * geometry_.kernel_h * geometry_.kernel_w;
    return params_.parameters(name(), config_.init, fan_in, fan_out);
  }

  std::int64_t forward_flops() const override { return 2 * geometry_.macs() / geometry_.batch; }

 private:
  LayerConfig config_;
  Conv2dGeometry geometry_;
  WeightAndBias params_;
  Tensor workspace_;
};

}  // namespace

std::unique_ptr<Layer> make_conv2d_layer(const LayerConfig& config) {
  return std::make_unique<Conv2dLayer>(config);
}

}  // namespace cadenza
