// Convolution layers: conv2d on (B, C, H, W) and conv1d on (B, C, L), PyTorch weight
// layouts ((out, in, kh, kw) and (out, in, k)), padding 'same', 'valid' or explicit zeros.
// A conv1d is the conv2d op on a height-1 image with a 1 x k kernel, so both backends
// serve it with their 2-D code. With a fused ReLU (the model fuses a relu that alone reads
// the convolution) the layer is "conv2d+relu" / "conv1d+relu": the op writes max(0, conv)
// and masks the gradient by its output.
#include "host/core/error.hpp"
#include "host/model/layers.hpp"
#include "host/model/weight_and_bias.hpp"

namespace cadenza {
namespace {

class ConvLayer final : public SingleInputLayer {
 public:
  ConvLayer(const LayerConfig& c, int spatial_axes, bool fused_relu)
      : SingleInputLayer(std::string(spatial_axes == 1 ? "conv1d" : "conv2d") + (fused_relu ? "+relu" : ""), c.name),
        config_(c),
        spatial_axes_(spatial_axes),
        fused_relu_(fused_relu) {
    if (spatial_axes_ == 1) {
      for (const auto& [key, pair] : {std::pair{"kernel", c.kernel}, std::pair{"stride", c.stride},
                                      std::pair{"dilation", c.dilation}, std::pair{"pad", c.pad}}) {
        if (pair[0] != pair[1])
          CADENZA_USER_ERROR(describe() << ": " << key << " takes one integer for a conv1d, got ["
                                        << pair[0] << ", " << pair[1] << "]");
      }
    }
    if (c.padding != "explicit" && (c.pad[0] != 0 || c.pad[1] != 0))
      CADENZA_USER_ERROR(describe() << ": pad is used with padding: explicit only (padding is '"
                                    << c.padding << "')");
  }

  Shape plan(const Shape& input, ArenaPlan& plan, Backend& backend) override {
    const bool one_d = spatial_axes_ == 1;
    if (input.rank() != 2 + spatial_axes_)
      CADENZA_USER_ERROR(describe() << ": expects a "
                                    << (one_d ? "(batch, channels, length)" : "(batch, channels, height, width)")
                                    << " input, got " << input.str());
    const int in_h = one_d ? 1 : int(input[2]);
    const int in_w = int(input[input.rank() - 1]);
    const int kernel_h = one_d ? 1 : config_.kernel[0], kernel_w = config_.kernel[1];
    geometry_ = Conv2dGeometry::make(int(input[0]), int(input[1]), in_h, in_w, config_.filters,
                                     kernel_h, kernel_w, one_d ? 1 : config_.stride[0],
                                     config_.stride[1], one_d ? 1 : config_.dilation[0],
                                     config_.dilation[1], config_.padding == "same");
    if (config_.padding == "explicit")
      geometry_ = geometry_.with_padding(one_d ? 0 : config_.pad[0], config_.pad[1]);
    geometry_.relu = fused_relu_;
    if (geometry_.out_h <= 0 || geometry_.out_w <= 0)
      CADENZA_USER_ERROR(describe() << ": kernel " << kernel_h << "x" << kernel_w << " with dilation "
                                    << config_.dilation[0] << "x" << config_.dilation[1]
                                    << " does not fit its input " << input.str() << " with padding '"
                                    << config_.padding << "'");
    const Shape weight_shape = one_d ? Shape{config_.filters, input[1], kernel_w}
                                     : Shape{config_.filters, input[1], kernel_h, kernel_w};
    params_.plan(plan, name(), weight_shape, config_.bias);
    plan.reserve_workspace(backend.conv2d_workspace_bytes(geometry_));
    return one_d ? Shape{input[0], config_.filters, geometry_.out_w}
                 : Shape{input[0], config_.filters, geometry_.out_h, geometry_.out_w};
  }

  void bind(const Arena& arena) override {
    params_.bind(arena);
    workspace_ = arena.workspace();
    const Shape kernel{geometry_.out_channels, geometry_.in_channels, geometry_.kernel_h, geometry_.kernel_w};
    weight_ = params_.weight.reshaped(kernel);
    weight_grad_ = params_.weight_grad.reshaped(kernel);
  }

  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo&) override {
    Tensor image_y = as_image(y, geometry_.out_channels, geometry_.out_h, geometry_.out_w);
    backend.conv2d_forward(geometry_, as_image(x, geometry_.in_channels, geometry_.in_h, geometry_.in_w),
                           weight_, params_.bias, image_y, workspace_);
  }

  // dy is this layer's own output gradient: with the fused ReLU the op masks it in place.
  void backward(Backend& backend, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx,
                const StepInfo&) override {
    Tensor image_dx = as_image(dx, geometry_.in_channels, geometry_.in_h, geometry_.in_w);
    Tensor image_dy = as_image(dy, geometry_.out_channels, geometry_.out_h, geometry_.out_w);
    backend.conv2d_backward(geometry_, as_image(x, geometry_.in_channels, geometry_.in_h, geometry_.in_w),
                            weight_, as_image(y, geometry_.out_channels, geometry_.out_h, geometry_.out_w), image_dy,
                            image_dx, weight_grad_, params_.bias_grad, workspace_);
  }

  std::vector<NamedParameter> parameters() const override {
    const int fan_in = geometry_.in_channels * geometry_.kernel_h * geometry_.kernel_w;
    const int fan_out = geometry_.out_channels * geometry_.kernel_h * geometry_.kernel_w;
    return params_.parameters(name(), config_.init, fan_in, fan_out);
  }

  std::int64_t forward_flops() const override { return 2 * geometry_.macs() / geometry_.batch; }

 private:
  // The (B, C, H, W) view the conv ops take (a conv1d's (B, C, L) is (B, C, 1, L)); an
  // absent tensor stays absent.
  Tensor as_image(const Tensor& t, int channels, int height, int width) const {
    return t.defined() ? t.reshaped(Shape{geometry_.batch, channels, height, width}) : t;
  }

  LayerConfig config_;
  int spatial_axes_;
  bool fused_relu_;
  Conv2dGeometry geometry_;
  WeightAndBias params_;
  Tensor weight_, weight_grad_;  // (out, in, kh, kw) views of the parameter and its gradient
  Tensor workspace_;
};

}  // namespace

std::unique_ptr<Layer> make_conv1d_layer(const LayerConfig& config) {
  return std::make_unique<ConvLayer>(config, 1, false);
}

std::unique_ptr<Layer> make_conv2d_layer(const LayerConfig& config) {
  return std::make_unique<ConvLayer>(config, 2, false);
}

std::unique_ptr<Layer> make_conv_relu_layer(const LayerConfig& config) {
  return std::make_unique<ConvLayer>(config, config.type == "conv1d" ? 1 : 2, true);
}

}  // namespace cadenza
