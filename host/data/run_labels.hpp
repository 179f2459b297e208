// RUN_DIR/labels.json: a run's label names in output order and whether they are tags,
// written when training starts; resuming, evaluating and predicting read it, and refuse
// a dataset whose labels are not the run's (a renamed folder, a label with no file left).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace cadenza {

struct Dataset;

struct RunLabels {
  std::vector<std::string> names;  // class or tag names, in the model's output order
  bool multi_label = false;        // tags (sigmoid scores) or classes (softmax)
};

// Writes d's labels to run_dir/labels.json, atomically.
void write_run_labels(const std::filesystem::path& run_dir, const Dataset& d);

// run_dir/labels.json; UserError when it is missing or malformed.
RunLabels read_run_labels(const std::filesystem::path& run_dir);

// UserError naming the labels that differ when d's labels are not `run`'s.
void require_run_labels(const RunLabels& run, const Dataset& d, const std::filesystem::path& run_dir);

}  // namespace cadenza
