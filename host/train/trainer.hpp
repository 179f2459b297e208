// Trainer: the training loop of gpu_train — data order, steps, validation, metrics files,
// checkpoints and resumption.
//
// Invariants:
// - Everything random is a pure function of train.seed and the step or epoch (data order,
//   dropout; initialisation of train.seed), so a resumed run takes exactly the steps an
//   unbroken run would, with the same losses.
// - Training batches are full (the last partial batch of an epoch is dropped, keeping
//   shapes static); evaluation pads its last batch and ignores the padding.
// - Training examples are random crops of data.clip_seconds (host/data/sampler.hpp);
//   evaluation scores each clip by the mean of its windows' scores (multiframe).
// - Files in the run directory: config.yaml (resolved), metrics.jsonl (one object per
//   epoch), steps.jsonl (one object every train.log_every_steps steps), checkpoints/,
//   labels.json (host/data/run_labels.hpp), splits.csv (host/data/split_record.hpp),
//   skipped_files.txt when files of the dataset were left out, loss.png and metric.png
//   at the end, and .lock, flock()ed by rank 0 while the run lasts.
//   A resumed run first cuts both .jsonl files back to its checkpoint, then appends; it
//   writes nothing before its checkpoint is accepted.
// - Data-parallel (host/dist/): each rank trains on its shard of every global batch of
//   train.batch_size * world_size examples, gradients are averaged over the ranks during
//   backward, and every rank takes the same optimizer step, so all hold the same weights;
//   losses and metrics are those of the global batch and of every validation clip once.
//   Only rank 0 writes files; its checkpoint resumes any world size.
#pragma once

#include <functional>
#include <filesystem>
#include <optional>
#include <string>

#include "host/config/config.hpp"
#include "host/core/logger.hpp"

namespace cadenza {

class Context;
class Communicator;

struct TrainRequest {
  std::filesystem::path run_dir;
  bool resume = false;  // continue from run_dir/checkpoints/last
  // Asked before each step and after each validation batch (and between files of a cache
  // build); once it answers true the trainer checkpoints and returns (a cache build keeps
  // what it decoded and throws Interrupted). Empty: never stops.
  std::function<bool()> stop_requested = {};
  // Data-parallel training: this rank's context and communicator (host/dist/
  // process_group.hpp), both outliving the run. Null: a context from train.device, and
  // one process.
  Context* context = nullptr;
  Communicator* communicator = nullptr;
};

struct TrainOutcome {
  enum class Status { completed, reached_max_steps, interrupted, stopped_early } status = Status::completed;
  int epochs_completed = 0;
  std::int64_t global_step = 0;
  // val_accuracy or val_roc_auc of the last epoch; none without a validation split
  std::optional<double> last_val_metric;
  std::string metric_name;
  // The epoch whose checkpoint is `best` (gpu_eval's and gpu_predict's default), by
  // train.select_metric, and its value; none without a validation split.
  std::optional<double> best_metric;
  int best_epoch = -1;
  std::string select_metric;
};

TrainOutcome run_training(const Config& config, const TrainRequest& request, Logger& logger);

}  // namespace cadenza
