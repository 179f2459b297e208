// Tests of time-stretching and pitch-shifting (host/audio/time_pitch).
//
// A 2 s, 440 Hz sine at 16 kHz, stretched and shifted, must come out round(n / rate)
// samples long, at 440 * 2^(semitones / 12) Hz within 1 % (by zero crossings and by the
// peak of its spectrum over the middle half, away from the fades at the ends) and at its
// level within 1.5 dB, at typical settings and at the corners of the accepted ranges. A tone
// burst must move to its time divided by the rate. Clips of every length, empty and a few
// samples included, keep the length rule. The same arguments give the same bytes, in one
// thread or two at once, and wrong arguments throw a UserError naming them.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "host/audio/time_pitch.hpp"
#include "host/core/error.hpp"
#include "tests/test_support.hpp"

namespace cadenza {
namespace {

using cadenza::testing::user_error_message;

using Catch::Matchers::StartsWith;

const double kPi = 3.14159265358979323846;
constexpr int kSampleRate = 16000;

std::vector<float> sine(double frequency, double amplitude, std::size_t count) {
  std::vector<float> samples(count);
  for (std::size_t i = 0; i < count; ++i) {
    samples[i] = static_cast<float>(amplitude * std::sin(2.0 * kPi * frequency * i / kSampleRate));
  }
  return samples;
}

double rms(const float* x, std::size_t n) {
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += double(x[i]) * x[i];
  return std::sqrt(sum / n);
}

// Frequency from the zero crossings between the first and the last one (half a period each).
double zero_crossing_frequency(const float* x, std::size_t n) {
  std::size_t first = 0, last = 0, crossings = 0;
  for (std::size_t i = 1; i < n; ++i) {
    if ((x[i - 1] < 0.0f) != (x[i] < 0.0f)) {
      if (crossings == 0) first = i;
      last = i;
      ++crossings;
    }
  }
  if (crossings < 2) return 0.0;
  return (crossings - 1) / 2.0 / (static_cast<double>(last - first) / kSampleRate);
}

// Frequency (on a 0.5 Hz grid in [low, high]) where the magnitude of the Hann-windowed DTFT
// of x is largest.
double peak_frequency(const float* x, std::size_t n, double low, double high) {
  double best = low, best_power = -1.0;
  for (double frequency = low; frequency <= high; frequency += 0.5) {
    double re = 0.0, im = 0.0;
    const double step = 2.0 * kPi * frequency / kSampleRate;
    for (std::size_t i = 0; i < n; ++i) {
      const double window = 0.5 - 0.5 * std::cos(2.0 * kPi * i / (n - 1));
      re += window * x[i] * std::cos(step * i);
      im -= window * x[i] * std::sin(step * i);
    }
    if (re * re + im * im > best_power) best_power = re * re + im * im, best = frequency;
  }
  return best;
}

bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// A music-like test signal: three partials with a vibrato over seeded noise.
std::vector<float> busy_signal(std::size_t count) {
  std::mt19937 generator(7);
  std::uniform_real_distribution<float> noise(-0.05f, 0.05f);
  std::vector<float> samples(count);
  for (std::size_t i = 0; i < count; ++i) {
    const double t = static_cast<double>(i) / kSampleRate;
    const double phase = 2.0 * kPi * 220.0 * t + 3.0 * std::sin(2.0 * kPi * 5.0 * t);
    samples[i] = static_cast<float>(0.4 * std::sin(phase) + 0.2 * std::sin(2.0 * phase) +
                                    0.1 * std::sin(3.0 * phase)) + noise(generator);
  }
  return samples;
}

TEST_CASE("stretch_and_shift keeps the length rule, moves the pitch and keeps the level",
          "[cpu][audio]") {
  const std::size_t n = 2 * kSampleRate;
  const std::vector<float> input = sine(440.0, 0.5, n);
  const double input_rms = rms(input.data() + n / 4, n / 2);
  struct Setting {
    double rate;
    double semitones;
  };
  // Typical augmentation settings, then the corners of the accepted ranges.
  for (const Setting& setting : {Setting{1.0, 12.0}, Setting{1.25, 0.0}, Setting{0.8, 0.0},
                                 Setting{1.1, -5.0}, Setting{0.25, -24.0}, Setting{0.25, 24.0},
                                 Setting{4.0, -24.0}, Setting{4.0, 24.0}}) {
    DYNAMIC_SECTION("rate " << setting.rate << ", " << setting.semitones << " semitones") {
      const std::vector<float> output =
          stretch_and_shift(input, kSampleRate, setting.rate, setting.semitones);
      REQUIRE(output.size() == static_cast<std::size_t>(std::round(n / setting.rate)));
      if (setting.rate < 1.0) CHECK(output.size() > n);
      if (setting.rate == 1.0) CHECK(output.size() == n);

      const double expected = 440.0 * std::pow(2.0, setting.semitones / 12.0);
      const std::size_t begin = output.size() / 4;
      const std::size_t count = output.size() / 2;
      const double crossings = zero_crossing_frequency(output.data() + begin, count);
      const double peak =
          peak_frequency(output.data() + begin, count, 0.95 * expected, 1.05 * expected);
      const double level_db = 20.0 * std::log10(rms(output.data() + begin, count) / input_rms);
      INFO("expected " << expected << " Hz; zero crossings " << crossings << " Hz, peak "
                       << peak << " Hz, level " << level_db << " dB");
      CHECK(crossings == Approx(expected).epsilon(0.01));
      CHECK(peak == Approx(expected).epsilon(0.01));
      CHECK(std::fabs(level_db) <= 1.5);
    }
  }
}

TEST_CASE("stretch_and_shift moves an event at time t to t / rate", "[cpu][audio]") {
  // A 440 Hz burst from 0.75 s to 1.25 s of a 2 s clip: its energy is centred at 1 s.
  std::vector<float> input(2 * kSampleRate, 0.0f);
  const std::vector<float> tone = sine(440.0, 0.5, input.size());
  for (std::size_t i = 3 * kSampleRate / 4; i < 5 * kSampleRate / 4; ++i) input[i] = tone[i];
  struct Setting {
    double rate;
    double semitones;
  };
  for (const Setting& setting : {Setting{0.8, 0.0}, Setting{1.25, 0.0}, Setting{1.25, 7.0},
                                 Setting{0.8, -3.0}}) {
    DYNAMIC_SECTION("rate " << setting.rate << ", " << setting.semitones << " semitones") {
      const std::vector<float> output =
          stretch_and_shift(input, kSampleRate, setting.rate, setting.semitones);
      double weighted = 0.0, energy = 0.0;
      for (std::size_t i = 0; i < output.size(); ++i) {
        weighted += static_cast<double>(i) / kSampleRate * output[i] * output[i];
        energy += double(output[i]) * output[i];
      }
      // Rubber Band's offline mode compensates its own delay; 20 ms is a small part of its
      // longest analysis window (128 ms at 16 kHz). Measured: within 8 ms.
      CHECK(weighted / energy == Approx(1.0 / setting.rate).margin(0.020));
    }
  }
}

TEST_CASE("stretch_and_shift returns round(n / rate) samples for clips of any length",
          "[cpu][audio]") {
  CHECK(stretched_length(0, 1.25) == 0);
  CHECK(stretched_length(5, 2.0) == 3);  // 2.5 rounds away from zero
  CHECK(stretched_length(1, 4.0) == 0);
  CHECK(stretched_length(32000, 1.25) == 25600);
  CHECK(stretched_length(32000, 0.3) == 106667);

  const std::vector<float> busy = busy_signal(20000);
  const double rates[] = {0.25, 0.8, 1.0, 1.25, 3.0, 4.0};
  int case_index = 0;
  for (const std::size_t n : {0, 1, 2, 3, 7, 50, 100, 257, 1000, 4097, 16001}) {
    for (const double rate : rates) {
      const double semitones = (case_index++ % 3 - 1) * 7.0;  // -7, 0, +7 in turn
      INFO(n << " samples, rate " << rate << ", " << semitones << " semitones");
      const std::vector<float> input(busy.begin(), busy.begin() + static_cast<long>(n));
      const std::vector<float> output = stretch_and_shift(input, kSampleRate, rate, semitones);
      CHECK(output.size() == stretched_length(n, rate));
      CHECK(output.size() == static_cast<std::size_t>(std::llround(n / rate)));
      bool finite = true;
      for (const float sample : output) finite = finite && std::isfinite(sample);
      CHECK(finite);
      // However short, the clip comes out as sound, not silence, faded in and out over
      // about a window (measured: at least 15 % of the input's RMS from 2 samples on, 67 %
      // from 1000 samples on).
      if (n >= 2) {
        const double relative = rms(output.data(), output.size()) / rms(input.data(), n);
        CHECK(relative > (n >= 1000 ? 0.5 : 0.1));
      }
    }
  }
}

TEST_CASE("stretch_and_shift gives the same bytes for the same arguments", "[cpu][audio]") {
  const std::vector<float> input = busy_signal(3 * kSampleRate);
  const std::vector<float> first = stretch_and_shift(input, kSampleRate, 1.13, 2.5);
  // Another call in between must leave nothing behind for the next one.
  const std::vector<float> other = stretch_and_shift(input, kSampleRate, 0.9, -4.0);
  const std::vector<float> second = stretch_and_shift(input, kSampleRate, 1.13, 2.5);
  CHECK(same_bytes(first, second));
  CHECK_FALSE(same_bytes(first, other));
}

TEST_CASE("stretch_and_shift from two threads at once gives the single-threaded results",
          "[cpu][audio]") {
  const std::vector<float> input = busy_signal(2 * kSampleRate);
  const double rates[2] = {1.2, 0.85};
  const double semitones[2] = {3.0, -2.0};
  std::vector<float> expected[2];
  for (int t = 0; t < 2; ++t) expected[t] = stretch_and_shift(input, kSampleRate, rates[t], semitones[t]);

  constexpr int kRounds = 3;
  int mismatches[2] = {0, 0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        // Both threads run both settings, in opposite orders.
        for (int k = 0; k < 2; ++k) {
          const int which = (t + k) % 2;
          if (!same_bytes(stretch_and_shift(input, kSampleRate, rates[which], semitones[which]),
                          expected[which])) {
            ++mismatches[t];
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(mismatches[0] == 0);
  CHECK(mismatches[1] == 0);
}

TEST_CASE("stretch_and_shift refuses wrong arguments with a UserError naming them",
          "[cpu][audio]") {
  const std::vector<float> input = sine(440.0, 0.5, 1000);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const auto message = [&](const std::vector<float>& samples, int sample_rate, double rate,
                           double semitones) {
    return user_error_message([&] { stretch_and_shift(samples, sample_rate, rate, semitones); });
  };
  for (const double rate : {0.0, -1.0, nan, inf, -inf, 0.2, 4.5}) {
    INFO("rate " << rate);
    CHECK_THAT(message(input, kSampleRate, rate, 0.0), StartsWith("stretch_and_shift: rate"));
  }
  for (const double semitones : {nan, inf, -inf, 24.5, -30.0}) {
    INFO("semitones " << semitones);
    CHECK_THAT(message(input, kSampleRate, 1.0, semitones),
               StartsWith("stretch_and_shift: semitones"));
  }
  for (const int sample_rate : {0, -16000, 4000, 200000}) {
    INFO("sample rate " << sample_rate);
    CHECK_THAT(message(input, sample_rate, 1.0, 0.0), StartsWith("stretch_and_shift: sample_rate"));
  }
  std::vector<float> with_nan = input;
  with_nan[123] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THAT(message(with_nan, kSampleRate, 1.0, 0.0),
             StartsWith("stretch_and_shift: samples must be finite, but sample 123 of 1000"));
  // Arguments are checked before the empty clip returns.
  CHECK_THAT(message({}, kSampleRate, 0.0, 0.0), StartsWith("stretch_and_shift: rate"));
  CHECK(stretch_and_shift({}, kSampleRate, 1.25, 3.0).empty());
}

}  // namespace
}  // namespace cadenza
