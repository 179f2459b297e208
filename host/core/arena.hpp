// Arena: the one allocation that holds a model's parameters, gradients, state, optimizer
// moments, activations and workspace, planned before anything runs.
//
// Use: layers declare what they need on an ArenaPlan while the model is built for a fixed
// (batch, input shape); the Arena then allocates everything at once on the device and
// hands out views. The training step therefore allocates nothing (and can be captured as
// a CUDA graph).
//
// Invariants:
// - Regions are laid out in Region order; each buffer starts on a 64-byte boundary.
// - Every parameter has a gradient twin at the same offset of the gradient region, and the
//   optimizer's moment buffers mirror the parameter region, so an optimizer or an
//   all-reduce can run over each region as one flat f32 buffer (gaps are zero and stay
//   zero: their gradient is zero).
// - The workspace is shared by all layers (they run one at a time): its size is the
//   largest request.
// - Buffers added by add_by_lifetime share one block of their region: two of them overlap
//   in memory only if their lifetimes (closed intervals of the caller's clock) are
//   disjoint, so a buffer's bytes are never another's while both are live.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "host/core/tensor.hpp"

namespace cadenza {

class Backend;

enum class Region : int { parameters, gradients, state, optimizer, activations, count };

struct BufferId {
  int index = -1;
  bool valid() const { return index >= 0; }
};

struct ParameterId {
  BufferId value;
  BufferId gradient;
};

class ArenaPlan {
 public:
  struct Entry {
    Region region;
    std::string name;
    Shape shape;
    DType dtype;
    std::size_t offset = 0;  // bytes from the region's start
  };

  BufferId add(Region region, const std::string& name, const Shape& shape,
               DType dtype = DType::f32);
  // f32 buffers each live from `first` to `last` (inclusive) on the caller's clock.
  struct LifetimeRequest {
    std::string name;
    Shape shape;
    int first = 0, last = 0;
  };
  // Places them in one block of `region` (see the invariant above); ids in request order.
  std::vector<BufferId> add_by_lifetime(Region region, const std::vector<LifetimeRequest>& requests);
  ParameterId add_parameter(const std::string& name, const Shape& shape);
  // A buffer shaped like the whole parameter region (optimizer moments).
  BufferId add_parameter_mirror(const std::string& name);
  void reserve_workspace(std::size_t bytes);

  const std::vector<Entry>& entries() const { return entries_; }
  std::size_t region_bytes(Region region) const { return region_bytes_[int(region)]; }
  std::size_t workspace_bytes() const { return workspace_bytes_; }
  std::size_t total_bytes() const;

 private:
  std::vector<Entry> entries_;
  std::size_t region_bytes_[int(Region::count)] = {};
  std::size_t workspace_bytes_ = 0;
};

class Arena {
 public:
  Arena(ArenaPlan plan, Backend& backend);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  Tensor get(BufferId id) const;
  Tensor value(const ParameterId& id) const { return get(id.value); }
  Tensor gradient(const ParameterId& id) const { return get(id.gradient); }
  // The whole region as one flat f32 tensor.
  Tensor region(Region region) const;
  Tensor workspace() const;  // u8, workspace_bytes() long
  const ArenaPlan& plan() const { return plan_; }
  std::size_t total_bytes() const { return plan_.total_bytes(); }

 private:
  ArenaPlan plan_;
  Backend& backend_;
  char* memory_ = nullptr;
  std::size_t region_start_[int(Region::count)] = {};
  std::size_t workspace_start_ = 0;
};

}  // namespace cadenza
