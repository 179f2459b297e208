// ClipEvaluator: multiframe evaluation of a dataset's clips — each clip cut into a fixed
// number of windows whose scores (and, when asked, penultimate-layer features) are averaged
// on the device into the clip's row, with the mean window loss and the metrics computed
// there too: the confusion counts (single-label) or the per-tag ROC-AUC, average precision
// and counts at a threshold (multi-label). Only those totals come back to the host, and
// the clip scores when asked for.
//
// Invariants:
// - With a communicator of several ranks, rank r evaluates the r-th contiguous share of the
//   clips into their own rows, and the rows, loss sums and embeddings are summed over the
//   ranks before the metrics: every clip is evaluated exactly once, and every rank ends
//   with the whole evaluation.
// - Clip rows follow the order of the clips given; window terms are added in window order,
//   so a result is the same on every run (and the CPU backend is the reference for CUDA's).
// - Scores are softmax probabilities (single-label) or per-tag sigmoids (multi-label).
// - The evaluator owns its buffers in an arena of its own, sized for `max_clips` clips.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "host/core/arena.hpp"
#include "host/data/dataset.hpp"
#include "host/dist/communicator.hpp"
#include "host/inference/window_pipeline.hpp"

namespace cadenza {

// How an evaluated clip is cut: `windows_per_clip` windows of `window` samples, spread
// over the clip after dropping `drop` samples at each end (sampler.hpp's evaluation_windows).
struct EvaluationWindows {
  std::int64_t window = 0;
  int windows_per_clip = 1;
  std::int64_t drop = 0;
};

// data.eval_windows, or for 0 the whole windows in the median clip of the validation and
// test splits after the drop (1 to 16, Won et al.'s count).
int choose_eval_windows(int configured, const Dataset& data, std::int64_t window, std::int64_t drop);

struct ClipEvaluation {
  int clips = 0;
  int labels = 0;
  int windows_per_clip = 0;
  double loss = 0.0;                // mean over windows; NaN without windows
  std::vector<float> scores;        // (clips, labels), mean over each clip's windows; when asked
  std::vector<float> targets;       // (clips, labels)
  std::vector<float> confusion;     // (labels, labels) counts, single-label only
  std::vector<float> tag_metrics;   // (kTagMetricRows, labels), multi-label only (metric_math.hpp)
  float threshold = 0.5f;           // the threshold tag_metrics counted predictions at
  std::vector<float> embeddings;    // (clips, embedding_width), when asked
};

class ClipEvaluator {
 public:
  struct Options {
    int batch = 1;
    int labels = 1;
    std::int64_t max_clips = 1;
    bool multi_label = false;
    bool sigmoid_loss = false;          // the loss the model trains with (BCE, else CE)
    std::int64_t embedding_width = 0;   // > 0: also average the model's embedding()
    float threshold = 0.5f;             // multi-label: a tag is predicted when its score >= this
    bool scores_to_host = true;         // copy the clip scores back (reports, predictions)
    Communicator* communicator = nullptr;  // data-parallel: share the clips among its ranks
    // When set, asked after each batch: once it answers true (on any rank) the evaluation
    // ends on every rank with Interrupted.
    std::function<bool()> stop_requested;
  };
  ClipEvaluator(const Options& options, Backend& backend);

  ClipEvaluation evaluate(const Dataset& data, const std::vector<int>& clips, const EvaluationWindows& cut,
                          WindowPipeline& pipeline, Model& model);

 private:
  Options options_;
  Backend& backend_;
  std::unique_ptr<Arena> arena_;
  // A batch's per-window losses (B) and scores (B, K); the accumulators: clip scores,
  // clip targets (C, K), embeddings (C, D), the loss sum (1); the metrics: confusion (K, K)
  // or per-tag metrics (kTagMetricRows, K).
  Tensor window_loss_, window_scores_, clip_scores_, clip_targets_, clip_embeddings_, loss_sum_, metrics_;
};

}  // namespace cadenza
