// [cpu][op] and [cpu][model] Recurrent layers (RNN tanh/relu, GRU, LSTM) on the CPU.
//
// The ops: forward against a naive reference in double written from PyTorch's formulas
// (not from host/math/recurrent_math.hpp), backward against central differences of that
// reference in double, for every cell, one and two directions; `=` for dx, `+=` for the
// weight gradients, dx optional; the same bits with 1 and 4 threads.
// The layer: against torch.nn.GRU/LSTM/RNN through fixtures written by
// tools/fixtures/make_recurrent_fixtures.py (stacked, bidirectional, both outputs);
// dropout between stacked layers (training only, the same mask forward and backward,
// checked by finite differences of the layer itself); names, shapes, init, errors; and a
// model that feeds a spectrogram to a stacked GRU through to_sequence.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "host/config/config.hpp"
#include "host/core/error.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/io/safetensors.hpp"
#include "host/math/random_math.hpp"
#include "host/model/layer.hpp"
#include "host/model/model.hpp"
#include "tests/test_support.hpp"

#ifndef CADENZA_TEST_FIXTURES
#define CADENZA_TEST_FIXTURES "tests/fixtures"
#endif

using namespace cadenza;
using testing::fixture_tensor;
using testing::load_fixture;
using testing::random_tensor;
using testing::worst_difference;

namespace {

Tensor filled(const Shape& shape, float value) {
  Tensor t = Tensor::zeros(shape);
  std::fill(t.f32(), t.f32() + t.numel(), value);
  return t;
}

std::vector<double> as_double(const Tensor& t) { return {t.f32(), t.f32() + t.numel()}; }

// ---------------------------------------------------------------------------------------
// The reference: one recurrent layer in double, PyTorch's formulas written out.

// [direction][weight_ih, weight_hh, bias_ih, bias_hh], each flat in PyTorch's layout.
using ReferenceWeights = std::array<std::array<std::vector<double>, 4>, 2>;

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// y (B, T, D*H); `smallest_relu_input` gets the smallest |pre-activation| of a relu cell.
std::vector<double> reference_forward(const RecurrentGeometry& g, const std::vector<double>& x,
                                      const ReferenceWeights& w, double* smallest_relu_input = nullptr) {
  const int B = g.batch, T = g.steps, In = g.input_size, H = g.hidden_size, G = g.gates();
  const int Y = g.output_size();
  std::vector<double> y(std::size_t(B) * T * Y);
  double smallest = std::numeric_limits<double>::infinity();
  for (int d = 0; d < g.directions(); ++d) {
    const auto& [w_ih, w_hh, b_ih, b_hh] = w[std::size_t(d)];
    for (int b = 0; b < B; ++b) {
      std::vector<double> h(std::size_t(H), 0.0), c(std::size_t(H), 0.0);
      for (int s = 0; s < T; ++s) {
        const int t = d == 0 ? s : T - 1 - s;
        std::vector<double> gi(std::size_t(G) * H), gh(std::size_t(G) * H);
        for (int k = 0; k < G * H; ++k) {
          gi[k] = b_ih[k];
          for (int i = 0; i < In; ++i) gi[k] += w_ih[std::size_t(k) * In + i] * x[(std::size_t(b) * T + t) * In + i];
          gh[k] = b_hh[k];
          for (int j = 0; j < H; ++j) gh[k] += w_hh[std::size_t(k) * H + j] * h[j];
        }
        std::vector<double> next(static_cast<std::size_t>(H));
        for (int j = 0; j < H; ++j) {
          switch (g.cell) {
            case RecurrentCell::rnn_tanh: next[j] = std::tanh(gi[j] + gh[j]); break;
            case RecurrentCell::rnn_relu:
              smallest = std::min(smallest, std::fabs(gi[j] + gh[j]));
              next[j] = std::max(0.0, gi[j] + gh[j]);
              break;
            case RecurrentCell::gru: {
              const double r = sigmoid(gi[j] + gh[j]);
              const double z = sigmoid(gi[H + j] + gh[H + j]);
              const double n = std::tanh(gi[2 * H + j] + r * gh[2 * H + j]);
              next[j] = (1.0 - z) * n + z * h[j];
              break;
            }
            case RecurrentCell::lstm: {
              const double i = sigmoid(gi[j] + gh[j]), f = sigmoid(gi[H + j] + gh[H + j]);
              const double cell = std::tanh(gi[2 * H + j] + gh[2 * H + j]);
              const double o = sigmoid(gi[3 * H + j] + gh[3 * H + j]);
              c[j] = f * c[j] + i * cell;
              next[j] = o * std::tanh(c[j]);
              break;
            }
          }
        }
        h = next;
        for (int j = 0; j < H; ++j) y[(std::size_t(b) * T + t) * Y + std::size_t(d) * H + j] = h[j];
      }
    }
  }
  if (smallest_relu_input) *smallest_relu_input = smallest;
  return y;
}

double weighted_sum(const std::vector<double>& y, const Tensor& r) {
  double s = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) s += y[i] * r.f32()[i];
  return s;
}

// The op's arguments for one geometry, random, with the reference's copies.
struct OpCase {
  explicit OpCase(const RecurrentGeometry& geometry, std::uint64_t seed) : g(geometry) {
    const std::int64_t gh = std::int64_t(g.gates()) * g.hidden_size;
    // Weights in ±0.7 (a little over PyTorch's ±1/sqrt(H) for these small H), so gates
    // leave their linear region and every term of the formulas matters.
    x = random_tensor(Shape{g.batch, g.steps, g.input_size}, seed, 1.0f);
    for (int d = 0; d < g.directions(); ++d) {
      const std::uint64_t s = seed + 10 * std::uint64_t(d + 1);
      weights[std::size_t(d)] = {random_tensor(Shape{gh, g.input_size}, s + 1, 0.7f),
                                 random_tensor(Shape{gh, g.hidden_size}, s + 2, 0.7f),
                                 random_tensor(Shape{gh}, s + 3, 0.7f), random_tensor(Shape{gh}, s + 4, 0.7f)};
    }
    y = Tensor::zeros(Shape{g.batch, g.steps, g.output_size()});
    reserve = Tensor::zeros(Shape{std::int64_t(cpu::recurrent_reserve_bytes(g))}, DType::u8);
    workspace = Tensor::zeros(Shape{std::int64_t(cpu::recurrent_workspace_bytes(g))}, DType::u8);
  }
  void forward() { cpu::recurrent_forward(g, weights, x, y, reserve, workspace); }
  void backward(const Tensor& dy, Tensor& dx, RecurrentWeights& dweights) {
    cpu::recurrent_backward(g, weights, x, y, dy, reserve, dx, dweights, workspace);
  }
  // Zero-shaped-alike gradient tensors filled with `value`.
  RecurrentWeights gradients(float value) const {
    RecurrentWeights out;
    for (int d = 0; d < g.directions(); ++d) {
      const RecurrentDirectionWeights& w = weights[std::size_t(d)];
      out[std::size_t(d)] = {filled(w.weight_ih.shape(), value), filled(w.weight_hh.shape(), value),
                             filled(w.bias_ih.shape(), value), filled(w.bias_hh.shape(), value)};
    }
    return out;
  }
  ReferenceWeights reference_weights() const {
    ReferenceWeights out;
    for (int d = 0; d < g.directions(); ++d) {
      const RecurrentDirectionWeights& w = weights[std::size_t(d)];
      out[std::size_t(d)] = {as_double(w.weight_ih), as_double(w.weight_hh), as_double(w.bias_ih),
                             as_double(w.bias_hh)};
    }
    return out;
  }

  RecurrentGeometry g;
  Tensor x, y, reserve, workspace;
  RecurrentWeights weights;
};

// Tensors of one direction in the order of ReferenceWeights.
std::array<Tensor, 4> tensors_of(const RecurrentDirectionWeights& w) {
  return {w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh};
}

// The largest |analytic - numeric| / max(1, |numeric|) over `values`, where numeric is the
// central difference (step 1e-6, in double) of sum(r * reference y); `analytic` holds the
// gradient plus `offset` (what it was filled with before the op added into it).
double worst_gradient_error(std::vector<double>& values, const Tensor& analytic, float offset,
                            const std::function<std::vector<double>()>& reference, const Tensor& r) {
  constexpr double kStep = 1e-6;
  double worst = 0.0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double original = values[i];
    values[i] = original + kStep;
    const double plus = weighted_sum(reference(), r);
    values[i] = original - kStep;
    const double minus = weighted_sum(reference(), r);
    values[i] = original;
    const double numeric = (plus - minus) / (2 * kStep);
    const double a = double(analytic.f32()[i]) - offset;
    worst = std::max(worst, std::fabs(a - numeric) / std::max(1.0, std::fabs(numeric)));
  }
  return worst;
}

// ---------------------------------------------------------------------------------------
// Layers built on their own, outside a model.

struct BuiltLayer {
  std::unique_ptr<Layer> layer;
  std::unique_ptr<Arena> arena;
  Shape output_shape;

  Tensor parameter(const std::string& name) const { return arena->value(find(name).id); }
  Tensor gradient(const std::string& name) const { return arena->gradient(find(name).id); }
  NamedParameter find(const std::string& name) const {
    for (const NamedParameter& p : layer->parameters())
      if (p.name == name) return p;
    FAIL("no parameter " << name);
    return {};
  }
  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo& step) {
    layer->forward(backend, std::span<const Tensor>(&x, 1), y, step);
  }
  void backward(Backend& backend, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx,
                const StepInfo& step) {
    std::array<Tensor, 1> dinputs{dx};
    layer->backward(backend, std::span<const Tensor>(&x, 1), y, dy, dinputs, step);
  }
};

BuiltLayer build_layer(const LayerConfig& config, const Shape& input, Backend& backend, int index = 3) {
  BuiltLayer built;
  ArenaPlan plan;
  built.layer = make_layer(config, false, 0, index);
  built.output_shape = built.layer->plan(std::span<const Shape>(&input, 1), plan, backend);
  built.arena = std::make_unique<Arena>(std::move(plan), backend);
  built.layer->bind(*built.arena);
  return built;
}

LayerConfig recurrent_config(const std::string& type, int units, int num_layers, bool bidirectional,
                             bool return_sequences) {
  LayerConfig c;
  c.type = type;
  c.name = "recurrent";
  c.units = units;
  c.num_layers = num_layers;
  c.bidirectional = bidirectional;
  c.return_sequences = return_sequences;
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------

TEST_CASE("recurrent geometry counts gates, directions and multiply-adds", "[cpu][op]") {
  const RecurrentGeometry lstm{RecurrentCell::lstm, 2, 7, 5, 3, true};
  CHECK(lstm.gates() == 4);
  CHECK(lstm.directions() == 2);
  CHECK(lstm.output_size() == 6);
  CHECK(lstm.macs() == 2LL * 7 * 2 * 4 * 3 * (5 + 3));
  CHECK(RecurrentGeometry{RecurrentCell::gru, 1, 1, 1, 1, false}.gates() == 3);
  CHECK(RecurrentGeometry{RecurrentCell::rnn_relu, 1, 1, 1, 1, false}.gates() == 1);
}

TEST_CASE("recurrent ops follow PyTorch's formulas; gradients equal finite differences",
          "[cpu][op]") {
  std::vector<RecurrentGeometry> cases;
  for (RecurrentCell cell : {RecurrentCell::rnn_tanh, RecurrentCell::rnn_relu, RecurrentCell::gru,
                             RecurrentCell::lstm}) {
    for (bool bidirectional : {false, true}) cases.push_back({cell, 2, 4, 3, 5, bidirectional});
  }
  cases.push_back({RecurrentCell::gru, 1, 3, 1, 2, true});    // batch 1, one input feature
  cases.push_back({RecurrentCell::lstm, 3, 1, 4, 3, true});   // one step
  cases.push_back({RecurrentCell::rnn_relu, 1, 6, 2, 7, false});
  std::uint64_t seed = 100;
  for (const RecurrentGeometry& g : cases) {
    const std::string name = std::string(recurrent_cell_name(g.cell)) + (g.bidirectional ? " bidirectional" : "") +
                             ", x " + Shape{g.batch, g.steps, g.input_size}.str() + ", hidden " +
                             std::to_string(g.hidden_size);
    seed += 100;
    SECTION(name) {
      OpCase op(g, seed);
      op.forward();
      std::vector<double> x = as_double(op.x);
      ReferenceWeights w = op.reference_weights();
      double smallest_relu_input = 0.0;
      const std::vector<double> expected = reference_forward(g, x, w, &smallest_relu_input);
      // Declared kink: relu inputs stay clear of 0 by far more than the float rounding of
      // the op (~1e-6) and the finite-difference step times any slope here (~1e-5).
      if (g.cell == RecurrentCell::rnn_relu) REQUIRE(smallest_relu_input > 1e-3);
      double worst_forward = 0.0;
      for (std::size_t i = 0; i < expected.size(); ++i)
        worst_forward =
            std::max(worst_forward, std::fabs(op.y.f32()[i] - expected[i]) / std::max(1.0, std::fabs(expected[i])));
      // float32 rounding of sums of <= 8 products per gate through <= 6 steps: ~1e-7
      // measured; 2e-6 is ~16 ulps at 1, far below any formula error (>= 1e-2 here).
      CHECK(worst_forward < 2e-6);

      const Tensor r = random_tensor(op.y.shape(), seed + 50);
      // dx starts as garbage (the op writes it with =); weight gradients start at 0.25
      // (the op adds into them).
      Tensor dx = filled(op.x.shape(), 7.0f);
      RecurrentWeights dweights = op.gradients(0.25f);
      op.backward(r, dx, dweights);
      auto reference = [&] { return reference_forward(g, x, w); };
      // The analytic gradient is float32 through T steps of backpropagation (~3e-7 relative
      // measured); the double central difference is accurate to ~1e-9. 1e-5 leaves a 30x
      // margin and is far below what a wrong gate, sign or missing term gives (>= 1e-2).
      constexpr double kGradientTolerance = 1e-5;
      CHECK(worst_gradient_error(x, dx, 0.0f, reference, r) < kGradientTolerance);
      for (int d = 0; d < g.directions(); ++d) {
        const std::array<Tensor, 4> analytic = tensors_of(dweights[std::size_t(d)]);
        for (std::size_t k = 0; k < 4; ++k) {
          INFO("direction " << d << ", weight " << k << " (weight_ih, weight_hh, bias_ih, bias_hh)");
          CHECK(worst_gradient_error(w[std::size_t(d)][k], analytic[k], 0.25f, reference, r) < kGradientTolerance);
        }
      }

      // Without dx the weight gradients are the same.
      Tensor no_dx;
      RecurrentWeights again = op.gradients(0.25f);
      op.backward(r, no_dx, again);
      for (int d = 0; d < g.directions(); ++d) {
        for (std::size_t k = 0; k < 4; ++k) {
          const Tensor a = tensors_of(again[std::size_t(d)])[k], b = tensors_of(dweights[std::size_t(d)])[k];
          CHECK(std::memcmp(a.f32(), b.f32(), a.bytes()) == 0);
        }
      }
    }
  }
}

TEST_CASE("recurrent ops give the same bits with 1 and 4 threads", "[cpu][op]") {
  for (RecurrentCell cell : {RecurrentCell::gru, RecurrentCell::lstm, RecurrentCell::rnn_tanh}) {
    SECTION(recurrent_cell_name(cell)) {
      // Large enough that OpenMP and OpenBLAS split the work.
      const RecurrentGeometry g{cell, 8, 12, 48, 64, true};
      std::vector<std::vector<float>> runs[2];
      for (int run = 0; run < 2; ++run) {
        CpuBackend backend(run == 0 ? 1 : 4);
        OpCase op(g, 7);
        Tensor dx = Tensor::zeros(op.x.shape());
        RecurrentWeights dweights = op.gradients(0.0f);
        backend.recurrent_forward(g, op.weights, op.x, op.y, op.reserve, op.workspace);
        const Tensor r = random_tensor(op.y.shape(), 8);
        backend.recurrent_backward(g, op.weights, op.x, op.y, r, op.reserve, dx, dweights, op.workspace);
        for (const Tensor& t : {op.y, dx, dweights[0].weight_ih, dweights[0].weight_hh, dweights[1].bias_ih,
                                dweights[1].bias_hh})
          runs[run].emplace_back(t.f32(), t.f32() + t.numel());
      }
      CHECK(runs[0] == runs[1]);
    }
  }
}

TEST_CASE("recurrent layers equal torch.nn.GRU, LSTM and RNN (PyTorch fixtures)", "[cpu][model]") {
  CpuBackend backend(2);
  for (const char* name : {"gru_bidirectional_2_layers", "lstm_bidirectional_2_layers",
                           "rnn_tanh_bidirectional_2_layers", "rnn_relu_bidirectional_2_layers",
                           "gru_one_layer", "lstm_batch_1_3_layers",
                           "gru_one_step_crnn_shapes"}) {
    for (bool return_sequences : {true, false}) {
      SECTION(std::string(name) + (return_sequences ? ", every step" : ", last state")) {
        const SafetensorsFile file(std::string(CADENZA_TEST_FIXTURES) + "/recurrent/" + name + ".safetensors");
        const auto& meta = file.metadata();
        LayerConfig config = recurrent_config(meta.at("type"), std::stoi(meta.at("hidden_size")),
                                              std::stoi(meta.at("num_layers")), meta.at("bidirectional") == "true",
                                              return_sequences);
        config.nonlinearity = meta.at("nonlinearity");
        const Shape input{std::stoi(meta.at("batch")), std::stoi(meta.at("steps")), std::stoi(meta.at("input_size"))};
        BuiltLayer built = build_layer(config, input, backend);

        // Our parameters are exactly the module's state_dict: same names, same shapes.
        std::vector<std::string> ours, theirs;
        for (const NamedParameter& p : built.layer->parameters()) {
          ours.push_back(p.name);
          load_fixture(file, p.name, built.arena->value(p.id));
        }
        for (const std::string& n : file.names())
          if (n.rfind("recurrent.", 0) == 0) theirs.push_back(n);
        CHECK(ours == theirs);

        Tensor x = fixture_tensor(file, "input").reshaped(input);
        Tensor y = Tensor::zeros(built.output_shape);
        built.forward(backend, x, y, StepInfo{});
        const std::string prefix = return_sequences ? "sequence" : "last_state";
        const Tensor expected_y = fixture_tensor(file, return_sequences ? "output_sequence" : "output_last_state");
        REQUIRE(expected_y.numel() == y.numel());
        // The fixtures are float64 results rounded to float32; ours is float32 arithmetic
        // through <= 3 layers of <= 6 steps with sums of <= 8 + 5 terms: <= 5e-7 relative
        // measured. 1e-5 is ~80 float32 ulps at 1 and ~1000x below any formula error (a
        // wrong gate order or bias placement moves values by > 1e-2).
        constexpr double kTolerance = 1e-5;
        CHECK(worst_difference(y.f32(), expected_y.f32(), y.numel()) < kTolerance);

        Tensor gradients = built.arena->region(Region::gradients);
        backend.fill_zero(gradients);
        const Tensor dy = fixture_tensor(file, prefix + "_loss_weights").reshaped(y.shape());
        Tensor dx = filled(x.shape(), 3.0f);
        built.backward(backend, x, y, dy, dx, StepInfo{});
        const Tensor expected_dx = fixture_tensor(file, prefix + "_grad.input");
        CHECK(worst_difference(dx.f32(), expected_dx.f32(), dx.numel()) < kTolerance);
        for (const NamedParameter& p : built.layer->parameters()) {
          INFO(p.name);
          const Tensor grad = built.arena->gradient(p.id);
          const Tensor expected = fixture_tensor(file, prefix + "_grad." + p.name);
          REQUIRE(expected.numel() == grad.numel());
          CHECK(worst_difference(grad.f32(), expected.f32(), grad.numel()) < kTolerance);
        }
      }
    }
  }
}

TEST_CASE("dropout between stacked recurrent layers acts in training only, with one mask per step",
          "[cpu][model]") {
  CpuBackend backend(2);
  const Shape input{2, 5, 3};
  for (bool return_sequences : {true, false}) {
    SECTION(return_sequences ? "every step" : "last state") {
      LayerConfig config = recurrent_config("gru", 4, 3, true, return_sequences);
      config.dropout = 0.5;
      LayerConfig plain = config;
      plain.dropout = 0.0;
      BuiltLayer dropped = build_layer(config, input, backend);
      BuiltLayer reference = build_layer(plain, input, backend);
      std::uint64_t stream = 0;
      for (const NamedParameter& p : dropped.layer->parameters()) {
        const Tensor value = random_tensor(dropped.arena->value(p.id).shape(), 900 + stream++, 0.6f);
        for (Tensor target : {dropped.arena->value(p.id), reference.parameter(p.name)})
          std::memcpy(target.f32(), value.f32(), value.bytes());
      }
      Tensor x = random_tensor(input, 42);
      Tensor y = Tensor::zeros(dropped.output_shape), y_plain = Tensor::zeros(dropped.output_shape);

      // Inference: no dropout at all.
      dropped.forward(backend, x, y, StepInfo{});
      reference.forward(backend, x, y_plain, StepInfo{});
      CHECK(std::memcmp(y.f32(), y_plain.f32(), y.bytes()) == 0);

      // Training: the output changes, the same seed repeats it, another seed changes it.
      auto run = [&](std::uint64_t seed) {
        Tensor out = Tensor::zeros(dropped.output_shape);
        dropped.forward(backend, x, out, testing::training_step(seed));
        return std::vector<float>(out.f32(), out.f32() + out.numel());
      };
      const std::vector<float> first = run(77);
      CHECK(first != std::vector<float>(y_plain.f32(), y_plain.f32() + y_plain.numel()));
      CHECK(run(77) == first);
      CHECK(run(78) != first);

      // Backward applies the forward's masks: finite differences of the training forward
      // (float32, step 1e-2 as test_cpu_ops.cpp: the smooth GRU's truncation error and the
      // float rounding of the differences both stay below ~1e-4).
      const StepInfo step = testing::training_step(77);
      Tensor out = Tensor::zeros(dropped.output_shape);
      const Tensor r = random_tensor(out.shape(), 43);
      auto loss = [&] {
        dropped.forward(backend, x, out, step);
        double s = 0.0;
        for (std::int64_t i = 0; i < out.numel(); ++i) s += double(out.f32()[i]) * r.f32()[i];
        return s;
      };
      loss();
      Tensor gradients = dropped.arena->region(Region::gradients);
      backend.fill_zero(gradients);
      Tensor dx = Tensor::zeros(input);
      dropped.backward(backend, x, out, r, dx, step);
      auto check = [&](const char* what, Tensor values, const Tensor& analytic) {
        INFO(what);
        constexpr float kStep = 1e-2f;
        double worst = 0.0;
        for (std::int64_t i = 0; i < values.numel(); ++i) {
          const float original = values.f32()[i];
          values.f32()[i] = original + kStep;
          const double plus = loss();
          values.f32()[i] = original - kStep;
          const double minus = loss();
          values.f32()[i] = original;
          const double numeric = (plus - minus) / (2.0 * kStep);
          worst = std::max(worst, std::fabs(analytic.f32()[i] - numeric) / std::max(1.0, std::fabs(numeric)));
        }
        CHECK(worst < 2e-3);
      };
      check("dx", x, dx);
      for (const char* name : {"recurrent.weight_ih_l0", "recurrent.weight_hh_l1_reverse", "recurrent.bias_hh_l2",
                               "recurrent.bias_ih_l1"})
        check(name, dropped.parameter(name), dropped.gradient(name));
    }
  }
}

TEST_CASE("recurrent layers name, shape and initialise their parameters as PyTorch", "[cpu][model]") {
  CpuBackend backend(1);
  LayerConfig config = recurrent_config("lstm", 6, 2, true, false);
  BuiltLayer built = build_layer(config, Shape{4, 9, 10}, backend);
  CHECK(built.output_shape == (Shape{4, 12}));
  std::vector<std::string> names;
  for (const NamedParameter& p : built.layer->parameters()) {
    names.push_back(p.name);
    CHECK(p.init.kind == TensorInit::Kind::uniform);
    CHECK(p.init.a == Approx(1.0 / std::sqrt(6.0)));
  }
  const std::vector<std::string> expected = {
      "recurrent.weight_ih_l0", "recurrent.weight_hh_l0", "recurrent.bias_ih_l0", "recurrent.bias_hh_l0",
      "recurrent.weight_ih_l0_reverse", "recurrent.weight_hh_l0_reverse", "recurrent.bias_ih_l0_reverse",
      "recurrent.bias_hh_l0_reverse", "recurrent.weight_ih_l1", "recurrent.weight_hh_l1", "recurrent.bias_ih_l1",
      "recurrent.bias_hh_l1", "recurrent.weight_ih_l1_reverse", "recurrent.weight_hh_l1_reverse",
      "recurrent.bias_ih_l1_reverse", "recurrent.bias_hh_l1_reverse"};
  CHECK(names == expected);
  CHECK(built.parameter("recurrent.weight_ih_l0").shape() == (Shape{24, 10}));
  CHECK(built.parameter("recurrent.weight_ih_l1").shape() == (Shape{24, 12}));  // reads both directions
  CHECK(built.parameter("recurrent.weight_hh_l1_reverse").shape() == (Shape{24, 6}));
  CHECK(built.parameter("recurrent.bias_hh_l1").shape() == (Shape{24}));
  // Two multiply-adds' worth of flops per weight per step, both directions, both layers.
  CHECK(built.layer->forward_flops() == 2LL * 9 * 2 * 24 * ((10 + 6) + (12 + 6)));

  config.return_sequences = true;
  config.type = "rnn";
  config.nonlinearity = "relu";
  config.bidirectional = false;
  BuiltLayer sequence = build_layer(config, Shape{4, 9, 10}, backend);
  CHECK(sequence.output_shape == (Shape{4, 9, 6}));
  CHECK(sequence.parameter("recurrent.weight_ih_l0").shape() == (Shape{6, 10}));
}

TEST_CASE("recurrent layers refuse inputs and keys they cannot take, naming the layer", "[cpu][model]") {
  using cadenza::testing::user_error_message;
  CpuBackend backend(1);
  const LayerConfig config = recurrent_config("gru", 8, 1, false, false);
  for (const Shape& input : {Shape{2, 1, 32, 20}, Shape{2, 40}}) {
    const std::string message = user_error_message([&] { build_layer(config, input, backend); });
    CHECK_THAT(message, Catch::Contains("'recurrent' (gru)") && Catch::Contains(input.str()) &&
                            Catch::Contains("(batch, steps, features)") && Catch::Contains("to_sequence"));
  }
  LayerConfig no_units = config;
  no_units.units = 0;
  CHECK_THAT(user_error_message([&] { build_layer(no_units, Shape{2, 3, 4}, backend); }),
             Catch::Contains("'recurrent' (gru)") && Catch::Contains("units"));

  auto parse = [](const std::string& layer) {
    return parse_config("model:\n  layers:\n    - " + layer + "\n    - {type: dense}\n", "test.yaml");
  };
  const Config parsed = parse("{type: rnn, units: 8, num_layers: 2, bidirectional: true, "
                              "return_sequences: true, dropout: 0.25, nonlinearity: relu}");
  const LayerConfig& rnn = parsed.model.layers[0];
  CHECK(rnn.units == 8);
  CHECK(rnn.num_layers == 2);
  CHECK(rnn.bidirectional);
  CHECK(rnn.return_sequences);
  CHECK(rnn.dropout == 0.25);
  CHECK(rnn.nonlinearity == "relu");
  CHECK(parse_config(to_yaml(parsed), "round trip").model.layers[0].nonlinearity == "relu");
  CHECK_THAT(user_error_message([&] { parse("{type: gru, units: 4, nonlinearity: relu}"); }),
             Catch::Contains("nonlinearity"));
  CHECK_THAT(user_error_message([&] { parse("{type: lstm}"); }), Catch::Contains("units"));
  CHECK_THAT(user_error_message([&] { parse("{type: lstm, units: 0}"); }),
             Catch::Contains("units") && Catch::Contains("hidden size"));
  CHECK_THAT(user_error_message([&] { parse("{type: gru, units: 4, dropout: 1}"); }), Catch::Contains("dropout"));
}

TEST_CASE("a model reads a spectrogram into a stacked gru through to_sequence", "[cpu][model]") {
  auto config_with = [](const std::string& layers) {
    return parse_config("data: {synthetic: {num_classes: 4}}\nfeatures: {n_mels: 8}\nmodel:\n  layers:\n" + layers,
                        "test.yaml");
  };
  const Config config = config_with(
      "    - {type: conv2d, filters: 2, kernel: 3}\n    - {type: to_sequence}\n"
      "    - {type: gru, name: gru, units: 5, num_layers: 2, bidirectional: true, dropout: 0.3}\n"
      "    - {type: dense}\n");
  CpuBackend backend(2);
  ArenaPlan plan;
  Model model(config.model, Shape{3, 1, 8, 6}, 4, plan, backend);
  Arena arena(std::move(plan), backend);
  model.bind(arena);
  model.initialize(7, backend);
  const auto rows = model.summary();
  CHECK(rows[1].output_shape == (Shape{3, 6, 16}));  // (B, T, C·F)
  CHECK(rows[2].output_shape == (Shape{3, 10}));     // the last state of both directions
  CHECK(rows[2].parameters == 2 * (15 * 16 + 15 * 5 + 30) + 2 * (15 * 10 + 15 * 5 + 30));

  const Tensor input = random_tensor(Shape{3, 1, 8, 6}, 5);
  Tensor model_input = model.input();
  std::memcpy(model_input.f32(), input.f32(), input.bytes());
  const StepInfo step = testing::training_step(11);
  model.forward(backend, step);
  Tensor dlogits = model.output_gradient();
  const Tensor r = random_tensor(dlogits.shape(), 6);
  std::memcpy(dlogits.f32(), r.f32(), r.bytes());
  Tensor gradients = arena.region(Region::gradients);
  backend.fill_zero(gradients);
  model.backward(backend, step);
  for (const NamedParameter& p : model.parameters()) {
    INFO(p.name);
    const Tensor g = arena.gradient(p.id);
    CHECK(std::all_of(g.f32(), g.f32() + g.numel(), [](float v) { return std::isfinite(v); }));
    CHECK(std::any_of(g.f32(), g.f32() + g.numel(), [](float v) { return v != 0.0f; }));
  }

  // Straight after the input (B, 1, F, T), the layer says what to put before it.
  const Config direct = config_with("    - {type: lstm, name: early_lstm, units: 4}\n    - {type: dense}\n");
  ArenaPlan unused;
  const std::string message = cadenza::testing::user_error_message(
      [&] { Model(direct.model, Shape{3, 1, 8, 6}, 4, unused, backend); });
  CHECK_THAT(message, Catch::Contains("early_lstm") && Catch::Contains("[3, 1, 8, 6]") &&
                          Catch::Contains("to_sequence"));
}
