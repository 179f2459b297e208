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
  switch (kind) {
    case Activation::relu:
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i) out[i] = relu_forward(in[i]);
      break;
    case Activation::elu:
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i) out[i] = elu_forward(in[i], alpha);
      break;
    case Activation::leaky_relu:
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i) out[i] = leaky_relu_forward(in[i], alpha);
      break;
    case Activation::sigmoid:
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i) out[i] = sigmoid_forward(in[i]);
      break;
    case Activation::tanh:
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i) out[i] = tanh_forward(in[i]);
      break;
  }
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
    case Activation::leaky_relu:
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i)
        grad_in[i] = leaky_relu_backward(in[i], alpha, grad_out[i]);
      break;
    case Activation::sigmoid:
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i) grad_in[i] = sigmoid_backward(out[i], grad_out[i]);
      break;
    case Activation::tanh:
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i) grad_in[i] = tanh_backward(out[i], grad_out[i]);
      break;
  }
}

}  // namespace cadenza::cpu
