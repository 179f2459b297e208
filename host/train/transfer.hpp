// Transfer learning (seed 003): model.init_from starts a run from another run's weights
// where names and shapes match, and train.freeze names the parameters that stay fixed.
//
// Invariants:
// - A tensor is loaded only when the file has one of the same name and shape; a model
//   tensor the file lacks keeps its fresh initialisation ("new"), one whose shape differs
//   (a head for another label set) too ("skipped", with both shapes), and so does the head
//   of a source run whose labels differ ("relabelled"). Nothing else in the run changes:
//   the model hash of the source run is not checked.
// - Freezing matches whole dot-separated parts of parameter names: "layer1" freezes
//   layer1.conv.weight and layer1.bn.bias, never layer10's; "layer1.conv" only that
//   convolution. Every entry must match a parameter. Batchnorm running statistics are state, not
//   parameters: they keep updating in training mode, as with requires_grad=False in torch.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "host/model/layer.hpp"
#include "host/ops/backend.hpp"
#include "host/train/checkpoint.hpp"

namespace cadenza {

struct InitReport {
  std::filesystem::path file;
  std::vector<std::string> loaded;   // names copied from the file
  std::vector<std::string> fresh;    // in the model, not in the file
  std::vector<std::string> skipped;  // "name: file [..], model [..]"
  std::vector<std::string> unused;   // in the file, not in the model
  std::vector<std::string> relabelled;  // the head's tensors, left out: the source run's labels differ
  std::string label_difference;         // how they differ, when they do

  // Several lines: the file, then counts and names of each group.
  std::string describe() const;
};

// The model.safetensors that model.init_from means: a run directory's best checkpoint (its
// last without a best), a checkpoint directory's file, or the file itself. UserError
// naming model.init_from when there is none.
std::filesystem::path resolve_init_file(const std::string& init_from);

// Copies every tensor of `weights` that the file holds with the same name and shape. When
// the file belongs to a run (RUN/labels.json beside its checkpoints) whose labels are not
// `labels` in the same order (`multi_label` included), the tensors of `head_layer` (the
// layer giving the scores) are left initialised even where their shapes match: ten MTAT
// tags are not ten GTZAN genres.
InitReport load_matching_weights(const std::filesystem::path& file, const std::vector<NamedTensor>& weights,
                                 const std::vector<std::string>& labels, bool multi_label,
                                 const std::string& head_layer, Backend& backend);

// The layer a parameter belongs to: its name without the last part ("layer1.conv" of
// "layer1.conv.weight").
std::string owning_layer(const std::string& parameter_name);

// Whether `prefix` is a parameter's name or the start of it up to a '.' ("layer1" of
// "layer1.conv.weight", not of "layer10.conv.weight").
bool names_layer_or_parameter(const std::string& prefix, const std::string& parameter_name);

// frozen[i]: one of `prefixes` names parameters[i] or its layer (names_layer_or_parameter).
// UserError naming train.freeze for an entry that matches no parameter.
std::vector<bool> frozen_parameters(const std::vector<NamedParameter>& parameters,
                                    const std::vector<std::string>& prefixes);

}  // namespace cadenza
