// Evaluates the shared __host__ __device__ math (host/math) inside a CUDA kernel, so the
// [cuda] tests can compare the device's results with the host's for the same inputs.
#pragma once

#include <cstdint>
#include <vector>

namespace cadenza::testing {

struct SharedMathResults {
  std::vector<float> relu, relu_grad, elu, elu_grad;  // per input x
  std::vector<float> leaky_relu, leaky_relu_grad, sigmoid, sigmoid_grad, tanh, tanh_grad;
  std::vector<float> uniform, normal, dropout;        // per counter
  std::vector<float> softmax_loss, softmax_grad;      // rows of k logits
  std::vector<float> bce_loss, bce_grad;
  std::vector<float> adam_param, adam_m, adam_v;      // one Adam step per element
  std::vector<float> db;                              // dB of a bin's power
};

// Runs every function on `inputs` (also used as logits, gradients and powers) with rows of
// `k`; on the device when `on_device`, else on the host through the same code.
SharedMathResults evaluate_shared_math(const std::vector<float>& inputs, int k, bool on_device);

}  // namespace cadenza::testing
