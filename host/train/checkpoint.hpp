// Checkpoints: a run's weights, optimizer moments and trainer state, written so that a
// crash at any instant leaves the previous checkpoint intact.
//
// Layout in <run_dir>/checkpoints/:
//   step-00000120/model.safetensors    parameters and batchnorm statistics, F32, named as
//                                      PyTorch's state_dict (conv0.weight, bn1.running_var;
//                                      no num_batches_tracked: load with strict=False)
//   step-00000120/trainer.safetensors  optimizer moments + trainer state in its metadata
//   last -> step-00000120              symbolic links, replaced atomically by rename(2)
//   best -> step-00000100
// Invariants: a step directory is built under a temporary name and renamed into place
// (or exchanged with an older copy of the same step by one renameat2) only when both files
// are complete and fsync'ed, so every step-* directory is whole and `last` always points
// at one.
// Both files record the model hash; loading into a model of another shape is refused.
// Both record an XXH3-64 checksum of their tensors' bytes in file order (and of the trainer
// state text): a file damaged on disk is refused on load, naming it. A checkpoint is only
// written when every tensor is finite: a diverged run stops with its last good checkpoint.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "host/core/tensor.hpp"
#include "host/io/safetensors.hpp"
#include "host/ops/backend.hpp"
#include "host/train/lr_schedule.hpp"

namespace cadenza {

struct TrainerState {
  int epoch = 0;                  // the epoch in progress, from 0
  int step_in_epoch = 0;          // steps of that epoch already taken
  std::int64_t global_step = 0;   // optimizer steps taken in the whole run
  double epoch_loss_sum = 0.0;    // sum of the epoch's per-example losses so far (a float)
  // The same sum as each rank holds its share of it (floats, in rank order): a resume at
  // the same world size restores each rank's exactly, so the epoch's loss is an unbroken
  // run's to the last bit; at another world size rank 0 takes epoch_loss_sum.
  std::vector<double> rank_loss_sums;
  double best_metric = std::numeric_limits<double>::quiet_NaN();
  int best_epoch = -1;            // epoch (from 1) whose checkpoint is best by the metric, -1: none
  // The step whose checkpoint `best` points at, -1: none yet (or a checkpoint written
  // before the field, whose `best` link is then taken as it is).
  std::int64_t best_step = -1;
  PlateauState plateau;           // train.schedule.type plateau's memory
  // The run's config (config_values) when saved, so a resume can refuse changes to the
  // keys that decide its steps.
  std::map<std::string, std::string> config_values;
};

struct NamedTensor {
  std::string name;
  Tensor tensor;  // on any device; copied through the backend
};

struct CheckpointContents {
  std::vector<NamedTensor> weights;        // → model.safetensors
  std::vector<NamedTensor> trainer_state;  // → trainer.safetensors (optimizer moments)
};

// Writes step-<global_step>, points `best` at step-<best_step> and then `last` at the new
// directory, and removes step directories beyond the `keep` newest other than `best`'s.
// (A crash between the two links leaves `best` ahead of `last`; the resumed state's
// best_step puts it back: see align_best_link.)
void save_checkpoint(const std::filesystem::path& checkpoints_dir, const CheckpointContents& contents,
                     const TrainerState& state, std::uint64_t model_hash, int keep, Backend& backend);

// Points `best` at step-<state.best_step> where that directory exists and the link says
// otherwise; a state without best_step leaves the link as it is.
void align_best_link(const std::filesystem::path& checkpoints_dir, const TrainerState& state);

// The directory of the run's best checkpoint by `state` (step-<best_step>), or what the
// `best` link names when the state does not record it.
std::filesystem::path best_checkpoint_dir(const std::filesystem::path& checkpoints_dir, const TrainerState& state);

// The checkpoint directories in checkpoints_dir, oldest step first: names of "step-" and
// the step's eight or more digits (a user's step-00000040.bak is not one).
std::vector<std::string> step_directory_names(const std::filesystem::path& checkpoints_dir);

// The check save_checkpoint makes before writing: UserError naming the first tensor that
// holds NaN or infinity. The ranks that write no checkpoint run it at the same step, so
// that every rank stops together.
void require_finite_checkpoint(const CheckpointContents& contents, std::int64_t step, Backend& backend);

// Reads a checkpoint directory (or a run's checkpoints/last) into the given tensors,
// checking names, shapes and the model hash; returns the trainer state. `check_state`,
// when given, sees the trainer state before any tensor is read (a resume refuses a
// changed config there, before the shapes it changed could).
TrainerState load_checkpoint(const std::filesystem::path& checkpoint_dir,
                             const CheckpointContents& contents, std::uint64_t model_hash,
                             Backend& backend,
                             const std::function<void(const TrainerState&)>& check_state = {});

// Refuses a weights file whose tensors do not give the checksum it records, naming it; a
// file without one (another tool's, or an older checkpoint's) passes.
void check_weights_checksum(const SafetensorsFile& file);

// Loads only model weights (for evaluation and prediction). A file another tool wrote
// (PyTorch's safetensors.torch.save_file: no cadenza format and model hash) is read by
// tensor name and shape, every weight required, its other tensors (num_batches_tracked)
// passed over; returns false for such a file, true for a cadenza checkpoint.
bool load_weights(const std::filesystem::path& model_file, const std::vector<NamedTensor>& weights,
                  std::uint64_t model_hash, Backend& backend);

}  // namespace cadenza
