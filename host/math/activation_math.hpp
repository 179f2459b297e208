// Activation functions and their derivatives, one element at a time (CPU loops and CUDA
// kernels both call these).
//
// Derivatives follow PyTorch at the kinks: relu'(0) = 0; elu takes the exponential branch
// for x <= 0, so elu'(0) = alpha; leaky_relu'(0) = negative_slope (torch's backward is
// x > 0 ? dy : dy * negative_slope). Gradient tests declare x = 0 a kink for all three.
//
// Which input a backward reads: relu, leaky_relu and power_to_db read x; sigmoid and tanh
// read only the forward output y (sigma' = y(1 - y), tanh' = 1 - y^2, as PyTorch's
// backward does); elu reads both (host/ops/backend.hpp's activation_backward_reads_x/_y
// say the same). power_to_db's kink at amin is torch's too (gradient 0 below it).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "host/core/error.hpp"
#include "host/math/hd.hpp"
#include "host/math/spectral_math.hpp"
#include "host/ops/backend.hpp"

namespace cadenza {

// NaN passes through, as in torch.relu: a non-finite weight must reach the loss, where the
// trainer stops the run, rather than be hidden as 0 by every ReLU after it.
CADENZA_HD float relu_forward(float x) { return x <= 0.0f ? 0.0f : x; }
CADENZA_HD float relu_backward(float x, float dy) { return x > 0.0f ? dy : 0.0f; }

CADENZA_HD float elu_forward(float x, float alpha) {
  return x > 0.0f ? x : alpha * expm1f(x);
}
// Uses the forward output y: for x <= 0, d/dx alpha*(e^x - 1) = alpha*e^x = y + alpha.
CADENZA_HD float elu_backward(float x, float y, float alpha, float dy) {
  return x > 0.0f ? dy : dy * (y + alpha);
}

// torch.nn.LeakyReLU: x for x > 0, negative_slope * x otherwise (equal at 0).
CADENZA_HD float leaky_relu_forward(float x, float negative_slope) {
  return x > 0.0f ? x : negative_slope * x;
}
CADENZA_HD float leaky_relu_backward(float x, float negative_slope, float dy) {
  return x > 0.0f ? dy : dy * negative_slope;
}

// 1 / (1 + e^-x), evaluated so that the exponential never overflows: e^-x for x >= 0 and
// e^x / (1 + e^x) for x < 0 take expf of a non-positive number only. The result reaches
// exactly 1 for x above ~16.6 (e^-x below half an ulp of 1) and exactly 0 only where
// expf(x) underflows (x below ~-103.9); it is never NaN for finite or infinite x.
CADENZA_HD float sigmoid_forward(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  const float e = expf(x);
  return e / (1.0f + e);
}
// From the output: d/dx sigma(x) = sigma(x) (1 - sigma(x)).
CADENZA_HD float sigmoid_backward(float y, float dy) { return dy * (y * (1.0f - y)); }

// tanhf saturates to exactly +-1 for |x| above ~9.01 and never overflows.
CADENZA_HD float tanh_forward(float x) { return tanhf(x); }
// From the output: d/dx tanh(x) = 1 - tanh(x)^2.
CADENZA_HD float tanh_backward(float y, float dy) { return dy * (1.0f - y * y); }

// power_to_db: torchaudio's AmplitudeToDB() on a power spectrogram, 10 log10(max(x, amin)),
// no reference and no top_db; the front-end's to_db (spectral_math.hpp). amin is fixed at
// torchaudio's default 1e-10 (not a config key: a layer of Won's HarmonicCNN, which keeps
// the default). The gradient is torch autograd's: clamp_min passes dy where x >= amin and
// 0 below, then log10's dy / (x ln 10) times the multiplier 10, evaluated in that order.
constexpr float kPowerToDbAmin = 1e-10f;
CADENZA_HD float power_to_db_forward(float x) { return to_db(x, kPowerToDbAmin, 10.0f, 0.0f); }
CADENZA_HD float power_to_db_backward(float x, float dy) {
  return x >= kPowerToDbAmin ? (10.0f * dy) / (x * 2.30258512f) : 0.0f;
}

// Activation `kKind` of one element: the one place that maps a kind to its functions.
template <Activation kKind>
CADENZA_HD float activation_value(float x, float alpha) {
  if constexpr (kKind == Activation::relu) return relu_forward(x);
  else if constexpr (kKind == Activation::elu) return elu_forward(x, alpha);
  else if constexpr (kKind == Activation::leaky_relu) return leaky_relu_forward(x, alpha);
  else if constexpr (kKind == Activation::sigmoid) return sigmoid_forward(x);
  else if constexpr (kKind == Activation::tanh) return tanh_forward(x);
  else return power_to_db_forward(x);
}

// The gradient at element i from dy; reads x[i] and y[i] only where the kind needs them
// (activation_backward_reads_x/_y), so the other pointer may be null.
template <Activation kKind>
CADENZA_HD float activation_gradient(const float* x, const float* y, std::int64_t i, float alpha, float dy) {
  if constexpr (kKind == Activation::relu) return relu_backward(x[i], dy);
  else if constexpr (kKind == Activation::elu) return elu_backward(x[i], y[i], alpha, dy);
  else if constexpr (kKind == Activation::leaky_relu) return leaky_relu_backward(x[i], alpha, dy);
  else if constexpr (kKind == Activation::sigmoid) return sigmoid_backward(y[i], dy);
  else if constexpr (kKind == Activation::tanh) return tanh_backward(y[i], dy);
  else return power_to_db_backward(x[i], dy);
}

// Calls f(std::integral_constant<Activation, K>{}) for the K equal to `kind` (host side),
// so a loop or kernel is instantiated per kind and chooses its function once, not per
// element. Throws Error for a value outside the enum.
template <typename F>
void visit_activation(Activation kind, F&& f) {
  switch (kind) {
    case Activation::relu: return f(std::integral_constant<Activation, Activation::relu>{});
    case Activation::elu: return f(std::integral_constant<Activation, Activation::elu>{});
    case Activation::leaky_relu: return f(std::integral_constant<Activation, Activation::leaky_relu>{});
    case Activation::sigmoid: return f(std::integral_constant<Activation, Activation::sigmoid>{});
    case Activation::tanh: return f(std::integral_constant<Activation, Activation::tanh>{});
    case Activation::power_to_db: return f(std::integral_constant<Activation, Activation::power_to_db>{});
  }
  CADENZA_CHECK(false, "unknown activation " << static_cast<int>(kind));
}

}  // namespace cadenza
