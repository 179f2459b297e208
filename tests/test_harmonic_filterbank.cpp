// [cpu] The harmonic filterbank (Won et al. 2020) and power_to_db as HarmonicCNN uses them:
// - [op] the filter centres, bin frequencies and filter values against the closed forms
//   evaluated in double, with values checked by hand in /tmp/research/won_models.md §2
//   (128 bands at 16 kHz, 6 harmonics; centres 32.703 .. 7685.85 Hz; band 12 of harmonic 1
//   all zero at Q = 1; the widest filter over 27 bins);
// - [op] the forward product against a naive double sum; dx and dQ against central finite
//   differences of L = sum(r * y) in double;
// - [model] harmonic_filterbank -> power_to_db -> batchnorm -> conv2d -> global_max_pool ->
//   dense through tests/model_gradient_check.hpp, bw_Q included;
// - [config] the layer's keys and the one-line errors for its mistakes.
//
// The filters are piecewise linear in Q: a finite difference across a Q at which a filter
// edge crosses a bin is wrong by a jump, so each dQ check first asserts that no such kink
// lies within its step of Q.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "host/config/config.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/harmonic_math.hpp"
#include "host/math/random_math.hpp"
#include "tests/model_gradient_check.hpp"
#include "tests/test_support.hpp"

using namespace cadenza;
using Catch::Matchers::Contains;

namespace {

// Won's HarmonicCNN: 16 kHz, n_fft 512, 6 harmonics, 2 bands per semitone.
const HarmonicFilterbankGeometry kWon = HarmonicFilterbankGeometry::make(1, 257, 1, 16000, 6, 2);
// A small one for finite differences: 2 kHz, n_fft 64 (bins 31.25 Hz apart), 2 harmonics
// of 47 semitone bands (C1 .. B4).
const HarmonicFilterbankGeometry kSmall = HarmonicFilterbankGeometry::make(2, 33, 4, 2000, 2, 1);

// The closed forms in double (harmonic_math.hpp's header states them).
double exact_center_hz(int filter, int bands, int semitone_scale) {
  const int harmonic = filter / bands + 1, band = filter % bands;
  const double midi = 24.0 + double(band) / semitone_scale;
  return harmonic * 440.0 * std::exp2((midi - 69.0) / 12.0);
}
double exact_bin_hz(int bin, int bins, int sample_rate) {
  return bin * double(sample_rate / 2) / (bins - 1);
}
double exact_filter(double bin_hz, double center_hz, double q) {
  return std::max(0.0, 1.0 - 2.0 * std::fabs(q) * std::fabs(bin_hz - center_hz) / (0.1079 * center_hz + 24.7));
}

Tensor scalar(float value) {
  Tensor t = Tensor::zeros(Shape{1});
  t.f32()[0] = value;
  return t;
}

Tensor uniform_tensor(const Shape& shape, std::uint64_t seed, float low, float high) {
  Tensor t = Tensor::zeros(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.f32()[i] = low + (high - low) * uniform01(seed, 0, std::uint64_t(i));
  return t;
}

Shape spectrogram_shape(const HarmonicFilterbankGeometry& g) { return Shape{g.batch, g.bins, g.frames}; }
Shape output_shape(const HarmonicFilterbankGeometry& g) { return Shape{g.batch, g.filters(), g.frames}; }

// The filterbank the op builds for q.
Tensor built_filterbank(const HarmonicFilterbankGeometry& g, float q) {
  Tensor spectrogram = Tensor::zeros(spectrogram_shape(g)), y = Tensor::zeros(output_shape(g));
  Tensor filterbank = Tensor::zeros(Shape{g.bins, g.filters()});
  cpu::harmonic_filterbank_forward(g, spectrogram, scalar(q), filterbank, y);
  return filterbank;
}

// How far q is from the nearest |Q| at which a filter edge crosses a bin (1 / (2 offset)
// for each positive offset of the op's float bins and centres).
double distance_to_nearest_kink(const HarmonicFilterbankGeometry& g, double q) {
  double nearest = std::numeric_limits<double>::infinity();
  for (int k = 0; k < g.filters(); ++k) {
    const float center = harmonic_center_hz(k, g.bands, g.semitone_scale);
    for (int i = 0; i < g.bins; ++i) {
      const double offset = harmonic_filter_offset(harmonic_bin_hz(i, g.bins, g.sample_rate), center);
      if (offset > 0) nearest = std::min(nearest, std::fabs(std::fabs(q) - 1.0 / (2.0 * offset)));
    }
  }
  return nearest;
}

double weighted_sum(const Tensor& y, const Tensor& r) {
  double sum = 0.0;
  for (std::int64_t i = 0; i < y.numel(); ++i) sum += double(y.f32()[i]) * r.f32()[i];
  return sum;
}

// The central difference of L = sum(r * y) with respect to `value`, y recomputed by forward.
double numeric_derivative(float& value, float step, const Tensor& y, const Tensor& r,
                          const std::function<void()>& forward) {
  const float original = value;
  value = original + step;
  forward();
  const double plus = weighted_sum(y, r);
  value = original - step;
  forward();
  const double minus = weighted_sum(y, r);
  value = original;
  forward();
  return (plus - minus) / (2.0 * step);
}

Config config_with(const std::string& features_yaml, const std::string& layers_yaml) {
  return parse_config("data: {sample_rate: 2000, synthetic: {num_classes: 3}}\n" + features_yaml +
                          "model:\n  layers:\n" + layers_yaml,
                      "hcnn.yaml");
}

const std::string kStftFeatures = "features: {type: stft, n_fft: 64, hop_length: 32}\n";

}  // namespace

TEST_CASE("harmonic filterbank: Won's 16 kHz bank has the hand-checked centres and bands",
          "[cpu][op]") {
  CHECK(harmonic_highest_midi(16000, 6) == 88);  // round(88.19): E6, from 1333.3 Hz
  CHECK(kWon.bands == 128);
  CHECK(kWon.filters() == 768);
  CHECK(harmonic_center_hz(0, 128, 2) == Approx(32.703).margin(5e-4));      // C1
  CHECK(harmonic_center_hz(127, 128, 2) == Approx(1280.975).margin(5e-3));  // top of harmonic 1
  CHECK(harmonic_center_hz(767, 128, 2) == Approx(7685.85).margin(5e-3));   // 6 x 1280.975
  for (int i = 0; i < kWon.bins; ++i) CHECK(harmonic_bin_hz(i, 257, 16000) == 31.25f * float(i));

  const Tensor fb = built_filterbank(kWon, 1.0f);
  std::vector<int> zero_filters;
  int widest = 0;
  for (int k = 0; k < kWon.filters(); ++k) {
    int active = 0;
    for (int i = 0; i < kWon.bins; ++i) active += fb.f32()[std::int64_t(i) * kWon.filters() + k] > 0.0f;
    if (active == 0) zero_filters.push_back(k);
    widest = std::max(widest, active);
  }
  // Band 12 of harmonic 1 (46.25 Hz, bandwidth 29.7 Hz) falls between the bins at 31.25
  // and 62.5 Hz: the only all-zero filter.
  CHECK(zero_filters == std::vector<int>{12});
  CHECK(widest == 27);
}

TEST_CASE("harmonic filterbank: centres, bins and filters equal their closed forms in double",
          "[cpu][op]") {
  struct Case {
    HarmonicFilterbankGeometry g;
    float q;
  };
  // 255 bins: 8000 / 254 Hz is not a float, so the bins are rounded; Q < 0 acts as |Q|.
  for (const Case& c : {Case{kWon, 1.0f}, Case{kWon, 0.7f}, Case{kSmall, -1.25f},
                        Case{HarmonicFilterbankGeometry::make(1, 255, 1, 16000, 3, 3), 1.3f}}) {
    const HarmonicFilterbankGeometry& g = c.g;
    SECTION(std::to_string(g.bins) + " bins, " + std::to_string(g.sample_rate) + " Hz, " +
            std::to_string(g.harmonics) + " harmonics, Q " + std::to_string(c.q)) {
      const Tensor fb = built_filterbank(g, c.q);
      double worst_filter = 0.0;
      for (int k = 0; k < g.filters(); ++k) {
        const float center = harmonic_center_hz(k, g.bands, g.semitone_scale);
        const double exact_center = exact_center_hz(k, g.bands, g.semitone_scale);
        INFO("filter " << k << ": centre " << center << " vs " << exact_center);
        // float32 rounding of the float64 centre (half an ulp, 6e-8) and pow vs exp2.
        REQUIRE(std::fabs(center - exact_center) <= 1e-7 * exact_center);
        for (int i = 0; i < g.bins; ++i) {
          const float bin = harmonic_bin_hz(i, g.bins, g.sample_rate);
          const double exact_bin = exact_bin_hz(i, g.bins, g.sample_rate);
          // torch.linspace's float32 step and product: two roundings, at most 2 ulps.
          REQUIRE(std::fabs(bin - exact_bin) <= 2.5e-7 * exact_bin);
          const double value = fb.f32()[std::int64_t(i) * g.filters() + k];
          worst_filter = std::max(worst_filter, std::fabs(value - exact_filter(bin, center, c.q)));
        }
      }
      // The float32 evaluation of 1 - 2|Q| |f - f0| / (alpha f0 + beta), values <= 1: a
      // few float ulps of the offset and of the difference from 1.
      CHECK(worst_filter <= 5e-7);
    }
  }
}

TEST_CASE("harmonic filterbank forward equals a naive double sum", "[cpu][op]") {
  for (const HarmonicFilterbankGeometry& g :
       {kSmall, HarmonicFilterbankGeometry::make(3, 257, 5, 16000, 6, 2)}) {
    SECTION(spectrogram_shape(g).str()) {
      const Tensor spectrogram = uniform_tensor(spectrogram_shape(g), 40, 0.0f, 3.0f);
      Tensor y = uniform_tensor(output_shape(g), 41, -1.0f, 1.0f);  // overwritten, not added to
      Tensor fb = Tensor::zeros(Shape{g.bins, g.filters()});
      cpu::harmonic_filterbank_forward(g, spectrogram, scalar(0.9f), fb, y);
      const Tensor expected_fb = built_filterbank(g, 0.9f);
      for (std::int64_t e = 0; e < fb.numel(); ++e) REQUIRE(fb.f32()[e] == expected_fb.f32()[e]);
      for (int b = 0; b < g.batch; ++b)
        for (int k = 0; k < g.filters(); ++k)
          for (int t = 0; t < g.frames; ++t) {
            double expected = 0.0;
            for (int i = 0; i < g.bins; ++i)
              expected += double(spectrogram.f32()[(std::int64_t(b) * g.bins + i) * g.frames + t]) *
                          fb.f32()[std::int64_t(i) * g.filters() + k];
            const float got = y.f32()[(std::int64_t(b) * g.filters() + k) * g.frames + t];
            INFO("b " << b << ", filter " << k << ", frame " << t << ": " << got << " vs " << expected);
            // Non-negative terms, at most 27 of them non-zero: float rounding below 2e-6
            // relative (5e-6 for the order BLAS sums in); 0 exactly for the all-zero filters.
            REQUIRE(std::fabs(got - expected) <= 5e-6 * expected);
          }
    }
  }
}

TEST_CASE("harmonic filterbank backward: dx and dQ equal finite differences", "[cpu][op]") {
  const HarmonicFilterbankGeometry& g = kSmall;
  for (const float q_value : {1.0f, -1.25f}) {
    SECTION("Q " + std::to_string(q_value)) {
      Tensor spectrogram = uniform_tensor(spectrogram_shape(g), 50, 0.05f, 1.0f);
      Tensor q = scalar(q_value);
      Tensor fb = Tensor::zeros(Shape{g.bins, g.filters()}), y = Tensor::zeros(output_shape(g));
      const Tensor r = uniform_tensor(output_shape(g), 51, -1.0f, 1.0f);
      auto forward = [&] { cpu::harmonic_filterbank_forward(g, spectrogram, q, fb, y); };
      forward();
      Tensor workspace = Tensor::zeros(Shape{std::int64_t(cpu::harmonic_filterbank_workspace_bytes(g))}, DType::u8);
      Tensor dx = uniform_tensor(spectrogram_shape(g), 52, -1.0f, 1.0f);  // overwritten (=)
      Tensor dq = scalar(0.25f);                                          // accumulated (+=)
      cpu::harmonic_filterbank_backward(g, spectrogram, q, fb, r, dx, dq, workspace);

      // L is linear in x: the central difference is exact up to float rounding of y
      // (~1e-7 of |L| ~ 5) over 2 * step = 2e-2.
      for (std::int64_t i = 0; i < spectrogram.numel(); ++i) {
        const double numeric = numeric_derivative(spectrogram.f32()[i], 1e-2f, y, r, forward);
        INFO("dx[" << i << "]: analytic " << dx.f32()[i] << ", numeric " << numeric);
        REQUIRE(std::fabs(dx.f32()[i] - numeric) <= 2e-3 * std::max(1.0, std::fabs(numeric)));
      }
      // L is linear in Q between kinks; none lies within the step.
      const float step = 2e-3f;
      REQUIRE(distance_to_nearest_kink(g, q_value) > step);
      const double numeric_dq = numeric_derivative(q.f32()[0], step, y, r, forward);
      const double analytic_dq = double(dq.f32()[0]) - 0.25;
      INFO("dQ: analytic " << analytic_dq << ", numeric " << numeric_dq);
      CHECK(std::fabs(numeric_dq) > 0.1);  // the check is not vacuous
      CHECK(std::fabs(analytic_dq - numeric_dq) <= 2e-3 * std::max(1.0, std::fabs(numeric_dq)));

      // Either gradient alone gives the same values.
      Tensor dx_only = Tensor::zeros(spectrogram_shape(g)), dq_only = scalar(0.25f);
      Tensor no_dq, no_dx;
      cpu::harmonic_filterbank_backward(g, spectrogram, q, fb, r, dx_only, no_dq, workspace);
      cpu::harmonic_filterbank_backward(g, spectrogram, q, fb, r, no_dx, dq_only, workspace);
      for (std::int64_t i = 0; i < dx.numel(); ++i) REQUIRE(dx_only.f32()[i] == dx.f32()[i]);
      CHECK(dq_only.f32()[0] == dq.f32()[0]);
    }
  }
}

TEST_CASE("HarmonicCNN's front: filterbank, dB, batchnorm, conv, max, dense; gradients by "
          "finite differences",
          "[cpu][model]") {
  const Config config = config_with(kStftFeatures,
                                    "    - {type: harmonic_filterbank, name: hstft, harmonics: 2, "
                                    "semitone_scale: 1, sample_rate: 2000}\n"
                                    "    - {type: power_to_db}\n"
                                    "    - {type: batchnorm, name: hstft_bn}\n"
                                    "    - {type: conv2d, name: conv, filters: 2}\n"
                                    "    - {type: global_max_pool}\n"
                                    "    - {type: dense, name: head}\n");
  const Shape input{2, 1, 33, 4};  // (B, 1, n_fft / 2 + 1, frames)
  testing::BuiltModel built(config, input, {0.05f, 1.0f});
  const auto summary = built.model->summary();
  CHECK(summary[0].output_shape == (Shape{2, 2, 47, 4}));  // (B, harmonics, bands, frames)
  CHECK(summary[0].parameters == 1);
  REQUIRE(built.model->parameters()[0].name == "hstft.bw_Q");
  CHECK(built.arena->value(built.model->parameters()[0].id).f32()[0] == 1.0f);  // Won's init

  // Powers in [0.05, 1): every active filter's output is far above amin. A step of 1e-3
  // stays below the distance to the nearest kink in Q (asserted) and keeps the global
  // maxima's winners in place.
  REQUIRE(distance_to_nearest_kink(kSmall, 1.0) > 1e-3);
  testing::check_model_gradients(config, input, 1e-3f, 12, {0.05f, 1.0f});
}

TEST_CASE("harmonic_filterbank config: defaults, and one-line errors naming the key",
          "[cpu][config]") {
  const std::string layer = "    - {type: harmonic_filterbank, sample_rate: 2000}\n"
                            "    - {type: global_avg_pool}\n    - {type: dense}\n";
  const Config c = config_with(kStftFeatures, layer);
  CHECK(c.model.layers[0].harmonics == 6);
  CHECK(c.model.layers[0].semitone_scale == 2);
  CHECK(c.model.layers[0].sample_rate == 2000);

  auto parse_error = [](const std::string& features, const std::string& layers) {
    return testing::user_error_message([&] { config_with(features, layers); });
  };
  CHECK_THAT(parse_error(kStftFeatures, "    - {type: harmonic_filterbank, sample_rate: 16000}\n"),
             Contains("model.layers[0].sample_rate: expected data.sample_rate = 2000, got 16000"));
  CHECK_THAT(parse_error(kStftFeatures, "    - {type: harmonic_filterbank}\n"),
             Contains("missing required key 'sample_rate'"));
  CHECK_THAT(parse_error("", layer),
             Contains("features.type: expected stft for model.layers[0] (harmonic_filterbank "
                      "reads a power STFT), got 'mel'"));
  CHECK_THAT(parse_error(kStftFeatures, "    - {type: power_to_db, alpha: 2}\n"),
             Contains("unknown key 'model.layers[0].alpha' for a power_to_db layer"));

  auto build_error = [](const std::string& layers, const Shape& input) {
    const Config config = config_with(kStftFeatures, layers);
    return testing::user_error_message([&] { testing::BuiltModel built(config, input); });
  };
  CHECK_THAT(build_error(layer, Shape{1, 1, 32, 4}),
             Contains("layer 'harmonic_filterbank0' (harmonic_filterbank): expects a power STFT "
                      "(batch, 1, n_fft / 2 + 1 bins, frames) with an odd number of bins >= 3, "
                      "got [1, 1, 32, 4]"));
  CHECK_THAT(build_error("    - {type: harmonic_filterbank, harmonics: 40, sample_rate: 2000}\n"
                         "    - {type: global_avg_pool}\n    - {type: dense}\n",
                         Shape{1, 1, 33, 4}),
             Contains("sample_rate / (2 harmonics) = 25 Hz is below C1 (32.7 Hz)"));
}
