// Helpers shared by the test files: a scratch directory, raw and audio file writing and
// fixture reading.
#pragma once

#include <catch2/catch.hpp>
#include <sndfile.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "host/core/error.hpp"
#include "host/core/tensor.hpp"
#include "host/math/random_math.hpp"

namespace cadenza::testing {

// A CPU tensor of values uniform in [-scale, scale), drawn from `seed`.
inline Tensor random_tensor(const Shape& shape, std::uint64_t seed, float scale = 1.0f) {
  Tensor t = Tensor::zeros(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.f32()[i] = scale * (2.0f * uniform01(seed, 0, std::uint64_t(i)) - 1.0f);
  return t;
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

}  // namespace cadenza::testing
