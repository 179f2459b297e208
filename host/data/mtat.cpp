// The MagnaTagATune reader: annotations_final.csv, the tag selection of data.tags and the
// folder split (see dataset_index.hpp).
//
// Invariants: top50 and top10 are the field's top-50 list and its first ten, in the order
// the published models' outputs follow (kFieldTop50), whatever the CSV's counts; any other
// top<N> ranks tags by how many rows of the CSV carry them (every row, broken clips
// included), ties in column order; an explicit list keeps its own order; clips keep the
// CSV's row order.
#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "host/config/did_you_mean.hpp"
#include "host/core/error.hpp"
#include "host/data/dataset_index.hpp"
#include "host/io/csv.hpp"

namespace cadenza {
namespace {

namespace fs = std::filesystem;

// Clips whose audio is unusable: clip id -> why.
const std::map<std::string, std::string> kBrokenClips = {
    {"35644", "known broken (empty mp3)"},
    {"55753", "known broken (corrupt mp3)"},
    {"57881", "known broken (corrupt mp3)"},
};

// The MTAT top-50 tags as the field's code lists them (Choi's magnatagatune-list, Won et
// al.'s and musicnn's models), most frequent first: a head trained elsewhere on "the top
// 50" has its outputs in this order (some tables of tag counts swap "metal" and "female
// voice", 48th and 49th).
constexpr std::array<const char*, 50> kFieldTop50 = {
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic",
    "rock", "fast", "piano", "ambient", "beat", "violin", "vocal",
    "synth", "female", "indian", "opera", "male", "singing", "vocals",
    "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal",
    "no vocal", "pop", "soft", "sitar", "solo", "man", "classic",
    "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats",
    "harp", "cello", "no voice", "weird", "country", "metal", "female voice",
    "choral"};

// The split of a clip by its mp3 folder: 0-9, a, b train; c val; d-f test.
std::optional<int> folder_split(char folder) {
  if (std::isdigit(static_cast<unsigned char>(folder)) || folder == 'a' || folder == 'b') {
    return static_cast<int>(Split::train);
  }
  if (folder == 'c') return static_cast<int>(Split::val);
  if (folder >= 'd' && folder <= 'f') return static_cast<int>(Split::test);
  return std::nullopt;
}

// The CSV's tag columns (0-based among the tags) that data.tags selects, in label order.
std::vector<std::size_t> select_tags(const std::vector<std::string>& tag_names,
                                     const std::vector<std::size_t>& counts,
                                     const std::vector<std::string>& wanted, const fs::path& csv) {
  const std::optional<std::size_t> top = mtat_top_count(wanted);
  if (top && (*top == 50 || *top == 10)) {
    std::vector<std::size_t> columns;
    for (std::size_t k = 0; k < *top; ++k) {
      const auto found = std::find(tag_names.begin(), tag_names.end(), kFieldTop50[k]);
      if (found == tag_names.end())
        throw UserError("data.tags: " + wanted[0] + " is the field's list of MTAT tags, and '" + kFieldTop50[k] +
                        "' of it is not a column of '" + csv.string() + "'; list the tags by name instead");
      columns.push_back(static_cast<std::size_t>(found - tag_names.begin()));
    }
    return columns;
  }
  if (top) {
    if (*top < 1 || *top > tag_names.size()) {
      throw UserError("data.tags: expected top<N> with N in [1, " +
                      std::to_string(tag_names.size()) + "] (the tags of '" + csv.string() +
                      "'), got '" + wanted[0] + "'");
    }
    std::vector<std::size_t> order(tag_names.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return counts[a] > counts[b]; });
    order.resize(*top);
    return order;
  }
  std::vector<std::size_t> columns;
  std::set<std::string> seen;
  for (const std::string& tag : wanted) {
    const auto found = std::find(tag_names.begin(), tag_names.end(), tag);
    if (found == tag_names.end()) {
      const std::optional<std::string> suggestion = closest_match(tag, tag_names);
      throw UserError("data.tags: unknown tag '" + tag + "' (not a column of '" + csv.string() +
                      "')" + (suggestion ? " \u2014 did you mean '" + *suggestion + "'?" : "") +
                      "; or use top<N> for the N most frequent tags");
    }
    if (!seen.insert(tag).second) {
      throw UserError("data.tags: tag '" + tag + "' is listed twice");
    }
    columns.push_back(static_cast<std::size_t>(found - tag_names.begin()));
  }
  return columns;
}

struct AnnotationRow {
  std::string clip_id;
  std::vector<bool> tags;  // one per tag column
  std::string mp3_path;
  std::string at;  // "file:line"
};

}  // namespace

std::optional<std::size_t> mtat_top_count(const std::vector<std::string>& tags) {
  if (tags.size() != 1 || tags[0].rfind("top", 0) != 0 || tags[0].size() == 3) return std::nullopt;
  const std::string digits = tags[0].substr(3);
  if (!std::all_of(digits.begin(), digits.end(),
                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) ||
      digits.size() > 4) {
    return std::nullopt;
  }
  return std::stoul(digits);
}

DatasetIndex index_mtat(const DataConfig& config) {
  const fs::path root = absolute_path(config.root);
  const fs::path csv = root / "annotations_final.csv";
  require_path(root, true, "data.root", "the dataset folder",
               "MagnaTagATune: annotations_final.csv and the mp3 folders 0-f");
  require_path(csv, false, "data.root", "the annotations file",
               "MagnaTagATune's annotations_final.csv, tab-separated: clip_id, 188 tags, mp3_path");
  const fs::path audio_root = config.audio_dir.empty() ? root : absolute_path(config.audio_dir);
  require_path(audio_root, true, config.audio_dir.empty() ? "data.root" : "data.audio_dir",
               "the audio folder", "the mp3 folders 0-f");

  CsvReader reader(csv, '\t');
  std::vector<std::string> fields;
  if (!reader.next(fields) || fields.size() < 3 || fields.front() != "clip_id" ||
      fields.back() != "mp3_path") {
    throw UserError(csv.string() +
                    ":1: expected the header clip_id, <tags>, mp3_path (tab-separated)");
  }
  const std::vector<std::string> tag_names(fields.begin() + 1, fields.end() - 1);
  reader.expect_field_count(fields.size());

  std::vector<AnnotationRow> rows;
  std::vector<std::size_t> counts(tag_names.size(), 0);
  while (reader.next(fields)) {
    AnnotationRow& row = rows.emplace_back();
    row.clip_id = fields.front();
    row.mp3_path = fields.back();
    row.at = reader.where();
    row.tags.resize(tag_names.size());
    for (std::size_t t = 0; t < tag_names.size(); ++t) {
      const std::string& flag = fields[t + 1];
      if (flag != "0" && flag != "1") {
        throw UserError(row.at + ": tag '" + tag_names[t] + "': expected 0 or 1, got '" + flag +
                        "'");
      }
      row.tags[t] = flag == "1";
      counts[t] += row.tags[t] ? 1 : 0;
    }
  }
  if (rows.empty()) {
    throw UserError(csv.string() + ": no clips (expected one row per clip after the header)");
  }

  const std::vector<std::size_t> selected = select_tags(tag_names, counts, config.tags, csv);
  const std::string split = split_in_effect(config);
  const bool folder_splits = split == "folder" || split == "cleaned";

  DatasetIndex index;
  index.multi_label = true;
  for (std::size_t column : selected) index.label_names.push_back(tag_names[column]);
  for (const AnnotationRow& row : rows) {
    ClipEntry clip;
    clip.path = audio_root / row.mp3_path;
    clip.id = row.clip_id;
    if (const auto broken = kBrokenClips.find(row.clip_id); broken != kBrokenClips.end()) {
      index.skipped.push_back(clip.path.string() + ": " + broken->second);
      continue;
    }
    clip.targets.assign(selected.size(), 0.0f);
    for (std::size_t label = 0; label < selected.size(); ++label) {
      if (!row.tags[selected[label]]) continue;
      clip.targets[label] = 1.0f;
      if (clip.primary_label < 0) clip.primary_label = static_cast<int>(label);
    }
    if (split == "cleaned" && clip.primary_label < 0) {
      index.skipped.push_back(clip.path.string() + ": none of the chosen tags (cleaned split)");
      continue;
    }
    if (folder_splits) {
      const std::optional<int> clip_split =
          row.mp3_path.empty() ? std::nullopt : folder_split(row.mp3_path.front());
      if (!clip_split) {
        throw UserError(row.at + ": mp3_path '" + row.mp3_path +
                        "': expected it in one of the folders 0-9, a-f");
      }
      clip.split = *clip_split;
    }
    index.clips.push_back(std::move(clip));
  }
  if (index.clips.empty()) {
    throw UserError(csv.string() + ": no clips left with the tags of data.tags");
  }
  return index;
}

}  // namespace cadenza
