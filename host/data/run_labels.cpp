// RUN_DIR/labels.json (run_labels.hpp).
#include "host/data/run_labels.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "host/core/error.hpp"
#include "host/core/text.hpp"
#include "host/data/dataset.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/json_text.hpp"

namespace cadenza {
namespace fs = std::filesystem;
namespace {

// "'a', 'b' and 2 more" for the names of `names` not in `other`.
std::string missing_from(const std::vector<std::string>& names, const std::vector<std::string>& other) {
  std::vector<std::string> missing;
  for (const std::string& name : names)
    if (std::find(other.begin(), other.end(), name) == other.end()) missing.push_back(name);
  return name_list(missing);
}

}  // namespace

void write_run_labels(const fs::path& run_dir, const Dataset& d) {
  const nlohmann::json labels = {{"multi_label", d.multi_label}, {"labels", d.label_names}};
  write_file_atomically(run_dir / "labels.json", json_text(labels, 2) + "\n");
}

RunLabels read_run_labels(const fs::path& run_dir) {
  const fs::path file = run_dir / "labels.json";
  std::ifstream in(file);
  if (!in) CADENZA_USER_ERROR(file.string() << ": missing; the run's label names are written there when training starts");
  const nlohmann::json labels = nlohmann::json::parse(in, nullptr, false);
  if (labels.is_discarded() || !labels.contains("labels") || !labels["labels"].is_array() ||
      !labels.contains("multi_label") || !labels["multi_label"].is_boolean())
    CADENZA_USER_ERROR(file.string() << ": expected {\"multi_label\": true|false, \"labels\": [names]}");
  return {labels["labels"].get<std::vector<std::string>>(), labels["multi_label"].get<bool>()};
}

void require_run_labels(const RunLabels& run, const Dataset& d, const fs::path& run_dir) {
  if (d.multi_label != run.multi_label)
    CADENZA_USER_ERROR(run_dir.string() << ": the data has " << (d.multi_label ? "tags" : "classes")
                                        << " but the run was trained on " << (run.multi_label ? "tags" : "classes")
                                        << " (labels.json)");
  if (d.label_names == run.names) return;
  std::string difference;
  const std::string added = missing_from(d.label_names, run.names), gone = missing_from(run.names, d.label_names);
  if (!added.empty()) difference += "the data has " + added + " in addition";
  if (!gone.empty()) difference += (difference.empty() ? "" : "; ") + std::string("the data lacks ") + gone;
  if (difference.empty()) difference = "the same names in another order";
  CADENZA_USER_ERROR(run_dir.string() << ": the data's " << d.num_labels() << " labels are not the " << run.names.size()
                                      << " the run was trained on (labels.json): " << difference);
}

}  // namespace cadenza
