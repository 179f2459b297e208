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

// Largest first; each at the lowest offset where it overlaps no placed buffer whose
// lifetime meets its own (first fit over the live ones' byte ranges).
std::vector<BufferId> ArenaPlan::add_by_lifetime(Region region, const std::vector<LifetimeRequest>& requests) {
  const std::size_t n = requests.size();
  std::vector<std::size_t> bytes(n), offset(n, 0), order(n);
  for (std::size_t i = 0; i < n; ++i) {
    CADENZA_CHECK(requests[i].first <= requests[i].last, "lifetime of " << requests[i].name);
    bytes[i] = align_up(static_cast<std::size_t>(requests[i].shape.numel()) * sizeof(float));
    order[i] = i;
  }
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return bytes[a] > bytes[b]; });
  std::size_t block = 0;
  std::vector<std::size_t> placed;
  for (std::size_t i : order) {
    // The byte ranges of placed buffers live at the same time as i, by start.
    std::vector<std::pair<std::size_t, std::size_t>> taken;
    for (std::size_t j : placed)
      if (requests[j].first <= requests[i].last && requests[i].first <= requests[j].last)
        taken.push_back({offset[j], offset[j] + bytes[j]});
    std::sort(taken.begin(), taken.end());
    std::size_t at = 0;
    for (const auto& [start, end] : taken) {
      if (at + bytes[i] <= start) break;
      at = std::max(at, end);
    }
    offset[i] = at;
    block = std::max(block, at + bytes[i]);
    placed.push_back(i);
  }
  const std::size_t base = region_bytes_[int(region)];
  region_bytes_[int(region)] += block;
  std::vector<BufferId> ids;
  for (std::size_t i = 0; i < n; ++i) {
    entries_.push_back(Entry{region, requests[i].name, requests[i].shape, DType::f32, base + offset[i]});
    ids.push_back(BufferId{static_cast<int>(entries_.size()) - 1});
  }
  return ids;
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
