// Reading and writing the Hugging Face safetensors format.
//
// Layout: an 8-byte little-endian u64 N; N bytes of JSON header
//   {"__metadata__": {"key": "value", ...},
//    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// padded with spaces so that N is a multiple of 8; then the data buffer. Offsets are
// relative to the buffer start.
//
// Invariants:
// - Dtypes F32, F64, I32, I64, U8, BF16 and F16 are supported and stored as raw
//   little-endian bytes; nothing is converted.
// - Written files hold the tensors packed contiguously in the order given; the header is
//   compact JSON listing "__metadata__" (omitted when empty) and then the tensors in that
//   order, each as {"dtype", "shape", "data_offsets"}, as the reference implementation
//   writes it.
// - A SafetensorsFile has validated the whole file when its constructor returns: every
//   tensor's dtype is known, its byte size equals prod(shape) x dtype size, and the
//   tensors tile the data buffer exactly, without gaps or overlaps. Any violation, however
//   the file was truncated or corrupted, is a UserError naming the file; no view ever
//   points outside the file's bytes.
// - Tensor data inside a SafetensorsFile is not necessarily aligned for its dtype; copy it
//   out with memcpy (as copy_f32 does) rather than casting the pointer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cadenza {

// One tensor to write. `data` may be null when nbytes is 0.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> shape;
  const void* data;
  std::size_t nbytes;
};

// Writes a safetensors file atomically (see atomic_file.hpp). Names must be unique,
// non-empty and not "__metadata__"; nbytes must equal prod(shape) x dtype size; names and
// metadata must be valid UTF-8. A violated precondition throws Error; an I/O failure
// throws UserError and leaves any previous file at `path` intact.
void write_safetensors(const std::filesystem::path& path,
                       const std::vector<SafetensorsEntry>& tensors,
                       const std::map<std::string, std::string>& metadata);

// A whole safetensors file read into memory and validated. Copies share the file's
// bytes, so views stay valid as long as any copy is alive.
// "[16, 1, 96, 126]": a tensor shape as messages show it (any rank).
std::string format_shape(const std::vector<std::int64_t>& shape);

class SafetensorsFile {
 public:
  struct View {
    std::string dtype;
    std::vector<std::int64_t> shape;
    const std::byte* data;
    std::size_t nbytes;
  };

  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Tensor names in file order (by position in the data buffer).
  std::vector<std::string> names() const { return names_; }
  bool contains(const std::string& name) const { return views_.count(name) != 0; }
  // UserError naming the file and the tensor if absent.
  const View& tensor(const std::string& name) const;
  // Copies an F32 tensor of exactly `expected_shape` into dst (prod(expected_shape)
  // floats); UserError naming the file, the tensor, and the expected and found dtype or
  // shape otherwise.
  void copy_f32(const std::string& name, const std::vector<std::int64_t>& expected_shape,
                float* dst) const;

 private:
  std::filesystem::path path_;
  std::shared_ptr<const std::string> bytes_;
  std::map<std::string, std::string> metadata_;
  std::vector<std::string> names_;
  std::map<std::string, View> views_;
};

}  // namespace cadenza
