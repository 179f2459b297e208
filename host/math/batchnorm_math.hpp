// Per-channel and per-element math of batch normalisation shared by the CPU loops and the
// CUDA kernels: the statistics from channel sums (the synchronised ops' sums may come from
// several ranks), the fused ReLU, and dx from the gradient sums.
//
// Conventions (PyTorch's): the biased variance normalises, the unbiased one updates the
// running variance, running = (1 - momentum) * running + momentum * batch statistic;
// invstd = 1 / sqrt(var + eps); xhat = (x - mean) * invstd.
#pragma once

#include <cmath>

#include "host/math/activation_math.hpp"
#include "host/math/hd.hpp"

namespace cadenza {

CADENZA_HD float batchnorm_invstd(double squares, double count, float eps) {
  return static_cast<float>(1.0 / sqrt(squares / count + double(eps)));
}

CADENZA_HD float batchnorm_running(float running, double batch_statistic, float momentum) {
  return static_cast<float>((1.0 - double(momentum)) * running + double(momentum) * batch_statistic);
}

CADENZA_HD double batchnorm_unbiased_variance(double squares, double count) {
  return count > 1.0 ? squares / (count - 1.0) : squares / count;
}

// An output element from its normalised value z: z, or relu(z) with a fused ReLU.
CADENZA_HD float batchnorm_output(bool relu, float z) { return relu ? relu_forward(z) : z; }

// The gradient reaching the normalisation from the output's gradient dy: dy, or with a
// fused ReLU dy where the output y > 0 and 0 elsewhere (y > 0 exactly where z > 0).
CADENZA_HD float batchnorm_upstream(bool relu, float y, float dy) { return relu ? relu_backward(y, dy) : dy; }

// dx of one element from the channel's sums: sum_dy = sum dy and sum_dy_xhat = sum dy *
// xhat over all `count` elements of the channel (of every rank, for synchronised batchnorm).
CADENZA_HD float batchnorm_dx(float gamma, float invstd, float count, float dy, float xhat, float sum_dy,
                              float sum_dy_xhat) {
  return gamma * invstd / count * (count * dy - sum_dy - xhat * sum_dy_xhat);
}

}  // namespace cadenza
