// Inverted dropout on the CPU; the mask is host/math/dropout_math.hpp's (recomputed in
// backward from the same key, never stored).
#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/dropout_math.hpp"

namespace cadenza::cpu {

void dropout_forward(float rate, std::uint64_t key, std::uint64_t first_index, const Tensor& x, Tensor& y) {
  CADENZA_CHECK(x.numel() == y.numel(), "dropout sizes");
  const std::int64_t n = x.numel();
  const float* in = x.f32();
  float* out = y.f32();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) out[i] = in[i] * dropout_scale(key, first_index + std::uint64_t(i), rate);
}

void dropout_backward(float rate, std::uint64_t key, std::uint64_t first_index, const Tensor& dy, Tensor& dx) {
  CADENZA_CHECK(dx.numel() == dy.numel(), "dropout sizes");
  const std::int64_t n = dy.numel();
  const float* in = dy.f32();
  float* out = dx.f32();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) out[i] = in[i] * dropout_scale(key, first_index + std::uint64_t(i), rate);
}

}  // namespace cadenza::cpu
