// strided_copy and permute on the CPU: the data-movement ops behind concat, reshape to a
// sequence, picking a sequence step and summing gradients of a shared output.
// Tensors are f32; src and dst never overlap.
#include <cstdint>
#include <cstring>

#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/layout_math.hpp"

namespace cadenza::cpu {

void strided_copy(const StridedCopy& c, const Tensor& src, Tensor& dst) {
  CADENZA_CHECK(src.defined() && dst.defined(), "strided_copy of an absent tensor");
  c.check_fits(src.numel(), dst.numel());
  const float* from = src.f32();
  float* to = dst.f32();
#pragma omp parallel for schedule(static) if (c.rows * c.width > 65536)
  for (std::int64_t r = 0; r < c.rows; ++r) {
    const float* a = from + r * c.src_stride + c.src_offset;
    float* b = to + r * c.dst_stride + c.dst_offset;
    if (c.accumulate) {
      for (std::int64_t i = 0; i < c.width; ++i) b[i] += a[i];
    } else {
      std::memcpy(b, a, sizeof(float) * static_cast<std::size_t>(c.width));
    }
  }
}

void permute(const PermuteGeometry& g, const Tensor& x, Tensor& y) {
  const std::int64_t n = g.numel();
  CADENZA_CHECK(x.numel() == n && y.numel() == n,
                "permute of " << n << " elements: x " << x.shape().str() << ", y " << y.shape().str());
  const float* from = x.f32();
  float* to = y.f32();
#pragma omp parallel for schedule(static) if (n > 65536)
  for (std::int64_t i = 0; i < n; ++i) to[i] = from[permuted_source_index(g, i)];
}

}  // namespace cadenza::cpu
