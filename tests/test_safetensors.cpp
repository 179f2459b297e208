// Tests for host/io: atomic file replacement, whole-file reads, and safetensors reading
// and writing, including interoperability with the reference Python writer and
// rejection of truncated or corrupted files.
//
// Every test writes only inside its own directory under temp_directory_path(), which is
// removed when the test ends. The fixture directory comes from CADENZA_TEST_FIXTURES.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/test_support.hpp"
#include "host/core/error.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/safetensors.hpp"

#ifndef CADENZA_TEST_FIXTURES
#define CADENZA_TEST_FIXTURES "tests/fixtures"
#endif

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

using cadenza::testing::TempDir;


std::vector<std::string> directory_entries(const fs::path& directory) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(directory)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Writes bytes verbatim (no atomicity needed for test inputs).
void write_plain(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::uint64_t header_length_of(const std::string& file_bytes) {
  std::uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | static_cast<std::uint8_t>(file_bytes[i]);
  return length;
}

std::string length_field(std::uint64_t length) {
  std::string field(8, '\0');
  for (int i = 0; i < 8; ++i) field[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return field;
}

// A safetensors file from a literal header and data buffer.
std::string make_file(const std::string& header, const std::string& buffer) {
  return length_field(header.size()) + header + buffer;
}

template <typename T>
cadenza::SafetensorsEntry entry_of(const std::string& name, const std::string& dtype,
                                   std::vector<std::int64_t> shape, const std::vector<T>& data) {
  return {name, dtype, std::move(shape), data.data(), data.size() * sizeof(T)};
}

template <typename T>
std::vector<T> values_of(const cadenza::SafetensorsFile::View& view) {
  std::vector<T> values(view.nbytes / sizeof(T));
  if (view.nbytes != 0) std::memcpy(values.data(), view.data, view.nbytes);
  return values;
}

// The message of the UserError that loading `path` throws; fails the test if it loads.
std::string load_error(const fs::path& path) {
  try {
    cadenza::SafetensorsFile file(path);
  } catch (const cadenza::UserError& error) {
    return error.what();
  }
  FAIL("expected UserError loading " << path.string());
  return {};
}

// Loads a file that may or may not be valid; returns whether it loaded. Touches every
// byte of every view so that a view reaching outside the file would be caught by the
// sanitizers, and checks that each view's size agrees with its shape and dtype.
bool load_if_valid(const fs::path& path) {
  try {
    const cadenza::SafetensorsFile file(path);
    const std::map<std::string, std::size_t> sizes = {
        {"F32", 4}, {"F64", 8}, {"I32", 4}, {"I64", 8}, {"U8", 1}, {"BF16", 2}, {"F16", 2}};
    std::size_t total = 0;
    for (const std::string& name : file.names()) {
      const auto& view = file.tensor(name);
      REQUIRE(sizes.count(view.dtype) == 1);
      const std::size_t elements = std::accumulate(view.shape.begin(), view.shape.end(),
                                                   std::size_t{1}, std::multiplies<>());
      REQUIRE(view.nbytes == elements * sizes.at(view.dtype));
      std::vector<std::byte> copy(view.nbytes);
      if (view.nbytes != 0) std::memcpy(copy.data(), view.data, view.nbytes);
      total += view.nbytes;
    }
    REQUIRE(total <= fs::file_size(path));
    return true;
  } catch (const cadenza::UserError&) {
    return false;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------
// Atomic writes and reads

TEST_CASE("write_file_atomically writes the bytes and leaves no temporary file", "[cpu][io]") {
  const TempDir dir;
  const fs::path target = dir / "out.txt";
  cadenza::write_file_atomically(target, "first");
  CHECK(cadenza::read_file(target) == "first");
  cadenza::write_file_atomically(target, std::string("second\0with nul", 15));
  CHECK(cadenza::read_file(target) == std::string("second\0with nul", 15));
  cadenza::write_file_atomically(target, "");
  CHECK(cadenza::read_file(target).empty());
  CHECK(directory_entries(dir.path()) == std::vector<std::string>{"out.txt"});
}

TEST_CASE("write_file_atomically streams formatted and large output", "[cpu][io]") {
  const TempDir dir;
  const fs::path target = dir / "stream.txt";
  cadenza::write_file_atomically(target, [](std::ostream& out) { out << "x=" << 42 << '\n'; });
  CHECK(cadenza::read_file(target) == "x=42\n");

  // Pieces below and above the writer's internal buffer size, mixing write() and stream().
  std::string expected;
  {
    cadenza::AtomicFileWriter writer(target);
    for (const std::size_t piece : {1, 100, 70000, 3, 200000, 65536, 65535, 9}) {
      std::string bytes(piece, '\0');
      for (std::size_t i = 0; i < piece; ++i)
        bytes[i] = static_cast<char>((expected.size() + i) * 31);
      writer.write(bytes);
      expected += bytes;
      writer.stream() << piece;
      expected += std::to_string(piece);
    }
    writer.commit();
  }
  CHECK(cadenza::read_file(target) == expected);
  CHECK(directory_entries(dir.path()) == std::vector<std::string>{"stream.txt"});
}

TEST_CASE("an abandoned atomic write keeps the old content", "[cpu][io]") {
  const TempDir dir;
  const fs::path target = dir / "keep.txt";
  cadenza::write_file_atomically(target, "old content");

  SECTION("writer destroyed before commit") {
    fs::path temp_path;
    {
      cadenza::AtomicFileWriter writer(target);
      temp_path = writer.temp_path();
      CHECK(temp_path.parent_path() == dir.path());
      CHECK_THAT(temp_path.filename().string(),
                 Contains("keep.txt.tmp." + std::to_string(::getpid()) + "."));
      writer.write(std::string(100000, 'n'));
      writer.stream() << "partial";
      CHECK(fs::exists(temp_path));
    }
    CHECK_FALSE(fs::exists(temp_path));
  }
  SECTION("streaming callback throws") {
    CHECK_THROWS_WITH(cadenza::write_file_atomically(target,
                                                     [](std::ostream& out) {
                                                       out << std::string(100000, 'n');
                                                       throw std::runtime_error("fill failed");
                                                     }),
                      "fill failed");
  }
  SECTION("stream put into a failed state") {
    CHECK_THROWS_AS(cadenza::write_file_atomically(
                        target, [](std::ostream& out) { out.setstate(std::ios::failbit); }),
                    cadenza::UserError);
  }
  CHECK(cadenza::read_file(target) == "old content");
  CHECK(directory_entries(dir.path()) == std::vector<std::string>{"keep.txt"});
}

TEST_CASE("atomic write failures name the path and the reason", "[cpu][io]") {
  const TempDir dir;
  const fs::path missing_directory_target = dir / "no_such_dir" / "file.txt";
  CHECK_THROWS_AS(cadenza::write_file_atomically(missing_directory_target, "x"),
                  cadenza::UserError);
  CHECK_THROWS_WITH(
      cadenza::write_file_atomically(missing_directory_target, "x"),
      Contains(missing_directory_target.string()) && Contains("No such file or directory"));
  // Renaming a file over a non-empty directory fails after the data was written.
  fs::create_directories(dir / "occupied" / "child");
  CHECK_THROWS_AS(cadenza::write_file_atomically(dir / "occupied", "x"), cadenza::UserError);
  CHECK(directory_entries(dir.path()) == std::vector<std::string>{"occupied"});

  cadenza::AtomicFileWriter writer(dir / "once.txt");
  writer.commit();
  CHECK_THROWS_AS(writer.commit(), cadenza::Error);
  CHECK_THROWS_AS(writer.write("late"), cadenza::Error);
}

TEST_CASE("read_file reports what cannot be read", "[cpu][io]") {
  const TempDir dir;
  const fs::path missing = dir / "missing.bin";
  CHECK_THROWS_WITH(cadenza::read_file(missing),
                    "cannot read " + missing.string() + ": No such file or directory");
  CHECK_THROWS_WITH(cadenza::read_file(dir.path()),
                    "cannot read " + dir.path().string() + ": Is a directory");
}

// ---------------------------------------------------------------------------------
// Safetensors writing and reading

TEST_CASE("safetensors round trip keeps dtypes, shapes, bytes and metadata", "[cpu][io]") {
  const TempDir dir;
  const fs::path path = dir / "round_trip.safetensors";
  const std::vector<float> f32 = {1.5f, -2.0f, 0.0f, 3.25f, 1e-30f, -7.0f};
  const std::vector<double> f64 = {3.141592653589793, -1e300};
  const std::vector<std::int32_t> i32 = {-2147483647 - 1, 0, 2147483647};
  const std::vector<std::int64_t> i64_scalar = {-1234567890123456789};
  const std::vector<std::uint8_t> u8 = {0, 1, 127, 128, 255};
  const std::vector<std::uint16_t> bf16 = {0x3f80, 0xc000, 0x0000, 0x7f80};
  const std::vector<std::uint16_t> f16 = {0x3c00, 0x4000, 0xbc00};
  const std::vector<float> empty;
  const std::map<std::string, std::string> metadata = {{"config", "{\"sample_rate\": 16000}"},
                                                       {"empty", ""},
                                                       {"unicode", "Grüße, 音楽"},
                                                       {"quote\"key", "line\nbreak\ttab"}};

  cadenza::write_safetensors(path,
                             {entry_of("layer.weight", "F32", {2, 3}, f32),
                              entry_of("double", "F64", {2}, f64),
                              entry_of("ints", "I32", {3}, i32),
                              entry_of("step", "I64", {}, i64_scalar),
                              entry_of("bytes", "U8", {5, 1}, u8),
                              entry_of("brain", "BF16", {2, 2}, bf16),
                              entry_of("half", "F16", {3}, f16),
                              entry_of("nothing", "F32", {0, 4}, empty),
                              {"also_nothing", "I64", {3, 0}, nullptr, 0}},
                             metadata);
  CHECK(directory_entries(dir.path()) == std::vector<std::string>{"round_trip.safetensors"});

  const cadenza::SafetensorsFile file(path);
  CHECK(file.metadata() == metadata);
  CHECK(file.names() == std::vector<std::string>{"layer.weight", "double", "ints", "step", "bytes",
                                                 "brain", "half", "nothing", "also_nothing"});
  CHECK(file.contains("step"));
  CHECK_FALSE(file.contains("absent"));

  const auto& weight = file.tensor("layer.weight");
  CHECK(weight.dtype == "F32");
  CHECK(weight.shape == std::vector<std::int64_t>{2, 3});
  CHECK(values_of<float>(weight) == f32);
  CHECK(values_of<double>(file.tensor("double")) == f64);
  CHECK(values_of<std::int32_t>(file.tensor("ints")) == i32);
  const auto& step = file.tensor("step");
  CHECK(step.shape.empty());
  CHECK(step.nbytes == 8);
  CHECK(values_of<std::int64_t>(step) == i64_scalar);
  CHECK(file.tensor("bytes").shape == std::vector<std::int64_t>{5, 1});
  CHECK(values_of<std::uint8_t>(file.tensor("bytes")) == u8);
  CHECK(file.tensor("brain").dtype == "BF16");
  CHECK(values_of<std::uint16_t>(file.tensor("brain")) == bf16);
  CHECK(file.tensor("half").dtype == "F16");
  CHECK(values_of<std::uint16_t>(file.tensor("half")) == f16);
  CHECK(file.tensor("nothing").shape == std::vector<std::int64_t>{0, 4});
  CHECK(file.tensor("nothing").nbytes == 0);
  CHECK(file.tensor("also_nothing").shape == std::vector<std::int64_t>{3, 0});

  std::vector<float> copied(6);
  file.copy_f32("layer.weight", {2, 3}, copied.data());
  CHECK(copied == f32);
  file.copy_f32("nothing", {0, 4}, nullptr);

  CHECK_THROWS_AS(file.tensor("absent"), cadenza::UserError);
  CHECK_THROWS_WITH(file.tensor("absent"), Contains(path.string()) && Contains("'absent'"));
  CHECK_THROWS_WITH(file.copy_f32("layer.weight", {3, 2}, copied.data()),
                    Contains(path.string()) && Contains("'layer.weight'") &&
                        Contains("shape [2, 3], expected [3, 2]"));
  CHECK_THROWS_WITH(file.copy_f32("double", {2}, copied.data()),
                    Contains("'double'") && Contains("dtype F64, expected F32"));
  CHECK_THROWS_AS(file.copy_f32("absent", {1}, copied.data()), cadenza::UserError);

  // Views stay valid in a copy that outlives the original, and after a move.
  auto original = std::make_unique<cadenza::SafetensorsFile>(path);
  const cadenza::SafetensorsFile copy = *original;
  original.reset();
  CHECK(values_of<float>(copy.tensor("layer.weight")) == f32);
  cadenza::SafetensorsFile moved_from(path);
  const cadenza::SafetensorsFile moved = std::move(moved_from);
  CHECK(values_of<double>(moved.tensor("double")) == f64);
}

TEST_CASE("safetensors files with no tensors round trip", "[cpu][io]") {
  const TempDir dir;
  const fs::path path = dir / "empty.safetensors";
  cadenza::write_safetensors(path, {}, {});
  CHECK(cadenza::read_file(path) == length_field(8) + "{}      ");
  const cadenza::SafetensorsFile file(path);
  CHECK(file.names().empty());
  CHECK(file.metadata().empty());

  cadenza::write_safetensors(path, {}, {{"only", "metadata"}});
  const cadenza::SafetensorsFile with_metadata(path);
  CHECK(with_metadata.names().empty());
  CHECK(with_metadata.metadata() == std::map<std::string, std::string>{{"only", "metadata"}});
}

TEST_CASE("safetensors header is byte-identical to the reference writer and 8-byte aligned",
          "[cpu][io]") {
  const TempDir dir;
  const fs::path path = dir / "reference.safetensors";
  // safetensors.numpy.save_file({"a": float32 [1, 2], "b": float32 zeros (0, 3)},
  //                             metadata={"k": "v"}) writes exactly these bytes.
  const std::string expected_header =
      "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
      "\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[0,3],"
      "\"data_offsets\":[8,8]}}  ";
  const std::vector<float> a = {1.0f, 2.0f};
  cadenza::write_safetensors(path, {entry_of("a", "F32", {2}, a), {"b", "F32", {0, 3}, nullptr, 0}},
                             {{"k", "v"}});
  const std::string expected_data("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
  CHECK(cadenza::read_file(path) == length_field(136) + expected_header + expected_data);

  // Every header length pads to a multiple of 8 with spaces, and the data follows it.
  const std::vector<std::uint8_t> data = {1, 2, 3};
  for (std::size_t name_length = 1; name_length <= 16; ++name_length) {
    const std::string name(name_length, 'n');
    cadenza::write_safetensors(path, {entry_of(name, "U8", {3}, data)}, {});
    const std::string bytes = cadenza::read_file(path);
    const std::uint64_t header_length = header_length_of(bytes);
    CHECK(header_length % 8 == 0);
    REQUIRE(bytes.size() == 8 + header_length + data.size());
    const std::string header = bytes.substr(8, header_length);
    const std::size_t close = header.find_last_of('}');
    CHECK(header_length - (close + 1) < 8);
    CHECK(header.find_first_not_of(' ', close + 1) == std::string::npos);
    CHECK(bytes.substr(8 + header_length) == "\x01\x02\x03");
  }
}

TEST_CASE("safetensors written by the Python package are read correctly", "[cpu][io]") {
  const fs::path path =
      fs::path(CADENZA_TEST_FIXTURES) / "safetensors" / "torch_written.safetensors";
  REQUIRE(fs::exists(path));
  const cadenza::SafetensorsFile file(path);
  CHECK(file.metadata() ==
        std::map<std::string, std::string>{{"format", "np"}, {"note", "cadenza fixture"}});
  // The reference writer orders the buffer by dtype alignment, then by name.
  CHECK(file.names() == std::vector<std::string>{"labels", "encoder.weight", "scale"});

  std::vector<float> weight(6);
  file.copy_f32("encoder.weight", {2, 3}, weight.data());
  CHECK(weight == std::vector<float>{0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 2.5f});

  const auto& labels = file.tensor("labels");
  CHECK(labels.dtype == "I64");
  CHECK(labels.shape == std::vector<std::int64_t>{4});
  CHECK(values_of<std::int64_t>(labels) == std::vector<std::int64_t>{3, -1, 0, 7});

  const auto& scale = file.tensor("scale");
  CHECK(scale.dtype == "F16");
  CHECK(scale.shape.empty());
  CHECK(values_of<std::uint16_t>(scale) == std::vector<std::uint16_t>{0x3400});  // 0.25
}

TEST_CASE("write_safetensors rejects invalid entries and keeps the old file", "[cpu][io]") {
  const TempDir dir;
  const fs::path path = dir / "model.safetensors";
  const std::vector<float> four = {1, 2, 3, 4};
  cadenza::write_safetensors(path, {entry_of("w", "F32", {4}, four)}, {});
  const std::string before = cadenza::read_file(path);

  using Entries = std::vector<cadenza::SafetensorsEntry>;
  const std::vector<Entries> invalid = {
      {entry_of("w", "F32", {4}, four), entry_of("w", "F32", {4}, four)},  // repeated name
      {entry_of("w", "F32", {2, 3}, four)},                                // size mismatch
      {entry_of("w", "F32", {-4}, four)},                                  // negative dim
      {entry_of("w", "F8", {4}, four)},                                    // unknown dtype
      {entry_of("__metadata__", "F32", {4}, four)},                        // reserved name
      {entry_of("", "F32", {4}, four)},                                    // empty name
      {{"w", "F32", {4}, nullptr, 16}},                                    // no data
      {entry_of("\xff\xfe", "F32", {4}, four)},                            // invalid UTF-8
  };
  for (const Entries& entries : invalid) {
    CHECK_THROWS_AS(cadenza::write_safetensors(path, entries, {}), cadenza::Error);
  }
  CHECK(cadenza::read_file(path) == before);
  // Metadata holds file names, which need not be UTF-8: an invalid byte becomes U+FFFD.
  cadenza::write_safetensors(path, {}, {{"run_dir", "caf\xe9"}});
  CHECK(cadenza::SafetensorsFile(path).metadata().at("run_dir") == "caf\xef\xbf\xbd");
  CHECK(directory_entries(dir.path()) == std::vector<std::string>{"model.safetensors"});
}

// ---------------------------------------------------------------------------------
// Corrupt and truncated files

TEST_CASE("truncated safetensors files are rejected at every length", "[cpu][io]") {
  const TempDir dir;
  const fs::path source = dir / "whole.safetensors";
  const std::vector<float> f32 = {1, 2, 3, 4, 5, 6};
  const std::vector<std::int64_t> i64 = {7, 8};
  cadenza::write_safetensors(
      source, {entry_of("a", "F32", {2, 3}, f32), entry_of("b", "I64", {2}, i64)}, {{"k", "v"}});
  const std::string whole = cadenza::read_file(source);
  const fs::path truncated = dir / "truncated.safetensors";
  for (std::size_t length = 0; length < whole.size(); ++length) {
    write_plain(truncated, whole.substr(0, length));
    INFO("truncated to " << length << " of " << whole.size() << " bytes");
    const std::string message = load_error(truncated);
    CHECK_THAT(message, Contains(truncated.string()));
  }
  // Appended bytes are not covered by any tensor either.
  write_plain(truncated, whole + "extra");
  CHECK_THAT(load_error(truncated), Contains("cover"));
}

TEST_CASE("safetensors with flipped header bytes never load out of bounds", "[cpu][io]") {
  const TempDir dir;
  const fs::path source = dir / "whole.safetensors";
  const std::vector<float> f32 = {1, 2, 3, 4, 5, 6};
  const std::vector<std::uint16_t> f16 = {1, 2, 3};
  cadenza::write_safetensors(source,
                             {entry_of("a", "F32", {2, 3}, f32),
                              entry_of("b", "F16", {3}, f16),
                              {"c", "U8", {0}, nullptr, 0}},
                             {{"k", "v"}});
  const std::string whole = cadenza::read_file(source);
  const std::size_t header_end = 8 + header_length_of(whole);
  const fs::path corrupted = dir / "corrupted.safetensors";
  std::size_t rejected = 0;
  std::size_t attempts = 0;
  for (std::size_t position = 0; position < header_end; ++position) {
    for (const unsigned mask : {0x01u, 0x02u, 0x08u, 0x10u, 0x20u, 0x40u, 0x80u, 0xffu}) {
      std::string bytes = whole;
      bytes[position] = static_cast<char>(static_cast<unsigned char>(bytes[position]) ^ mask);
      write_plain(corrupted, bytes);
      INFO("byte " << position << " xor " << mask);
      ++attempts;
      if (!load_if_valid(corrupted)) ++rejected;
    }
  }
  // Some flips stay valid (a changed name, metadata text, or padding); most must not.
  CHECK(rejected > attempts / 2);
  CHECK(rejected < attempts);
}

TEST_CASE("safetensors with invalid headers are rejected with a reason", "[cpu][io]") {
  const TempDir dir;
  const fs::path path = dir / "bad.safetensors";
  const std::string four(4, '\0');
  const std::string f32_entry = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";

  struct Case {
    const char* description;
    std::string file;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"empty file", "", "too short"},
      {"7 bytes", std::string(7, '\0'), "too short"},
      {"header length beyond the file", length_field(1000) + "{}", "exceeds"},
      {"header length of 2^64 - 1", length_field(~std::uint64_t{0}) + "{}", "exceeds"},
      {"empty header", make_file("", ""), "not valid JSON"},
      {"header not JSON", make_file("not json", ""), "not valid JSON"},
      {"header JSON with trailing garbage", make_file("{} x", ""), "not valid JSON"},
      {"header with a NUL", make_file(std::string("{}\0 x", 5), ""), "NUL byte"},
      {"header with invalid UTF-8", make_file("{\"\xff\":" + f32_entry + "}", four),
       "not valid JSON"},
      {"header an array", make_file("[1, 2]", ""), "not a JSON object"},
      {"tensor entry not an object", make_file(R"({"a": 5})", ""), "not a JSON object"},
      {"unknown dtype", make_file(R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}})", four),
       "unknown dtype 'Q7'"},
      {"missing dtype", make_file(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", four),
       "\"dtype\""},
      {"missing shape", make_file(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", four),
       "\"shape\""},
      {"missing offsets", make_file(R"({"a":{"dtype":"F32","shape":[1]}})", four),
       "\"data_offsets\""},
      {"negative dimension",
       make_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", four),
       "non-negative"},
      {"fractional dimension",
       make_file(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", four),
       "non-negative"},
      {"dimension beyond int64",
       make_file(R"({"a":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,4]}})",
                 four),
       "non-negative"},
      {"shape product overflows",
       make_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})",
                 four),
       "too large"},
      {"bytes do not match shape",
       make_file(R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,4]}})", four),
       "needs 8 bytes"},
      {"negative offset",
       make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", four),
       "two non-negative integers"},
      {"three offsets",
       make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", four),
       "two non-negative integers"},
      {"offset beyond u64",
       make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,1e30]}})", four),
       "two non-negative integers"},
      {"offsets reversed",
       make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", four),
       "end before they begin"},
      {"offsets beyond the buffer",
       make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", four),
       "ends at byte 8"},
      {"huge empty offsets",
       make_file(R"({"a":{"dtype":"F32","shape":[0],)"
                 R"("data_offsets":[18446744073709551615,18446744073709551615]}})",
                 ""),
       "a gap precedes it"},
      {"overlapping tensors",
       make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                 std::string(6, '\0')),
       "overlaps"},
      {"gap between tensors",
       make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                 std::string(12, '\0')),
       "a gap precedes it"},
      {"same range twice", make_file(R"({"a":)" + f32_entry + R"(,"b":)" + f32_entry + "}", four),
       "overlaps"},
      {"buffer longer than the tensors", make_file(R"({"a":)" + f32_entry + "}", four + "xx"),
       "cover 4 bytes"},
      {"repeated tensor name",
       make_file(R"({"a":)" + f32_entry + R"(,"a":)" + f32_entry + "}", four),
       "repeats the key 'a'"},
      {"metadata not an object", make_file(R"({"__metadata__":"x"})", ""),
       "\"__metadata__\" is not a JSON object"},
      {"metadata value not a string", make_file(R"({"__metadata__":{"k":1}})", ""),
       "metadata value of 'k'"},
  };
  for (const Case& bad : cases) {
    INFO(bad.description);
    write_plain(path, bad.file);
    const std::string message = load_error(path);
    CHECK_THAT(message,
               Contains("invalid safetensors file " + path.string()) && Contains(bad.reason));
  }

  // Keys nested in the metadata are not tensor names, even when they look alike.
  write_plain(path, make_file(R"({"__metadata__":{"a":"v"},"a":)" + f32_entry + "}", four));
  CHECK(load_if_valid(path));
}
