// The training step allocates nothing: after warm-up, a CPU step (front-end, forward, loss,
// backward, clipping, update) of a model with every kind of layer the headline models use
// makes no heap allocation through operator new. Every buffer lives in the arena, planned
// before the first step.
//
// This file replaces the global operator new/delete of the test binary with counting
// versions (counting only while a test asks), so it covers every C++ allocation of our
// code and the standard library on any thread. Allocations through malloc by C libraries
// (OpenBLAS, libgomp, FFTW) are not seen; those libraries allocate their buffers once,
// on first use, which the warm-up steps cover.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <memory>
#include <vector>
#include <cstdlib>
#include <new>

#include "host/config/config.hpp"
#include "host/core/arena.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/math/random_math.hpp"
#include "host/train/training_step.hpp"
#include "tests/test_support.hpp"

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t bytes) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* memory = std::malloc(bytes ? bytes : 1)) return memory;
  throw std::bad_alloc();
}
void* operator new[](std::size_t bytes) { return operator new(bytes); }
void* operator new(std::size_t bytes, std::align_val_t align) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  const auto alignment = static_cast<std::size_t>(align);
  if (void* memory = std::aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment)) return memory;
  throw std::bad_alloc();
}
void* operator new[](std::size_t bytes, std::align_val_t align) { return operator new(bytes, align); }
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete[](void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t) noexcept { std::free(memory); }
void operator delete[](void* memory, std::size_t) noexcept { std::free(memory); }
void operator delete(void* memory, std::align_val_t) noexcept { std::free(memory); }
void operator delete[](void* memory, std::align_val_t) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t, std::align_val_t) noexcept { std::free(memory); }
void operator delete[](void* memory, std::size_t, std::align_val_t) noexcept { std::free(memory); }

namespace cadenza {
namespace {

// The CRNN's layer kinds (Conv_2d blocks, to_sequence, sequence batchnorm, stacked GRU,
// dropout, dense) and the 2-D CNN's (valid convs, global average pooling), small.
constexpr const char* kConfig = R"(schema_version: 1
data: {dataset: synthetic, sample_rate: 16000, clip_seconds: 0.5,
       synthetic: {num_classes: 4, clips_per_class: 2, multi_label: true}}
features: {type: mel, n_fft: 256, hop_length: 128, n_mels: 32, log: db}
model:
  layers:
    - {type: batchnorm, name: spec_bn}
    - {type: conv2d, name: conv1, filters: 8, padding: explicit, pad: 1}
    - {type: batchnorm, name: bn1}
    - {type: relu, name: relu1}
    - {type: maxpool2d, name: pool1, pool: 2}
    - {type: conv2d, name: conv2, filters: 8, padding: valid}
    - {type: relu, name: relu2}
    - {type: maxpool2d, name: pool2, pool: [14, 1]}
    - {type: to_sequence, name: sequence}
    - {type: batchnorm, name: sequence_bn, axis: 2}
    - {type: gru, name: gru, units: 8, num_layers: 2}
    - {type: dropout, name: dropout, rate: 0.5}
    - {type: dense, name: dense}
train: {batch_size: 4, optimizer: adam, lr: 0.001, grad_clip_norm: 1.0}
)";

TEST_CASE("a CPU training step makes no heap allocation after warm-up", "[cpu][train]") {
  const Config config = parse_config(kConfig, "allocation test");
  CpuBackend backend(2);
  const int batch = config.train.batch_size, labels = 4;
  const auto window = static_cast<int>(config.data.clip_seconds * config.data.sample_rate);
  const auto frontend = backend.make_frontend(config.features, config.data.sample_rate, window, batch);
  ArenaPlan plan;
  const BufferId pcm_id = plan.add(Region::activations, "pcm", Shape{batch, window});
  const BufferId targets_id = plan.add(Region::activations, "targets", Shape{batch, labels});
  TrainingStep step(config, frontend->features_shape(batch), labels, true, plan, backend);
  Arena arena(std::move(plan), backend);
  step.bind(arena);
  step.model().initialize(1, backend);
  Tensor pcm = arena.get(pcm_id), targets = arena.get(targets_id);
  const Tensor audio = testing::random_tensor(pcm.shape(), 2, 0.3f);
  backend.copy(audio, pcm);
  for (std::int64_t i = 0; i < targets.numel(); ++i) targets.f32()[i] = float(i % 3 == 0);
  Tensor features = step.model().input();

  auto run_step = [&](int s) {
    step.set_step_values(backend, StepValues{.dropout_seed = hash64(7, static_cast<std::uint64_t>(s))}, s + 1,
                         0.001f);
    const StepInfo info{true, step.step_values()};
    frontend->compute(pcm, features);
    step.forward_and_loss(backend, info, targets);
    step.backward_and_update(backend, info, nullptr);
  };
  // The counter sees an allocation made while counting.
  counting = true;
  const auto probe = std::make_unique<std::vector<float>>(16);
  counting = false;
  REQUIRE(allocations.exchange(0) == 2);

  run_step(0);
  run_step(1);
  counting = true;
  for (int s = 2; s < 5; ++s) run_step(s);
  counting = false;
  CHECK(allocations.load() == 0);
  CHECK(std::isfinite(step.loss().f32()[0]));
}

}  // namespace
}  // namespace cadenza
