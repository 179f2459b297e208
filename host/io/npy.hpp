// Writing NumPy .npy files (format version 1.0), for arrays a user loads with numpy.load.
//
// Invariants:
// - The header is the dict {'descr': '<f4', 'fortran_order': False, 'shape': (...), }
//   padded with spaces and a final '\n' so that the data starts at a multiple of 64 bytes,
//   as numpy writes it; the data follows in C (row-major) order, little-endian float32.
// - The file is written atomically (host/io/atomic_file.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace cadenza {

// The .npy header (magic, version, length, dict) for a float32 array of `shape`.
std::string npy_header_f32(const std::vector<std::int64_t>& shape);

// Writes prod(shape) floats from `data` as a float32 .npy file.
void write_npy_f32(const std::filesystem::path& path, const std::vector<std::int64_t>& shape, const float* data);

}  // namespace cadenza
