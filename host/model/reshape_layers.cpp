// Layers that change a tensor's shape without computing: flatten (B, ...) → (B, prod),
// reshape to a given shape, permute axes (torch.permute), and to_sequence, which turns a
// feature map into the (batch, steps, features) sequence recurrent layers read:
// (B, C, H, W) → (B, W, C·H) and (B, C, L) → (B, L, C).
// flatten and reshape keep the memory order, so forward and backward are copies; permute
// and to_sequence move elements with the permute op, and back with its inverse.
#include <algorithm>
#include <numeric>

#include "host/core/error.hpp"
#include "host/model/layers.hpp"

namespace cadenza {
namespace {

class CopyReshapeLayer final : public SingleInputLayer {
 public:
  // `shape`: the dims after the batch, one may be -1; empty: flatten (the schema requires
  // a non-empty shape of a reshape layer).
  CopyReshapeLayer(const LayerConfig& c, std::string type, std::vector<int> shape)
      : SingleInputLayer(std::move(type), c.name), shape_(std::move(shape)) {}

  Shape plan(const Shape& input, ArenaPlan&, Backend&) override {
    const std::int64_t per_example = input.numel() / input[0];
    if (shape_.empty()) return Shape{input[0], per_example};
    std::vector<std::int64_t> dims = {input[0]};
    std::int64_t known = 1;
    int inferred = -1;
    for (std::size_t k = 0; k < shape_.size(); ++k) {
      if (shape_[k] == -1) {
        if (inferred >= 0) CADENZA_USER_ERROR(describe() << ": shape may hold one -1, not two");
        inferred = int(k) + 1;
        dims.push_back(1);
      } else {
        dims.push_back(shape_[k]);
        known *= shape_[k];
      }
    }
    if (inferred >= 0 && known > 0 && per_example % known == 0) dims[inferred] = per_example / known;
    const Shape out(dims);
    if (dims.size() > std::size_t(Shape::kMaxRank) || out.numel() != input.numel())
      CADENZA_USER_ERROR(describe() << ": cannot reshape " << input.str() << " (" << per_example
                                    << " values per example) to " << out.str());
    return out;
  }
  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo&) override {
    backend.copy(x, y);
  }
  void backward(Backend& backend, const Tensor&, const Tensor&, const Tensor& dy, Tensor& dx,
                const StepInfo&) override {
    backend.copy(dy, dx);
  }

 private:
  std::vector<int> shape_;
};

class PermuteLayer final : public SingleInputLayer {
 public:
  // `order` empty: to_sequence (the schema requires a non-empty order of a permute layer).
  PermuteLayer(const LayerConfig& c, std::string type, std::vector<int> order)
      : SingleInputLayer(std::move(type), c.name), order_(std::move(order)) {}

  Shape plan(const Shape& input, ArenaPlan&, Backend&) override {
    std::vector<int> order = order_;
    if (order.empty()) {  // to_sequence: the last axis becomes the steps
      if (input.rank() != 3 && input.rank() != 4)
        CADENZA_USER_ERROR(describe() << ": expects (batch, channels, length) or (batch, channels, "
                                      << "height, width), got " << input.str());
      order = input.rank() == 3 ? std::vector<int>{0, 2, 1} : std::vector<int>{0, 3, 1, 2};
    } else {
      std::vector<int> sorted = order;
      std::sort(sorted.begin(), sorted.end());
      std::vector<int> identity(input.rank());
      std::iota(identity.begin(), identity.end(), 0);
      if (sorted != identity || order[0] != 0)
        CADENZA_USER_ERROR(describe() << ": order must list each axis of its " << input.str()
                                      << " input once, starting with the batch axis 0");
    }
    geometry_ = PermuteGeometry::make(input, order);
    inverse_ = geometry_.inverse();
    std::vector<std::int64_t> dims;
    for (int axis = 0; axis < input.rank(); ++axis) dims.push_back(geometry_.out_dim(axis));
    if (order_.empty() && input.rank() == 4) dims = {dims[0], dims[1], dims[2] * dims[3]};
    return Shape(dims);
  }
  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo&) override {
    backend.permute(geometry_, x, y);
  }
  void backward(Backend& backend, const Tensor&, const Tensor&, const Tensor& dy, Tensor& dx,
                const StepInfo&) override {
    backend.permute(inverse_, dy, dx);
  }

 private:
  std::vector<int> order_;
  PermuteGeometry geometry_, inverse_;
};

}  // namespace

std::unique_ptr<Layer> make_flatten_layer(const LayerConfig& config) {
  return std::make_unique<CopyReshapeLayer>(config, "flatten", std::vector<int>{});
}
std::unique_ptr<Layer> make_reshape_layer(const LayerConfig& config) {
  return std::make_unique<CopyReshapeLayer>(config, "reshape", config.shape);
}
std::unique_ptr<Layer> make_permute_layer(const LayerConfig& config) {
  return std::make_unique<PermuteLayer>(config, "permute", config.order);
}
std::unique_ptr<Layer> make_to_sequence_layer(const LayerConfig& config) {
  return std::make_unique<PermuteLayer>(config, "to_sequence", std::vector<int>{});
}

}  // namespace cadenza
