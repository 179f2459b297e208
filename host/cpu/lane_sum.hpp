// Sums of float rows in double, eight interleaved partial sums at a time, for the CPU
// loops whose time went to one long chain of dependent additions (batchnorm statistics
// and gradients, bias gradients, mean pooling).
//
// Invariants: element i of a row (counted from the row's start) is added to lane i % 8;
// rows added one after another continue the same lanes; total() adds the lanes in a fixed
// tree. The order of every addition is therefore set by the row lengths alone, never by
// the instruction set or the thread count, so results stay bit-identical whatever -march
// a build uses (the 128-bit vectors below are SSE2's and NEON's, which every x86-64 and
// AArch64 CPU has) — in code built with -ffp-contract=off, as the library and the tests
// are, so that no multiply and add of a term fuse. A row's tail of fewer than eight
// elements is read through a zeroed copy and its unused lanes are masked off, so the term
// function runs on whole blocks only and never reads past a row.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace cadenza::cpu {

using f32x4 = float __attribute__((vector_size(16)));
using i32x4 = std::int32_t __attribute__((vector_size(16)));
using f64x2 = double __attribute__((vector_size(16)));
using i64x2 = std::int64_t __attribute__((vector_size(16)));

constexpr int kSumLanes = 8;

// Eight consecutive floats of a row.
struct Float8 {
  f32x4 low, high;
};

// Eight doubles: lanes 0-1, 2-3, 4-5, 6-7.
struct Double8 {
  f64x2 part[4];
};

inline Float8 load8(const float* p) {
  Float8 v;
  std::memcpy(&v.low, p, sizeof v.low);
  std::memcpy(&v.high, p + 4, sizeof v.high);
  return v;
}

inline Double8 widen(const Float8& v) {
  return {{__builtin_convertvector(__builtin_shufflevector(v.low, v.low, 0, 1), f64x2),
           __builtin_convertvector(__builtin_shufflevector(v.low, v.low, 2, 3), f64x2),
           __builtin_convertvector(__builtin_shufflevector(v.high, v.high, 0, 1), f64x2),
           __builtin_convertvector(__builtin_shufflevector(v.high, v.high, 2, 3), f64x2)}};
}

inline Float8 operator-(const Float8& a, float b) { return {a.low - b, a.high - b}; }
inline Float8 operator*(const Float8& a, float b) { return {a.low * b, a.high * b}; }
inline Double8 operator-(const Double8& a, double b) {
  return {{a.part[0] - b, a.part[1] - b, a.part[2] - b, a.part[3] - b}};
}
inline Double8 operator*(const Double8& a, const Double8& b) {
  return {{a.part[0] * b.part[0], a.part[1] * b.part[1], a.part[2] * b.part[2], a.part[3] * b.part[3]}};
}

// v where keep > 0, else +0, lane by lane: relu_masked (relu_mask.hpp) on eight elements.
inline Float8 masked_where_positive(const Float8& keep, const Float8& v) {
  return {(f32x4)((i32x4)v.low & (keep.low > 0.0f)), (f32x4)((i32x4)v.high & (keep.high > 0.0f))};
}

// Eight partial sums of one quantity.
class LaneSum {
 public:
  void add(const Double8& terms) {
    for (int k = 0; k < 4; ++k) lanes_[k] += terms.part[k];
  }
  // Adds lanes [0, count) of terms and leaves the others as they are.
  void add_first(const Double8& terms, int count) {
    for (int k = 0; k < 4; ++k) {
      const i64x2 lane = {2 * k, 2 * k + 1};
      lanes_[k] += (f64x2)((i64x2)terms.part[k] & (lane < count));
    }
  }
  double total() const {
    return ((lanes_[0][0] + lanes_[0][1]) + (lanes_[1][0] + lanes_[1][1])) +
           ((lanes_[2][0] + lanes_[2][1]) + (lanes_[3][0] + lanes_[3][1]));
  }

 private:
  f64x2 lanes_[4] = {};
};

// Adds terms(block) to sums[0..Sums) for each block of eight elements of `rows` (Inputs
// rows of n floats each, read in step): terms gets one Float8 per row and returns one
// Double8 per sum.
template <std::size_t Inputs, std::size_t Sums, class Terms>
void add_rows(const std::array<const float*, Inputs>& rows, std::int64_t n, LaneSum* sums, Terms terms) {
  std::array<Float8, Inputs> block;
  std::int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) {
    for (std::size_t r = 0; r < Inputs; ++r) block[r] = load8(rows[r] + i);
    const std::array<Double8, Sums> t = terms(block);
    for (std::size_t s = 0; s < Sums; ++s) sums[s].add(t[s]);
  }
  if (i == n) return;
  const int rest = static_cast<int>(n - i);
  for (std::size_t r = 0; r < Inputs; ++r) {
    float padded[kSumLanes] = {};
    std::memcpy(padded, rows[r] + i, sizeof(float) * rest);
    block[r] = load8(padded);
  }
  const std::array<Double8, Sums> t = terms(block);
  for (std::size_t s = 0; s < Sums; ++s) sums[s].add_first(t[s], rest);
}

// The sum of a row, added to `sum`.
inline void add_row(const float* row, std::int64_t n, LaneSum& sum) {
  add_rows<1, 1>({row}, n, &sum, [](const std::array<Float8, 1>& in) { return std::array<Double8, 1>{widen(in[0])}; });
}

}  // namespace cadenza::cpu
