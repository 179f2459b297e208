// Tensor: a typed, shaped, contiguous block of memory on one device.
//
// Invariants:
// - Storage is always contiguous and row-major; the shape's last dimension varies fastest.
//   Layouts are written next to each tensor where it is declared, e.g. `// (B, C, H, W)`.
// - A tensor either owns its memory (shared ownership; copies of the Tensor share it) or is
//   a view into memory someone else owns (an Arena, a caller's buffer). A view must not
//   outlive that memory; the model's arena outlives every view it hands out.
// - Element access from the host (`f32()`) is allowed only for CPU tensors; reaching CUDA
//   memory from host code is an error, never a silent copy.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>

#include "host/core/device.hpp"

namespace cadenza {

enum class DType : std::uint8_t { f32, i32, u8 };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

// Up to kMaxRank dimensions, each >= 0.
class Shape {
 public:
  static constexpr int kMaxRank = 6;
  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims);
  explicit Shape(std::span<const std::int64_t> dims);
  int rank() const { return rank_; }
  std::int64_t operator[](int axis) const;  // negative axes count from the end
  std::int64_t numel() const;
  bool operator==(const Shape& other) const;
  bool operator!=(const Shape& other) const { return !(*this == other); }
  std::string str() const;  // "[16, 1, 96, 126]"
  const std::int64_t* data() const { return dims_.data(); }
  // This shape with dimension `axis` replaced by `value`.
  Shape with_dim(int axis, std::int64_t value) const;

 private:
  std::array<std::int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

class Tensor {
 public:
  Tensor() = default;
  // Owning host tensor, zero-filled.
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32);
  // Non-owning view of memory that lives elsewhere.
  static Tensor view(void* data, const Shape& shape, DType dtype, Device device);

  // False for a default-constructed Tensor: an absent optional argument of an op.
  bool defined() const { return data_ != nullptr; }
  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  std::int64_t numel() const { return shape_.numel(); }
  std::size_t bytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  std::int64_t dim(int axis) const { return shape_[axis]; }

  void* raw() const { return data_; }
  // Typed host access; throws if the dtype differs or the tensor is not on the CPU.
  float* f32() const;
  std::int32_t* i32() const;

  // The same memory seen with another shape of equal element count.
  Tensor reshaped(const Shape& shape) const;

 private:
  void* data_ = nullptr;
  Shape shape_;
  DType dtype_ = DType::f32;
  Device device_;
  std::shared_ptr<void> owner_;  // null for views
};

}  // namespace cadenza
