// The audio front-end's parameters: what turns a batch of PCM into the model's input.
//
// Defaults are torchaudio's, as Won et al.'s models use them: periodic Hann, n_fft 512,
// hop 256, centred with reflect padding, power 2, HTK mel scale without normalisation,
// 10*log10(max(x, 1e-10)) with no top_db. librosa's convention is mel_scale slaney,
// mel_norm slaney, mel_filterbank librosa, top_db 80. Both are computed to float32
// rounding of their library.
//
// Type mfcc is the orthonormal DCT-II (norm='ortho') of the dB mel spectrogram over the
// mel axis, its first n_mfcc coefficients: torchaudio.transforms.MFCC(dct_type=2,
// norm='ortho', log_mels=False) and librosa.feature.mfcc(dct_type=2, norm='ortho').
// log must be db. Both libraries clip their dB at top_db 80 (torchaudio's MFCC fixes
// it, librosa's power_to_db defaults to it), so a config that matches them sets
// top_db: 80; the default 0 does not clip. Both take the top_db maximum over everything
// they are given, so only a batch of one clip (torchaudio: a (batch, 1, time) input)
// clips per example, as here. n_mfcc defaults to librosa's 20 (torchaudio's MFCC: 40).
#pragma once

#include <cstdint>
#include <string>

#include "host/core/tensor.hpp"

namespace cadenza {

struct FrontendSpec {
  std::string type = "mel";       // mel | stft | mfcc | waveform (the samples themselves)
  int n_fft = 512;
  int hop_length = 256;
  int win_length = 0;             // 0: n_fft; a shorter window is zero-padded centrally
  std::string window = "hann";    // hann (periodic, as torch.hann_window and librosa)
  bool center = true;             // pad n_fft/2 on both sides before framing
  std::string pad_mode = "reflect";  // reflect | constant
  double power = 2.0;             // 1: magnitude, 2: power
  int n_mels = 96;
  double f_min = 0.0;
  double f_max = 0.0;             // 0: the library's default, sample_rate // 2 for
                                  // torchaudio, sample_rate / 2 for librosa
  std::string mel_scale = "htk";  // htk | slaney
  std::string mel_norm = "none";  // none | slaney (area normalisation)
  // Whose filterbank construction to reproduce: torchaudio builds it in float32 from
  // torch.linspace(0, sample_rate // 2, n_fft/2+1) bin frequencies, librosa in float64
  // from np.fft.rfftfreq. Their roundings differ by up to ~3e-4 relative in mel outputs.
  // It also picks the mfcc DCT matrix: torchaudio's create_dct in float32, or the exact
  // DCT that librosa's scipy.fft.dct applies.
  std::string mel_filterbank = "torchaudio";  // torchaudio | librosa
  std::string log = "db";         // db | log1p | none
  // db: m*log10(max(x, amin)) - m*log10(max(amin, db_ref)) with m = 20 / power, i.e.
  // 10 log10 for power spectrograms and 20 log10 for magnitudes (both are decibels).
  double amin = 1e-10;
  double db_ref = 1.0;            // db: a fixed reference level
  double top_db = 0.0;            // db: > 0 clips each example to (max - top_db)
  double log1p_scale = 10000.0;   // log1p: log(1 + C*x), as Choi et al.
  int n_mfcc = 20;                // mfcc: coefficients kept, 1 to n_mels
};

// Where the model's input shape comes from, for a layer it does not fit: "the model input
// [16, 1, 128, 9] is 128 mel bands by 9 frames of 66048 samples (data.clip_seconds 2.9954
// s at 22050 Hz, features.hop_length 8192)".
std::string describe_model_input(const FrontendSpec& spec, int sample_rate, std::int64_t samples, const Shape& input);

}  // namespace cadenza
