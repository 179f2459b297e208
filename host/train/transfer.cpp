// Transfer learning: loading matching weights and choosing frozen parameters (see transfer.hpp).
#include "host/train/transfer.hpp"

#include <algorithm>
#include <optional>
#include <set>
#include <sstream>

#include "host/config/config_schema.hpp"
#include "host/core/error.hpp"
#include "host/core/text.hpp"
#include "host/data/run_labels.hpp"
#include "host/io/safetensors.hpp"

namespace cadenza {
namespace fs = std::filesystem;
namespace {

void describe_group(std::ostringstream& os, const char* what, const std::vector<std::string>& names) {
  os << "\n  " << what << ": " << names.size();
  if (!names.empty()) os << " (" << joined(names) << ")";
}

// The labels of the run `file` belongs to (RUN/checkpoints/NAME/model.safetensors, or a
// model.safetensors beside labels.json), or nullopt for a file of no run.
std::optional<RunLabels> source_run_labels(const fs::path& file) {
  const fs::path folder = fs::absolute(file).parent_path();
  for (const fs::path& run : {folder.parent_path().parent_path(), folder}) {
    std::error_code missing;
    if (fs::is_regular_file(run / "labels.json", missing)) return read_run_labels(run);
  }
  return std::nullopt;
}

// "" when the labels are the same, else how they differ.
std::string label_difference(const RunLabels& source, const std::vector<std::string>& labels, bool multi_label) {
  if (source.multi_label != multi_label)
    return std::string("the source run's labels are ") + (source.multi_label ? "tags" : "classes") + ", this run's " +
           (multi_label ? "tags" : "classes");
  if (source.names == labels) return "";
  return "the source run's labels are " + name_list(source.names, true, 4) + ", this run's " +
         name_list(labels, true, 4);
}

}  // namespace

std::string InitReport::describe() const {
  std::ostringstream os;
  os << "model.init_from: " << file.string();
  describe_group(os, "loaded", loaded);
  describe_group(os, "new (not in the file, initialised)", fresh);
  describe_group(os, "skipped (shape differs, initialised)", skipped);
  describe_group(os, "unused (in the file only)", unused);
  if (!relabelled.empty()) {
    describe_group(os, "head not loaded (initialised)", relabelled);
    os << ": " << label_difference;
  }
  return os.str();
}

fs::path resolve_init_file(const std::string& init_from) {
  const fs::path path(init_from);
  std::error_code unreadable;
  if (!fs::exists(path, unreadable) && !unreadable)
    CADENZA_USER_ERROR("model.init_from: " << init_from << " does not exist");
  if (fs::is_regular_file(path)) return path;
  for (const fs::path& candidate : {path / "checkpoints" / "best" / "model.safetensors",
                                    path / "checkpoints" / "last" / "model.safetensors", path / "model.safetensors"}) {
    if (fs::is_regular_file(candidate)) return candidate;
  }
  CADENZA_USER_ERROR("model.init_from: " << init_from
                                         << " is not a model.safetensors file, a checkpoint directory or a run "
                                            "directory with checkpoints/best or checkpoints/last");
}

InitReport load_matching_weights(const fs::path& file, const std::vector<NamedTensor>& weights,
                                 const std::vector<std::string>& labels, bool multi_label,
                                 const std::string& head_layer, Backend& backend) {
  const SafetensorsFile source(file);
  check_weights_checksum(source);
  InitReport report;
  report.file = file;
  if (const std::optional<RunLabels> source_labels = source_run_labels(file))
    report.label_difference = label_difference(*source_labels, labels, multi_label);
  std::set<std::string> model_names;
  for (const NamedTensor& w : weights) {
    model_names.insert(w.name);
    if (!source.contains(w.name)) {
      report.fresh.push_back(w.name);
      continue;
    }
    const std::vector<std::int64_t> shape(w.tensor.shape().data(), w.tensor.shape().data() + w.tensor.shape().rank());
    const SafetensorsFile::View& found = source.tensor(w.name);
    if (found.shape != shape || found.dtype != "F32") {
      report.skipped.push_back(w.name + ": file " + found.dtype + " " + format_shape(found.shape) + ", model " +
                               format_shape(shape));
      continue;
    }
    if (!report.label_difference.empty() && names_layer_or_parameter(head_layer, w.name)) {
      report.relabelled.push_back(w.name);
      continue;
    }
    Tensor host = Tensor::zeros(w.tensor.shape());
    source.copy_f32(w.name, shape, host.f32());
    Tensor destination = w.tensor;
    backend.copy(host, destination);
    report.loaded.push_back(w.name);
  }
  for (const std::string& name : source.names())
    if (!model_names.count(name)) report.unused.push_back(name);
  return report;
}

std::string owning_layer(const std::string& parameter_name) {
  return parameter_name.substr(0, parameter_name.rfind('.'));
}

bool names_layer_or_parameter(const std::string& prefix, const std::string& parameter_name) {
  if (!parameter_name.starts_with(prefix)) return false;
  return parameter_name.size() == prefix.size() || prefix.ends_with('.') || parameter_name[prefix.size()] == '.';
}

std::vector<bool> frozen_parameters(const std::vector<NamedParameter>& parameters,
                                    const std::vector<std::string>& prefixes) {
  std::vector<bool> frozen(parameters.size(), false);
  for (const std::string& prefix : prefixes) {
    bool matched = false;
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      if (names_layer_or_parameter(prefix, parameters[i].name)) frozen[i] = matched = true;
    }
    if (!matched) {
      std::vector<std::string> owners;  // in model order
      for (const NamedParameter& p : parameters) {
        const std::string owner = owning_layer(p.name);
        if (owners.empty() || owners.back() != owner) owners.push_back(owner);
      }
      CADENZA_USER_ERROR("train.freeze: '" << prefix << "' names no layer or parameter; the model's parameters "
                                           << "belong to " << joined(owners));
    }
  }
  // As PyTorch's optimizers refuse an empty parameter list: nothing would learn.
  if (!parameters.empty() && std::all_of(frozen.begin(), frozen.end(), [](bool f) { return f; }))
    CADENZA_USER_ERROR("train.freeze: every parameter of the model is frozen, so training would change nothing but "
                       "batchnorm statistics; leave at least the head ("
                       << owning_layer(parameters.back().name) << ") out of train.freeze");
  return frozen;
}

}  // namespace cadenza
