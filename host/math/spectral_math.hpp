// Scalar math of the audio front-end, shared by the CPU spectrogram
// (host/cpu/spectrogram.cpp) and the CUDA kernels: the STFT frame count, the periodic
// Hann window, the HTK and Slaney mel scales, mel filterbank weights, |X|^p, dB,
// log(1 + C x) and the orthonormal DCT-II of MFCC.
//
// Invariants:
// - Every function is CADENZA_HD: scalars in, a scalar out; no allocation, exceptions,
//   strings or containers, so it compiles under nvcc as __host__ __device__. Callers
//   validate arguments first (frontend_spec.hpp's rules, checked by
//   validate_frontend_spec in host/cpu/spectrogram.hpp); nothing here checks them.
// - The formulas are those of torchaudio.functional (0.13) and librosa (0.11),
//   operation for operation and in the same precision, because the filterbank's float32
//   rounding is visible in the output at the 1e-4 level. Where the two libraries round
//   differently the function's name says whose rounding it reproduces:
//     * librosa builds the filterbank in float64 (bin frequencies from np.fft.rfftfreq,
//       mel points from np.linspace) and rounds the weights to float32 at the end;
//     * torchaudio builds it in float32 tensors (torch.linspace of bin frequencies and
//       of mel points, _mel_to_hz, slopes and area norm all in float32), the _f32
//       functions below; only hz_to_mel of f_min and f_max is float64 (Python floats).
//   The MFCC DCT matrix likewise: librosa's scipy.fft.dct is the exact transform (float64
//   here, rounded once), torchaudio's create_dct a float32 tensor (dct2_ortho_f32).
// - Frequencies are in Hz, mels in the chosen scale's units.
#pragma once

#include <cmath>

#include "host/math/hd.hpp"

namespace cadenza {

enum class MelScale { htk, slaney };

// Frames torch.stft (and librosa.stft) produce from `num_samples` samples: centring
// pads n_fft/2 (integer division) on both sides. Without centring the caller guarantees
// num_samples >= n_fft.
CADENZA_HD int stft_num_frames(int num_samples, int n_fft, int hop_length, bool center) {
  const int padded = center ? num_samples + 2 * (n_fft / 2) : num_samples;
  return 1 + (padded - n_fft) / hop_length;
}

// Periodic Hann window value w[n] = 0.5 - 0.5 cos(2 pi n / length), 0 <= n < length: the
// first `length` points of a symmetric window of length + 1, as torch.hann_window
// (periodic=True) and scipy.signal.get_window("hann", fftbins=True). float64; torch
// evaluates it in float32 (within a few float32 ulps of this).
CADENZA_HD double hann_periodic(int n, int length) {
  const double two_pi = 6.283185307179586476925286766559;
  return 0.5 - 0.5 * cos(two_pi * static_cast<double>(n) / static_cast<double>(length));
}

// Constants of the Slaney (Auditory Toolbox) scale: linear below 1 kHz at 200/3 Hz per
// mel, logarithmic above with 27 mels per factor 6.4. min_log_mel is evaluated as both
// libraries do, (1000 - 0) / (200/3) = 14.999999999999998 in float64.
struct SlaneyMel {
  static constexpr double hz_per_mel = 200.0 / 3.0;
  static constexpr double min_log_hz = 1000.0;
  static constexpr double min_log_mel = min_log_hz / hz_per_mel;
  CADENZA_HD static double log_step() { return log(6.4) / 27.0; }
};

// Hz to mel in float64, as torchaudio.functional's _hz_to_mel and librosa.hz_to_mel.
// HTK: 2595 log10(1 + f / 700), so 1000 Hz is 1000.0 mel (to 1e-4).
// Slaney: f / (200/3) below 1000 Hz, 15 + ln(f / 1000) / (ln(6.4) / 27) above.
CADENZA_HD double hz_to_mel(double hz, MelScale scale) {
  if (scale == MelScale::htk) return 2595.0 * log10(1.0 + hz / 700.0);
  if (hz >= SlaneyMel::min_log_hz) {
    return SlaneyMel::min_log_mel + log(hz / SlaneyMel::min_log_hz) / SlaneyMel::log_step();
  }
  return hz / SlaneyMel::hz_per_mel;
}

// The inverse of hz_to_mel in float64, as librosa.mel_to_hz.
CADENZA_HD double mel_to_hz(double mel, MelScale scale) {
  if (scale == MelScale::htk) return 700.0 * (pow(10.0, mel / 2595.0) - 1.0);
  if (mel >= SlaneyMel::min_log_mel) {
    return SlaneyMel::min_log_hz * exp(SlaneyMel::log_step() * (mel - SlaneyMel::min_log_mel));
  }
  return SlaneyMel::hz_per_mel * mel;
}

// torchaudio's _mel_to_hz on a float32 tensor: every operation rounds to float32 and the
// Python constants are rounded to float32 first, as torch does for a float32 tensor and a
// Python number. pow and exp are evaluated in float64 and rounded once; torch's
// vectorised SLEEF versions are accurate to 1 ulp, so now and then a value differs from
// torchaudio's by one float32 ulp.
CADENZA_HD float mel_to_hz_f32(float mel, MelScale scale) {
  if (scale == MelScale::htk) {
    const float exponent = mel / 2595.0f;
    const float ratio = static_cast<float>(pow(10.0, static_cast<double>(exponent)));
    return 700.0f * (ratio - 1.0f);
  }
  const float min_log_mel = static_cast<float>(SlaneyMel::min_log_mel);
  if (mel >= min_log_mel) {
    const float exponent = static_cast<float>(SlaneyMel::log_step()) * (mel - min_log_mel);
    return static_cast<float>(SlaneyMel::min_log_hz) *
           static_cast<float>(exp(static_cast<double>(exponent)));
  }
  return static_cast<float>(SlaneyMel::hz_per_mel) * mel;
}

// One point of torch.linspace's float32 counting from either end, with the fused
// multiply-add its compiled kernel uses: start + step*i in the first half,
// end - step*(steps-1-i) in the second.
CADENZA_HD float torch_linspace_point_f32(float start, float end, float step, int steps,
                                          int index) {
  if (index < steps / 2) return fmaf(step, static_cast<float>(index), start);
  return fmaf(-step, static_cast<float>(steps - 1 - index), end);
}

// torch.linspace(start, end, steps)[index] in float32 as torch 1.13's CPU kernel (AVX2
// build, 8-lane vectors) computes it; steps >= 2. step = (end - start) / (steps - 1).
// The kernel's vectorised part covers whole blocks of 16 indices, taking each 8-lane
// vector's first point and adding lane*step (two roundings); the tail is per point.
// These roundings move mel points by a float32 ulp, which moves mel outputs by up to a
// few 1e-4 relative, so they are reproduced rather than computed exactly.
CADENZA_HD float torch_linspace_f32(float start, float end, int steps, int index) {
  const float step = (end - start) / static_cast<float>(steps - 1);
  const int lanes = 8;
  const int vectorised_end = steps - steps % (2 * lanes);
  if (index >= vectorised_end) return torch_linspace_point_f32(start, end, step, steps, index);
  const int lane = index % lanes;
  const float lane_start = torch_linspace_point_f32(start, end, step, steps, index - lane);
  // lane * step rounded to float32 on its own (the double product is exact), so that a
  // compiler contracting multiply-adds cannot fuse it into the sum below.
  const float lane_offset = static_cast<float>(static_cast<double>(lane) * step);
  return lane_start + lane_offset;
}

// The weight of a triangular mel filter with corners lower < center < upper at
// frequency `freq`: min of the rising and falling ramps, floored at 0, evaluated as
// torchaudio's _create_triangular_filterbank and librosa.filters.mel do (the ramps
// divide by the corner differences). Real is float (torchaudio) or double (librosa).
template <typename Real>
CADENZA_HD Real mel_triangle_weight(Real freq, Real lower, Real center, Real upper) {
  const Real rising = (freq - lower) / (center - lower);
  const Real falling = (upper - freq) / (upper - center);
  const Real weight = falling < rising ? falling : rising;
  return weight > Real(0) ? weight : Real(0);
}

// Slaney area normalisation of a filter with outer corners lower and upper: its weights
// are multiplied by 2 / (upper - lower), so each triangle has unit area in Hz.
template <typename Real>
CADENZA_HD Real slaney_area_norm(Real lower, Real upper) {
  return Real(2) / (upper - lower);
}

// |X|^power of one STFT bin. Power 2 is re^2 + im^2 and power 1 is hypot(re, im); the
// libraries square hypot, which agrees to about 1 float32 ulp.
CADENZA_HD float spectral_power(float re, float im, float power) {
  if (power == 2.0f) return re * re + im * im;
  const float magnitude = hypotf(re, im);
  return power == 1.0f ? magnitude : powf(magnitude, power);
}

// The dB multiplier of a spectrogram of |X|^power: 20 / power, so that both a power
// spectrogram (10 log10 x, librosa.power_to_db, AmplitudeToDB('power')) and a magnitude
// one (20 log10 x, librosa.amplitude_to_db, AmplitudeToDB('magnitude')) are in decibels.
CADENZA_HD double db_multiplier(double power) { return 20.0 / power; }

// The dB value of the reference: multiplier log10(max(amin, ref)), float64 as both
// libraries evaluate it (a Python number); to_db subtracts it (rounded to float32).
CADENZA_HD double db_of_reference(double amin, double ref, double multiplier) {
  return multiplier * log10(amin > ref ? amin : ref);
}

// multiplier log10(max(x, amin)) - reference_db in float32, as torchaudio's
// amplitude_to_DB and librosa's power_to_db before their top_db clipping.
CADENZA_HD float to_db(float x, float amin, float multiplier, float reference_db) {
  return multiplier * log10f(fmaxf(x, amin)) - reference_db;
}

// top_db clipping: a dB value raised to at least the example's max_db - top_db.
CADENZA_HD float clip_db_below_peak(float db, float max_db, float top_db) {
  return fmaxf(db, max_db - top_db);
}

// log(1 + scale * x), the compression of Choi et al. (scale 10000).
CADENZA_HD float log1p_compress(float x, float scale) { return log1pf(scale * x); }

// Element (k, n) of the orthonormal DCT-II of length `size` (norm='ortho'):
// sqrt(2 / size) cos(pi / size (n + 1/2) k), row k = 0 further scaled by 1/sqrt(2), so
// that the rows are orthonormal. Coefficient k of a vector x is sum_n D(k, n) x[n].
// float64: the exact matrix of scipy.fft.dct(x, type=2, norm='ortho'), which
// librosa.feature.mfcc applies along the mel axis.
CADENZA_HD double dct2_ortho(int k, int n, int size) {
  const double pi = 3.14159265358979323846264338327950288;
  const double scale = k == 0 ? sqrt(1.0 / size) : sqrt(2.0 / size);
  return scale * cos(pi / size * (n + 0.5) * k);
}

// dct2_ortho as torchaudio.functional.create_dct(n_mfcc, size, 'ortho') builds it, on
// float32 tensors: the angle float32(pi / size) * (n + 0.5) * k rounded at each step,
// its cosine, then row 0 times float32(1 / sqrt(2)) and every row times
// float32(sqrt(2 / size)). The rounded angle (tens to hundreds of radians at high
// orders) is off by a few of its float32 ulps, which moves elements by up to ~4e-6 from
// dct2_ortho at size 96, so it is reproduced. cos is evaluated in float64 and rounded
// once; torch's SLEEF cosf is accurate to 1 ulp, so now and then an element differs from
// torchaudio's by one float32 ulp.
CADENZA_HD float dct2_ortho_f32(int k, int n, int size) {
  const double pi = 3.14159265358979323846264338327950288;
  const float step = static_cast<float>(pi / size);
  const float center = static_cast<float>(n) + 0.5f;
  const float phase = step * center;
  const float angle = phase * static_cast<float>(k);
  float value = static_cast<float>(cos(static_cast<double>(angle)));
  if (k == 0) value *= static_cast<float>(1.0 / sqrt(2.0));
  return value * static_cast<float>(sqrt(2.0 / size));
}

}  // namespace cadenza
