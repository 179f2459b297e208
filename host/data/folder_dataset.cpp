// The readers of a user's own library: a folder per label, or a CSV manifest of paths and
// labels (see dataset_index.hpp).
//
// Invariants: labels are the sorted distinct folder names or label values; folder clips
// are ordered by label, then path; manifest clips keep the manifest's row order; the
// manifest's split column is used for every row or for none.
#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>

#include "host/audio/audio_decoder.hpp"
#include "host/audio/audio_folder.hpp"
#include "host/core/error.hpp"
#include "host/core/text.hpp"
#include "host/data/dataset_index.hpp"
#include "host/io/csv.hpp"

namespace cadenza {
namespace {

namespace fs = std::filesystem;

const std::string kManifestLayout =
    "a CSV with a header row and the columns path, label or labels (';'-separated), and "
    "optionally split";

std::string trimmed(const std::string& text) {
  const auto is_space = [](unsigned char c) { return std::isspace(c) != 0; };
  const auto first = std::find_if_not(text.begin(), text.end(), is_space);
  const auto last = std::find_if_not(text.rbegin(), text.rend(), is_space).base();
  return first < last ? std::string(first, last) : std::string();
}

// The labels of a manifest cell: one (label column) or ';'-separated (labels column),
// trimmed, empty entries dropped.
std::vector<std::string> cell_labels(const std::string& cell, bool multi_label) {
  if (!multi_label) {
    const std::string label = trimmed(cell);
    return label.empty() ? std::vector<std::string>{} : std::vector<std::string>{label};
  }
  std::vector<std::string> labels;
  std::size_t start = 0;
  while (start <= cell.size()) {
    const std::size_t end = std::min(cell.find(';', start), cell.size());
    const std::string label = trimmed(cell.substr(start, end - start));
    if (!label.empty() && std::find(labels.begin(), labels.end(), label) == labels.end()) {
      labels.push_back(label);
    }
    start = end + 1;
  }
  return labels;
}

std::optional<int> split_of(const std::string& cell) {
  const std::optional<Split> split = parse_split(ascii_lowercase(trimmed(cell)));
  if (!split) return std::nullopt;
  return static_cast<int>(*split);
}

struct ManifestRow {
  fs::path path;
  std::string id;  // the path as the manifest writes it, "." and ".." resolved: unique per file
  std::vector<std::string> labels;
  int split = -1;
};

}  // namespace

DatasetIndex index_folder(const DataConfig& config) {
  const fs::path root = absolute_path(config.root);
  const std::string layout =
      "a folder per label: <root>/<label>/**/<file>.wav (or .au, .aiff, .flac, "
      ".ogg, .opus, .mp3)";
  require_path(root, true, "data.root", "the dataset folder", layout);

  DatasetIndex index;
  std::map<std::string, std::vector<fs::path>> files_of_label;  // sorted by label
  std::map<std::string, int> other_files;                        // by extension: covers, notes, ...
  std::vector<std::string> labels_without_audio;
  for (const fs::directory_entry& folder : fs::directory_iterator(root)) {
    const std::string label = folder.path().filename().string();
    if (!folder.is_directory() || is_hidden(folder.path())) continue;
    AudioFolderScan scan = scan_audio_folder(folder.path());
    index.skipped.insert(index.skipped.end(), scan.skipped.begin(), scan.skipped.end());
    for (const auto& [extension, n] : scan.other_files) other_files[extension] += n;
    std::vector<fs::path> files;
    for (const fs::path& path : scan.audio) files.push_back(absolute_path(path));
    if (files.empty()) {
      labels_without_audio.push_back(label);
      continue;
    }
    std::sort(files.begin(), files.end());
    files_of_label.emplace(label, std::move(files));
  }
  std::sort(index.skipped.begin(), index.skipped.end());  // directories list in no fixed order
  std::sort(labels_without_audio.begin(), labels_without_audio.end());
  if (files_of_label.empty()) {
    throw UserError("data.root: no audio files in the subfolders of '" + root.string() +
                    "' (expected " + layout + ")");
  }
  if (files_of_label.size() == 1) {
    const std::string& only = files_of_label.begin()->first;
    throw UserError("data.root: '" + root.string() + "' has one label folder with audio, '" + only +
                    "', and a classifier needs two or more; if the label folders are inside it, use "
                    "data.root=" + (root / only).string());
  }
  if (!labels_without_audio.empty())
    index.warnings.push_back("left out " + count_of(labels_without_audio.size(), "folder") +
                             " of data.root without audio files: " + name_list(labels_without_audio));
  if (!other_files.empty()) {
    int count = 0;
    std::vector<std::string> kinds;
    for (const auto& [extension, n] : other_files) {
      count += n;
      kinds.push_back((extension.empty() ? std::string("no extension") : extension) + " " + std::to_string(n));
    }
    index.notes.push_back("left out " + std::to_string(count) + (count == 1 ? " file that is" : " files that are") +
                          " not audio (" + name_list(kinds, false) + ")");
  }

  for (const auto& [label, files] : files_of_label) index.label_names.push_back(label);
  for (int label = 0; label < static_cast<int>(index.label_names.size()); ++label) {
    for (const fs::path& file : files_of_label[index.label_names[label]]) {
      index.clips.push_back(
          {file, file.lexically_relative(root).string(), one_hot(index.label_names.size(), label), label, -1});
    }
  }
  return index;
}

DatasetIndex index_csv_manifest(const DataConfig& config) {
  const fs::path manifest = absolute_path(config.manifest);
  require_path(manifest, false, "data.manifest", "the manifest", kManifestLayout);

  CsvReader reader(manifest);
  std::vector<std::string> header;
  if (!reader.next(header)) {
    throw UserError(manifest.string() + ": the file is empty (expected " + kManifestLayout + ")");
  }
  for (std::string& name : header) name = trimmed(name);
  const auto column = [&](const std::string& name) {
    return static_cast<std::size_t>(std::find(header.begin(), header.end(), name) - header.begin());
  };
  const std::size_t path_column = column("path");
  const bool multi_label = column("labels") < header.size();
  const std::size_t label_column = multi_label ? column("labels") : column("label");
  const std::size_t split_column = column("split");
  if (path_column == header.size() || label_column == header.size()) {
    std::string names;
    for (const std::string& name : header) names += (names.empty() ? "" : ", ") + name;
    throw UserError(reader.where() + ": expected the columns path and label or labels, got " +
                    names + " (" + kManifestLayout + ")");
  }
  const std::string split = split_in_effect(config);
  const bool use_split_column = split == "manifest" && split_column < header.size();
  if (config.split == "manifest" && !use_split_column) {
    throw UserError("data.split: 'manifest' needs a split column in '" + manifest.string() +
                    "' (or use data.split: random)");
  }
  reader.expect_field_count(header.size());

  DatasetIndex index;
  index.multi_label = multi_label;
  std::vector<ManifestRow> rows;
  std::vector<std::pair<std::string, std::string>> missing;  // listed files that do not exist, and where
  std::size_t listed = 0;
  std::set<std::string> label_set;
  std::vector<std::string> fields;
  while (reader.next(fields)) {
    ++listed;
    // Spaces around an unquoted path are the CSV's layout ("a.wav, rock"); a quoted one is
    // taken as written.
    const std::string path = reader.quoted(path_column) ? fields[path_column] : trimmed(fields[path_column]);
    if (path.empty()) throw UserError(reader.where() + ": path: expected a file path, got none");
    ManifestRow row;
    row.path = absolute_path(manifest.parent_path() / path);  // an absolute path stays as is
    row.id = fs::path(path).lexically_normal().string();
    row.labels = cell_labels(fields[label_column], multi_label);
    if (row.labels.empty()) {
      index.skipped.push_back(row.path.string() + ": no label (" + reader.where() + ")");
      continue;
    }
    std::error_code unreadable;
    if (!fs::exists(row.path, unreadable) && !unreadable) {
      missing.push_back({row.path.string(), reader.where()});
      continue;
    }
    if (use_split_column) {
      const std::optional<int> row_split = split_of(fields[split_column]);
      if (!row_split) {
        throw UserError(reader.where() + ": split: expected train, val, valid or test, got '" +
                        fields[split_column] + "'");
      }
      row.split = *row_split;
    }
    label_set.insert(row.labels.begin(), row.labels.end());
    rows.push_back(std::move(row));
  }
  // A file or two gone is skipped; most of them gone is a manifest written for another
  // folder (relative paths are read from the manifest's own folder).
  if (!missing.empty() && 2 * missing.size() > listed) {
    throw UserError(manifest.string() + ": " + std::to_string(missing.size()) + " of the " + std::to_string(listed) +
                    " files it lists do not exist, such as " + missing.front().first +
                    " (a relative path is read from the manifest's folder, " +
                    absolute_path(manifest.parent_path()).string() + ")");
  }
  for (const auto& [path, at] : missing) index.skipped.push_back(path + ": listed at " + at + " but not found");
  if (rows.empty()) {
    throw UserError(manifest.string() + ": no labelled rows (expected " + kManifestLayout + ")");
  }
  if (!multi_label && label_set.size() == 1) {
    throw UserError(manifest.string() + ": every row has the label '" + *label_set.begin() +
                    "', and a classifier needs two or more");
  }

  if (!multi_label) {
    std::vector<std::string> joined;
    for (const std::string& label : label_set)
      if (label.find(';') != std::string::npos) joined.push_back(label);
    if (!joined.empty())
      index.warnings.push_back(manifest.string() + ": the label column holds " + name_list(joined) +
                               ", each one class; for several tags per clip, name the column labels");
  }
  index.label_names.assign(label_set.begin(), label_set.end());
  std::map<std::string, int> label_of_name;
  for (int i = 0; i < static_cast<int>(index.label_names.size()); ++i) {
    label_of_name[index.label_names[i]] = i;
  }
  for (ManifestRow& row : rows) {
    ClipEntry clip;
    clip.id = std::move(row.id);
    clip.targets.assign(index.label_names.size(), 0.0f);
    for (const std::string& label : row.labels) clip.targets[label_of_name[label]] = 1.0f;
    clip.primary_label = static_cast<int>(
        std::find(clip.targets.begin(), clip.targets.end(), 1.0f) - clip.targets.begin());
    clip.path = std::move(row.path);
    clip.split = row.split;
    index.clips.push_back(std::move(clip));
  }
  return index;
}

}  // namespace cadenza
