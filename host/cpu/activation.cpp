// Elementwise activations on the CPU; the math is host/math/activation_math.hpp's.
#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/activation_math.hpp"

namespace cadenza::cpu {

void activation_forward(Activation kind, float alpha, const Tensor& x, Tensor& y) {
  CADENZA_CHECK(x.numel() == y.numel(), "activation sizes " << x.shape().str() << " vs " << y.shape().str());
  const float* in = x.f32();
  float* out = y.f32();
  const std::int64_t n = x.numel();
  switch (kind) {
    case Activation::relu:
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i) out[i] = relu_forward(in[i]);
      break;
    case Activation::elu:
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i) out[i] = elu_forward(in[i], alpha);
      break;
  }
}

void activation_backward(Activation kind, float alpha, const Tensor& x, const Tensor& y,
                         const Tensor& dy, Tensor& dx) {
  CADENZA_CHECK(x.numel() == dy.numel() && dx.numel() == dy.numel(), "activation gradient sizes");
  const float* in = x.f32();
  const float* out = y.f32();
  const float* grad_out = dy.f32();
  float* grad_in = dx.f32();
  const std::int64_t n = x.numel();
  switch (kind) {
    case Activation::relu:
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i) grad_in[i] = relu_backward(in[i], grad_out[i]);
      break;
    case Activation::elu:
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i)
        grad_in[i] = elu_backward(in[i], out[i], alpha, grad_out[i]);
      break;
  }
}

}  // namespace cadenza::cpu
