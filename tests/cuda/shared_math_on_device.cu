// The kernel behind evaluate_shared_math: one thread per element (or per row) calling the
// host/math functions exactly as the CPU loops call them.
#include <cuda_runtime.h>

#include <memory>

#include "cuda/check.cuh"
#include "host/math/activation_math.hpp"
#include "host/math/dropout_math.hpp"
#include "host/math/loss_math.hpp"
#include "host/math/optimizer_math.hpp"
#include "host/math/random_math.hpp"
#include "host/math/spectral_math.hpp"
#include "tests/cuda/shared_math_on_device.cuh"

namespace cadenza::testing {
namespace {

constexpr int kOutputs = 21;  // arrays in SharedMathResults

struct Views {
  float* out[kOutputs];
};

CADENZA_HD void evaluate_element(const float* in, int n, int k, int i, const Views& v) {
  const float x = in[i];
  v.out[0][i] = relu_forward(x);
  v.out[1][i] = relu_backward(x, 0.5f);
  const float y = elu_forward(x, 0.7f);
  v.out[2][i] = y;
  v.out[3][i] = elu_backward(x, y, 0.7f, 0.5f);
  v.out[4][i] = uniform01(11, 3, static_cast<std::uint64_t>(i));
  v.out[5][i] = normal(11, 4, static_cast<std::uint64_t>(i));
  v.out[6][i] = dropout_scale(12, static_cast<std::uint64_t>(i), 0.25f);
  if (i % k == 0 && i + k <= n) {
    float targets[64] = {};
    targets[(i / k) % k] = 1.0f;
    v.out[7][i / k] = softmax_cross_entropy_row(in + i, targets, k, 0.1f, 0.5f, v.out[8] + i);
    v.out[9][i / k] = sigmoid_bce_row(in + i, targets, k, 0.5f, v.out[10] + i);
  }
  const AdamStepConstants c{1e-3f, 0.9f, 0.999f, 1e-8f, 1e-2f, true, 1e-3f / 0.1f, 0.0316227766f};
  float param = 0.3f, m = 0.01f * x, v2 = 0.02f;
  adam_update(c, param, x, m, v2);
  v.out[11][i] = param;
  v.out[12][i] = m;
  v.out[13][i] = v2;
  v.out[14][i] = to_db(spectral_power(x, 0.5f * x, 2.0f), 1e-10f, 10.0f, 0.0f);
  v.out[15][i] = leaky_relu_forward(x, 0.2f);
  v.out[16][i] = leaky_relu_backward(x, 0.2f, 0.5f);
  const float s = sigmoid_forward(x);
  v.out[17][i] = s;
  v.out[18][i] = sigmoid_backward(s, 0.5f);
  const float t = tanh_forward(x);
  v.out[19][i] = t;
  v.out[20][i] = tanh_backward(t, 0.5f);
}

__global__ void shared_math_kernel(const float* in, int n, int k, Views v) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) evaluate_element(in, n, k, i, v);
}

std::vector<float>* output(SharedMathResults& r, int index) {
  std::vector<float>* all[kOutputs] = {&r.relu,         &r.relu_grad,    &r.elu,      &r.elu_grad,
                                       &r.uniform,      &r.normal,       &r.dropout,  &r.softmax_loss,
                                       &r.softmax_grad, &r.bce_loss,     &r.bce_grad, &r.adam_param,
                                       &r.adam_m,       &r.adam_v,       &r.db,
                                       &r.leaky_relu,   &r.leaky_relu_grad,
                                       &r.sigmoid,      &r.sigmoid_grad,
                                       &r.tanh,         &r.tanh_grad};
  return all[index];
}

}  // namespace

SharedMathResults evaluate_shared_math(const std::vector<float>& inputs, int k, bool on_device) {
  const int n = static_cast<int>(inputs.size());
  SharedMathResults r;
  for (int j = 0; j < kOutputs; ++j) output(r, j)->assign(n, 0.0f);
  if (!on_device) {
    Views v{};
    for (int j = 0; j < kOutputs; ++j) v.out[j] = output(r, j)->data();
    for (int i = 0; i < n; ++i) evaluate_element(inputs.data(), n, k, i, v);
    return r;
  }
  float* raw = nullptr;
  const std::size_t bytes = sizeof(float) * n;
  CADENZA_CUDA_CHECK(cudaMalloc(&raw, bytes * (kOutputs + 1)));
  const std::unique_ptr<float, cudaError_t (*)(void*)> owner(raw, cudaFree);
  float* device = raw;
  CADENZA_CUDA_CHECK(cudaMemcpy(device, inputs.data(), bytes, cudaMemcpyHostToDevice));
  CADENZA_CUDA_CHECK(cudaMemset(device + n, 0, bytes * kOutputs));
  Views v{};
  for (int j = 0; j < kOutputs; ++j) v.out[j] = device + std::size_t(n) * (j + 1);
  shared_math_kernel<<<(n + 127) / 128, 128>>>(device, n, k, v);
  CADENZA_CUDA_CHECK(cudaGetLastError());
  for (int j = 0; j < kOutputs; ++j)
    CADENZA_CUDA_CHECK(cudaMemcpy(output(r, j)->data(), v.out[j], bytes, cudaMemcpyDeviceToHost));
  return r;
}

}  // namespace cadenza::testing
