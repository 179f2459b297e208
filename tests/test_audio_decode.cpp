// Tests of audio decoding (host/audio/audio_decoder) and resampling (host/audio/resampler).
//
// Every audio file is written by the test itself with libsndfile into a temporary
// directory that is removed afterwards: lossless formats (16-bit WAV, AU as GTZAN ships,
// FLAC) must decode exactly, float WAV keeps values beyond [-1, 1], lossy formats (Vorbis,
// Opus, MP3) must correlate with their source. Decoding must average the channels, cut
// windows that equal slices of the full decode, turn every broken file into a UserError
// naming it, and give the same results from many threads. Resampling must keep a tone's
// frequency and level, follow soxr's length rule and match librosa's soxr_hq output
// (tests/fixtures/audio, made by tools/fixtures/make_audio_fixtures.py).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sndfile.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "host/audio/audio_decoder.hpp"
#include "host/audio/resampler.hpp"
#include "host/core/error.hpp"
#include "host/io/atomic_file.hpp"
#include "tests/test_support.hpp"

#ifndef CADENZA_TEST_FIXTURES
#define CADENZA_TEST_FIXTURES "tests/fixtures"
#endif

namespace cadenza {
namespace {

using cadenza::testing::user_error_message;

using cadenza::testing::TempDir;
using cadenza::testing::write_audio_file;
using cadenza::testing::write_bytes;

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

const double kPi = 3.14159265358979323846;


// Interleaved test tone: channel c is a sine at 440 * (1 + c / 2) Hz with amplitude
// 0.5 / (1 + c) and its own phase, so every channel differs from the others.
std::vector<float> test_tone(int sample_rate, int channels, int frames) {
  std::vector<float> interleaved(static_cast<std::size_t>(frames) * channels);
  for (int frame = 0; frame < frames; ++frame) {
    for (int channel = 0; channel < channels; ++channel) {
      const double frequency = 440.0 * (1.0 + 0.5 * channel);
      const double t = static_cast<double>(frame) / sample_rate;
      interleaved[static_cast<std::size_t>(frame) * channels + channel] = static_cast<float>(
          0.5 / (1 + channel) * std::sin(2.0 * kPi * frequency * t + 0.3 * channel));
    }
  }
  return interleaved;
}

std::vector<short> to_pcm16(const std::vector<float>& samples) {
  std::vector<short> pcm(samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    pcm[i] = static_cast<short>(std::lrint(samples[i] * 32767.0f));
  }
  return pcm;
}

// Mean over channels, computed as the decoder must: float sum in channel order / count.
std::vector<float> channel_mean(const std::vector<float>& interleaved, int channels) {
  std::vector<float> mono(interleaved.size() / channels);
  for (std::size_t frame = 0; frame < mono.size(); ++frame) {
    float sum = 0.0f;
    for (int channel = 0; channel < channels; ++channel) {
      sum += interleaved[frame * channels + channel];
    }
    mono[frame] = sum / static_cast<float>(channels);
  }
  return mono;
}

void write_pcm16(const fs::path& path, int format, int sample_rate, int channels,
                 const std::vector<short>& interleaved) {
  SNDFILE* file = cadenza::testing::open_audio_for_writing(path, format, sample_rate, channels);
  const sf_count_t frames = static_cast<sf_count_t>(interleaved.size()) / channels;
  const sf_count_t written = sf_writef_short(file, interleaved.data(), frames);
  sf_close(file);
  REQUIRE(written == frames);
}

// The file's frames as libsndfile returns them, interleaved, without our decoder.
std::vector<float> read_interleaved(const fs::path& path, int* channels) {
  SF_INFO info{};
  SNDFILE* file = sf_open(path.c_str(), SFM_READ, &info);
  REQUIRE(file != nullptr);
  std::vector<float> interleaved;
  std::vector<float> block(4096 * static_cast<std::size_t>(info.channels));
  sf_count_t got = 0;
  while ((got = sf_readf_float(file, block.data(), 4096)) > 0) {
    interleaved.insert(interleaved.end(), block.begin(), block.begin() + got * info.channels);
  }
  sf_close(file);
  *channels = info.channels;
  return interleaved;
}

double correlation(const std::vector<float>& a, const std::vector<float>& b) {
  const std::size_t n = std::min(a.size(), b.size());
  double ab = 0.0, aa = 0.0, bb = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

double rms(const float* x, std::size_t n) {
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += double(x[i]) * x[i];
  return std::sqrt(sum / n);
}

// Frequency (whole Hz in [low, high]) where the magnitude of the DTFT of x is largest.
int peak_frequency(const float* x, std::size_t n, int sample_rate, int low, int high) {
  int best = low;
  double best_power = -1.0;
  for (int frequency = low; frequency <= high; ++frequency) {
    double re = 0.0, im = 0.0;
    const double step = 2.0 * kPi * frequency / sample_rate;
    for (std::size_t i = 0; i < n; ++i) {
      re += x[i] * std::cos(step * i);
      im -= x[i] * std::sin(step * i);
    }
    if (re * re + im * im > best_power) best_power = re * re + im * im, best = frequency;
  }
  return best;
}

int zero_crossings(const float* x, std::size_t n) {
  int crossings = 0;
  for (std::size_t i = 1; i < n; ++i) crossings += (x[i] >= 0.0f) != (x[i - 1] >= 0.0f);
  return crossings;
}

std::vector<float> read_fixture(const std::string& name, std::size_t count) {
  return cadenza::testing::read_f32_file(std::string(CADENZA_TEST_FIXTURES) + "/audio/" + name, count);
}

struct LosslessFormat {
  const char* name;
  const char* extension;
  int format;
};

const LosslessFormat kLosslessFormats[] = {
    {"WAV 16-bit", "wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16},
    {"AU 16-bit big-endian (GTZAN)", "au", SF_FORMAT_AU | SF_FORMAT_PCM_16},
    {"FLAC 16-bit", "flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16},
};

struct LossyFormat {
  const char* name;
  const char* extension;
  int format;
  int sample_rate;
};

const LossyFormat kLossyFormats[] = {
    {"OGG/Vorbis", "ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 22050},
    {"OGG/Opus", "opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, 48000},
    {"MP3 (MTAT's rate)", "mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 16000},
    {"MP3 (FMA's usual rate)", "mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 44100},
};

// One file per format, 16-bit lossless and lossy, stereo; used by the window and
// threading tests.
std::vector<fs::path> write_one_of_each(const TempDir& dir, int frames_at_22050) {
  std::vector<fs::path> paths;
  for (const LosslessFormat& format : kLosslessFormats) {
    const fs::path path = dir / (std::string("each.") + format.extension);
    write_pcm16(path, format.format, 22050, 2, to_pcm16(test_tone(22050, 2, frames_at_22050)));
    paths.push_back(path);
  }
  for (const LossyFormat& format : kLossyFormats) {
    const fs::path path =
        dir / ("each_" + std::to_string(format.sample_rate) + "." + format.extension);
    const int frames =
        static_cast<int>(std::int64_t{frames_at_22050} * format.sample_rate / 22050);
    write_audio_file(path, format.format, format.sample_rate, 2,
                     test_tone(format.sample_rate, 2, frames));
    paths.push_back(path);
  }
  return paths;
}

}  // namespace

TEST_CASE("lossless files decode exactly, mono and stereo", "[cpu][audio]") {
  TempDir dir;
  for (const LosslessFormat& format : kLosslessFormats) {
    for (int channels : {1, 2}) {
      SECTION(std::string(format.name) + ", " + std::to_string(channels) + " channel(s)") {
        const int sample_rate = 22050;
        const int frames = 5000;
        const std::vector<short> pcm = to_pcm16(test_tone(sample_rate, channels, frames));
        const fs::path path = dir / (std::string("tone.") + format.extension);
        write_pcm16(path, format.format, sample_rate, channels, pcm);

        const DecodedAudio decoded = decode_audio(path);
        CHECK(decoded.sample_rate == sample_rate);
        CHECK(decoded.source_channels == channels);
        REQUIRE(decoded.samples.size() == static_cast<std::size_t>(frames));
        CHECK(decoded.seconds() == Approx(double(frames) / sample_rate));
        // A 16-bit value v reads as v / 32768, exactly; stereo is the mean of the two.
        std::vector<float> scaled(pcm.size());
        for (std::size_t i = 0; i < pcm.size(); ++i) scaled[i] = pcm[i] / 32768.0f;
        const std::vector<float> expected = channel_mean(scaled, channels);
        int mismatches = 0;
        for (int i = 0; i < frames; ++i) mismatches += decoded.samples[i] != expected[i];
        CHECK(mismatches == 0);

        const AudioInfo info = probe_audio(path);
        CHECK(info.sample_rate == sample_rate);
        CHECK(info.channels == channels);
        CHECK(info.frames == frames);
        CHECK(info.seconds() == Approx(double(frames) / sample_rate));
      }
    }
  }
}

TEST_CASE("float WAV values are kept as they are, beyond [-1, 1] too", "[cpu][audio]") {
  TempDir dir;
  std::vector<float> interleaved = test_tone(16000, 2, 1000);
  interleaved[10] = 1.5f;
  interleaved[11] = 0.25f;
  interleaved[20] = -2.0f;
  interleaved[21] = -3.0f;
  const fs::path path = dir / ("float.wav");
  write_audio_file(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 2, interleaved);

  const DecodedAudio decoded = decode_audio(path);
  CHECK(decoded.sample_rate == 16000);
  CHECK(decoded.source_channels == 2);
  CHECK(decoded.samples == channel_mean(interleaved, 2));
  CHECK(decoded.samples[5] == 0.875f);
  CHECK(decoded.samples[10] == -2.5f);
}

TEST_CASE("lossy files decode close to their source, mono and stereo", "[cpu][audio]") {
  TempDir dir;
  for (const LossyFormat& format : kLossyFormats) {
    for (int channels : {1, 2}) {
      SECTION(std::string(format.name) + ", " + std::to_string(channels) + " channel(s)") {
        const int frames = format.sample_rate / 2;
        const std::vector<float> source = test_tone(format.sample_rate, channels, frames);
        const fs::path path = dir / (std::string("tone.") + format.extension);
        write_audio_file(path, format.format, format.sample_rate, channels, source);

        const DecodedAudio decoded = decode_audio(path);
        CHECK(decoded.sample_rate == format.sample_rate);
        CHECK(decoded.source_channels == channels);
        // libsndfile trims the codecs' priming and padding (MP3: from LAME's Xing tag).
        CHECK(decoded.samples.size() == static_cast<std::size_t>(frames));
        CHECK(probe_audio(path).frames == frames);
        CHECK(correlation(decoded.samples, channel_mean(source, channels)) > 0.99);
      }
    }
  }
}

TEST_CASE("decoding averages the channels libsndfile returns", "[cpu][audio]") {
  TempDir dir;
  const std::vector<fs::path> paths = write_one_of_each(dir, 4000);
  for (const fs::path& path : paths) {
    INFO(path.string());
    int channels = 0;
    const std::vector<float> interleaved = read_interleaved(path, &channels);
    REQUIRE(channels == 2);
    CHECK(decode_audio(path).samples == channel_mean(interleaved, channels));
  }
}

TEST_CASE("a window decode equals the same slice of the full decode", "[cpu][audio]") {
  TempDir dir;
  const std::vector<fs::path> paths = write_one_of_each(dir, 22050);  // one second
  struct Window {
    double start_seconds;
    double duration_seconds;
  };
  const Window windows[] = {{0.0, 0.25}, {0.3, 0.2}, {0.123, 0.5}, {0.8, 0.5}, {0.0, 5.0}};
  for (const fs::path& path : paths) {
    const DecodedAudio full = decode_audio(path);
    const int rate = full.sample_rate;
    for (const Window& window : windows) {
      INFO(path.string() << " window at " << window.start_seconds << " s for "
                         << window.duration_seconds << " s");
      const DecodedAudio part = decode_audio(path, window.start_seconds, window.duration_seconds);
      const std::size_t begin = std::lround(window.start_seconds * rate);
      const std::size_t end = std::min<std::size_t>(
          std::lround((window.start_seconds + window.duration_seconds) * rate),
          full.samples.size());
      CHECK(part.sample_rate == rate);
      CHECK(part.source_channels == 2);
      const std::vector<float> slice(full.samples.begin() + begin, full.samples.begin() + end);
      CHECK(part.samples == slice);
    }
    INFO(path.string());
    for (double start_seconds : {1.0, 1.5}) {
      CHECK_THAT(user_error_message([&] { decode_audio(path, start_seconds, 0.5); }),
                 StartsWith(path.string() + ": no audio (0 samples) in the window"));
    }
  }
  CHECK_THROWS_AS(decode_audio(paths[0], -1.0, 0.5), Error);
  CHECK_THROWS_AS(decode_audio(paths[0], 0.0, 0.0), Error);
  CHECK_THROWS_AS(decode_audio(paths[0], std::nan(""), 1.0), Error);
}

TEST_CASE("truncated files decode the samples they hold", "[cpu][audio]") {
  TempDir dir;
  SECTION("WAV whose header declares more data than the file has") {
    const fs::path path = dir / ("whole.wav");
    write_pcm16(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 22050, 1,
                to_pcm16(test_tone(22050, 1, 10000)));
    const std::string bytes = cadenza::read_file(path);
    const fs::path truncated = dir / ("truncated.wav");
    write_bytes(truncated, bytes.substr(0, 44 + 2 * 6000));  // 44-byte header, 6000 frames
    const DecodedAudio whole = decode_audio(path);
    const DecodedAudio cut = decode_audio(truncated);
    REQUIRE(cut.samples.size() == 6000);
    CHECK(std::equal(cut.samples.begin(), cut.samples.end(), whole.samples.begin()));
    CHECK(cut.declared_frames == 10000);  // the header still says 10000: a file cut short
    CHECK(cut.cut_short());
    CHECK(whole.declared_frames == -1);
    CHECK_FALSE(whole.cut_short());
  }
  SECTION("FLAC cut in the middle: STREAMINFO still declares the whole length") {
    const fs::path path = dir / ("whole.flac");
    write_pcm16(path, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 22050, 1, to_pcm16(test_tone(22050, 1, 40000)));
    const std::string bytes = cadenza::read_file(path);
    const fs::path truncated = dir / ("truncated.flac");
    write_bytes(truncated, bytes.substr(0, bytes.size() / 2));
    const DecodedAudio cut = decode_audio(truncated);
    CHECK(cut.samples.size() < 40000);
    CHECK(cut.declared_frames == 40000);
    CHECK(cut.cut_short());
    CHECK_FALSE(decode_audio(path).cut_short());
  }
  SECTION("MP3 cut in the middle of the stream (its Xing tag declares the whole length)") {
    const fs::path path = dir / ("whole.mp3");
    write_audio_file(path, SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 16000, 1,
                     test_tone(16000, 1, 16000));
    const std::string bytes = cadenza::read_file(path);
    const fs::path truncated = dir / ("truncated.mp3");
    write_bytes(truncated, bytes.substr(0, bytes.size() / 2 + 7));
    const DecodedAudio whole = decode_audio(path);
    const DecodedAudio cut = decode_audio(truncated);
    CHECK(cut.samples.size() > 4000);
    CHECK(cut.samples.size() < 12000);
    CHECK(correlation(cut.samples, whole.samples) > 0.99);
    CHECK(cut.declared_frames == -1);  // an MP3's length is an estimate: not judged
    CHECK_FALSE(cut.cut_short());
  }
}

TEST_CASE("broken files throw a UserError naming the file", "[cpu][audio]") {
  TempDir dir;
  const auto require_user_error = [](const fs::path& path, const std::string& reason) {
    INFO(path.string());
    const auto starts_with_path = StartsWith(path.string() + ": ");
    const auto contains_reason = Contains(reason);
    CHECK_THAT(user_error_message([&] { decode_audio(path); }),
               starts_with_path && contains_reason);
    CHECK_THAT(user_error_message([&] { decode_audio(path, 0.0, 1.0); }),
               starts_with_path && contains_reason);
    CHECK_THAT(user_error_message([&] { load_audio(path, 16000); }),
               starts_with_path && contains_reason);
  };
  const std::string cannot = "cannot decode audio: ";

  require_user_error(dir / ("missing.wav"), cannot + "no such file");
  require_user_error(dir / (""), cannot + "is a directory");

  write_bytes(dir / ("empty.wav"), "");
  require_user_error(dir / ("empty.wav"), cannot + "empty file (0 bytes)");
  write_bytes(dir / ("empty.mp3"), "");
  require_user_error(dir / ("empty.mp3"), cannot + "empty file (0 bytes)");

  const fs::path good = dir / ("good.wav");
  write_pcm16(good, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 22050, 1,
              to_pcm16(test_tone(22050, 1, 1000)));
  write_bytes(dir / ("header_cut.wav"), cadenza::read_file(good).substr(0, 20));
  require_user_error(dir / ("header_cut.wav"),
                     cannot + "Error in WAV/W64/RF64 file. Malformed 'fmt ' chunk");

  // A WAV header patched to claim 4 samples per second (bytes 24-27, little-endian).
  std::string slow = cadenza::read_file(good);
  slow.replace(24, 4, std::string("\x04\x00\x00\x00", 4));
  write_bytes(dir / ("slow.wav"), slow);
  require_user_error(dir / ("slow.wav"), cannot + "implausible header: 1 channel(s) at 4 Hz");

  std::mt19937 random(12345);
  std::string noise(8192, '\0');
  for (char& byte : noise) byte = static_cast<char>(random() & 0xff);
  write_bytes(dir / ("noise.mp3"), noise);
  require_user_error(dir / ("noise.mp3"), cannot + "no decodable audio stream found");
  write_bytes(dir / ("noise.wav"), noise);
  require_user_error(dir / ("noise.wav"), cannot);

  const std::string text = "genre,path\nrock,rock.00001.au\njazz,jazz.00054.wav\n";
  for (const char* name : {"notes.txt", "notes.wav", "notes.flac", "notes.ogg"}) {
    write_bytes(dir / (name), text);
    require_user_error(dir / (name), cannot + "Format not recognised");
  }
  write_bytes(dir / ("notes.mp3"), text);
  require_user_error(dir / ("notes.mp3"), cannot + "no decodable audio stream found");
  // libsndfile would read a headerless .au file as 8 kHz u-law samples.
  write_bytes(dir / ("notes.au"), text);
  require_user_error(dir / ("notes.au"), cannot + "no audio header");

  // A valid header with no frames (jazz.00054.wav in the common GTZAN copy is empty).
  const fs::path no_frames = dir / ("no_frames.wav");
  write_pcm16(no_frames, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 22050, 1, {});
  require_user_error(no_frames, "no audio (0 samples)");

  std::vector<float> with_nan = test_tone(16000, 1, 100);
  with_nan[50] = std::nanf("");
  write_audio_file(dir / ("nan.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, with_nan);
  require_user_error(dir / ("nan.wav"), cannot + "samples that are NaN or infinite");

  CHECK_THAT(user_error_message([&] { probe_audio(dir / ("noise.mp3")); }),
             StartsWith((dir / "noise.mp3").string() + ": " + cannot));
}

TEST_CASE("decoding from many threads gives the single-threaded results", "[cpu][audio]") {
  TempDir dir;
  std::vector<fs::path> paths = write_one_of_each(dir, 11025);
  const std::string text = "not audio\n";
  for (const char* name : {"broken.wav", "broken.mp3", "broken.au"}) {
    write_bytes(dir / (name), text);
    paths.push_back(dir / (name));
  }
  // The outcome of each file: its samples resampled to 16 kHz, or its error message.
  const auto outcome = [](const fs::path& path) {
    try {
      const std::vector<float> samples = load_audio(path, 16000);
      return std::string(reinterpret_cast<const char*>(samples.data()),
                         samples.size() * sizeof(float));
    } catch (const UserError& error) {
      return std::string("error: ") + error.what();
    }
  };
  std::vector<std::string> expected;
  for (const fs::path& path : paths) expected.push_back(outcome(path));

  constexpr int kThreads = 4;
  constexpr int kRounds = 3;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        for (std::size_t i = 0; i < paths.size(); ++i) {
          const std::size_t k = (i + static_cast<std::size_t>(t)) % paths.size();
          mismatches[t] += outcome(paths[k]) != expected[k];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) CHECK(mismatches[t] == 0);
}

TEST_CASE("resampling keeps a tone's frequency and level", "[cpu][audio]") {
  struct RatePair {
    int in_rate;
    int out_rate;
  };
  for (const RatePair& rates : {RatePair{44100, 16000}, RatePair{22050, 16000},
                                RatePair{16000, 22050}, RatePair{48000, 22050}}) {
    INFO(rates.in_rate << " Hz -> " << rates.out_rate << " Hz");
    const std::vector<float> tone = test_tone(rates.in_rate, 1, rates.in_rate);  // 440 Hz, 1 s
    std::vector<float> sine(static_cast<std::size_t>(rates.in_rate));
    for (std::size_t i = 0; i < sine.size(); ++i) {
      sine[i] = static_cast<float>(0.5 * std::sin(2.0 * kPi * 1000.0 * i / rates.in_rate));
    }
    const std::vector<float> out = resample(sine, rates.in_rate, rates.out_rate);
    REQUIRE(out.size() == static_cast<std::size_t>(rates.out_rate));
    // The middle half second, away from the filter's edge effects.
    const std::size_t begin = out.size() / 4;
    const std::size_t n = out.size() / 2;
    CHECK(peak_frequency(out.data() + begin, n, rates.out_rate, 900, 1100) == 1000);
    CHECK(zero_crossings(out.data() + begin, n) == Approx(1000.0).margin(2.0));
    CHECK(rms(out.data() + begin, n) == Approx(0.5 / std::sqrt(2.0)).epsilon(0.01));
    CHECK(correlation(resample(tone, rates.in_rate, rates.out_rate),
                      test_tone(rates.out_rate, 1, rates.out_rate)) > 0.999);
  }
}

TEST_CASE("resampled length is soxr's rounding of n * out / in", "[cpu][audio]") {
  const int rate_pairs[][2] = {{44100, 16000}, {16000, 44100}, {22050, 16000}, {48000, 22050},
                               {2, 1},         {3, 2},         {8000, 16000},  {44100, 22050}};
  std::mt19937 random(7);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  for (const auto& rates : rate_pairs) {
    for (std::size_t n : {0, 1, 2, 3, 5, 7, 100, 441, 1000, 4410, 44099, 44101, 100003}) {
      INFO(rates[0] << " Hz -> " << rates[1] << " Hz, " << n << " samples");
      // floor(n * out / in + 1/2) in exact integer arithmetic.
      const std::size_t expected = (2 * n * rates[1] + rates[0]) / (2 * rates[0]);
      CHECK(resampled_length(n, rates[0], rates[1]) == expected);
      std::vector<float> x(n);
      for (float& value : x) value = normal(random);
      CHECK(resample(x, rates[0], rates[1]).size() == expected);
    }
  }
}

TEST_CASE("resampling at equal rates is the identity", "[cpu][audio]") {
  const std::vector<float> x = test_tone(16000, 1, 1234);
  CHECK(resample(x, 16000, 16000) == x);
  CHECK(resample({}, 16000, 16000).empty());
  CHECK(resampled_length(1234, 16000, 16000) == 1234);
  CHECK_THROWS_AS(resample(x, 0, 16000), Error);
  CHECK_THROWS_AS(resample(x, 16000, -1), Error);
}

TEST_CASE("resampling matches librosa's soxr_hq", "[cpu][audio]") {
  std::ifstream manifest_file(std::string(CADENZA_TEST_FIXTURES) + "/audio/manifest.json");
  REQUIRE(manifest_file.good());
  const nlohmann::json manifest = nlohmann::json::parse(manifest_file);
  REQUIRE(manifest.at("cases").size() == 4);
  for (const nlohmann::json& fixture : manifest.at("cases")) {
    const int in_rate = fixture.at("in_rate");
    const int out_rate = fixture.at("out_rate");
    INFO(in_rate << " Hz -> " << out_rate << " Hz");
    const std::vector<float> input =
        read_fixture(fixture.at("input"), fixture.at("input_length").get<std::size_t>());
    const std::vector<float> reference =
        read_fixture(fixture.at("output"), fixture.at("output_length").get<std::size_t>());
    const std::vector<float> output = resample(input, in_rate, out_rate);
    REQUIRE(output.size() == resampled_length(input.size(), in_rate, out_rate));
    // librosa pads soxr's output with zeros up to ceil(n * out / in).
    REQUIRE(reference.size() >= output.size());
    REQUIRE(reference.size() <= output.size() + 1);
    for (std::size_t i = output.size(); i < reference.size(); ++i) CHECK(reference[i] == 0.0f);
    float max_error = 0.0f;
    for (std::size_t i = 0; i < output.size(); ++i) {
      max_error = std::max(max_error, std::abs(output[i] - reference[i]));
    }
    // Bit-identical with Debian's libsoxr 0.1.3; the margin allows another SIMD path.
    CHECK(max_error < 1e-5f);
  }
}

TEST_CASE("load_audio decodes, then resamples", "[cpu][audio]") {
  TempDir dir;
  const fs::path path = dir / ("gtzan_like.au");
  write_pcm16(path, SF_FORMAT_AU | SF_FORMAT_PCM_16, 22050, 1,
              to_pcm16(test_tone(22050, 1, 22050)));
  const DecodedAudio decoded = decode_audio(path);
  CHECK(load_audio(path, 16000) == resample(decoded.samples, 22050, 16000));
  CHECK(load_audio(path, 22050) == decoded.samples);
  CHECK_THROWS_AS(load_audio(path, 0), Error);
}

}  // namespace cadenza
