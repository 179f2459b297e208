// [cpu][augment] The augmentation ops and the multiframe clip scores on the CPU, against
// their definitions (backend.hpp): probability 0 is the identity, a fixed gain is the
// product with 10^(dB/20), a shift is a zero-filled move by an integer within bounds, noise
// has the drawn SNR, one kind's draws never depend on another kind being on, masks set
// exactly the drawn frames and bins to the example's pre-mask mean, and window scores add
// up to per-clip means across batch boundaries.
#include <catch2/catch.hpp>

#include <algorithm>

#include <cmath>
#include <cstring>
#include <set>
#include <vector>

#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/augment_math.hpp"
#include "host/math/random_math.hpp"

using namespace cadenza;

namespace {

// Values in ±[0.05, 1]: never zero, so a zero in the output is a fill, and distinct
// with overwhelming probability, so a shift is recognisable.
Tensor nonzero_pcm(std::int64_t rows, std::int64_t samples, std::uint64_t seed) {
  Tensor t = Tensor::zeros(Shape{rows, samples});
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const float magnitude = 0.05f + 0.95f * uniform01(seed, 1, std::uint64_t(i));
    t.f32()[i] = uniform01(seed, 2, std::uint64_t(i)) < 0.5f ? -magnitude : magnitude;
  }
  return t;
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

bool row_equal(const Tensor& a, const Tensor& b, std::int64_t row) {
  const std::int64_t n = a.dim(1);
  return std::memcmp(a.f32() + row * n, b.f32() + row * n, sizeof(float) * std::size_t(n)) == 0;
}

Tensor augmented(const WaveformAugment& a, std::uint64_t key, const Tensor& pcm) {
  Tensor out = Tensor::zeros(pcm.shape());
  cpu::augment_waveform(a, step_values_tensor({.waveform_augment_key = key}), pcm, out);
  return out;
}

// Whether row `row` of out is row `row` of in moved by s: out[i] = in[i - s], 0 outside.
bool is_shift(const Tensor& in, const Tensor& out, std::int64_t row, int s) {
  const std::int64_t n = in.dim(1);
  const float* x = in.f32() + row * n;
  const float* y = out.f32() + row * n;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t source = i - s;
    const float expected = source >= 0 && source < n ? x[source] : 0.0f;
    if (y[i] != expected) return false;
  }
  return true;
}

double snr_db(const float* clean, const float* noisy, std::int64_t n) {
  double signal = 0.0, noise = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    signal += double(clean[i]) * clean[i];
    noise += (double(noisy[i]) - clean[i]) * (double(noisy[i]) - clean[i]);
  }
  return 10.0 * std::log10(signal / noise);
}

}  // namespace

TEST_CASE("augment_waveform with probabilities 0 copies its input bit for bit", "[cpu][augment]") {
  WaveformAugment a;
  a.max_shift = 50;
  a.gain_db_min = -10.0f;
  a.gain_db_max = 10.0f;
  a.snr_db_min = 0.0f;
  a.snr_db_max = 10.0f;
  const Tensor pcm = nonzero_pcm(5, 333, 1);
  CHECK(bit_equal(augmented(a, 7, pcm), pcm));
}

TEST_CASE("augment_waveform with a fixed gain of 6 dB multiplies by 10^(6/20)", "[cpu][augment]") {
  WaveformAugment a;
  a.gain_probability = 1.0f;
  a.gain_db_min = a.gain_db_max = 6.0f;
  const Tensor pcm = nonzero_pcm(4, 129, 2);
  const Tensor out = augmented(a, 8, pcm);
  const double factor = std::pow(10.0, 6.0 / 20.0);  // 1.99526...
  const float factor_f = static_cast<float>(factor);
  for (std::int64_t i = 0; i < pcm.numel(); ++i) {
    INFO("sample " << i);
    REQUIRE(out.f32()[i] == pcm.f32()[i] * factor_f);  // the factor rounded once, one product
    REQUIRE(std::fabs(out.f32()[i] - pcm.f32()[i] * factor) <= 1e-6 * std::fabs(pcm.f32()[i] * factor));
  }
}

TEST_CASE("augment_waveform shifts each row by an integer within bounds, zero-filled", "[cpu][augment]") {
  WaveformAugment a;
  a.shift_probability = 1.0f;
  SECTION("pcm [24, 101], max_shift 20") {
    a.max_shift = 20;
    const Tensor pcm = nonzero_pcm(24, 101, 3);
    const Tensor out = augmented(a, 9, pcm);
    std::set<int> shifts;
    for (std::int64_t b = 0; b < 24; ++b) {
      std::vector<int> matches;
      for (int s = -a.max_shift; s <= a.max_shift; ++s)
        if (is_shift(pcm, out, b, s)) matches.push_back(s);
      INFO("row " << b);
      REQUIRE(matches.size() == 1);  // |s| < 101 and distinct non-zero values: one shift fits
      CHECK(matches[0] == shift_of_row(9, b, a.max_shift));
      shifts.insert(matches[0]);
    }
    CHECK(shifts.size() > 5);  // rows draw their own shifts
  }
  SECTION("pcm [32, 7], max_shift 30 (shifts beyond the row)") {
    a.max_shift = 30;
    const Tensor pcm = nonzero_pcm(32, 7, 4);
    const Tensor out = augmented(a, 10, pcm);
    int all_zero = 0, partial = 0;
    for (std::int64_t b = 0; b < 32; ++b) {
      bool fits = false;
      for (int s = -a.max_shift; s <= a.max_shift; ++s) fits |= is_shift(pcm, out, b, s);
      INFO("row " << b);
      REQUIRE(fits);
      bool zero = true;
      for (std::int64_t i = 0; i < 7; ++i) zero &= out.f32()[b * 7 + i] == 0.0f;
      (zero ? all_zero : partial) += 1;
    }
    CHECK(all_zero > 0);  // |s| >= 7 has probability 48/61 per row
    CHECK(partial > 0);
  }
}

TEST_CASE("augment_waveform adds noise at the drawn SNR", "[cpu][augment]") {
  WaveformAugment a;
  a.noise_probability = 1.0f;
  const std::int64_t n = 200000;  // the noise power's relative spread is sqrt(2 / n) ~ 0.003 (0.014 dB)
  Tensor pcm = Tensor::zeros(Shape{6, n});
  for (std::int64_t b = 0; b < 6; ++b)
    for (std::int64_t i = 0; i < n; ++i)
      pcm.f32()[b * n + i] = (0.1f + 0.1f * float(b)) * std::sin(0.01f * float(i) * float(b + 1)) + 0.05f;
  SECTION("snr 20 dB exactly") {
    a.snr_db_min = a.snr_db_max = 20.0f;
    const Tensor out = augmented(a, 11, pcm);
    for (std::int64_t b = 0; b < 6; ++b) {
      INFO("row " << b);
      CHECK(snr_db(pcm.f32() + b * n, out.f32() + b * n, n) == Approx(20.0).margin(0.5));
    }
  }
  SECTION("snr uniform in [10, 30] dB") {
    a.snr_db_min = 10.0f;
    a.snr_db_max = 30.0f;
    const Tensor out = augmented(a, 12, pcm);
    std::set<int> rounded;
    for (std::int64_t b = 0; b < 6; ++b) {
      const double measured = snr_db(pcm.f32() + b * n, out.f32() + b * n, n);
      INFO("row " << b << ": " << measured << " dB");
      CHECK(measured == Approx(snr_db_of_row(12, b, 10.0f, 30.0f)).margin(0.5));
      CHECK(measured >= 9.5);
      CHECK(measured <= 30.5);
      rounded.insert(int(std::lround(measured)));
    }
    CHECK(rounded.size() > 1);
  }
}

TEST_CASE("augment_waveform applies each kind with its probability", "[cpu][augment]") {
  WaveformAugment a;
  a.gain_probability = 0.5f;
  a.gain_db_min = a.gain_db_max = 6.0f;
  const std::int64_t rows = 400;
  const Tensor pcm = nonzero_pcm(rows, 16, 5);
  const Tensor out = augmented(a, 13, pcm);
  int changed = 0;
  for (std::int64_t b = 0; b < rows; ++b) {
    const bool applies = augment_applies(13, b, WaveformCounter::gain_applies, 0.5f);
    CHECK(row_equal(out, pcm, b) == !applies);
    changed += !row_equal(out, pcm, b);
  }
  // Binomial(400, 0.5): standard deviation 10, so [160, 240] is 4 sigma.
  CHECK(changed >= 160);
  CHECK(changed <= 240);
}

TEST_CASE("augment_waveform: enabling one kind leaves the others' draws unchanged", "[cpu][augment]") {
  const Tensor pcm = nonzero_pcm(40, 64, 6);
  const std::uint64_t key = 14;
  WaveformAugment shift;
  shift.shift_probability = 1.0f;
  shift.max_shift = 12;
  WaveformAugment shift_gain = shift;
  shift_gain.gain_probability = 0.5f;
  shift_gain.gain_db_min = shift_gain.gain_db_max = 6.0f;
  WaveformAugment shift_gain_noise = shift_gain;
  shift_gain_noise.noise_probability = 1.0f;
  shift_gain_noise.snr_db_min = shift_gain_noise.snr_db_max = 60.0f;
  const Tensor s = augmented(shift, key, pcm);
  const Tensor sg = augmented(shift_gain, key, pcm);
  const Tensor sgn = augmented(shift_gain_noise, key, pcm);
  const float factor = db_to_amplitude(6.0f);
  int gained = 0;
  for (std::int64_t b = 0; b < 40; ++b) {
    const bool gain = augment_applies(key, b, WaveformCounter::gain_applies, 0.5f);
    gained += gain;
    double rms = 0.0;
    for (std::int64_t i = 0; i < 64; ++i) {
      const std::int64_t at = b * 64 + i;
      INFO("row " << b << ", sample " << i);
      // The same shift with the gain on, and the gain's decision unchanged by the noise.
      REQUIRE(sg.f32()[at] == (gain ? s.f32()[at] * factor : s.f32()[at]));
      rms += double(sg.f32()[at]) * sg.f32()[at];
    }
    rms = std::sqrt(rms / 64.0);
    // Noise at 60 dB: sigma = rms / 1000, and |N(0, 1)| <= 5.77 by construction.
    for (std::int64_t i = 0; i < 64; ++i)
      REQUIRE(std::fabs(sgn.f32()[b * 64 + i] - sg.f32()[b * 64 + i]) <= 5.8 * rms / 1000.0 + 1e-7);
  }
  CHECK(gained > 0);
  CHECK(gained < 40);
}

TEST_CASE("augment_waveform: the same key gives the same output, another key another", "[cpu][augment]") {
  WaveformAugment a;
  a.shift_probability = a.gain_probability = a.noise_probability = 0.7f;
  a.max_shift = 9;
  a.gain_db_min = -6.0f;
  a.gain_db_max = 6.0f;
  a.snr_db_min = 10.0f;
  a.snr_db_max = 20.0f;
  const Tensor pcm = nonzero_pcm(8, 100, 7);
  CHECK(bit_equal(augmented(a, 15, pcm), augmented(a, 15, pcm)));
  CHECK_FALSE(bit_equal(augmented(a, 15, pcm), augmented(a, 16, pcm)));
  // A row's draws depend on (key, row) only, not on the batch size.
  Tensor first4 = Tensor::zeros(Shape{4, 100});
  std::memcpy(first4.raw(), pcm.raw(), first4.bytes());
  const Tensor full = augmented(a, 15, pcm), part = augmented(a, 15, first4);
  for (std::int64_t b = 0; b < 4; ++b) CHECK(row_equal(full, part, b));
  // A data-parallel rank holding rows 4..7 of the global batch (first_row 4) draws them as
  // the whole batch does.
  Tensor last4 = Tensor::zeros(Shape{4, 100});
  std::memcpy(last4.raw(), pcm.f32() + 4 * 100, last4.bytes());
  a.first_row = 4;
  const Tensor rank_rows = augmented(a, 15, last4);
  for (std::int64_t b = 0; b < 4; ++b)
    CHECK(std::memcmp(rank_rows.f32() + b * 100, full.f32() + (4 + b) * 100, 100 * sizeof(float)) == 0);
}

TEST_CASE("augment_waveform rejects bad arguments", "[cpu][augment]") {
  WaveformAugment a;
  Tensor pcm = nonzero_pcm(2, 10, 8);
  Tensor wrong = Tensor::zeros(Shape{2, 11});
  const Tensor values = step_values_tensor({.waveform_augment_key = 1});
  CHECK_THROWS_AS(cpu::augment_waveform(a, values, pcm, wrong), Error);
  CHECK_THROWS_AS(cpu::augment_waveform(a, values, pcm, pcm), Error);  // not in place
  a.max_shift = -1;
  Tensor out = Tensor::zeros(pcm.shape());
  CHECK_THROWS_AS(cpu::augment_waveform(a, values, pcm, out), Error);
}

namespace {

// Runs mask_spectrogram on a copy of x and checks every value against the definition: the
// union of the drawn spans is the example's pre-mask mean, everything else unchanged.
// Returns the number of masked time frames and frequency bins over the batch.
std::pair<int, int> check_masks(const Tensor& x, const SpectrogramMask& m, std::uint64_t key) {
  const std::int64_t rows = x.dim(0), channels = x.dim(1);
  const int bins = int(x.dim(2)), frames = int(x.dim(3));
  const std::int64_t per_row = channels * bins * frames;
  // Guard values after the tensor catch writes past its end.
  std::vector<float> memory(std::size_t(x.numel()) + 64, 12345.0f);
  Tensor y = Tensor::view(memory.data(), x.shape(), DType::f32, Device::cpu());
  std::memcpy(y.raw(), x.raw(), x.bytes());
  cpu::mask_spectrogram(m, step_values_tensor({.spectrogram_mask_key = key}), y);
  for (std::size_t i = std::size_t(x.numel()); i < memory.size(); ++i) REQUIRE(memory[i] == 12345.0f);
  int masked_frames = 0, masked_bins = 0;
  for (std::int64_t b = 0; b < rows; ++b) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < per_row; ++i) sum += x.f32()[b * per_row + i];
    const float mean = float(sum / double(per_row));
    // The positions of one axis the drawn spans cover; each span must lie in the axis.
    const auto masked_positions = [&](AugmentStream stream, int masks, int size, int max_width) {
      std::vector<bool> masked(std::size_t(size), false);
      for (int k = 0; k < masks; ++k) {
        const MaskSpan s = mask_span(key, b, stream, k, size, max_width);
        REQUIRE(s.width >= 0);
        REQUIRE(s.width <= std::min(max_width, size));
        REQUIRE(s.start >= 0);
        REQUIRE(s.start + s.width <= size);
        for (int i = s.start; i < s.start + s.width; ++i) masked[std::size_t(i)] = true;
      }
      return masked;
    };
    const std::vector<bool> frame_masked =
        masked_positions(AugmentStream::time_masks, m.time_masks, frames, m.max_time_width);
    const std::vector<bool> bin_masked = masked_positions(AugmentStream::freq_masks, m.freq_masks, bins, m.max_freq_width);
    const int frames_here = int(std::count(frame_masked.begin(), frame_masked.end(), true));
    const int bins_here = int(std::count(bin_masked.begin(), bin_masked.end(), true));
    CHECK(frames_here <= m.time_masks * m.max_time_width);
    CHECK(bins_here <= m.freq_masks * m.max_freq_width);
    masked_frames += frames_here;
    masked_bins += bins_here;
    for (std::int64_t c = 0; c < channels; ++c)
      for (int f = 0; f < bins; ++f)
        for (int t = 0; t < frames; ++t) {
          const std::int64_t at = b * per_row + (c * bins + f) * frames + t;
          const bool masked = frame_masked[std::size_t(t)] || bin_masked[std::size_t(f)];
          INFO("example " << b << ", channel " << c << ", bin " << f << ", frame " << t);
          REQUIRE(y.f32()[at] == (masked ? mean : x.f32()[at]));
        }
  }
  return {masked_frames, masked_bins};
}

Tensor random_features(const Shape& shape, std::uint64_t seed) {
  Tensor t = Tensor::zeros(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = -80.0f * uniform01(seed, 3, std::uint64_t(i));
  return t;
}

}  // namespace

TEST_CASE("mask_spectrogram sets the drawn frames and bins to the pre-mask mean", "[cpu][augment]") {
  SECTION("features [16, 2, 13, 29], 2 time masks <= 5, 2 frequency masks <= 4") {
    const auto [frames, bins] = check_masks(random_features(Shape{16, 2, 13, 29}, 20), SpectrogramMask{2, 5, 2, 4}, 21);
    CHECK(frames > 0);  // masks do happen (widths uniform in [0, 5])
    CHECK(bins > 0);
  }
  SECTION("features [6, 1, 7, 5], masks wider than T and F") {
    const auto [frames, bins] = check_masks(random_features(Shape{6, 1, 7, 5}, 22), SpectrogramMask{3, 50, 2, 20}, 23);
    CHECK(frames > 0);
    CHECK(bins > 0);
  }
  SECTION("features [1, 1, 40, 101], time masks only") {
    const auto [frames, bins] = check_masks(random_features(Shape{1, 1, 40, 101}, 24), SpectrogramMask{2, 27, 0, 10}, 25);
    CHECK(bins == 0);
    (void)frames;
  }
  SECTION("features [3, 2, 9, 1], one frame") {
    check_masks(random_features(Shape{3, 2, 9, 1}, 26), SpectrogramMask{1, 3, 1, 3}, 27);
  }
}

TEST_CASE("mask_spectrogram of rows from first_row draws those rows of a larger batch", "[cpu][augment]") {
  const Tensor x = random_features(Shape{6, 1, 12, 20}, 30);
  Tensor whole = Tensor::zeros(x.shape());
  std::memcpy(whole.raw(), x.raw(), x.bytes());
  cpu::mask_spectrogram(SpectrogramMask{2, 6, 2, 5}, step_values_tensor({.spectrogram_mask_key = 31}), whole);
  const std::int64_t per_row = 12 * 20;
  Tensor last2 = Tensor::zeros(Shape{2, 1, 12, 20});
  std::memcpy(last2.raw(), x.f32() + 4 * per_row, last2.bytes());
  cpu::mask_spectrogram(SpectrogramMask{2, 6, 2, 5, 4}, step_values_tensor({.spectrogram_mask_key = 31}), last2);
  CHECK(std::memcmp(last2.raw(), whole.f32() + 4 * per_row, last2.bytes()) == 0);
}

TEST_CASE("mask_spectrogram without masks leaves the features unchanged", "[cpu][augment]") {
  const Tensor x = random_features(Shape{2, 1, 8, 8}, 28);
  Tensor y = Tensor::zeros(x.shape());
  std::memcpy(y.raw(), x.raw(), x.bytes());
  cpu::mask_spectrogram(SpectrogramMask{0, 5, 0, 5}, step_values_tensor({.spectrogram_mask_key = 29}), y);
  CHECK(bit_equal(x, y));
  // Widths of at most 0.
  cpu::mask_spectrogram(SpectrogramMask{2, 0, 2, 0}, step_values_tensor({.spectrogram_mask_key = 29}), y);
  CHECK(bit_equal(x, y));
}

TEST_CASE("mask widths are uniform in [0, min(max_width, size)] and examples independent", "[cpu][augment]") {
  std::vector<int> counts(6, 0);
  std::set<std::pair<int, int>> spans;
  const int draws = 6000;
  for (int b = 0; b < draws; ++b) {
    const MaskSpan s = mask_span(30, b, AugmentStream::time_masks, 0, 29, 5);
    counts[std::size_t(s.width)] += 1;
    if (b < 50) spans.insert({s.start, s.width});
  }
  for (int w = 0; w <= 5; ++w) {
    INFO("width " << w);
    CHECK(counts[std::size_t(w)] == Approx(draws / 6.0).margin(150));  // sd ~ 29
  }
  CHECK(spans.size() > 20);
  // Clamped: a maximum beyond the axis never gives more than the axis.
  for (int b = 0; b < 200; ++b) {
    const MaskSpan s = mask_span(31, b, AugmentStream::freq_masks, 1, 4, 100);
    CHECK(s.width <= 4);
    CHECK(s.start + s.width <= 4);
  }
}

TEST_CASE("accumulate_window_scores averages windows per clip across batches", "[cpu][augment]") {
  // 3 windows per clip; windows 0..6 arrive in two batches of 4 rows, the second partial.
  Tensor clip_scores = Tensor::zeros(Shape{3, 2});
  Tensor batch1 = Tensor::zeros(Shape{4, 2}), batch2 = Tensor::zeros(Shape{4, 2});
  const float first[] = {3, 6, 6, 3, 9, 0, 3, 3};     // windows 0, 1, 2 | 3
  const float second[] = {6, 6, 0, 9, 3, 12, 99, 99};  // windows 4, 5 | 6 | (unused row)
  std::memcpy(batch1.raw(), first, sizeof first);
  std::memcpy(batch2.raw(), second, sizeof second);
  cpu::accumulate_window_scores(batch1, 0, 4, 3, clip_scores);
  cpu::accumulate_window_scores(batch2, 4, 3, 3, clip_scores);
  // clip 0: (3 + 6 + 9) / 3, (6 + 3 + 0) / 3; clip 1: (3 + 6 + 0) / 3, (3 + 6 + 9) / 3;
  // clip 2: window 6 only so far, 3 / 3 and 12 / 3.
  const float expected[] = {6, 3, 3, 6, 1, 4};
  for (int i = 0; i < 6; ++i) {
    INFO("element " << i);
    CHECK(clip_scores.f32()[i] == expected[i]);
  }
  SECTION("bad arguments throw") {
    CHECK_THROWS_AS(cpu::accumulate_window_scores(batch1, 0, 5, 3, clip_scores), Error);  // count > B
    CHECK_THROWS_AS(cpu::accumulate_window_scores(batch1, 7, 3, 3, clip_scores), Error);  // clip 3 of 3
    CHECK_THROWS_AS(cpu::accumulate_window_scores(batch1, 0, 4, 0, clip_scores), Error);  // no windows
    CHECK_THROWS_AS(cpu::accumulate_window_scores(batch1, -1, 4, 3, clip_scores), Error);
    Tensor wrong_k = Tensor::zeros(Shape{3, 3});
    CHECK_THROWS_AS(cpu::accumulate_window_scores(batch1, 0, 4, 3, wrong_k), Error);
    CHECK_NOTHROW(cpu::accumulate_window_scores(batch1, 100, 0, 3, clip_scores));  // nothing to add
  }
}
