// The CPU audio front-end: batched PCM to a (power or magnitude) STFT or mel
// spectrogram, optionally in dB or log(1 + C x), or to MFCC (the DCT of the dB mel
// spectrogram), reproducing torchaudio (Spectrogram / MelSpectrogram + AmplitudeToDB,
// MFCC) and librosa (stft / melspectrogram + power_to_db, feature.mfcc) to float32
// rounding, as frontend_spec.hpp describes.
//
// Invariants:
// - Layouts are row-major float32: pcm (batch, num_samples), out (batch, num_bins,
//   num_frames), filterbank (n_mels, n_fft/2 + 1), window (n_fft), DCT matrix (n_mfcc,
//   n_mels). The caller owns pcm and out; CpuSpectrogram owns its FFT plan, window,
//   filterbank and DCT matrix, fixed at construction for one (spec, sample_rate,
//   num_samples).
// - The FFT is float32 (FFTW's fftwf). The filterbank and the DCT matrix are built in
//   float32 or float64 as spec.mel_filterbank's library builds them (see
//   host/math/spectral_math.hpp).
// - compute() is const and thread-safe: concurrent calls on different data are allowed.
//   Its per-thread buffers are made on first use and kept for the next call (a pool, one
//   set per concurrent call), so repeated calls allocate nothing.
// - Invalid specs are rejected at construction with UserError naming `features.<key>`.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "host/features/frontend_spec.hpp"

struct fftwf_plan_s;  // FFTW's plan type (fftwf_plan is a pointer to it)

namespace cadenza {

// Throws UserError, naming the key and what is accepted, unless `spec` can turn clips of
// `num_samples` samples at `sample_rate` Hz into at least one frame.
void validate_frontend_spec(const FrontendSpec& spec, int sample_rate, int num_samples);

// The analysis window of length n_fft: a periodic Hann of win_length (0: n_fft) centred
// with (n_fft - win_length) / 2 zeros on the left, as torch.stft and librosa pad it.
// Expects a validated spec.
std::vector<float> stft_window(const FrontendSpec& spec);

// The mel filterbank (n_mels, n_fft/2 + 1) as spec.mel_filterbank's library builds it
// (torchaudio.functional.melscale_fbanks transposed, or librosa.filters.mel), with
// spec.f_max 0 meaning that library's default. Expects a validated spec of type mel or
// mfcc.
std::vector<float> mel_filterbank(const FrontendSpec& spec, int sample_rate);

// How many rows of mel_filterbank are all zero: filters so narrow that no FFT bin falls
// in them (n_mels too high for n_fft), whose band is silence whatever the input.
// torchaudio and librosa warn about these; the trainer does too.
int empty_mel_filters(const FrontendSpec& spec, int sample_rate);

// The MFCC DCT-II matrix (n_mfcc, n_mels), orthonormal rows, as spec.mel_filterbank's
// library applies it: torchaudio.functional.create_dct(n_mfcc, n_mels, 'ortho')
// transposed (float32), or the exact matrix of scipy.fft.dct(type=2, norm='ortho')
// (librosa.feature.mfcc) rounded to float32. Expects a validated spec of type mfcc.
std::vector<float> dct_matrix(const FrontendSpec& spec);

class CpuSpectrogram {
 public:
  // Validates spec, plans the FFT and builds window, filterbank and DCT matrix once for
  // clips of `num_samples` samples.
  CpuSpectrogram(const FrontendSpec& spec, int sample_rate, int num_samples);
  ~CpuSpectrogram();
  CpuSpectrogram(const CpuSpectrogram&) = delete;
  CpuSpectrogram& operator=(const CpuSpectrogram&) = delete;

  // Frames per clip: torch.stft's count, 1 + num_samples / hop when centred (even n_fft),
  // 1 + (num_samples - n_fft) / hop when not.
  int num_frames() const { return num_frames_; }
  // n_mels for type "mel", n_fft/2 + 1 for type "stft", n_mfcc for type "mfcc".
  int num_bins() const { return num_bins_; }

  // pcm: (batch, num_samples); out: (batch, num_bins, num_frames). Parallel over the
  // batch with OpenMP; top_db clips each example to its own maximum (for mfcc, of its
  // dB mel spectrogram, before the DCT).
  void compute(const float* pcm, int batch, float* out) const;

  // (n_mels, n_fft/2 + 1); empty for type "stft".
  const std::vector<float>& filterbank() const { return filterbank_; }

 private:
  struct Workspace;
  struct WorkspaceSet;  // one Workspace per OpenMP thread
  std::unique_ptr<WorkspaceSet> take_workspaces() const;
  void return_workspaces(std::unique_ptr<WorkspaceSet> set) const;
  void compute_one(const float* pcm, Workspace& workspace, float* out) const;
  // Log compression of one example's `count` values in place (top_db over all of them).
  void apply_log(float* example, std::size_t count) const;

  FrontendSpec spec_;
  int num_samples_;
  int num_frames_;
  int num_freqs_;  // n_fft/2 + 1
  int num_mels_;   // n_mels for types mel and mfcc, else 0
  int num_bins_;
  int pad_;  // samples of centre padding on each side (0 when not centred)
  std::vector<float> window_;
  std::vector<float> filterbank_;
  // Each filterbank row is zero outside [band_begin_[m], band_end_[m]); the projection
  // sums over that band only (the same sum as the dense product, without the zeros).
  std::vector<int> band_begin_;
  mutable std::mutex pool_mutex_;
  mutable std::vector<std::unique_ptr<WorkspaceSet>> pool_;
  std::vector<int> band_end_;
  std::vector<float> dct_;  // (n_mfcc, n_mels); empty unless type "mfcc"
  float db_multiplier_;  // 20 / power: 10 for power, 20 for magnitude spectrograms
  float reference_db_;  // db_multiplier log10(max(amin, db_ref)), rounded to float32
  fftwf_plan_s* plan_;
};

}  // namespace cadenza
