// Time-stretching and pitch-shifting of a mono clip with the Rubber Band library (R3
// "finer" engine, offline mode), for offline augmentation.
//
// Invariants:
// - The output has exactly stretched_length(n, rate) = round(n / rate) samples (half away
//   from zero, the rule Rubber Band uses for its own target length). To get there the input
//   is followed by a quarter second of silence and the output is cut at that length, so
//   every clip, however short, has that length and its last samples are what the clip
//   followed by silence stretches to. Without the silence Rubber Band returns nothing at
//   all for clips shorter than a few hops (up to ~200 samples at 16 kHz).
// - Deterministic: the same arguments give the same output bytes, on any number of threads
//   and cores. Rubber Band's offline R3 engine runs on the calling thread only, and Debian's
//   build uses its built-in FFT and resampler (no FFTW plans picked by timing).
// - Thread-safe: each call makes and owns its stretcher, so calls from many threads at once
//   are safe.
// - Library code stays quiet: Rubber Band's messages go to a logger of this call, never to
//   stderr, and any error or warning it reports becomes an Error.
// - Arguments outside the ranges below throw UserError naming the argument. Rubber Band
//   documents 8-192 kHz; the rate and pitch ranges (each a factor of 4 either way) are wider
//   than augmentation needs, and their corners are tested to keep length and pitch. Far
//   outside them Rubber Band degrades silently (at rate 0.01 it cannot drain its output
//   buffer and returns a third of the clip).
#pragma once

#include <cstddef>
#include <vector>

namespace cadenza {

// Accepted ranges of stretch_and_shift()'s arguments (inclusive).
inline constexpr int kTimePitchMinSampleRate = 8000;
inline constexpr int kTimePitchMaxSampleRate = 192000;
inline constexpr double kTimePitchMinRate = 0.25;
inline constexpr double kTimePitchMaxRate = 4.0;
inline constexpr double kTimePitchMaxSemitones = 24.0;  // either way

// Number of samples stretch_and_shift() returns for `num_samples` input samples at `rate`:
// round(num_samples / rate). `rate` must be positive and finite.
std::size_t stretched_length(std::size_t num_samples, double rate);

// Returns `samples` (mono, `sample_rate` Hz) played `rate` times as fast (rate > 1: shorter;
// output length round(n / rate)) and shifted by `semitones` (pitch scale 2^(semitones/12)),
// with Rubber Band's offline (studio) mode, high-quality settings suited to music. Formants
// move with the pitch (as when an instrument is retuned or a recording resampled). Empty
// input gives empty output. Throws UserError for a sample rate, rate or semitone count
// outside the ranges above, for non-finite arguments and for non-finite samples; Error if
// Rubber Band reports a problem.
std::vector<float> stretch_and_shift(const std::vector<float>& samples, int sample_rate,
                                     double rate, double semitones);

}  // namespace cadenza
