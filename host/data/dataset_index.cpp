// index_dataset's dispatch, assign_splits and the helpers the readers share (see
// dataset_index.hpp).
#include "host/data/dataset_index.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>

#include "host/config/config_schema.hpp"
#include "host/core/error.hpp"
#include "host/core/text.hpp"
#include "host/data/split.hpp"
#include "host/io/json_text.hpp"

namespace cadenza {

const char* split_name(Split split) {
  static const char* const kNames[] = {"train", "val", "test"};
  return kNames[static_cast<int>(split)];
}

std::optional<Split> parse_split(std::string_view name) {
  if (name == "train") return Split::train;
  if (name == "val" || name == "valid" || name == "validation") return Split::val;
  if (name == "test") return Split::test;
  return std::nullopt;
}

namespace {

DatasetIndex read_index(const DataConfig& config) {
  if (config.dataset == "gtzan") return index_gtzan(config);
  if (config.dataset == "mtat") return index_mtat(config);
  if (config.dataset == "fma") return index_fma(config);
  if (config.dataset == "folder") return index_folder(config);
  if (config.dataset == "csv") return index_csv_manifest(config);
  CADENZA_USER_ERROR("data.dataset: '" << config.dataset
                                       << "' is not a dataset read from files (expected gtzan, "
                                          "mtat, fma, folder or csv)");
}

}  // namespace

DatasetIndex index_dataset(const DataConfig& config) {
  DatasetIndex index = read_index(config);
  drop_duplicate_files(index, config.dataset == "csv" ? absolute_path(config.manifest).string() : "data.root");
  // Label names go into labels.json, reports and predictions: JSON and HTML are UTF-8.
  for (const std::string& label : index.label_names)
    if (valid_utf8(label) != label)
      CADENZA_USER_ERROR("data: the label '" << valid_utf8(label)
                                             << "' is not UTF-8 text (a folder or manifest written in another "
                                                "encoding); rename it, as label names go into JSON and the reports");
  std::map<std::string, std::string> label_of_lowercase;
  for (const std::string& label : index.label_names) {
    const auto [it, inserted] = label_of_lowercase.emplace(ascii_lowercase(label), label);
    if (!inserted)
      index.warnings.push_back("the labels '" + it->second + "' and '" + label +
                            "' differ only in case, and are two classes");
  }
  std::set<std::string> ids;
  for (const ClipEntry& clip : index.clips)
    CADENZA_CHECK(ids.insert(clip.id).second, "data." << config.dataset << ": clip id '" << clip.id << "' repeated");
  return index;
}

namespace {

// What names one file however it is reached: its device and inode (a hard link, a symbolic
// link, a path written two ways), else, for a file that cannot be read, its canonical path.
std::string file_identity(const std::filesystem::path& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) == 0)
    return "inode " + std::to_string(status.st_dev) + ":" + std::to_string(status.st_ino);
  std::error_code error;
  const std::filesystem::path canonical = std::filesystem::weakly_canonical(path, error);
  return "path " + (error ? path : canonical).string();
}

}  // namespace

void drop_duplicate_files(DatasetIndex& index, const std::string& where) {
  std::map<std::string, std::size_t> first_of_file;
  std::vector<ClipEntry> kept;
  for (ClipEntry& clip : index.clips) {
    const auto [it, inserted] = first_of_file.emplace(file_identity(clip.path), kept.size());
    if (inserted) {
      kept.push_back(std::move(clip));
      continue;
    }
    const ClipEntry& first = kept[it->second];
    if (first.targets != clip.targets || first.split != clip.split) {
      if (first.path == clip.path)
        CADENZA_USER_ERROR(where << ": " << clip.path.string()
                                 << " is listed twice with other labels or splits; list each file once");
      CADENZA_USER_ERROR(where << ": " << first.path.string() << " and " << clip.path.string()
                               << " are the same file with other labels or splits; list each file once");
    }
    index.skipped.push_back(clip.path.string() + ": the same file as " + first.path.string() + "; used once");
  }
  index.clips = std::move(kept);
}

namespace {
bool split_is_set(const ClipEntry& clip) { return clip.split >= 0; }
}  // namespace

bool has_own_splits(const DatasetIndex& index) {
  return std::any_of(index.clips.begin(), index.clips.end(), split_is_set);
}

std::array<std::vector<int>, 3> assign_splits(const DatasetIndex& index, const DataConfig& config,
                                              std::uint64_t train_seed) {
  if (!has_own_splits(index)) {
    std::vector<int> primary_label;
    primary_label.reserve(index.clips.size());
    for (const ClipEntry& clip : index.clips) primary_label.push_back(clip.primary_label);
    const std::uint64_t seed = config.split_seed != 0 ? config.split_seed : train_seed;
    return stratified_split(primary_label, config.split_fractions, seed);
  }
  CADENZA_CHECK(std::all_of(index.clips.begin(), index.clips.end(), split_is_set),
                "an index sets the split of some clips but not of all");
  std::array<std::vector<int>, 3> splits;
  for (int i = 0; i < static_cast<int>(index.clips.size()); ++i) {
    const int split = index.clips[i].split;
    CADENZA_CHECK(split <= static_cast<int>(Split::test), "clip split " << split);
    splits[split].push_back(i);
  }
  return splits;
}

std::string split_in_effect(const DataConfig& config) {
  if (config.split != "auto") return config.split;
  const DatasetSpec* dataset = find_dataset(config.dataset);
  CADENZA_CHECK(dataset != nullptr && !dataset->splits.empty(),
                "dataset '" << config.dataset << "' is not in the schema");
  return dataset->splits.front();
}

std::filesystem::path absolute_path(const std::filesystem::path& path) {
  return std::filesystem::absolute(path).lexically_normal();
}

std::vector<float> one_hot(std::size_t count, int label) {
  std::vector<float> targets(count, 0.0f);
  targets.at(static_cast<std::size_t>(label)) = 1.0f;
  return targets;
}

void require_path(const std::filesystem::path& path, bool want_directory, const std::string& key,
                  const std::string& what, const std::string& expected) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  const bool present = want_directory ? std::filesystem::is_directory(status)
                                      : std::filesystem::is_regular_file(status);
  if (present) return;
  const std::string problem = !std::filesystem::exists(status) ? "does not exist"
                              : want_directory                 ? "is not a folder"
                                                               : "is not a file";
  throw UserError(key + ": " + what + " '" + path.string() + "' " + problem + " (" + expected +
                  ")");
}

}  // namespace cadenza
