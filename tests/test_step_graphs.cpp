// [cpu] Step graphs: the CPU backend's capture records ops without running them and each
// replay runs them again on the tensors' current values; StepGraphs warms up eagerly,
// captures once per batch key, replays, and starts over after clear().
#include <catch2/catch.hpp>

#include <sstream>

#include "host/core/logger.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/train/step_graphs.hpp"

using namespace cadenza;

namespace {

Tensor filled(std::int64_t n, float value) {
  Tensor t = Tensor::zeros(Shape{n});
  for (std::int64_t i = 0; i < n; ++i) t.f32()[i] = value;
  return t;
}

}  // namespace

TEST_CASE("CPU capture records the ops without running them; replays run them", "[cpu][graph]") {
  CpuBackend backend(1);
  Tensor x = filled(5, 2.0f), y = filled(5, 0.0f);
  std::string why_not;
  std::unique_ptr<StepGraph> graph = backend.capture(
      [&] { backend.activation_forward(Activation::relu, 0.0f, x, y); }, why_not);
  REQUIRE(graph);
  CHECK(why_not.empty());
  CHECK(y.f32()[0] == 0.0f);  // recorded, not run
  graph->replay();
  CHECK(y.f32()[4] == 2.0f);
  // The replay reads the tensors as they are now.
  x.f32()[4] = 7.0f;
  graph->replay();
  CHECK(y.f32()[4] == 7.0f);
  // Outside a capture, ops run at once again.
  backend.fill_zero(y);
  CHECK(y.f32()[4] == 0.0f);
}

TEST_CASE("StepGraphs warms up, captures per batch key, replays, and starts over after clear()",
          "[cpu][graph]") {
  CpuBackend backend(1);
  std::ostringstream log_text;
  Logger log(log_text);
  Tensor counter = filled(1, 0.0f), one = filled(1, 1.0f), scratch = filled(1, 0.0f);
  int enqueued = 0;  // how often the host code that issues the step's ops ran
  // The step, three ops: counter = max(0, counter) + 1.
  auto step = [&] {
    ++enqueued;
    backend.activation_forward(Activation::relu, 0.0f, counter, scratch);
    backend.strided_copy(StridedCopy::whole(1, true), one, scratch);
    backend.copy(scratch, counter);
  };
  int a = 0, b = 0;  // two batch buffers
  StepGraphs graphs(backend, true, log);
  for (int s = 0; s < StepGraphs::kWarmupSteps; ++s) graphs.run(&a, step);
  CHECK(enqueued == StepGraphs::kWarmupSteps);
  CHECK(graphs.replays() == 0);
  graphs.run(&a, step);  // captured (the host code runs once more) and replayed
  graphs.run(&a, step);  // replayed only
  CHECK(enqueued == StepGraphs::kWarmupSteps + 1);
  graphs.run(&b, step);  // the other buffer: its own capture
  graphs.run(&b, step);
  graphs.run(&a, step);
  CHECK(enqueued == StepGraphs::kWarmupSteps + 2);
  CHECK(graphs.replays() == 5);
  CHECK(counter.f32()[0] == float(StepGraphs::kWarmupSteps + 5));  // every step ran exactly once
  CHECK_THAT(log_text.str(), Catch::Contains("replayed as one graph"));

  graphs.clear();
  for (int s = 0; s < StepGraphs::kWarmupSteps; ++s) graphs.run(&a, step);
  CHECK(enqueued == 2 * StepGraphs::kWarmupSteps + 2);
  CHECK(graphs.replays() == 5);
  graphs.run(&a, step);
  CHECK(enqueued == 2 * StepGraphs::kWarmupSteps + 3);
  CHECK(counter.f32()[0] == float(2 * StepGraphs::kWarmupSteps + 6));

  StepGraphs disabled(backend, false, log);
  for (int s = 0; s < 5; ++s) disabled.run(&a, step);
  CHECK(disabled.replays() == 0);
  CHECK(enqueued == 2 * StepGraphs::kWarmupSteps + 8);
}
