// Activation functions and their derivatives, one element at a time (CPU loops and CUDA
// kernels both call these).
//
// Derivatives follow PyTorch at the kinks: relu'(0) = 0; elu takes the exponential branch
// for x <= 0, so elu'(0) = alpha. Gradient tests declare x = 0 a kink for both.
#pragma once

#include <cmath>

#include "host/math/hd.hpp"

namespace cadenza {

CADENZA_HD float relu_forward(float x) { return x > 0.0f ? x : 0.0f; }
CADENZA_HD float relu_backward(float x, float dy) { return x > 0.0f ? dy : 0.0f; }

CADENZA_HD float elu_forward(float x, float alpha) {
  return x > 0.0f ? x : alpha * expm1f(x);
}
// Uses the forward output y: for x <= 0, d/dx alpha*(e^x - 1) = alpha*e^x = y + alpha.
CADENZA_HD float elu_backward(float x, float y, float alpha, float dy) {
  return x > 0.0f ? dy : dy * (y + alpha);
}

}  // namespace cadenza
