// Elementwise activations on the CPU; the math is host/math/activation_math.hpp's.
// Backward reads x and y only where the function needs them
// (activation_backward_reads_x/_y); the other may be an undefined Tensor.
#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/activation_math.hpp"

namespace cadenza::cpu {

void activation_forward(Activation kind, float alpha, const Tensor& x, Tensor& y) {
  CADENZA_CHECK(x.numel() == y.numel(), "activation sizes " << x.shape().str() << " vs " << y.shape().str());
  const float* in = x.f32();
  float* out = y.f32();
  const std::int64_t n = x.numel();
  visit_activation(kind, [&](auto k) {
    constexpr Activation kKind = decltype(k)::value;
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) out[i] = activation_value<kKind>(in[i], alpha);
  });
}

void activation_backward(Activation kind, float alpha, const Tensor& x, const Tensor& y,
                         const Tensor& dy, Tensor& dx) {
  const std::int64_t n = dy.numel();
  const bool reads_x = activation_backward_reads_x(kind), reads_y = activation_backward_reads_y(kind);
  CADENZA_CHECK(dx.numel() == n && (!reads_x || x.numel() == n) && (!reads_y || y.numel() == n),
                "activation gradient sizes");
  const float* in = reads_x ? x.f32() : nullptr;
  const float* out = reads_y ? y.f32() : nullptr;
  const float* grad_out = dy.f32();
  float* grad_in = dx.f32();
  visit_activation(kind, [&](auto k) {
    constexpr Activation kKind = decltype(k)::value;
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) grad_in[i] = activation_gradient<kKind>(in, out, i, alpha, grad_out[i]);
  });
}

}  // namespace cadenza::cpu
