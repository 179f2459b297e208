// TrainedModel: a finished (or stopped) run opened for inference — its resolved config,
// label names and chosen checkpoint, with the front-end and model built for batches of
// train.batch_size windows of data.clip_seconds and the checkpoint's weights loaded.
// gpu_eval, gpu_predict and gpu_embed start here.
//
// Invariants:
// - The model is the run's own: config.yaml of the run directory (with any --set overrides
//   of keys that do not define the model), and the checkpoint's model hash must match it.
// - Windows are read from one Dataset, given at construction and outliving the model; a
//   caller may replace that dataset's clips between run_inference calls (gpu_predict
//   streams files through one in-memory dataset).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "host/config/config.hpp"
#include "host/core/arena.hpp"
#include "host/core/context.hpp"
#include "host/core/logger.hpp"
#include "host/data/dataset.hpp"
#include "host/data/split_record.hpp"
#include "host/inference/clip_evaluator.hpp"
#include "host/inference/window_pipeline.hpp"

namespace cadenza {

struct TrainedRun {
  std::filesystem::path run_dir;
  Config config;                    // the run's config.yaml with the overrides applied
  std::vector<std::string> labels;  // labels.json: class or tag names in output order
  bool multi_label = false;         // labels.json: tags (sigmoid scores) or classes (softmax)
  std::optional<SplitRecord> splits;  // splits.csv: the clips' splits (nullopt: none recorded)
  std::filesystem::path weights;    // the chosen checkpoint's model.safetensors
};

// Opens RUN_DIR: `checkpoint` is "best", "last", or the path of a checkpoint directory or a
// model.safetensors file. UserError names what is missing: the run's config.yaml or
// labels.json, a best checkpoint (a run without validation has none: use last), the file.
TrainedRun open_trained_run(const std::filesystem::path& run_dir, const std::string& checkpoint,
                            const std::vector<std::string>& overrides);

// The run's dataset as its config (with the overrides) names it, split as the run's
// splits.csv records; without one (a run trained before the record existed) split again,
// with a warning that this matches the run's own splits only for unchanged files.
Dataset load_run_dataset(const TrainedRun& run, Logger& log);

class TrainedModel {
 public:
  // Builds the context (train.device and train.threads of the run's config, as overridden),
  // the front-end and model, and loads the run's weights. `data` supplies the windows (its
  // labels must be the run's).
  TrainedModel(const TrainedRun& run, const Dataset& data, Logger& log);
  ~TrainedModel();

  const TrainedRun& run() const { return run_; }
  Backend& backend() { return context_->backend(); }
  Model& model() { return *model_; }
  WindowPipeline& pipeline() { return *pipeline_; }
  int batch() const { return batch_; }
  std::int64_t window() const { return window_; }  // samples per window
  // The loss the run trained with: sigmoid BCE, else softmax cross-entropy.
  bool sigmoid_loss() const;
  // Multiframe evaluation of `clips` of the dataset given at construction, cut as the
  // run's data.eval_windows and data.eval_drop_seconds say; with_embeddings also averages
  // the model's embedding(); multi-label tags are predicted at score >= threshold.
  ClipEvaluation evaluate(const std::vector<int>& clips, bool with_embeddings, float threshold = 0.5f);

 private:
  TrainedRun run_;
  const Dataset& data_;
  std::unique_ptr<Context> context_;
  int batch_ = 0;
  std::int64_t window_ = 0;
  std::unique_ptr<Frontend> frontend_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Arena> arena_;
  std::unique_ptr<BatchUploader> uploader_;
  std::unique_ptr<BatchLoader> loader_;
  std::unique_ptr<WindowPipeline> pipeline_;
};

}  // namespace cadenza
