// Inverted dropout on the CPU; the mask is host/math/dropout_math.hpp's under the key
// dropout_key(step values, salt) (recomputed in backward from the same key, never stored).
#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/dropout_math.hpp"

namespace cadenza::cpu {

void dropout_forward(float rate, const Tensor& step_values, std::uint64_t salt, std::uint64_t first_index,
                     const Tensor& x, Tensor& y) {
  CADENZA_CHECK(x.numel() == y.numel(), "dropout sizes");
  const std::uint64_t key = dropout_key(read_step_values(step_values, "dropout_forward"), salt);
  const std::int64_t n = x.numel();
  const float* in = x.f32();
  float* out = y.f32();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) out[i] = in[i] * dropout_scale(key, first_index + std::uint64_t(i), rate);
}

void dropout_backward(float rate, const Tensor& step_values, std::uint64_t salt, std::uint64_t first_index,
                      const Tensor& dy, Tensor& dx) {
  CADENZA_CHECK(dx.numel() == dy.numel(), "dropout sizes");
  const std::uint64_t key = dropout_key(read_step_values(step_values, "dropout_backward"), salt);
  const std::int64_t n = dy.numel();
  const float* in = dy.f32();
  float* out = dx.f32();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) out[i] = in[i] * dropout_scale(key, first_index + std::uint64_t(i), rate);
}

}  // namespace cadenza::cpu
