// On-line augmentation on the CPU: augment_waveform (shift, gain, noise at a drawn SNR) and
// mask_spectrogram (SpecAugment time and frequency masks). The draws and the per-sample
// math are host/math/augment_math.hpp's, shared with the CUDA kernels; the keys are the
// step values'.
//
// Invariants: one OpenMP iteration per example (row); everything a row computes depends
// only on (key, row) and the row's values, so results do not depend on the thread count.
// Row sums (the RMS before noise, the mean before masking) are taken in double, in index
// order. augment_waveform writes `out` with `=` and never reads it (out must not alias pcm);
// mask_spectrogram works in place.
#include <cmath>

#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/augment_math.hpp"

namespace cadenza::cpu {

void augment_waveform(const WaveformAugment& a, const Tensor& step_values, const Tensor& pcm, Tensor& out) {
  const std::uint64_t key = read_step_values(step_values, "augment_waveform").waveform_augment_key;
  CADENZA_CHECK(pcm.shape().rank() == 2 && out.shape() == pcm.shape(),
                "augment_waveform: pcm " << pcm.shape().str() << ", out " << out.shape().str());
  CADENZA_CHECK(pcm.numel() == 0 || pcm.raw() != out.raw(), "augment_waveform: out must not alias pcm");
  CADENZA_CHECK(a.max_shift >= 0 && a.gain_db_min <= a.gain_db_max && a.snr_db_min <= a.snr_db_max,
                "augment_waveform: max_shift " << a.max_shift << ", gain [" << a.gain_db_min << ", "
                                               << a.gain_db_max << "] dB, snr [" << a.snr_db_min << ", "
                                               << a.snr_db_max << "] dB");
  const std::int64_t rows = pcm.dim(0), n = pcm.dim(1);
  if (n == 0) return;
#pragma omp parallel for schedule(static)
  for (std::int64_t b = 0; b < rows; ++b) {
    const WaveformRowPlan plan = waveform_row_plan(a, key, a.first_row + b);
    const float* in = pcm.f32() + b * n;
    float* y = out.f32() + b * n;
    for (std::int64_t i = 0; i < n; ++i) y[i] = shifted_gained_sample(in, n, plan, i);
    if (!plan.noise) continue;
    double squares = 0.0;
    for (std::int64_t i = 0; i < n; ++i) squares += double(y[i]) * y[i];
    const float sigma = noise_sigma(std::sqrt(squares / double(n)), plan.snr_db);
    for (std::int64_t i = 0; i < n; ++i) y[i] += sigma * noise_value(key, a.first_row + b, i);
  }
}

void mask_spectrogram(const SpectrogramMask& m, const Tensor& step_values, Tensor& features) {
  const std::uint64_t key = read_step_values(step_values, "mask_spectrogram").spectrogram_mask_key;
  CADENZA_CHECK(features.shape().rank() == 4, "mask_spectrogram: features " << features.shape().str()
                                                                            << ", expected (B, C, F, T)");
  CADENZA_CHECK(m.time_masks >= 0 && m.max_time_width >= 0 && m.freq_masks >= 0 && m.max_freq_width >= 0,
                "mask_spectrogram: " << m.time_masks << " time masks of up to " << m.max_time_width << ", "
                                     << m.freq_masks << " frequency masks of up to " << m.max_freq_width);
  const std::int64_t rows = features.dim(0), channels = features.dim(1);
  const int bins = static_cast<int>(features.dim(2)), frames = static_cast<int>(features.dim(3));
  const std::int64_t per_row = channels * bins * frames;
  if (per_row == 0 || m.time_masks + m.freq_masks == 0) return;
#pragma omp parallel for schedule(static)
  for (std::int64_t b = 0; b < rows; ++b) {
    float* x = features.f32() + b * per_row;
    double sum = 0.0;
    for (std::int64_t i = 0; i < per_row; ++i) sum += x[i];
    const float mean = static_cast<float>(sum / double(per_row));
    for (int k = 0; k < m.time_masks; ++k) {
      const MaskSpan s = mask_span(key, m.first_row + b, AugmentStream::time_masks, k, frames, m.max_time_width);
      for (std::int64_t cf = 0; cf < channels * bins; ++cf)
        for (int t = s.start; t < s.start + s.width; ++t) x[cf * frames + t] = mean;
    }
    for (int k = 0; k < m.freq_masks; ++k) {
      const MaskSpan s = mask_span(key, m.first_row + b, AugmentStream::freq_masks, k, bins, m.max_freq_width);
      for (std::int64_t c = 0; c < channels; ++c)
        for (int f = s.start; f < s.start + s.width; ++f)
          for (int t = 0; t < frames; ++t) x[(c * bins + f) * frames + t] = mean;
    }
  }
}

}  // namespace cadenza::cpu
