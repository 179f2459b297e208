// StepGraphs: warm-up, capture per batch buffer, replay, and the eager fallback.
#include "host/train/step_graphs.hpp"

#include <string>

namespace cadenza {

void StepGraphs::run(const void* batch_key, const std::function<void()>& enqueue) {
  if (!enabled_ || eager_runs_ < kWarmupSteps) {
    ++eager_runs_;
    enqueue();
    return;
  }
  auto found = graphs_.find(batch_key);
  if (found == graphs_.end()) {
    std::string why_not;
    std::unique_ptr<StepGraph> graph = backend_.capture(enqueue, why_not);
    if (!graph) {
      log_.warn("train.capture_graph: the training step cannot be captured as a graph (" + why_not +
                "); it runs op by op");
      enabled_ = false;
      graphs_.clear();
      enqueue();
      return;
    }
    if (replays_ == 0) log_.info("the training step is captured after its warm-up and replayed as one graph");
    found = graphs_.emplace(batch_key, std::move(graph)).first;
  }
  found->second->replay();
  ++replays_;
}

void StepGraphs::clear() {
  graphs_.clear();
  eager_runs_ = 0;
}

}  // namespace cadenza
