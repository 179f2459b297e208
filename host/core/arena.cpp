// Arena layout: regions back to back, buffers 64-byte aligned inside them.
#include "host/core/arena.hpp"

#include <algorithm>

#include "host/core/error.hpp"
#include "host/ops/backend.hpp"

namespace cadenza {
namespace {
constexpr std::size_t kAlignment = 64;
std::size_t align_up(std::size_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }
}  // namespace

BufferId ArenaPlan::add(Region region, const std::string& name, const Shape& shape, DType dtype) {
  Entry e{region, name, shape, dtype, region_bytes_[int(region)]};
  const std::size_t bytes = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype);
  region_bytes_[int(region)] += align_up(bytes);
  entries_.push_back(e);
  return BufferId{static_cast<int>(entries_.size()) - 1};
}

ParameterId ArenaPlan::add_parameter(const std::string& name, const Shape& shape) {
  CADENZA_CHECK(region_bytes_[int(Region::parameters)] == region_bytes_[int(Region::gradients)],
                "gradient region out of step with parameters");
  ParameterId id;
  id.value = add(Region::parameters, name, shape);
  id.gradient = add(Region::gradients, name, shape);
  return id;
}

BufferId ArenaPlan::add_parameter_mirror(const std::string& name) {
  const auto floats = static_cast<std::int64_t>(region_bytes_[int(Region::parameters)] / 4);
  return add(Region::optimizer, name, Shape{floats});
}

void ArenaPlan::reserve_workspace(std::size_t bytes) {
  workspace_bytes_ = std::max(workspace_bytes_, align_up(bytes));
}

std::size_t ArenaPlan::total_bytes() const {
  std::size_t total = workspace_bytes_;
  for (std::size_t b : region_bytes_) total += b;
  return total;
}

Arena::Arena(ArenaPlan plan, Backend& backend) : plan_(std::move(plan)), backend_(backend) {
  std::size_t offset = 0;
  for (int r = 0; r < int(Region::count); ++r) {
    region_start_[r] = offset;
    offset += plan_.region_bytes(Region(r));
  }
  workspace_start_ = offset;
  offset += plan_.workspace_bytes();
  memory_ = offset ? static_cast<char*>(backend_.allocate(offset)) : nullptr;
}

Arena::~Arena() {
  if (memory_) backend_.release(memory_);
}

Tensor Arena::get(BufferId id) const {
  CADENZA_CHECK(id.valid() && id.index < static_cast<int>(plan_.entries().size()),
                "invalid arena buffer id " << id.index);
  const auto& e = plan_.entries()[id.index];
  return Tensor::view(memory_ + region_start_[int(e.region)] + e.offset, e.shape, e.dtype,
                      backend_.device());
}

Tensor Arena::region(Region region) const {
  const auto floats = static_cast<std::int64_t>(plan_.region_bytes(region) / 4);
  return Tensor::view(memory_ + region_start_[int(region)], Shape{floats}, DType::f32,
                      backend_.device());
}

Tensor Arena::workspace() const {
  return Tensor::view(memory_ + workspace_start_,
                      Shape{static_cast<std::int64_t>(plan_.workspace_bytes())}, DType::u8,
                      backend_.device());
}

}  // namespace cadenza
