// Tests of the .npy writer: headers byte for byte as numpy 2.x's numpy.save writes them
// (dict padded with spaces to a 64-byte boundary), and the data after them.
#include <catch2/catch.hpp>

#include <cstring>

#include "host/io/atomic_file.hpp"
#include "host/io/npy.hpp"
#include "tests/test_support.hpp"

namespace cadenza {
namespace {

// numpy.save's header for a float32 array whose shape prints as `shape`: 128 bytes here.
std::string numpy_header(const std::string& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  dict.append(128 - 10 - dict.size() - 1, ' ');
  return std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict + "\n";
}

}  // namespace

TEST_CASE("npy: headers match numpy.save for 0 to 3 dimensions", "[cpu][npy]") {
  CHECK(npy_header_f32({3, 5}) == numpy_header("(3, 5)"));
  CHECK(npy_header_f32({7}) == numpy_header("(7,)"));
  CHECK(npy_header_f32({}) == numpy_header("()"));
  CHECK(npy_header_f32({2, 3, 4}) == numpy_header("(2, 3, 4)"));
  // A header that outgrows 64-byte blocks takes the next boundary.
  const std::string long_header = npy_header_f32({1000000000, 1000000000, 1000000000, 1000000000});
  CHECK(long_header.size() % 64 == 0);
  CHECK(long_header.back() == '\n');
}

TEST_CASE("npy: write_npy_f32 writes the header, then the floats in row-major order", "[cpu][npy]") {
  const testing::TempDir dir;
  const std::vector<float> values{1.0f, -2.5f, 3.25f, 0.0f, 1e-8f, 7.0f};
  write_npy_f32(dir / "a.npy", {2, 3}, values.data());
  const std::string bytes = read_file(dir / "a.npy");
  const std::string header = npy_header_f32({2, 3});
  REQUIRE(bytes.size() == header.size() + values.size() * sizeof(float));
  CHECK(bytes.compare(0, header.size(), header) == 0);
  CHECK(std::memcmp(bytes.data() + header.size(), values.data(), values.size() * sizeof(float)) == 0);
}

}  // namespace cadenza
