// [cpu][model] Whole models against PyTorch: each fixture of tests/fixtures/models is a
// small config and the float64 results of the same model built from torch.nn modules
// (tools/fixtures/make_model_fixtures.py, through tools/bench/torch_peer.py). The cadenza
// model loads PyTorch's parameters and batchnorm statistics by name, runs one training-mode
// forward pass and the backward pass of sum(R * output), and must give PyTorch's output,
// every parameter's gradient and the updated running statistics.
//
// This checks what the op tests cannot: the layers' semantics as a PyTorch user knows them
// (where 'same' puts the extra row of an even kernel, batchnorm's biased and unbiased
// variances, the order of to_sequence's features, the state a recurrent layer returns,
// how concat, permute and reshape lay out memory), the model's fusions (batchnorm+relu,
// conv+relu), and its wiring of residual and squeeze-excitation graphs.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "host/config/config.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/io/safetensors.hpp"
#include "host/model/model.hpp"
#include "tests/test_support.hpp"

using namespace cadenza;
using testing::fixture_tensor;
using testing::load_fixture;
using testing::worst_difference;

namespace {

Shape shape_of(const SafetensorsFile::View& view) { return Shape(std::span<const std::int64_t>(view.shape)); }

}  // namespace

TEST_CASE("models equal their PyTorch twins: output, parameter gradients, batchnorm statistics",
          "[cpu][model]") {
  // The fixtures are float64 results rounded to float32; ours is float32 arithmetic over
  // sums of at most a few hundred terms: 1.5e-7 relative to max(1, |value|) measured.
  // 1e-5 leaves ~60x room and stays below any semantic error: an elu alpha 1% off moves
  // the output by 1.6e-4, a misplaced padding row, a wrong variance or feature order by
  // far more.
  constexpr double kTolerance = 1e-5;
  CpuBackend backend(2);
  for (const char* name : {"cnn2d", "residual_se", "crnn"}) {
    SECTION(name) {
      const std::string base = std::string(CADENZA_TEST_FIXTURES) + "/models/" + name;
      const Config config = load_config(base + ".yaml");
      const SafetensorsFile file(base + ".safetensors");
      const Shape input_shape = shape_of(file.tensor("input"));
      const Shape output_shape = shape_of(file.tensor("output"));
      ArenaPlan plan;
      Model model(config.model, input_shape, int(output_shape[output_shape.rank() - 1]), plan, backend);
      Arena arena(std::move(plan), backend);
      model.bind(arena);

      // Our parameters and statistics are the torch model's, by name, and no more.
      std::set<std::string> ours, theirs;
      for (const NamedParameter& p : model.parameters()) {
        ours.insert(p.name);
        load_fixture(file, "param." + p.name, arena.value(p.id));
      }
      for (const NamedState& s : model.state()) {
        ours.insert(s.name);
        load_fixture(file, "param." + s.name, arena.get(s.id));
      }
      for (const std::string& n : file.names())
        if (n.rfind("param.", 0) == 0) theirs.insert(n.substr(6));
      CHECK(ours == theirs);

      // `value` against the fixture's tensor `name`.
      auto check = [&](const std::string& name, const Tensor& value) {
        const Tensor expected = fixture_tensor(file, name);
        REQUIRE(expected.numel() == value.numel());
        const double error = worst_difference(value.f32(), expected.f32(), value.numel());
        INFO(name << ": worst difference " << error);
        CHECK(error < kTolerance);
      };
      load_fixture(file, "input", model.input());
      const StepInfo step{.training = true, .step_values = step_values_tensor({})};
      model.forward(backend, step);
      check("output", model.output());

      Tensor gradients = arena.region(Region::gradients);
      backend.fill_zero(gradients);
      load_fixture(file, "loss_weights", model.output_gradient());
      model.backward(backend, step);
      for (const NamedParameter& p : model.parameters()) check("grad." + p.name, arena.gradient(p.id));
      for (const NamedState& s : model.state()) check("state." + s.name, arena.get(s.id));  // after the pass
    }
  }
}
