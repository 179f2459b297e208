// GradientReducer (see gradient_reducer.hpp).
#include "host/dist/gradient_reducer.hpp"

#include <algorithm>

#include "host/core/error.hpp"

namespace cadenza {

GradientReducer::GradientReducer(const Arena& arena, const std::vector<NamedParameter>& parameters,
                                 std::size_t bucket_bytes, Communicator& communicator)
    : communicator_(communicator), bucket_of_parameter_(parameters.size(), -1) {
  const Tensor region = arena.region(Region::gradients);
  const auto& entries = arena.plan().entries();
  // Element range [begin, end) of parameter i's gradient in the region.
  auto begin_of = [&](int i) { return std::int64_t(entries[parameters[i].id.gradient.index].offset / sizeof(float)); };
  auto end_of = [&](int i) { return begin_of(i) + entries[parameters[i].id.gradient.index].shape.numel(); };
  const std::int64_t bucket_elements = std::max<std::int64_t>(1, std::int64_t(bucket_bytes / sizeof(float)));
  std::int64_t previous_begin = region.numel();  // buckets must not overlap, going down
  for (int end = static_cast<int>(parameters.size()); end > 0;) {
    int first = end - 1;
    std::int64_t low = begin_of(first), high = end_of(first);
    while (first > 0 && std::max(high, end_of(first - 1)) - std::min(low, begin_of(first - 1)) <= bucket_elements) {
      --first;
      low = std::min(low, begin_of(first));
      high = std::max(high, end_of(first));
    }
    CADENZA_CHECK(high <= previous_begin, "GradientReducer: gradient buffers out of parameter order at "
                                              << parameters[first].name);
    previous_begin = low;
    Bucket bucket{first, end, Tensor::view(static_cast<float*>(region.raw()) + low, Shape{high - low}, DType::f32,
                                           region.device())};
    for (int i = first; i < end; ++i) bucket_of_parameter_[std::size_t(i)] = static_cast<int>(buckets_.size());
    buckets_.push_back(bucket);
    end = first;
  }
  waiting_.assign(buckets_.size(), 0);
  started_.assign(buckets_.size(), false);
}

void GradientReducer::begin_step() {
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    waiting_[b] = buckets_[b].parameter_end - buckets_[b].first_parameter;
    started_[b] = false;
  }
}

void GradientReducer::gradients_ready(int first, int end) {
  for (int i = first; i < end; ++i) {
    const auto b = static_cast<std::size_t>(bucket_of_parameter_[std::size_t(i)]);
    if (--waiting_[b] == 0) start(b);
  }
}

void GradientReducer::finish() {
  for (std::size_t b = 0; b < buckets_.size(); ++b)
    if (!started_[b]) start(b);
  communicator_.wait_all();
}

void GradientReducer::start(std::size_t bucket) {
  started_[bucket] = true;
  communicator_.start_all_reduce(buckets_[bucket].gradients, Reduction::average);
}

}  // namespace cadenza
