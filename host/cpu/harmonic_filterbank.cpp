// The harmonic filterbank on the CPU (Won et al. 2020; backend.hpp states the op, the
// filter math is host/math/harmonic_math.hpp's).
//
// Layouts, row-major: spectrogram (B, bins, frames), filterbank (bins, filters), y and dy
// (B, filters, frames), the workspace's dfb (bins, filters). Per example b the products
// are SGEMMs: y_b = filterbank^T . spectrogram_b, dx_b = filterbank . dy_b, and
// dfb = sum_b spectrogram_b . dy_b^T accumulated over b in index order (beta 1 after the
// first). dq adds the sum over (filter, bin), filter-major and bins in order, of
// dfb * dfilter/dQ in double on one thread: deterministic whatever the thread count.
#include <cblas.h>

#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/harmonic_math.hpp"

namespace cadenza::cpu {
namespace {

void check_sizes(const HarmonicFilterbankGeometry& g, const Tensor& spectrogram, const Tensor& q,
                 const Tensor& filterbank, const Tensor& y_or_dy) {
  const std::int64_t filters = g.filters();
  CADENZA_CHECK(g.batch >= 1 && g.bins >= 2 && g.bands >= 1 && g.semitone_scale >= 1,
                "harmonic filterbank geometry: batch " << g.batch << ", bins " << g.bins
                                                       << ", bands " << g.bands);
  CADENZA_CHECK(spectrogram.numel() == std::int64_t(g.batch) * g.bins * g.frames &&
                    q.numel() == 1 && filterbank.numel() == g.bins * filters &&
                    y_or_dy.numel() == std::int64_t(g.batch) * filters * g.frames,
                "harmonic filterbank sizes: spectrogram " << spectrogram.shape().str() << ", q "
                    << q.shape().str() << ", filterbank " << filterbank.shape().str()
                    << ", output " << y_or_dy.shape().str());
}

}  // namespace

std::size_t harmonic_filterbank_workspace_bytes(const HarmonicFilterbankGeometry& g) {
  return sizeof(float) * std::size_t(g.bins) * std::size_t(g.filters());
}

void harmonic_filterbank_forward(const HarmonicFilterbankGeometry& g, const Tensor& spectrogram,
                                 const Tensor& q, Tensor& filterbank, Tensor& y) {
  check_sizes(g, spectrogram, q, filterbank, y);
  const int filters = g.filters();
  const float bandwidth_scale = q.f32()[0];
  float* fb = filterbank.f32();
#pragma omp parallel for schedule(static)
  for (int k = 0; k < filters; ++k) {
    const float center = harmonic_center_hz(k, g.bands, g.semitone_scale);
    for (int i = 0; i < g.bins; ++i) {
      const float offset = harmonic_filter_offset(harmonic_bin_hz(i, g.bins, g.sample_rate), center);
      fb[std::int64_t(i) * filters + k] = harmonic_filter_value(offset, bandwidth_scale);
    }
  }
  const std::int64_t in_size = std::int64_t(g.bins) * g.frames, out_size = std::int64_t(filters) * g.frames;
  for (int b = 0; b < g.batch; ++b) {
    // y_b (filters, frames) = fb^T (filters, bins) . spectrogram_b (bins, frames)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, filters, g.frames, g.bins, 1.0f, fb,
                filters, spectrogram.f32() + b * in_size, g.frames, 0.0f, y.f32() + b * out_size,
                g.frames);
  }
}

void harmonic_filterbank_backward(const HarmonicFilterbankGeometry& g, const Tensor& spectrogram,
                                  const Tensor& q, const Tensor& filterbank, const Tensor& dy,
                                  Tensor& dx, Tensor& dq, Tensor& workspace) {
  check_sizes(g, spectrogram, q, filterbank, dy);
  const int filters = g.filters();
  const std::int64_t in_size = std::int64_t(g.bins) * g.frames, out_size = std::int64_t(filters) * g.frames;
  if (dx.defined()) {
    CADENZA_CHECK(dx.numel() == spectrogram.numel(), "harmonic filterbank dx " << dx.shape().str());
    for (int b = 0; b < g.batch; ++b) {
      // dx_b (bins, frames) = fb (bins, filters) . dy_b (filters, frames)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.bins, g.frames, filters, 1.0f,
                  filterbank.f32(), filters, dy.f32() + b * out_size, g.frames, 0.0f,
                  dx.f32() + b * in_size, g.frames);
    }
  }
  if (!dq.defined()) return;
  CADENZA_CHECK(dq.numel() == 1, "harmonic filterbank dq " << dq.shape().str());
  CADENZA_CHECK(workspace.bytes() >= harmonic_filterbank_workspace_bytes(g),
                "harmonic filterbank workspace of " << workspace.bytes() << " bytes, needs "
                                                    << harmonic_filterbank_workspace_bytes(g));
  float* dfb = static_cast<float*>(workspace.raw());
  for (int b = 0; b < g.batch; ++b) {
    // dfb (bins, filters) (+)= spectrogram_b (bins, frames) . dy_b^T (frames, filters)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.bins, filters, g.frames, 1.0f,
                spectrogram.f32() + b * in_size, g.frames, dy.f32() + b * out_size, g.frames,
                b == 0 ? 0.0f : 1.0f, dfb, filters);
  }
  const float bandwidth_scale = q.f32()[0];
  double sum = 0.0;
  for (int k = 0; k < filters; ++k) {
    const float center = harmonic_center_hz(k, g.bands, g.semitone_scale);
    for (int i = 0; i < g.bins; ++i) {
      const float offset = harmonic_filter_offset(harmonic_bin_hz(i, g.bins, g.sample_rate), center);
      sum += double(dfb[std::int64_t(i) * filters + k]) * harmonic_filter_dq(offset, bandwidth_scale);
    }
  }
  dq.f32()[0] += static_cast<float>(sum);
}

}  // namespace cadenza::cpu
