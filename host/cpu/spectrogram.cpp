// CpuSpectrogram: spec validation, window, filterbank and DCT matrix construction, and
// the batched STFT -> |X|^p -> mel -> log (-> DCT for mfcc) pipeline on FFTW (float32)
// with OpenMP over the batch.
//
// Invariants: the FFT plan is created and destroyed under fftw_planner_mutex() and
// executed with fftwf_execute_dft_r2c on per-call buffers from fftwf_alloc_* (so they
// have the plan's alignment); compute() allocates its buffers before the parallel region,
// which therefore neither allocates nor throws.
#include "host/cpu/spectrogram.hpp"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "host/core/error.hpp"
#include "host/math/spectral_math.hpp"

namespace cadenza {
namespace {

// FFTW's planner (plan creation and destruction) reads and writes global state and is
// not thread-safe, while executing an existing plan is. Every planner call in this file
// holds this mutex; it is the front-end's one process-wide object, because the state it
// guards is process-wide too.
std::mutex& fftw_planner_mutex() {
  static std::mutex mutex;
  return mutex;
}

struct FftwFree {
  void operator()(void* memory) const { fftwf_free(memory); }
};
template <typename T>
using FftwBuffer = std::unique_ptr<T[], FftwFree>;

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

MelScale mel_scale_of(const FrontendSpec& spec) {
  return spec.mel_scale == "slaney" ? MelScale::slaney : MelScale::htk;
}

int window_length_of(const FrontendSpec& spec) {
  return spec.win_length > 0 ? spec.win_length : spec.n_fft;
}

// spec.f_max, with 0 meaning the default of spec.mel_filterbank's library:
// float(sample_rate // 2) for torchaudio's MelSpectrogram, sample_rate / 2 for librosa.
double f_max_of(const FrontendSpec& spec, int sample_rate) {
  if (spec.f_max > 0) return spec.f_max;
  return spec.mel_filterbank == "librosa" ? sample_rate / 2.0
                                          : static_cast<double>(sample_rate / 2);
}

// torchaudio.functional.melscale_fbanks, transposed to (n_mels, n_freqs): float32
// throughout except hz_to_mel of f_min and f_max.
std::vector<float> torchaudio_mel_filterbank(const FrontendSpec& spec, int sample_rate) {
  const MelScale scale = mel_scale_of(spec);
  const int num_freqs = spec.n_fft / 2 + 1;
  const int num_corners = spec.n_mels + 2;
  const float mel_min = static_cast<float>(hz_to_mel(spec.f_min, scale));
  const float mel_max = static_cast<float>(hz_to_mel(f_max_of(spec, sample_rate), scale));
  const float nyquist = static_cast<float>(sample_rate / 2);

  std::vector<float> bin_hz(num_freqs);
  for (int k = 0; k < num_freqs; ++k) bin_hz[k] = torch_linspace_f32(0.0f, nyquist, num_freqs, k);
  std::vector<float> corner_hz(num_corners);
  for (int i = 0; i < num_corners; ++i) {
    corner_hz[i] = mel_to_hz_f32(torch_linspace_f32(mel_min, mel_max, num_corners, i), scale);
  }
  std::vector<float> filterbank(static_cast<std::size_t>(spec.n_mels) * num_freqs);
  for (int m = 0; m < spec.n_mels; ++m) {
    const float lower = corner_hz[m], center = corner_hz[m + 1], upper = corner_hz[m + 2];
    const float norm = slaney_area_norm(lower, upper);
    for (int k = 0; k < num_freqs; ++k) {
      float weight = mel_triangle_weight(bin_hz[k], lower, center, upper);
      if (spec.mel_norm == "slaney") weight *= norm;
      filterbank[static_cast<std::size_t>(m) * num_freqs + k] = weight;
    }
  }
  return filterbank;
}

// librosa.filters.mel: float64 throughout, the triangle rounded to float32 (librosa's
// weights array) before the float64 area norm, and rounded again.
std::vector<float> librosa_mel_filterbank(const FrontendSpec& spec, int sample_rate) {
  const MelScale scale = mel_scale_of(spec);
  const int num_freqs = spec.n_fft / 2 + 1;
  const int num_corners = spec.n_mels + 2;

  // np.fft.rfftfreq(n_fft, 1 / sr): k * (1 / (n_fft * (1 / sr))).
  const double bin_spacing = 1.0 / (spec.n_fft * (1.0 / sample_rate));
  std::vector<double> bin_hz(num_freqs);
  for (int k = 0; k < num_freqs; ++k) bin_hz[k] = k * bin_spacing;
  // np.linspace(mel_min, mel_max, n_mels + 2): i * step + start, the last point exact.
  const double mel_min = hz_to_mel(spec.f_min, scale);
  const double mel_max = hz_to_mel(f_max_of(spec, sample_rate), scale);
  const double mel_step = (mel_max - mel_min) / (num_corners - 1);
  std::vector<double> corner_hz(num_corners);
  for (int i = 0; i < num_corners; ++i) {
    const double mel = i == num_corners - 1 ? mel_max : i * mel_step + mel_min;
    corner_hz[i] = mel_to_hz(mel, scale);
  }
  std::vector<float> filterbank(static_cast<std::size_t>(spec.n_mels) * num_freqs);
  for (int m = 0; m < spec.n_mels; ++m) {
    const double lower = corner_hz[m], center = corner_hz[m + 1], upper = corner_hz[m + 2];
    const double norm = slaney_area_norm(lower, upper);
    for (int k = 0; k < num_freqs; ++k) {
      float weight = static_cast<float>(mel_triangle_weight(bin_hz[k], lower, center, upper));
      if (spec.mel_norm == "slaney") weight = static_cast<float>(weight * norm);
      filterbank[static_cast<std::size_t>(m) * num_freqs + k] = weight;
    }
  }
  return filterbank;
}

}  // namespace

void validate_frontend_spec(const FrontendSpec& spec, int sample_rate, int num_samples) {
  if (!(sample_rate > 0)) CADENZA_USER_ERROR("data.sample_rate: expected > 0, got " << sample_rate);
  if (!(num_samples > 0)) {
    CADENZA_USER_ERROR("data.clip_seconds: a clip must hold at least one sample at "
                       << sample_rate << " Hz, got " << num_samples);
  }
  if (spec.type != "mel" && spec.type != "stft" && spec.type != "mfcc") {
    CADENZA_USER_ERROR("features.type: expected mel, stft or mfcc, got '" << spec.type << "'");
  }
  if (!(spec.n_fft >= 2)) CADENZA_USER_ERROR("features.n_fft: expected >= 2, got " << spec.n_fft);
  if (!(spec.hop_length > 0)) {
    CADENZA_USER_ERROR("features.hop_length: expected > 0, got " << spec.hop_length);
  }
  if (!(spec.win_length >= 0 && spec.win_length <= spec.n_fft)) {
    CADENZA_USER_ERROR("features.win_length: expected 0 (n_fft) or 1 to features.n_fft = "
                       << spec.n_fft << ", got " << spec.win_length);
  }
  if (spec.window != "hann") {
    CADENZA_USER_ERROR("features.window: expected hann, got '" << spec.window << "'");
  }
  if (spec.pad_mode != "reflect" && spec.pad_mode != "constant") {
    CADENZA_USER_ERROR("features.pad_mode: expected reflect or constant, got '" << spec.pad_mode
                                                                                << "'");
  }
  if (!(spec.power > 0) || !std::isfinite(spec.power)) {
    CADENZA_USER_ERROR("features.power: expected a finite value > 0 (1: magnitude, 2: power), got "
                       << spec.power);
  }
  if (spec.mel_scale != "htk" && spec.mel_scale != "slaney") {
    CADENZA_USER_ERROR("features.mel_scale: expected htk or slaney, got '" << spec.mel_scale
                                                                           << "'");
  }
  if (spec.mel_norm != "none" && spec.mel_norm != "slaney") {
    CADENZA_USER_ERROR("features.mel_norm: expected none or slaney, got '" << spec.mel_norm << "'");
  }
  if (spec.mel_filterbank != "torchaudio" && spec.mel_filterbank != "librosa") {
    CADENZA_USER_ERROR("features.mel_filterbank: expected torchaudio or librosa, got '"
                       << spec.mel_filterbank << "'");
  }
  if (spec.log != "db" && spec.log != "log1p" && spec.log != "none") {
    CADENZA_USER_ERROR("features.log: expected db, log1p or none, got '" << spec.log << "'");
  }
  if (!(spec.amin > 0)) CADENZA_USER_ERROR("features.amin: expected > 0, got " << spec.amin);
  if (!(spec.db_ref > 0)) CADENZA_USER_ERROR("features.db_ref: expected > 0, got " << spec.db_ref);
  if (!(spec.top_db >= 0)) {
    CADENZA_USER_ERROR("features.top_db: expected >= 0 (0: no clipping), got " << spec.top_db);
  }
  if (!(spec.log1p_scale > 0)) {
    CADENZA_USER_ERROR("features.log1p_scale: expected > 0, got " << spec.log1p_scale);
  }
  if (spec.type != "stft") {  // mel and mfcc
    if (!(spec.n_mels > 0))
      CADENZA_USER_ERROR("features.n_mels: expected > 0, got " << spec.n_mels);
    const double nyquist = sample_rate / 2.0;
    if (!(spec.f_max >= 0 && spec.f_max <= nyquist)) {
      CADENZA_USER_ERROR(
          "features.f_max: expected 0 (sample_rate / 2) or a frequency in Hz up "
          "to sample_rate / 2 = "
          << nyquist << " (data.sample_rate " << sample_rate << "), got " << spec.f_max);
    }
    const double f_max = f_max_of(spec, sample_rate);
    if (!(spec.f_min >= 0 && spec.f_min < f_max)) {
      CADENZA_USER_ERROR("features.f_min: expected 0 <= f_min < f_max = " << f_max << " Hz, got "
                                                                          << spec.f_min);
    }
  }
  if (spec.type == "mfcc") {
    if (!(spec.n_mfcc > 0 && spec.n_mfcc <= spec.n_mels)) {
      CADENZA_USER_ERROR("features.n_mfcc: expected 1 to features.n_mels = "
                         << spec.n_mels << " for type mfcc, got " << spec.n_mfcc);
    }
    if (spec.log != "db") {
      CADENZA_USER_ERROR("features.log: type mfcc needs db (MFCC is the DCT of the dB mel "
                         "spectrogram, as in torchaudio and librosa), got '"
                         << spec.log << "'");
    }
  }
  const int pad = spec.n_fft / 2;
  if (spec.center && spec.pad_mode == "reflect" && !(num_samples > pad)) {
    CADENZA_USER_ERROR("features.pad_mode: reflect padding by n_fft/2 = "
                       << pad << " samples needs clips longer than " << pad << " samples, got "
                       << num_samples
                       << " (data.clip_seconds * data.sample_rate); use features.pad_mode "
                          "constant or a smaller features.n_fft");
  }
  if (!spec.center && !(num_samples >= spec.n_fft)) {
    CADENZA_USER_ERROR("features.center: false needs clips of at least n_fft = "
                       << spec.n_fft << " samples, got " << num_samples
                       << " (data.clip_seconds * data.sample_rate); use features.center true "
                          "or a smaller features.n_fft");
  }
}

std::vector<float> stft_window(const FrontendSpec& spec) {
  const int length = window_length_of(spec);
  const int left = (spec.n_fft - length) / 2;
  std::vector<float> window(spec.n_fft, 0.0f);
  for (int n = 0; n < length; ++n) window[left + n] = static_cast<float>(hann_periodic(n, length));
  return window;
}

std::vector<float> mel_filterbank(const FrontendSpec& spec, int sample_rate) {
  return spec.mel_filterbank == "librosa" ? librosa_mel_filterbank(spec, sample_rate)
                                          : torchaudio_mel_filterbank(spec, sample_rate);
}

int empty_mel_filters(const FrontendSpec& spec, int sample_rate) {
  const std::vector<float> bank = mel_filterbank(spec, sample_rate);
  const std::size_t bins = static_cast<std::size_t>(spec.n_fft / 2 + 1);
  int empty = 0;
  for (std::size_t m = 0; m < static_cast<std::size_t>(spec.n_mels); ++m)
    empty += std::all_of(bank.begin() + m * bins, bank.begin() + (m + 1) * bins, [](float w) { return w == 0.0f; });
  return empty;
}

std::vector<float> dct_matrix(const FrontendSpec& spec) {
  const bool librosa = spec.mel_filterbank == "librosa";
  std::vector<float> matrix(static_cast<std::size_t>(spec.n_mfcc) * spec.n_mels);
  for (int k = 0; k < spec.n_mfcc; ++k) {
    for (int n = 0; n < spec.n_mels; ++n) {
      matrix[static_cast<std::size_t>(k) * spec.n_mels + n] =
          librosa ? static_cast<float>(dct2_ortho(k, n, spec.n_mels))
                  : dct2_ortho_f32(k, n, spec.n_mels);
    }
  }
  return matrix;
}

// Buffers of one thread of compute(): the padded clip, one windowed frame, its spectrum,
// (for mel and mfcc) the power spectrogram, (num_frames, num_freqs) row-major, and (for
// mfcc) the log-mel spectrogram, (n_mels, num_frames) row-major.
struct CpuSpectrogram::Workspace {
  std::vector<float> padded;
  FftwBuffer<float> frame;
  FftwBuffer<fftwf_complex> spectrum;
  std::vector<float> power;
  std::vector<float> log_mel;
};

CpuSpectrogram::CpuSpectrogram(const FrontendSpec& spec, int sample_rate, int num_samples)
    : spec_(spec), num_samples_(num_samples), plan_(nullptr) {
  validate_frontend_spec(spec, sample_rate, num_samples);
  num_frames_ = stft_num_frames(num_samples, spec.n_fft, spec.hop_length, spec.center);
  num_freqs_ = spec.n_fft / 2 + 1;
  num_mels_ = spec.type == "stft" ? 0 : spec.n_mels;
  num_bins_ = spec.type == "mel" ? spec.n_mels : spec.type == "mfcc" ? spec.n_mfcc : num_freqs_;
  pad_ = spec.center ? spec.n_fft / 2 : 0;
  window_ = stft_window(spec);
  db_multiplier_ = static_cast<float>(db_multiplier(spec.power));
  reference_db_ = static_cast<float>(db_of_reference(spec.amin, spec.db_ref, db_multiplier(spec.power)));
  if (num_mels_ > 0) {
    filterbank_ = mel_filterbank(spec, sample_rate);
    band_begin_.assign(spec.n_mels, 0);
    band_end_.assign(spec.n_mels, 0);
    for (int m = 0; m < spec.n_mels; ++m) {
      const float* row = filterbank_.data() + static_cast<std::size_t>(m) * num_freqs_;
      int begin = 0, end = num_freqs_;
      while (begin < end && row[begin] == 0.0f) ++begin;
      while (end > begin && row[end - 1] == 0.0f) --end;
      band_begin_[m] = begin;
      band_end_[m] = end;
    }
  }
  if (spec.type == "mfcc") dct_ = dct_matrix(spec);

  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  FftwBuffer<float> frame(fftwf_alloc_real(spec.n_fft));
  FftwBuffer<fftwf_complex> spectrum(fftwf_alloc_complex(num_freqs_));
  CADENZA_CHECK(frame && spectrum, "out of memory for FFT buffers of n_fft " << spec.n_fft);
  plan_ = fftwf_plan_dft_r2c_1d(spec.n_fft, frame.get(), spectrum.get(), FFTW_ESTIMATE);
  CADENZA_CHECK(plan_ != nullptr, "FFTW could not plan a real FFT of size " << spec.n_fft);
}

CpuSpectrogram::~CpuSpectrogram() {
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  fftwf_destroy_plan(plan_);
}

struct CpuSpectrogram::WorkspaceSet {
  std::vector<Workspace> per_thread;
};

std::unique_ptr<CpuSpectrogram::WorkspaceSet> CpuSpectrogram::take_workspaces() const {
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    while (!pool_.empty()) {
      std::unique_ptr<WorkspaceSet> set = std::move(pool_.back());
      pool_.pop_back();
      if (set->per_thread.size() >= static_cast<std::size_t>(max_threads())) return set;
    }
  }
  auto set = std::make_unique<WorkspaceSet>();
  set->per_thread.resize(static_cast<std::size_t>(max_threads()));
  for (Workspace& workspace : set->per_thread) {
    workspace.padded.assign(static_cast<std::size_t>(num_samples_) + 2 * pad_, 0.0f);
    workspace.frame.reset(fftwf_alloc_real(spec_.n_fft));
    workspace.spectrum.reset(fftwf_alloc_complex(num_freqs_));
    CADENZA_CHECK(workspace.frame && workspace.spectrum, "out of memory for FFT buffers of n_fft " << spec_.n_fft);
    if (num_mels_ > 0) workspace.power.resize(static_cast<std::size_t>(num_frames_) * num_freqs_);
    if (!dct_.empty()) workspace.log_mel.resize(static_cast<std::size_t>(num_mels_) * num_frames_);
  }
  return set;
}

void CpuSpectrogram::return_workspaces(std::unique_ptr<WorkspaceSet> set) const {
  std::lock_guard<std::mutex> lock(pool_mutex_);
  pool_.push_back(std::move(set));
}

void CpuSpectrogram::compute(const float* pcm, int batch, float* out) const {
  CADENZA_CHECK(batch >= 0, "negative batch " << batch);
  if (batch == 0) return;
  const int threads = std::min(batch, max_threads());
  std::unique_ptr<WorkspaceSet> set = take_workspaces();
  std::vector<Workspace>& workspaces = set->per_thread;
  const std::size_t in_stride = static_cast<std::size_t>(num_samples_);
  const std::size_t out_stride = static_cast<std::size_t>(num_bins_) * num_frames_;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int b = 0; b < batch; ++b) {
    compute_one(pcm + b * in_stride, workspaces[thread_index()], out + b * out_stride);
  }
  return_workspaces(std::move(set));
}

void CpuSpectrogram::compute_one(const float* pcm, Workspace& workspace, float* out) const {
  // The clip with centre padding: numpy/torch "reflect" mirrors about the edge sample
  // without repeating it; "constant" leaves the zeros the buffer was allocated with.
  float* padded = workspace.padded.data();
  std::copy(pcm, pcm + num_samples_, padded + pad_);
  if (pad_ > 0 && spec_.pad_mode == "reflect") {
    for (int i = 1; i <= pad_; ++i) {
      padded[pad_ - i] = pcm[i];
      padded[pad_ + num_samples_ - 1 + i] = pcm[num_samples_ - 1 - i];
    }
  }

  const bool mel = num_mels_ > 0;
  // The spectrogram before any DCT, (num_mels or num_freqs, num_frames): out itself,
  // except for mfcc, whose log-mel spectrogram waits in the workspace for the DCT.
  const bool mfcc = !dct_.empty();
  float* spectrogram = mfcc ? workspace.log_mel.data() : out;
  const float power = static_cast<float>(spec_.power);
  float* frame = workspace.frame.get();
  fftwf_complex* spectrum = workspace.spectrum.get();
  for (int t = 0; t < num_frames_; ++t) {
    const float* samples = padded + static_cast<std::size_t>(t) * spec_.hop_length;
    for (int j = 0; j < spec_.n_fft; ++j) frame[j] = window_[j] * samples[j];
    fftwf_execute_dft_r2c(plan_, frame, spectrum);
    if (mel) {
      float* power_row = workspace.power.data() + static_cast<std::size_t>(t) * num_freqs_;
      for (int k = 0; k < num_freqs_; ++k) {
        power_row[k] = spectral_power(spectrum[k][0], spectrum[k][1], power);
      }
    } else {
      for (int k = 0; k < num_freqs_; ++k) {
        spectrogram[static_cast<std::size_t>(k) * num_frames_ + t] =
            spectral_power(spectrum[k][0], spectrum[k][1], power);
      }
    }
  }

  if (mel) {
    // spectrogram (n_mels, frames) = filterbank (n_mels, n_freqs) x power^T, each row
    // summed in float32 over its triangle's band.
    for (int t = 0; t < num_frames_; ++t) {
      const float* power_row = workspace.power.data() + static_cast<std::size_t>(t) * num_freqs_;
      for (int m = 0; m < num_mels_; ++m) {
        const float* weights = filterbank_.data() + static_cast<std::size_t>(m) * num_freqs_;
        float sum = 0.0f;
        for (int k = band_begin_[m]; k < band_end_[m]; ++k) sum += weights[k] * power_row[k];
        spectrogram[static_cast<std::size_t>(m) * num_frames_ + t] = sum;
      }
    }
  }
  const int rows = mel ? num_mels_ : num_freqs_;
  apply_log(spectrogram, static_cast<std::size_t>(rows) * num_frames_);

  if (mfcc) {
    // out (n_mfcc, frames) = dct (n_mfcc, n_mels) x log_mel (n_mels, frames), each sum
    // over the mels in float64 and rounded once. The libraries sum in float32 (torchaudio
    // a matmul, librosa an FFT), each rounding its own way: up to ~5e-4 absolute on
    // coefficients of frames near -100 dB, where c0 is ~ -850. The exact sum is as close
    // to either as can be. A plain loop rather than OpenBLAS: this runs inside compute()'s
    // parallel loop over the batch.
    for (int c = 0; c < num_bins_; ++c) {
      const float* weights = dct_.data() + static_cast<std::size_t>(c) * num_mels_;
      for (int t = 0; t < num_frames_; ++t) {
        double sum = 0.0;
        for (int m = 0; m < num_mels_; ++m) {
          sum += double(weights[m]) * spectrogram[static_cast<std::size_t>(m) * num_frames_ + t];
        }
        out[static_cast<std::size_t>(c) * num_frames_ + t] = static_cast<float>(sum);
      }
    }
  }
}

void CpuSpectrogram::apply_log(float* example, std::size_t count) const {
  if (spec_.log == "log1p") {
    const float scale = static_cast<float>(spec_.log1p_scale);
    for (std::size_t i = 0; i < count; ++i) example[i] = log1p_compress(example[i], scale);
  } else if (spec_.log == "db") {
    const float amin = static_cast<float>(spec_.amin);
    float max_db = -INFINITY;
    for (std::size_t i = 0; i < count; ++i) {
      example[i] = to_db(example[i], amin, db_multiplier_, reference_db_);
      max_db = std::max(max_db, example[i]);
    }
    if (spec_.top_db > 0) {
      const float top_db = static_cast<float>(spec_.top_db);
      for (std::size_t i = 0; i < count; ++i) {
        example[i] = clip_db_below_peak(example[i], max_db, top_db);
      }
    }
  }
}

}  // namespace cadenza
