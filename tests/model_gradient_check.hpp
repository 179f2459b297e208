// Whole-model gradient checks for the [cpu][model] tests: a model built from a config for
// one input shape on a one-thread CPU backend, and every parameter's gradient from
// Model::backward compared with central finite differences of L = sum(r * logits)
// (r fixed, random).
//
// The model runs in training mode (batchnorm's batch statistics, which a perturbed forward
// recomputes) with dropout seed 5; configs hold no dropout. The config's dataset must have
// kNumOutputs labels. Parameters are float32, so a step of 1e-2 with the sums of L in
// double keeps rounding below ~1e-4 relative. Piecewise-linear models (max pooling, the
// harmonic filters' edges) need a step below the distance to their nearest kink: a step
// that makes another element win a window shows as one large error.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <memory>

#include "host/config/config.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/math/random_math.hpp"
#include "host/model/model.hpp"
#include "tests/test_support.hpp"

namespace cadenza::testing {

constexpr int kNumOutputs = 3;  // labels of the configs' datasets

// The model input is uniform in [low, high).
struct InputRange {
  float low = -1.0f, high = 1.0f;
};

struct BuiltModel {
  CpuBackend backend{1};
  ArenaPlan plan;
  std::unique_ptr<Model> model;
  std::unique_ptr<Arena> arena;

  BuiltModel(const Config& config, const Shape& input, InputRange range = {}) {
    model = std::make_unique<Model>(config.model, input, kNumOutputs, plan, backend);
    arena = std::make_unique<Arena>(std::move(plan), backend);
    model->bind(*arena);
    model->initialize(7, backend);
    Tensor x = model->input();
    for (std::int64_t i = 0; i < x.numel(); ++i)
      x.f32()[i] = range.low + (range.high - range.low) * uniform01(11, 0, std::uint64_t(i));
  }

  double loss(const Tensor& r) {
    model->forward(backend, testing::training_step(5));
    const Tensor y = model->output();
    double sum = 0.0;
    for (std::int64_t i = 0; i < y.numel(); ++i) sum += double(y.f32()[i]) * r.f32()[i];
    return sum;
  }
};

// Checks every parameter element (at most `per_tensor` of each tensor, spread evenly).
inline void check_model_gradients(const Config& config, const Shape& input, float step = 1e-2f,
                                  int per_tensor = 12, InputRange range = {}) {
  BuiltModel m(config, input, range);
  Tensor r = Tensor::zeros(m.model->output().shape());
  for (std::int64_t i = 0; i < r.numel(); ++i) r.f32()[i] = 2.0f * uniform01(13, 0, std::uint64_t(i)) - 1.0f;
  m.loss(r);
  Tensor dy = m.model->output_gradient();
  m.backend.copy(r, dy);
  Tensor grads = m.arena->region(Region::gradients);
  m.backend.fill_zero(grads);
  m.model->backward(m.backend, testing::training_step(5));

  for (const NamedParameter& p : m.model->parameters()) {
    Tensor value = m.arena->value(p.id), gradient = m.arena->gradient(p.id);
    const std::int64_t n = value.numel();
    const std::int64_t stride = std::max<std::int64_t>(1, n / per_tensor);
    for (std::int64_t i = 0; i < n; i += stride) {
      const float original = value.f32()[i];
      value.f32()[i] = original + step;
      const double plus = m.loss(r);
      value.f32()[i] = original - step;
      const double minus = m.loss(r);
      value.f32()[i] = original;
      const double numeric = (plus - minus) / (2.0 * step);
      const double analytic = gradient.f32()[i];
      INFO(p.name << "[" << i << "]: analytic " << analytic << ", numeric " << numeric);
      // Float rounding of L's terms divided by 2 * step, plus the smooth layers' truncation
      // error: within 3e-3 relative for these small models.
      REQUIRE(std::fabs(analytic - numeric) <= 3e-3 * std::max(1.0, std::fabs(numeric)));
    }
  }
}

}  // namespace cadenza::testing
