// StepGraphs: runs a training step's ops as a recorded graph (Backend::capture), replayed
// at every step, instead of enqueuing them one by one — on a GPU one graph launch instead
// of hundreds of kernel launches.
//
// Invariants:
// - The first kWarmupSteps runs (after construction and after each clear()) are eager, so
//   that every plan the ops make on first use (cuDNN algorithms, cuBLAS and cuFFT state)
//   exists before anything is captured.
// - A graph is keyed by the address of the batch buffers its ops read (the uploader
//   alternates two sets, so a run keeps two graphs); everything else the step reads lives
//   at fixed arena addresses, and whatever changes between steps reaches the ops through
//   StepValues. So a replay is the same work, on the same bits, as the eager step.
// - Capture runs nothing: run() replays the graph it has just captured. If the backend
//   cannot capture the step, one warning says why and every later step runs eagerly.
#pragma once

#include <functional>
#include <map>
#include <memory>

#include "host/core/logger.hpp"
#include "host/ops/backend.hpp"

namespace cadenza {

class StepGraphs {
 public:
  static constexpr int kWarmupSteps = 2;

  // `enabled` false: every step runs eagerly (train.capture_graph: false).
  StepGraphs(Backend& backend, bool enabled, Logger& log) : backend_(backend), enabled_(enabled), log_(log) {}

  // Enqueues the step that `enqueue` issues, on the batch buffers at `batch_key`.
  void run(const void* batch_key, const std::function<void()>& enqueue);
  // The step's ops change (a new phase's optimizer): graphs are dropped and the next steps
  // warm up again.
  void clear();
  // How many steps ran as a replay (for tests and logs).
  std::int64_t replays() const { return replays_; }

 private:
  Backend& backend_;
  bool enabled_;
  Logger& log_;
  int eager_runs_ = 0;
  std::int64_t replays_ = 0;
  std::map<const void*, std::unique_ptr<StepGraph>> graphs_;
};

}  // namespace cadenza
