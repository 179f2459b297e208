// relu_masked: a fused ReLU's backward on the CPU, dy where the output y > 0, else +0
// (relu_backward's value, bit for bit), without a branch: the data decide y > 0 at random,
// and a mispredicted branch per element made masked loops several times slower than
// unmasked ones. Used by the batchnorm and conv2d loops that fuse a ReLU.
#pragma once

#include <bit>
#include <cstdint>

namespace cadenza::cpu {

inline float relu_masked(float y, float dy) {
  const std::uint32_t keep = 0u - static_cast<std::uint32_t>(y > 0.0f);
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(dy) & keep);
}

}  // namespace cadenza::cpu
