// Reading and writing the Hugging Face safetensors format (see safetensors.hpp).
//
// Invariants:
// - The reader checks every length and offset against the bytes actually read before
//   forming a pointer, using overflow-checked arithmetic, so a hostile header cannot
//   produce a view outside the file.
// - The writer streams the length, the header and each tensor's bytes straight into an
//   AtomicFileWriter; the tensors are never concatenated in memory.
#include "host/io/safetensors.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>

#include "host/core/error.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/json_text.hpp"

namespace cadenza {
namespace {

constexpr std::size_t kLengthFieldBytes = 8;
constexpr std::size_t kHeaderAlignment = 8;
constexpr const char* kMetadataKey = "__metadata__";

std::optional<std::size_t> dtype_size(std::string_view dtype) {
  static constexpr std::array<std::pair<std::string_view, std::size_t>, 7> kSizes = {
      {{"F32", 4}, {"F64", 8}, {"I32", 4}, {"I64", 8}, {"U8", 1}, {"BF16", 2}, {"F16", 2}}};
  for (const auto& [name, size] : kSizes) {
    if (name == dtype) return size;
  }
  return std::nullopt;
}

constexpr const char* kSupportedDtypes = "F32, F64, I32, I64, U8, BF16, F16";

// prod(shape) x element_size, or nullopt if a dimension is negative or the product
// does not fit in 64 bits.
std::optional<std::uint64_t> byte_size(const std::vector<std::int64_t>& shape,
                                       std::size_t element_size) {
  std::uint64_t total = element_size;
  for (const std::int64_t dim : shape) {
    if (dim < 0) return std::nullopt;
    const auto extent = static_cast<std::uint64_t>(dim);
    if (extent != 0 && total > std::numeric_limits<std::uint64_t>::max() / extent) {
      return std::nullopt;
    }
    total *= extent;
  }
  return total;
}

// ---------------------------------------------------------------------------------
// Reading

// Throws the UserError for a file that is not valid safetensors.
[[noreturn]] void throw_invalid(const std::filesystem::path& path, const std::string& what) {
  CADENZA_USER_ERROR("invalid safetensors file " << path.string() << ": " << what);
}

std::uint64_t read_u64_le(const char* bytes) {
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) {
    value = (value << 8) | static_cast<std::uint8_t>(bytes[i]);
  }
  return value;
}

// A tensor's header entry after its fields have been checked one by one.
struct ParsedTensor {
  std::string name;
  std::size_t header_position;  // breaks ties between empty tensors at the same offset
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin;
  std::uint64_t end;
};

ParsedTensor parse_tensor_entry(const std::filesystem::path& path, const std::string& name,
                                const nlohmann::json& entry, std::size_t header_position) {
  const std::string where = "tensor '" + name + "': ";
  if (!entry.is_object()) throw_invalid(path, where + "entry is not a JSON object");
  ParsedTensor tensor{name, header_position, {}, {}, 0, 0};

  const auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string()) {
    throw_invalid(path, where + "missing string field \"dtype\"");
  }
  tensor.dtype = dtype->get<std::string>();
  const std::optional<std::size_t> element_size = dtype_size(tensor.dtype);
  if (!element_size) {
    throw_invalid(
        path, where + "unknown dtype '" + tensor.dtype + "' (supported: " + kSupportedDtypes + ")");
  }

  const auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array()) {
    throw_invalid(path, where + "missing array field \"shape\"");
  }
  for (const nlohmann::json& dim : *shape) {
    const bool valid = dim.is_number_unsigned() &&
                       dim.get<std::uint64_t>() <=
                           static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (!valid)
      throw_invalid(path, where + "shape " + shape->dump() +
                              " has an entry that is not a non-negative integer");
    tensor.shape.push_back(dim.get<std::int64_t>());
  }

  const auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    throw_invalid(path, where + "\"data_offsets\" must be two non-negative integers");
  }
  tensor.begin = (*offsets)[0].get<std::uint64_t>();
  tensor.end = (*offsets)[1].get<std::uint64_t>();
  if (tensor.begin > tensor.end) {
    throw_invalid(path, where + "data_offsets " + offsets->dump() + " end before they begin");
  }

  const std::optional<std::uint64_t> expected_bytes = byte_size(tensor.shape, *element_size);
  if (!expected_bytes) {
    throw_invalid(path, where + "shape " + format_shape(tensor.shape) + " is too large");
  }
  if (*expected_bytes != tensor.end - tensor.begin) {
    throw_invalid(path, where + "shape " + format_shape(tensor.shape) + " of " + tensor.dtype +
                            " needs " + std::to_string(*expected_bytes) +
                            " bytes but data_offsets " + offsets->dump() + " span " +
                            std::to_string(tensor.end - tensor.begin));
  }
  return tensor;
}

}  // namespace

std::string format_shape(const std::vector<std::int64_t>& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i == 0 ? "" : ", ") << shape[i];
  out << ']';
  return out.str();
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path)
    : path_(path), bytes_(std::make_shared<const std::string>(read_file(path))) {
  const std::string& bytes = *bytes_;
  if (bytes.size() < kLengthFieldBytes) {
    throw_invalid(path_, "the file is " + std::to_string(bytes.size()) +
                             " bytes, too short for the 8-byte header length");
  }
  const std::uint64_t header_length = read_u64_le(bytes.data());
  const std::size_t after_length = bytes.size() - kLengthFieldBytes;
  if (header_length > after_length) {
    throw_invalid(path_, "header length " + std::to_string(header_length) + " exceeds the " +
                             std::to_string(after_length) + " bytes that follow it");
  }
  const char* header_begin = bytes.data() + kLengthFieldBytes;
  const char* buffer_begin = header_begin + header_length;
  const std::uint64_t buffer_size = after_length - header_length;

  // The JSON parser would stop at a NUL byte and ignore what follows it.
  if (std::memchr(header_begin, '\0', header_length) != nullptr) {
    throw_invalid(path_, "header is not valid JSON: it contains a NUL byte");
  }
  // The JSON library keeps the last of duplicate keys; record top-level keys in header
  // order to reject duplicates and to order empty tensors that share an offset.
  std::vector<std::string> header_keys;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(
        header_begin, buffer_begin,
        [&header_keys](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
          if (depth == 1 && event == nlohmann::json::parse_event_t::key) {
            header_keys.push_back(parsed.get<std::string>());
          }
          return true;
        });
  } catch (const nlohmann::json::exception& error) {
    throw_invalid(path_, std::string("header is not valid JSON: ") + error.what());
  }
  if (!header.is_object()) throw_invalid(path_, "header is not a JSON object");
  if (header_keys.size() != header.size()) {
    std::set<std::string> seen;
    for (const std::string& key : header_keys) {
      if (!seen.insert(key).second) throw_invalid(path_, "header repeats the key '" + key + "'");
    }
  }

  std::vector<ParsedTensor> tensors;
  for (std::size_t position = 0; position < header_keys.size(); ++position) {
    const std::string& key = header_keys[position];
    const nlohmann::json& entry = header.at(key);
    if (key == kMetadataKey) {
      if (!entry.is_object()) throw_invalid(path_, "\"__metadata__\" is not a JSON object");
      for (const auto& [meta_key, value] : entry.items()) {
        if (!value.is_string()) {
          throw_invalid(path_, "metadata value of '" + meta_key + "' is not a string");
        }
        metadata_.emplace(meta_key, value.get<std::string>());
      }
      continue;
    }
    tensors.push_back(parse_tensor_entry(path_, key, entry, position));
  }

  // The tensors must tile [0, buffer_size) in offset order with no gap or overlap.
  std::sort(tensors.begin(), tensors.end(), [](const ParsedTensor& a, const ParsedTensor& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.header_position < b.header_position;
  });
  std::uint64_t covered = 0;
  for (const ParsedTensor& tensor : tensors) {
    if (tensor.begin != covered) {
      throw_invalid(path_, "tensor '" + tensor.name + "' starts at byte " +
                               std::to_string(tensor.begin) + " of the data buffer, expected " +
                               std::to_string(covered) +
                               (tensor.begin < covered ? " (it overlaps the previous tensor)"
                                                       : " (a gap precedes it)"));
    }
    if (tensor.end > buffer_size) {
      throw_invalid(path_, "tensor '" + tensor.name + "' ends at byte " +
                               std::to_string(tensor.end) + " but the data buffer has only " +
                               std::to_string(buffer_size) + " bytes");
    }
    covered = tensor.end;
  }
  if (covered != buffer_size) {
    throw_invalid(path_, "the tensors cover " + std::to_string(covered) +
                             " bytes but the data buffer has " + std::to_string(buffer_size));
  }

  for (ParsedTensor& tensor : tensors) {
    const auto* data = reinterpret_cast<const std::byte*>(buffer_begin + tensor.begin);
    const auto nbytes = static_cast<std::size_t>(tensor.end - tensor.begin);
    names_.push_back(tensor.name);
    views_.emplace(tensor.name,
                   View{std::move(tensor.dtype), std::move(tensor.shape), data, nbytes});
  }
}

const SafetensorsFile::View& SafetensorsFile::tensor(const std::string& name) const {
  const auto found = views_.find(name);
  if (found == views_.end()) {
    CADENZA_USER_ERROR(path_.string() << ": no tensor named '" << name << "'");
  }
  return found->second;
}

void SafetensorsFile::copy_f32(const std::string& name,
                               const std::vector<std::int64_t>& expected_shape, float* dst) const {
  const View& view = tensor(name);
  if (view.dtype != "F32") {
    CADENZA_USER_ERROR(path_.string()
                       << ": tensor '" << name << "' has dtype " << view.dtype << ", expected F32");
  }
  if (view.shape != expected_shape) {
    CADENZA_USER_ERROR(path_.string()
                       << ": tensor '" << name << "' has shape " << format_shape(view.shape)
                       << ", expected " << format_shape(expected_shape));
  }
  if (view.nbytes != 0) std::memcpy(dst, view.data, view.nbytes);
}

// ---------------------------------------------------------------------------------
// Writing

void write_safetensors(const std::filesystem::path& path,
                       const std::vector<SafetensorsEntry>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // Header pieces are joined by hand so that key order is exactly: metadata, then the
  // tensors as given.
  std::string header = "{";
  if (!metadata.empty()) {
    header += std::string("\"") + kMetadataKey + "\":" + json_text(nlohmann::json(metadata));
  }
  std::set<std::string_view> names;
  std::uint64_t offset = 0;
  for (const SafetensorsEntry& tensor : tensors) {
    CADENZA_CHECK(!tensor.name.empty() && tensor.name != kMetadataKey && valid_utf8(tensor.name) == tensor.name,
                  "invalid tensor name '" << tensor.name << "' for " << path.string());
    CADENZA_CHECK(names.insert(tensor.name).second,
                  "tensor name '" << tensor.name << "' repeated for " << path.string());
    const std::optional<std::size_t> element_size = dtype_size(tensor.dtype);
    CADENZA_CHECK(element_size, "tensor '" << tensor.name << "' has unsupported dtype '"
                                           << tensor.dtype << "' (supported: " << kSupportedDtypes
                                           << ")");
    const std::optional<std::uint64_t> expected_bytes = byte_size(tensor.shape, *element_size);
    CADENZA_CHECK(expected_bytes && *expected_bytes == tensor.nbytes,
                  "tensor '" << tensor.name << "' of shape " << format_shape(tensor.shape)
                             << " and dtype " << tensor.dtype << " given " << tensor.nbytes
                             << " bytes");
    CADENZA_CHECK(tensor.data != nullptr || tensor.nbytes == 0,
                  "tensor '" << tensor.name << "' has no data");

    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = tensor.dtype;
    entry["shape"] = tensor.shape;
    entry["data_offsets"] = {offset, offset + tensor.nbytes};
    offset += tensor.nbytes;
    if (header.size() > 1) header += ',';
    header += json_text(nlohmann::json(tensor.name)) + ":" + json_text(entry);
  }
  header += '}';
  header.append((kHeaderAlignment - header.size() % kHeaderAlignment) % kHeaderAlignment, ' ');

  std::array<char, kLengthFieldBytes> length_field{};
  for (std::size_t i = 0; i < kLengthFieldBytes; ++i) {
    length_field[i] =
        static_cast<char>((static_cast<std::uint64_t>(header.size()) >> (8 * i)) & 0xff);
  }
  AtomicFileWriter writer(path);
  writer.write(length_field.data(), length_field.size());
  writer.write(header);
  for (const SafetensorsEntry& tensor : tensors) {
    if (tensor.nbytes != 0) writer.write(tensor.data, tensor.nbytes);
  }
  writer.commit();
}

}  // namespace cadenza
