// Per-example random draws and per-sample math of the on-line augmentations (CPU loops and
// CUDA kernels): waveform shift / gain / noise (augment_waveform) and SpecAugment masks
// (mask_spectrogram). Semantics are backend.hpp's (WaveformAugment, SpectrogramMask).
//
// Invariants:
// - Every draw is a pure function of (key, row, what is drawn) through host/math/
//   random_math.hpp: row b's scalar draws are fixed counters of its own stream, so examples
//   are independent, a row's draws do not depend on the batch size or on the other rows,
//   and the CPU and the GPU draw the same values.
// - Every draw is made from its own fixed counter whether or not its kind is enabled, so
//   turning one kind on or off (or changing its probability) never changes another kind's
//   draws; a probability of 0 never applies (uniform01 < 0 is false), 1 always does.
// - The decisions (applies or not), the shift and the mask spans are integer-hash based:
//   bit-identical on every backend. The gain factor and the noise sigma are computed in
//   double and rounded once to float; the noise values use normal() (float logf/cosf), whose
//   last bit or two may differ between host libm and CUDA.
#pragma once

#include <cmath>
#include <cstdint>

#include "host/math/hd.hpp"
#include "host/math/random_math.hpp"
#include "host/ops/backend.hpp"

namespace cadenza {

// The streams of row `row` under a key: four per row, one per purpose.
enum class AugmentStream : std::uint64_t {
  waveform_draws = 0,  // the counters of WaveformCounter
  waveform_noise = 1,  // counter = sample index: the noise's N(0, 1) values
  time_masks = 2,      // counters 2k (width) and 2k + 1 (start) of time mask k
  freq_masks = 3,      // likewise for frequency mask k
};

CADENZA_HD std::uint64_t augment_stream(std::int64_t row, AugmentStream purpose) {
  return static_cast<std::uint64_t>(row) * 4 + static_cast<std::uint64_t>(purpose);
}

// The fixed counters of a row's waveform draws (stream waveform_draws).
enum class WaveformCounter : std::uint64_t {
  shift_applies = 0, shift_amount = 1,
  gain_applies = 2,  gain_db = 3,
  noise_applies = 4, snr_db = 5,
};

CADENZA_HD float waveform_uniform01(std::uint64_t key, std::int64_t row, WaveformCounter c) {
  return uniform01(key, augment_stream(row, AugmentStream::waveform_draws), static_cast<std::uint64_t>(c));
}

// Whether a kind whose "applies" counter is `c` applies to `row`, with `probability`.
CADENZA_HD bool augment_applies(std::uint64_t key, std::int64_t row, WaveformCounter c, float probability) {
  return waveform_uniform01(key, row, c) < probability;
}

// The shift of `row`: an integer uniform in [-max_shift, max_shift] (max_shift >= 0).
CADENZA_HD int shift_of_row(std::uint64_t key, std::int64_t row, int max_shift) {
  const std::uint64_t n = 2 * static_cast<std::uint64_t>(max_shift) + 1;
  return static_cast<int>(static_cast<std::int64_t>(uniform_index(
                              key, augment_stream(row, AugmentStream::waveform_draws),
                              static_cast<std::uint64_t>(WaveformCounter::shift_amount), n)) -
                          max_shift);
}

// A value uniform in [low, high] from counter `c` of `row` (low when low == high). In
// double, where the float product is exact, so a fused multiply-add (nvcc contracts by
// default; the host build does not) gives the same bits as separate operations.
CADENZA_HD float uniform_in(std::uint64_t key, std::int64_t row, WaveformCounter c, float low, float high) {
  return static_cast<float>(double(low) + double(high - low) * double(waveform_uniform01(key, row, c)));
}

// The amplitude factor of a gain of `db` decibels, 10^(db / 20), in double rounded once.
CADENZA_HD float db_to_amplitude(float db) {
  return static_cast<float>(pow(10.0, static_cast<double>(db) / 20.0));
}

// The gain factor of `row`: 10^(g / 20) with g uniform in [db_min, db_max].
CADENZA_HD float gain_of_row(std::uint64_t key, std::int64_t row, float db_min, float db_max) {
  return db_to_amplitude(uniform_in(key, row, WaveformCounter::gain_db, db_min, db_max));
}

// The SNR of `row` in dB, uniform in [db_min, db_max].
CADENZA_HD float snr_db_of_row(std::uint64_t key, std::int64_t row, float db_min, float db_max) {
  return uniform_in(key, row, WaveformCounter::snr_db, db_min, db_max);
}

// The noise's standard deviation for a signal of RMS `rms` at `snr_db`: rms / 10^(snr/20).
CADENZA_HD float noise_sigma(double rms, float snr_db) {
  return static_cast<float>(rms / pow(10.0, static_cast<double>(snr_db) / 20.0));
}

// The N(0, 1) value of the noise at sample `i` of `row`.
CADENZA_HD float noise_value(std::uint64_t key, std::int64_t row, std::int64_t i) {
  return normal(key, augment_stream(row, AugmentStream::waveform_noise), static_cast<std::uint64_t>(i));
}

// Everything one row draws for augment_waveform. shift is 0 and gain 1 where that kind
// does not apply; snr_db is meaningful only when `noise`.
struct WaveformRowPlan {
  int shift;
  bool gain_applies;
  float gain;
  bool noise;
  float snr_db;
};

CADENZA_HD WaveformRowPlan waveform_row_plan(const WaveformAugment& a, std::uint64_t key, std::int64_t row) {
  WaveformRowPlan p;
  p.shift = augment_applies(key, row, WaveformCounter::shift_applies, a.shift_probability)
                ? shift_of_row(key, row, a.max_shift)
                : 0;
  p.gain_applies = augment_applies(key, row, WaveformCounter::gain_applies, a.gain_probability);
  p.gain = p.gain_applies ? gain_of_row(key, row, a.gain_db_min, a.gain_db_max) : 1.0f;
  p.noise = augment_applies(key, row, WaveformCounter::noise_applies, a.noise_probability);
  p.snr_db = snr_db_of_row(key, row, a.snr_db_min, a.snr_db_max);
  return p;
}

// Sample i of a row of n samples `in` after shift and gain: gain * in[i - shift], 0 where
// i - shift is outside [0, n). Without gain the sample is copied (bit-exact).
CADENZA_HD float shifted_gained_sample(const float* in, std::int64_t n, const WaveformRowPlan& p, std::int64_t i) {
  const std::int64_t source = i - p.shift;
  if (source < 0 || source >= n) return 0.0f;
  return p.gain_applies ? p.gain * in[source] : in[source];
}

// One mask of SpecAugment along an axis of `size` frames or bins.
struct MaskSpan {
  int start, width;
};

// Mask k of `row` along the time (AugmentStream::time_masks) or frequency axis: the width
// uniform in [0, min(max_width, size)] (the width is clamped to the axis), then the start
// uniform in [0, size - width].
CADENZA_HD MaskSpan mask_span(std::uint64_t key, std::int64_t row, AugmentStream axis, int k, int size,
                              int max_width) {
  const std::uint64_t stream = augment_stream(row, axis);
  const int limit = max_width < size ? max_width : size;
  MaskSpan s;
  s.width = limit > 0 ? static_cast<int>(uniform_index(key, stream, 2 * static_cast<std::uint64_t>(k),
                                                       static_cast<std::uint64_t>(limit) + 1))
                      : 0;
  const int room = size - s.width;
  s.start = room > 0 ? static_cast<int>(uniform_index(key, stream, 2 * static_cast<std::uint64_t>(k) + 1,
                                                      static_cast<std::uint64_t>(room) + 1))
                     : 0;
  return s;
}

}  // namespace cadenza
