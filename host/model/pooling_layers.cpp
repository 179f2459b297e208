// Pooling layers: maxpool2d over (B, C, H, W) windows, and global_avg_pool, the mean over
// every axis after the channels ((B, C, ...) → (B, C)).
#include "host/core/error.hpp"
#include "host/model/layers.hpp"

namespace cadenza {
namespace {

class MaxPool2dLayer final : public Layer {
 public:
  explicit MaxPool2dLayer(const LayerConfig& c) : Layer("maxpool2d", c.name), config_(c) {}

  Shape plan(const Shape& input, ArenaPlan&, Backend&) override {
    if (input.rank() != 4)
      CADENZA_USER_ERROR(describe() << ": expects a (batch, channels, height, width) input, got "
                                    << input.str());
    const int stride_h = config_.pool_stride[0] > 0 ? config_.pool_stride[0] : config_.pool[0];
    const int stride_w = config_.pool_stride[1] > 0 ? config_.pool_stride[1] : config_.pool[1];
    geometry_ = Pool2dGeometry::make(int(input[0]), int(input[1]), int(input[2]), int(input[3]),
                                     config_.pool[0], config_.pool[1], stride_h, stride_w);
    if (geometry_.out_h <= 0 || geometry_.out_w <= 0)
      CADENZA_USER_ERROR(describe() << ": pool " << config_.pool[0] << "x" << config_.pool[1]
                                    << " is larger than its input " << input.str());
    return Shape{input[0], input[1], geometry_.out_h, geometry_.out_w};
  }
  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo&) override {
    backend.maxpool2d_forward(geometry_, x, y);
  }
  void backward(Backend& backend, const Tensor& x, const Tensor&, const Tensor& dy, Tensor& dx,
                const StepInfo&) override {
    backend.maxpool2d_backward(geometry_, x, dy, dx);
  }
  std::int64_t forward_flops() const override {
    return std::int64_t(geometry_.channels) * geometry_.out_h * geometry_.out_w *
           geometry_.window_h * geometry_.window_w;
  }

 private:
  LayerConfig config_;
  Pool2dGeometry geometry_;
};

class GlobalAvgPoolLayer final : public Layer {
 public:
  explicit GlobalAvgPoolLayer(const LayerConfig& c) : Layer("global_avg_pool", c.name) {}

  Shape plan(const Shape& input, ArenaPlan&, Backend&) override {
    if (input.rank() < 3)
      CADENZA_USER_ERROR(describe() << ": expects a (batch, channels, ...) input with at least one "
                                    << "axis to pool, got " << input.str());
    outer_ = int(input[0] * input[1]);
    inner_ = int(input.numel() / outer_);
    per_example_ = input.numel() / input[0];
    return Shape{input[0], input[1]};
  }
  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo&) override {
    backend.mean_pool_forward(outer_, inner_, x, y);
  }
  void backward(Backend& backend, const Tensor&, const Tensor&, const Tensor& dy, Tensor& dx,
                const StepInfo&) override {
    backend.mean_pool_backward(outer_, inner_, dy, dx);
  }
  std::int64_t forward_flops() const override { return per_example_; }

 private:
  int outer_ = 0, inner_ = 0;
  std::int64_t per_example_ = 0;
};

}  // namespace

std::unique_ptr<Layer> make_maxpool2d_layer(const LayerConfig& config) {
  return std::make_unique<MaxPool2dLayer>(config);
}

std::unique_ptr<Layer> make_global_avg_pool_layer(const LayerConfig& config) {
  return std::make_unique<GlobalAvgPoolLayer>(config);
}

}  // namespace cadenza
