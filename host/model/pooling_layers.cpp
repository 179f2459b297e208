// Pooling layers.
// - maxpool2d / avgpool2d over (B, C, H, W) windows; maxpool1d / avgpool1d over (B, C, L)
//   (the 2-D ops on a height-1 image). No padding, floor division: PyTorch's defaults.
// - global_max_pool / global_avg_pool over chosen consecutive axes (`axes`; default every
//   axis after the channels), which disappear from the output: Musicnn's "max over
//   frequency" is global_max_pool with axes [2] on (B, C, F, T) → (B, C, T). The input is
//   seen as (outer, pooled, inner) and pooled with one window spanning the pooled axes.
#include <numeric>

#include "host/core/error.hpp"
#include "host/model/layers.hpp"

namespace cadenza {
namespace {

enum class PoolKind { max, average };

class WindowPoolLayer final : public SingleInputLayer {
 public:
  WindowPoolLayer(const LayerConfig& c, PoolKind kind, int spatial_axes)
      : SingleInputLayer(std::string(kind == PoolKind::max ? "maxpool" : "avgpool") +
                             (spatial_axes == 1 ? "1d" : "2d"),
                         c.name),
        config_(c),
        kind_(kind),
        spatial_axes_(spatial_axes) {
    if (spatial_axes_ == 1) {
      for (const auto& [key, pair] : {std::pair{"pool", c.pool}, std::pair{"pool_stride", c.pool_stride}}) {
        if (pair[0] != pair[1])
          CADENZA_USER_ERROR(describe() << ": " << key << " takes one integer, got [" << pair[0]
                                        << ", " << pair[1] << "]");
      }
    }
  }

  Shape plan(const Shape& input, ArenaPlan&, Backend&) override {
    const bool one_d = spatial_axes_ == 1;
    if (input.rank() != 2 + spatial_axes_)
      CADENZA_USER_ERROR(describe() << ": expects a "
                                    << (one_d ? "(batch, channels, length)" : "(batch, channels, height, width)")
                                    << " input, got " << input.str());
    const int window_h = one_d ? 1 : config_.pool[0], window_w = config_.pool[1];
    const int stride_h = one_d ? 1 : (config_.pool_stride[0] > 0 ? config_.pool_stride[0] : window_h);
    const int stride_w = config_.pool_stride[1] > 0 ? config_.pool_stride[1] : window_w;
    geometry_ = Pool2dGeometry::make(int(input[0]), int(input[1]), one_d ? 1 : int(input[2]),
                                     int(input[input.rank() - 1]), window_h, window_w, stride_h,
                                     stride_w);
    if (geometry_.out_h <= 0 || geometry_.out_w <= 0)
      CADENZA_USER_ERROR(describe() << ": pool " << window_h << "x" << window_w
                                    << " is larger than its input " << input.str());
    return one_d ? Shape{input[0], input[1], geometry_.out_w}
                 : Shape{input[0], input[1], geometry_.out_h, geometry_.out_w};
  }
  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo&) override {
    if (kind_ == PoolKind::max)
      backend.maxpool2d_forward(geometry_, x, y);
    else
      backend.avgpool2d_forward(geometry_, x, y);
  }
  void backward(Backend& backend, const Tensor& x, const Tensor&, const Tensor& dy, Tensor& dx,
                const StepInfo&) override {
    if (kind_ == PoolKind::max)
      backend.maxpool2d_backward(geometry_, x, dy, dx);
    else
      backend.avgpool2d_backward(geometry_, dy, dx);
  }
  std::int64_t forward_flops() const override {
    return std::int64_t(geometry_.channels) * geometry_.out_h * geometry_.out_w *
           geometry_.window_h * geometry_.window_w;
  }

 private:
  LayerConfig config_;
  PoolKind kind_;
  int spatial_axes_;
  Pool2dGeometry geometry_;
};

class GlobalPoolLayer final : public SingleInputLayer {
 public:
  GlobalPoolLayer(const LayerConfig& c, PoolKind kind)
      : SingleInputLayer(kind == PoolKind::max ? "global_max_pool" : "global_avg_pool", c.name),
        axes_(c.axes),
        kind_(kind) {}

  Shape plan(const Shape& input, ArenaPlan&, Backend&) override {
    if (input.rank() < 3)
      CADENZA_USER_ERROR(describe() << ": expects a (batch, channels, ...) input with at least one "
                                    << "axis to pool, got " << input.str());
    std::vector<int> axes;
    for (int axis : axes_) axes.push_back(axis < 0 ? axis + input.rank() : axis);
    if (axes.empty()) {
      axes.resize(input.rank() - 2);
      std::iota(axes.begin(), axes.end(), 2);
    }
    for (std::size_t k = 0; k < axes.size(); ++k) {
      if (axes[k] < 1 || axes[k] >= input.rank() || (k > 0 && axes[k] != axes[k - 1] + 1))
        CADENZA_USER_ERROR(describe() << ": axes must be consecutive axes after the batch of its "
                                      << input.str() << " input, in order");
    }
    std::int64_t outer = 1, pooled = 1, inner = 1;
    std::vector<std::int64_t> out_dims;
    for (int axis = 0; axis < input.rank(); ++axis) {
      if (axis < axes.front()) {
        outer *= input[axis];
      } else if (axis > axes.back()) {
        inner *= input[axis];
      } else {
        pooled *= input[axis];
        continue;
      }
      out_dims.push_back(input[axis]);
    }
    // The whole pooled span is one window over the height of (outer, 1, pooled, inner).
    geometry_ = Pool2dGeometry::make(int(outer), 1, int(pooled), int(inner), int(pooled), 1,
                                     int(pooled), 1);
    per_example_ = input.numel() / input[0];
    return Shape(out_dims);
  }
  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo&) override {
    if (kind_ == PoolKind::max)
      backend.maxpool2d_forward(geometry_, x, y);
    else if (geometry_.in_w == 1)
      backend.mean_pool_forward(geometry_.batch, geometry_.in_h, x, y);
    else
      backend.avgpool2d_forward(geometry_, x, y);
  }
  void backward(Backend& backend, const Tensor& x, const Tensor&, const Tensor& dy, Tensor& dx,
                const StepInfo&) override {
    if (kind_ == PoolKind::max)
      backend.maxpool2d_backward(geometry_, x, dy, dx);
    else if (geometry_.in_w == 1)
      backend.mean_pool_backward(geometry_.batch, geometry_.in_h, dy, dx);
    else
      backend.avgpool2d_backward(geometry_, dy, dx);
  }
  std::int64_t forward_flops() const override { return per_example_; }

 private:
  std::vector<int> axes_;
  PoolKind kind_;
  Pool2dGeometry geometry_;
  std::int64_t per_example_ = 0;
};

}  // namespace

std::unique_ptr<Layer> make_maxpool2d_layer(const LayerConfig& config) {
  return std::make_unique<WindowPoolLayer>(config, PoolKind::max, 2);
}
std::unique_ptr<Layer> make_avgpool2d_layer(const LayerConfig& config) {
  return std::make_unique<WindowPoolLayer>(config, PoolKind::average, 2);
}
std::unique_ptr<Layer> make_maxpool1d_layer(const LayerConfig& config) {
  return std::make_unique<WindowPoolLayer>(config, PoolKind::max, 1);
}
std::unique_ptr<Layer> make_avgpool1d_layer(const LayerConfig& config) {
  return std::make_unique<WindowPoolLayer>(config, PoolKind::average, 1);
}
std::unique_ptr<Layer> make_global_max_pool_layer(const LayerConfig& config) {
  return std::make_unique<GlobalPoolLayer>(config, PoolKind::max);
}
std::unique_ptr<Layer> make_global_avg_pool_layer(const LayerConfig& config) {
  return std::make_unique<GlobalPoolLayer>(config, PoolKind::average);
}

}  // namespace cadenza
