// Counter-based random numbers shared by the CPU code and the CUDA kernels.
//
// Every random value is a pure function of (seed, stream, counter): there is no generator
// state to carry, so values can be drawn in any order, by any number of threads, on the
// host or the device, and come out the same. Callers pick a `stream` per purpose (a
// dropout layer, a clip, a class being shuffled) and a `counter` per value within it.
//
// Invariants:
// - hash64, uniform01 and uniform_index use integer arithmetic only (plus one exact
//   int-to-float conversion), so they are bit-identical on every compiler, standard
//   library and GPU. No std::mt19937 or <random> distribution is involved (their output
//   is not specified across standard libraries).
// - normal() uses float logf/cosf/sqrtf; host libm and CUDA's math library may differ
//   in the last bit or two, so draw normals on one side when bit equality matters.
// - uniform01(seed, stream, c) and normal(seed, stream, c) consume the same 64-bit hash,
//   so use different streams (or counters) when a purpose needs both.
#pragma once

#include <cmath>
#include <cstdint>

#include "host/math/hd.hpp"

namespace cadenza {

// The splitmix64 output finalizer (Steele, Lea, Flood 2014): a bijection on 64-bit words
// with full avalanche (each input bit flips each output bit with probability ~1/2).
CADENZA_HD std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Hash of the pair (a, b): the b-th output of a splitmix64 generator whose state starts
// at mix64(a). For a fixed `a` the values over b = 0, 1, 2, ... are the splitmix64
// sequence (passes BigCrush); different `a` start decorrelated sequences. Not symmetric:
// hash64(a, b) != hash64(b, a) in general. Chain it to key by more words:
// hash64(hash64(seed, stream), counter).
CADENZA_HD std::uint64_t hash64(std::uint64_t a, std::uint64_t b) {
  constexpr std::uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ULL;
  return mix64(mix64(a) + (b + 1) * kGoldenGamma);
}

// The 64 random bits behind value number `counter` of `stream` under `seed`.
CADENZA_HD std::uint64_t random_bits(std::uint64_t seed, std::uint64_t stream,
                                     std::uint64_t counter) {
  return hash64(hash64(seed, stream), counter);
}

// Uniform float in [0, 1) on the grid k / 2^24 (the top 24 bits of the hash), so every
// value is exactly representable and 1.0f is never returned.
CADENZA_HD float uniform01(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
  constexpr float kInv2Pow24 = 1.0f / 16777216.0f;
  return static_cast<float>(random_bits(seed, stream, counter) >> 40) * kInv2Pow24;
}

// Uniform integer in [0, n) for n >= 1 (n = 0 returns 0). Reduces the full 64-bit hash
// modulo n; the modulo bias is below n / 2^64, far under any statistical test's reach for
// the sizes shuffled here.
CADENZA_HD std::uint64_t uniform_index(std::uint64_t seed, std::uint64_t stream,
                                       std::uint64_t counter, std::uint64_t n) {
  return n == 0 ? 0 : random_bits(seed, stream, counter) % n;
}

// Standard normal float by Box-Muller (the cosine branch) from one 64-bit hash: the top
// 24 bits give u1 in (0, 1] (so log(u1) is finite), the next 24 bits give u2 in [0, 1).
// |result| <= sqrt(2 * 24 * ln 2) ~ 5.77.
CADENZA_HD float normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
  constexpr float kInv2Pow24 = 1.0f / 16777216.0f;
  constexpr float kTwoPi = 6.283185307179586f;
  const std::uint64_t bits = random_bits(seed, stream, counter);
  const float u1 = static_cast<float>((bits >> 40) + 1) * kInv2Pow24;
  const float u2 = static_cast<float>((bits >> 16) & 0xffffffULL) * kInv2Pow24;
  return sqrtf(-2.0f * logf(u1)) * cosf(kTwoPi * u2);
}

}  // namespace cadenza
