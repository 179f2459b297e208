// Tensor and Shape: bookkeeping only; the ops that compute on tensors are in host/cpu and cuda/.
#include "host/core/tensor.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "host/core/error.hpp"

namespace cadenza {

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::i32: return 4;
    case DType::u8: return 1;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::i32: return "i32";
    case DType::u8: return "u8";
  }
  return "?";
}

Shape::Shape(std::initializer_list<std::int64_t> dims)
    : Shape(std::span<const std::int64_t>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const std::int64_t> dims) {
  CADENZA_CHECK(dims.size() <= kMaxRank, "rank " << dims.size() << " exceeds " << kMaxRank);
  for (std::int64_t d : dims) {
    CADENZA_CHECK(d >= 0, "negative dimension " << d);
    dims_[rank_++] = d;
  }
}

std::int64_t Shape::operator[](int axis) const {
  const int resolved = axis < 0 ? axis + rank_ : axis;
  CADENZA_CHECK(resolved >= 0 && resolved < rank_, "axis " << axis << " out of range for " << str());
  return dims_[resolved];
}

std::int64_t Shape::numel() const {
  std::int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[i];
  return n;
}

bool Shape::operator==(const Shape& other) const {
  if (rank_ != other.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (dims_[i] != other.dims_[i]) return false;
  return true;
}

Shape Shape::with_dim(int axis, std::int64_t value) const {
  const int resolved = axis < 0 ? axis + rank_ : axis;
  CADENZA_CHECK(resolved >= 0 && resolved < rank_, "axis " << axis << " out of range for " << str());
  CADENZA_CHECK(value >= 0, "negative dimension " << value);
  Shape s = *this;
  s.dims_[resolved] = value;
  return s;
}

std::string Shape::str() const {
  std::ostringstream os;
  os << "[";
  for (int i = 0; i < rank_; ++i) os << (i ? ", " : "") << dims_[i];
  os << "]";
  return os.str();
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.device_ = Device::cpu();
  const std::size_t bytes = t.bytes();
  // At least one block, so that even an empty tensor is defined().
  const std::size_t rounded = std::max<std::size_t>(64, (bytes + 63) / 64 * 64);
  void* memory = std::aligned_alloc(64, rounded);
  CADENZA_CHECK(memory, "out of host memory allocating " << bytes << " bytes");
  std::memset(memory, 0, rounded);
  t.owner_ = std::shared_ptr<void>(memory, [](void* p) { std::free(p); });
  t.data_ = memory;
  return t;
}

Tensor Tensor::view(void* data, const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.data_ = data;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.device_ = device;
  return t;
}

float* Tensor::f32() const {
  CADENZA_CHECK(dtype_ == DType::f32, "tensor is " << dtype_name(dtype_) << ", not f32");
  CADENZA_CHECK(device_.is_cpu(), "host access to a tensor on " << device_.str());
  return static_cast<float*>(data_);
}

std::int32_t* Tensor::i32() const {
  CADENZA_CHECK(dtype_ == DType::i32, "tensor is " << dtype_name(dtype_) << ", not i32");
  CADENZA_CHECK(device_.is_cpu(), "host access to a tensor on " << device_.str());
  return static_cast<std::int32_t*>(data_);
}

Tensor Tensor::reshaped(const Shape& shape) const {
  CADENZA_CHECK(shape.numel() == numel(), "cannot reshape " << shape_.str() << " to " << shape.str());
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

}  // namespace cadenza
