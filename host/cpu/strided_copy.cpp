// strided_copy and permute on the CPU: the data-movement ops behind concat, reshape to a
// sequence, picking a sequence step and summing gradients of a shared output.
// Tensors are f32; src and dst never overlap.
#include <cstdint>
#include <cstring>

#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/layout_math.hpp"

namespace cadenza::cpu {
namespace {

void check_extent(const Tensor& t, std::int64_t rows, std::int64_t stride, std::int64_t offset,
                  std::int64_t width, const char* what) {
  CADENZA_CHECK(t.defined() && rows >= 0 && width >= 0 && offset >= 0 && offset + width <= stride,
                "strided_copy " << what << ": rows " << rows << ", stride " << stride << ", offset "
                                << offset << ", width " << width);
  CADENZA_CHECK(rows == 0 || (rows - 1) * stride + offset + width <= t.numel(),
                "strided_copy " << what << " of " << t.numel() << " elements is too short for "
                                << rows << " rows of stride " << stride);
}

}  // namespace

void strided_copy(const StridedCopy& c, const Tensor& src, Tensor& dst) {
  check_extent(src, c.rows, c.src_stride, c.src_offset, c.width, "src");
  check_extent(dst, c.rows, c.dst_stride, c.dst_offset, c.width, "dst");
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
