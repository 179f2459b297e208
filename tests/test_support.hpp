// Helpers shared by the test files: a scratch directory, raw and audio file writing,
// fixture reading, PNG checks and a headless browser for HTML reports.
#pragma once

#include <catch2/catch.hpp>
#include <sndfile.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "host/core/error.hpp"
#include "host/core/tensor.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/safetensors.hpp"
#include "host/math/random_math.hpp"
#include "host/model/layer.hpp"
#include "host/ops/step_values.hpp"
#include "host/selfcheck/op_parity.hpp"

namespace cadenza::testing {

// A CPU tensor of values uniform in [-scale, scale), drawn from `seed`.
inline Tensor random_tensor(const Shape& shape, std::uint64_t seed, float scale = 1.0f) {
  Tensor t = Tensor::zeros(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.f32()[i] = scale * (2.0f * uniform01(seed, 0, std::uint64_t(i)) - 1.0f);
  return t;
}

// Largest |a - b| / max(1, |b|) over n values (b the reference), as the op-parity harness
// measures it; infinity where either side holds a NaN or an infinity (no fixture does), so
// that a non-finite result cannot pass a tolerance.
inline double worst_difference(const float* a, const float* b, std::int64_t n) {
  const ValueComparison comparison = compare_values(b, a, n);
  return comparison.finite ? comparison.max_error : std::numeric_limits<double>::infinity();
}

// Copies the fixture file's F32 tensor `name` into the host tensor `t`, which must have its
// shape (SafetensorsFile::copy_f32 says otherwise, naming both).
inline void load_fixture(const SafetensorsFile& file, const std::string& name, Tensor t) {
  const std::int64_t* dims = t.shape().data();
  file.copy_f32(name, std::vector<std::int64_t>(dims, dims + t.shape().rank()), t.f32());
}

// An F32 tensor of a fixture file, flat (callers reshape it).
inline Tensor fixture_tensor(const SafetensorsFile& file, const std::string& name) {
  const SafetensorsFile::View& view = file.tensor(name);
  std::int64_t n = 1;
  for (std::int64_t d : view.shape) n *= d;
  Tensor t = Tensor::zeros(Shape{n});
  file.copy_f32(name, view.shape, t.f32());
  return t;
}

// StepInfo of a training step (CPU) whose dropout layers draw from `seed`.
inline StepInfo training_step(std::uint64_t seed) {
  return StepInfo{.training = true, .step_values = step_values_tensor({.dropout_seed = seed})};
}

// The message of the UserError that `call` throws, or a note saying what happened instead.
template <typename Call>
std::string user_error_message(Call&& call) {
  try {
    call();
  } catch (const UserError& error) {
    return error.what();
  } catch (const std::exception& error) {
    return std::string("not a UserError: ") + error.what();
  }
  return "no exception";
}

// A fresh directory under the system's temporary directory, removed with its content.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("cadenza_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Writes `bytes` to `path` as they are (for corrupt-file tests).
inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(file.good());
}

// Opens `path` for writing as libsndfile `format` (SF_FORMAT_* container | encoding), after
// checking that libsndfile accepts that format, rate and channel count. Close with sf_close.
inline SNDFILE* open_audio_for_writing(const std::filesystem::path& path, int format,
                                       int sample_rate, int channels) {
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = channels;
  info.format = format;
  REQUIRE(sf_format_check(&info) == SF_TRUE);
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  INFO(path.string() << ": " << sf_strerror(nullptr));
  REQUIRE(file != nullptr);
  return file;
}

// Writes interleaved float samples (frames x channels) as an audio file of libsndfile
// `format`, e.g. SF_FORMAT_WAV | SF_FORMAT_PCM_16, SF_FORMAT_AU | SF_FORMAT_PCM_16,
// SF_FORMAT_FLAC | SF_FORMAT_PCM_16, SF_FORMAT_OGG | SF_FORMAT_VORBIS or
// SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III (libsndfile converts to the file's encoding).
inline void write_audio_file(const std::filesystem::path& path, int format, int sample_rate,
                             int channels, const std::vector<float>& interleaved) {
  SNDFILE* file = open_audio_for_writing(path, format, sample_rate, channels);
  const sf_count_t frames = static_cast<sf_count_t>(interleaved.size()) / channels;
  const sf_count_t written = sf_writef_float(file, interleaved.data(), frames);
  sf_close(file);
  REQUIRE(written == frames);
}

// A little-endian float32 file of exactly `count` values (this is a little-endian host).
inline std::vector<float> read_f32_file(const std::string& path, std::size_t count) {
  INFO(path);
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  REQUIRE(file.good());
  REQUIRE(static_cast<std::size_t>(file.tellg()) == count * sizeof(float));
  std::vector<float> values(count);
  file.seekg(0);
  file.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(count * sizeof(float)));
  return values;
}

inline std::uint32_t big_endian_u32(const std::string& bytes, std::size_t at) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  return value;
}

// Checks that `png` is a well-formed PNG (signature, IHDR, chunks to IEND) of a plausible
// size that holds a picture rather than one flat colour; returns its (width, height).
inline std::pair<int, int> check_png(const std::filesystem::path& png) {
  INFO(png.string());
  const std::string bytes = read_file(png);
  CHECK(bytes.size() > 5 * 1024);
  CHECK(bytes.size() < 2 * 1024 * 1024);
  REQUIRE(bytes.size() > 33);
  REQUIRE(bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  REQUIRE(bytes.compare(12, 4, "IHDR") == 0);
  const auto width = static_cast<int>(big_endian_u32(bytes, 16));
  const auto height = static_cast<int>(big_endian_u32(bytes, 20));
  const int bit_depth = bytes[24];
  const int colour_type = bytes[25];
  REQUIRE(bit_depth == 8);
  const int channels = colour_type == 2 ? 3 : colour_type == 6 ? 4 : colour_type == 4 ? 2 : 1;
  // Walk the chunks to IEND, adding up the compressed image data.
  std::size_t image_data = 0;
  bool ended = false;
  for (std::size_t at = 8; !ended && at + 12 <= bytes.size();) {
    const std::size_t length = big_endian_u32(bytes, at);
    const std::string type = bytes.substr(at + 4, 4);
    if (type == "IDAT") image_data += length;
    ended = type == "IEND";
    at += 12 + length;
  }
  CHECK(ended);
  // cairo writes PNGs at zlib's default level, where an image of one flat colour
  // compresses about 560:1 (a white 900x600 RGB image: 1.6 MB of rows, 2.9 KB of IDAT).
  // Lines, text and colour compress 20:1 to 60:1 in these charts, so requiring a ratio
  // below 200:1 tells a chart from a blank page with room on both sides.
  const std::size_t raw_bytes = static_cast<std::size_t>(height) * (1 + static_cast<std::size_t>(width) * channels);
  CHECK(image_data > raw_bytes / 200);
  return {width, height};
}

// Runs `command` through the shell; returns its standard output and sets `status` to its
// exit status (-1 when it did not exit normally).
inline std::string capture_output(const std::string& command, int& status) {
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  while (const std::size_t got = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, got);
  const int wait_status = ::pclose(pipe);
  status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
  return output;
}

// The DOM of the page `html` (an absolute path) after headless Chromium has loaded it and
// run its scripts; `home` is a scratch directory for Chromium's profile. Chromium is a
// test dependency tools/setup.sh installs: without it the calling test fails.
inline std::string chromium_dom(const std::filesystem::path& html, const std::filesystem::path& home) {
  const char* chromium = "/usr/bin/chromium-headless-shell";
  if (!std::filesystem::exists(chromium))
    FAIL(chromium << " is missing; run tools/setup.sh (it installs chromium-headless-shell)");
  std::filesystem::create_directories(home);
  REQUIRE(html.is_absolute());
  REQUIRE(html.string().find('\'') == std::string::npos);
  // --virtual-time-budget lets the load event and its script run before the DOM is
  // dumped; stderr only carries Chromium's complaints about D-Bus and GPUs.
  const std::string command = "HOME='" + home.string() + "' timeout 60 " + chromium +
                              " --no-sandbox --disable-gpu --headless --virtual-time-budget=5000"
                              " --dump-dom 'file://" + html.string() + "' 2>/dev/null";
  int status = 0;
  const std::string dom = capture_output(command, status);
  INFO(command);
  CHECK(status == 0);
  return dom;
}

}  // namespace cadenza::testing
