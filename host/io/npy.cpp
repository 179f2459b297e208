// NumPy .npy writer; see npy.hpp.
#include "host/io/npy.hpp"

#include <bit>
#include <cstring>
#include <functional>
#include <numeric>

#include "host/core/error.hpp"
#include "host/io/atomic_file.hpp"

namespace cadenza {

std::string npy_header_f32(const std::vector<std::int64_t>& shape) {
  static_assert(std::endian::native == std::endian::little, "the .npy writer stores the host's float32 bytes");
  // numpy's tuple syntax: (), (n,) or (a, b, ...).
  std::string dims = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  dims += shape.size() == 1 ? ",)" : ")";
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + dims + ", }";
  const std::size_t prefix = 10;  // magic (6), version (2), header length (2)
  const std::size_t total = (prefix + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict += '\n';
  CADENZA_CHECK(dict.size() <= 0xffff, "npy_header_f32: a header of " << dict.size() << " bytes needs format 2.0");
  std::string header("\x93NUMPY\x01\x00", 8);
  header += static_cast<char>(dict.size() & 0xff);
  header += static_cast<char>(dict.size() >> 8);
  return header + dict;
}

void write_npy_f32(const std::filesystem::path& path, const std::vector<std::int64_t>& shape, const float* data) {
  const std::int64_t count = std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
  CADENZA_CHECK(count >= 0 && (count == 0 || data != nullptr), "write_npy_f32: bad shape or data for " << path);
  std::string bytes = npy_header_f32(shape);
  const std::size_t header = bytes.size();
  bytes.resize(header + std::size_t(count) * sizeof(float));
  if (count > 0) std::memcpy(bytes.data() + header, data, std::size_t(count) * sizeof(float));
  write_file_atomically(path, bytes);
}

}  // namespace cadenza
