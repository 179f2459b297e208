// Dropout mask of one element (CPU loops and CUDA kernels draw the same mask).
//
// The mask is a pure function of (key, element index): the forward pass and the backward
// pass recompute it instead of storing it, and a resumed run draws the same masks as an
// unbroken one. The trainer derives `key` from (train.seed, layer, step).
#pragma once

#include <cstdint>

#include "host/math/hd.hpp"
#include "host/math/random_math.hpp"

namespace cadenza {

// Inverted dropout: kept elements are scaled by 1 / (1 - rate), dropped ones are zero.
CADENZA_HD float dropout_scale(std::uint64_t key, std::uint64_t index, float rate) {
  return uniform01(key, 0, index) >= rate ? 1.0f / (1.0f - rate) : 0.0f;
}

}  // namespace cadenza
