// lane_sum.hpp adds element i of a row to lane i % 8, continues the lanes across rows,
// masks a short tail's unused lanes, and totals the lanes in one fixed tree: checked
// against that rule written out one element at a time, bit for bit, on row lengths around
// the block size.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "host/cpu/lane_sum.hpp"

using namespace cadenza::cpu;

namespace {

// The documented order, one element at a time: lanes continue across rows.
struct ReferenceLanes {
  double lane[kSumLanes] = {};
  void add_row(const std::vector<double>& terms) {
    for (std::size_t i = 0; i < terms.size(); ++i) lane[i % kSumLanes] += terms[i];
  }
  double total() const {
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  }
};

std::vector<float> values(int n, float phase) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = std::sin(0.37f * float(i) + phase) * 1000.0f + 0.001f * float(i);
  return v;
}

}  // namespace

TEST_CASE("lane sums follow the documented order bit for bit, tails included", "[cpu][lane_sum]") {
  for (int n = 0; n <= 19; ++n) {
    INFO("row length " << n);
    const std::vector<float> a = values(n, 0.1f), b = values(n, 2.0f), keep = values(n, 4.0f);
    // Two rows per sum, so a tail is followed by more terms in the same lanes.
    LaneSum plain, squares, products[2];
    ReferenceLanes ref_plain, ref_squares, ref_masked, ref_products;
    const double mean = 3.25;
    for (int row = 0; row < 2; ++row) {
      add_row(a.data(), n, plain);
      add_rows<1, 1>({a.data()}, n, &squares, [&](const std::array<Float8, 1>& in) {
        const Double8 d = widen(in[0]) - mean;
        return std::array<Double8, 1>{d * d};
      });
      add_rows<3, 2>({a.data(), b.data(), keep.data()}, n, products, [](const std::array<Float8, 3>& in) {
        const Double8 masked = widen(masked_where_positive(in[2], in[1]));
        return std::array<Double8, 2>{masked, masked * widen(in[0])};
      });
      std::vector<double> t_plain, t_squares, t_masked, t_products;
      for (int i = 0; i < n; ++i) {
        const std::size_t k = static_cast<std::size_t>(i);
        t_plain.push_back(a[k]);
        t_squares.push_back((a[k] - mean) * (a[k] - mean));
        const float masked = keep[k] > 0.0f ? b[k] : 0.0f;
        t_masked.push_back(masked);
        t_products.push_back(double(masked) * double(a[k]));
      }
      ref_plain.add_row(t_plain);
      ref_squares.add_row(t_squares);
      ref_masked.add_row(t_masked);
      ref_products.add_row(t_products);
    }
    CHECK(plain.total() == ref_plain.total());
    CHECK(squares.total() == ref_squares.total());  // the tail's zero padding would add mean^2
    CHECK(products[0].total() == ref_masked.total());
    CHECK(products[1].total() == ref_products.total());
  }
}

TEST_CASE("a masked lane passes NaN and -0 through as the scalar ReLU mask does", "[cpu][lane_sum]") {
  const float nan = std::nanf("");
  const std::array<float, 8> keep = {1.0f, -1.0f, 0.0f, -0.0f, nan, 2.0f, 3.0f, -3.0f};
  const std::array<float, 8> v = {-0.0f, 5.0f, 6.0f, 7.0f, 8.0f, nan, 1.5f, 9.0f};
  const Float8 masked = masked_where_positive(load8(keep.data()), load8(v.data()));
  std::array<float, 8> out;
  std::memcpy(out.data(), &masked.low, sizeof masked.low);
  std::memcpy(out.data() + 4, &masked.high, sizeof masked.high);
  CHECK(std::signbit(out[0]));  // dy = -0 kept where y > 0
  CHECK(out[1] == 0.0f);
  CHECK(out[2] == 0.0f);
  CHECK(out[3] == 0.0f);
  CHECK((out[4] == 0.0f && !std::signbit(out[4])));  // y NaN: not > 0
  CHECK(std::isnan(out[5]));                          // dy NaN where y > 0
  CHECK(out[6] == 1.5f);
  CHECK((out[7] == 0.0f && !std::signbit(out[7])));
}
