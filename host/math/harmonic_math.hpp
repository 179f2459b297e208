// Scalar math of the harmonic filterbank (Won et al. 2020, HarmonicSTFT in
// minzwon/sota-music-tagging-models' training/modules.py), shared by the CPU op
// (host/cpu/harmonic_filterbank.cpp) and the CUDA kernels (cuda/harmonic_filterbank.cu).
//
// The filterbank has harmonics * bands triangular filters, harmonic-major: filter
// k = h * bands + j is harmonic h + 1 of pitch band j, whose MIDI note is 24 + j /
// semitone_scale (from C1), so its centre is f0_k = (h + 1) * 440 * 2^((midi_j - 69) / 12)
// Hz. Its value at a spectrogram bin of frequency f is
//     fb = max(0, 1 - 2 |Q| |f - f0_k| / (alpha f0_k + beta)),   alpha 0.1079, beta 24.7 Hz,
// a triangle of peak 1 and base width (alpha f0 + beta) / |Q| (an ERB-like bandwidth
// scaled by the learnable Q). dfb/dQ = -2 sign(Q) |f - f0| / (alpha f0 + beta) where fb > 0,
// else 0.
//
// Rounding, against Won's code:
// - Centres: float64 (numpy's linspace of MIDI notes, 440 * 2 ** ((m - 69) / 12), times the
//   harmonic number) rounded once to float32, as Won's `harmonic_hz.astype('float32')`.
// - Bin frequencies: torch.linspace(0, sample_rate // 2, bins) in float32 as torch's CPU
//   kernel computes it (spectral_math.hpp's torch_linspace_f32); Won builds it on the CPU.
//   Note sample_rate // 2 is integer division, as in Won's code.
// - The filter: Won computes max(0, min(f (2/bw) + 1 - 2 f0/bw, -f (2/bw) + 1 + 2 f0/bw))
//   with bw = (alpha f0 + beta) / Q, whose float32 terms cancel (up to ~500 each); it
//   equals the closed form above for either sign of Q (hence |Q|), and at 16 kHz, n_fft 512
//   differs from the exact value by up to 2.7e-6. This file evaluates the closed form in
//   float32, within 2e-7 of the exact value, so it follows Won's function, not his rounding.
//
// Invariants: every function is CADENZA_HD (scalars in, a scalar out, no allocation), so
// the CPU loops and the CUDA kernels compute the same values; callers validate sizes
// (HarmonicFilterbankGeometry::make, the layer) before calling.
#pragma once

#include <cmath>

#include "host/math/hd.hpp"
#include "host/math/spectral_math.hpp"

namespace cadenza {

constexpr int kHarmonicLowestMidi = 24;            // C1 (librosa.note_to_midi('C1'))
constexpr float kHarmonicBandwidthAlpha = 0.1079f;  // Won's bw_alpha: Hz of bandwidth per Hz
constexpr float kHarmonicBandwidthBeta = 24.7f;     // Won's bw_beta: Hz of bandwidth at 0 Hz

// The MIDI note nearest to sample_rate / (2 harmonics), the highest fundamental whose
// top harmonic stays below the Nyquist frequency: librosa's note_to_midi(hz_to_note(...)),
// which rounds half to even (np.round) like nearbyint.
CADENZA_HD int harmonic_highest_midi(int sample_rate, int harmonics) {
  const double hz = static_cast<double>(sample_rate) / (2.0 * harmonics);
  return static_cast<int>(nearbyint(12.0 * (log2(hz) - log2(440.0)) + 69.0));
}

// Pitch bands per harmonic: (highest MIDI - 24) * semitone_scale. Below 1 when
// sample_rate / (2 harmonics) is under C1 (callers refuse that).
CADENZA_HD int harmonic_bands(int sample_rate, int harmonics, int semitone_scale) {
  return (harmonic_highest_midi(sample_rate, harmonics) - kHarmonicLowestMidi) * semitone_scale;
}

// Centre frequency in Hz of filter k of harmonics * bands (harmonic-major), as Won's
// initialize_filterbank: np.linspace(24, highest, bands + 1) is j * step + 24 with
// step = (highest - 24) / bands in float64.
CADENZA_HD float harmonic_center_hz(int filter, int bands, int semitone_scale) {
  const int harmonic = filter / bands + 1, band = filter % bands;
  const double step = static_cast<double>(bands / semitone_scale) / static_cast<double>(bands);
  const double midi = static_cast<double>(band) * step + kHarmonicLowestMidi;
  const double fundamental = 440.0 * pow(2.0, (midi - 69.0) / 12.0);
  return static_cast<float>(fundamental * harmonic);
}

// Frequency in Hz of spectrogram bin `bin` of `bins`: torch.linspace(0, sample_rate // 2,
// bins)[bin] in float32.
CADENZA_HD float harmonic_bin_hz(int bin, int bins, int sample_rate) {
  return torch_linspace_f32(0.0f, static_cast<float>(sample_rate / 2), bins, bin);
}

// |f - f0| / (alpha f0 + beta): a bin's distance from a filter's centre in units of the
// filter's bandwidth at Q = 1. The filter value and its Q-derivative are functions of it.
CADENZA_HD float harmonic_filter_offset(float bin_hz, float center_hz) {
  return fabsf(bin_hz - center_hz) / (kHarmonicBandwidthAlpha * center_hz + kHarmonicBandwidthBeta);
}

// max(0, 1 - 2 |Q| offset): the filter's value at that offset.
CADENZA_HD float harmonic_filter_value(float offset, float q) {
  const float value = 1.0f - 2.0f * fabsf(q) * offset;
  return value > 0.0f ? value : 0.0f;
}

// d(filter value)/dQ: -2 sign(Q) offset where the value is positive, else 0 (outside the
// triangle and on its edge; at Q = 0 the subgradient 0 of |Q|).
CADENZA_HD float harmonic_filter_dq(float offset, float q) {
  if (harmonic_filter_value(offset, q) <= 0.0f) return 0.0f;
  return q > 0.0f ? -2.0f * offset : q < 0.0f ? 2.0f * offset : 0.0f;
}

}  // namespace cadenza
