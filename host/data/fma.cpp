// The Free Music Archive reader: tracks.csv (three header rows), genres.csv for genre
// names, the subset nesting and the official split (see dataset_index.hpp).
//
// Invariants: a track belongs to data.subset when its own subset is that one or a
// smaller one (small < medium < large); the label set is that of the subset's tracks (or
// data.genres, in its order), whatever is later skipped as broken; tracks keep the CSV's
// row order.
#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>

#include "host/config/did_you_mean.hpp"
#include "host/core/error.hpp"
#include "host/data/dataset_index.hpp"
#include "host/io/csv.hpp"

namespace cadenza {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kSubsets = {"small", "medium", "large"};
const std::vector<std::string> kSplitNames = {"training", "validation", "test"};  // Split order

// Tracks whose audio is empty or corrupt in the published archives.
const std::set<int> kBrokenTracks = {1486,   5574,   65753,  80391,  98558,  98559,  98560,
                                     98565,  98566,  98567,  98568,  98569,  98571,  99134,
                                     105247, 108924, 108925, 126981, 127336, 133297, 143992};

const std::string kTracksLayout =
    "FMA's fma_metadata/tracks.csv, with three header rows: group, column, track_id";

struct TrackRow {
  int id = 0;
  int split = -1;
  std::vector<std::string> genres;  // genre_top (at most one) or genres_all, as names
};

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

// "000123" for 123.
std::string six_digits(int id) {
  const std::string digits = std::to_string(id);
  return std::string(digits.size() < 6 ? 6 - digits.size() : 0, '0') + digits;
}

std::size_t index_of(const std::vector<std::string>& names, const std::string& name) {
  return static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
}

// The position of the column (group, name) in the first two header rows.
std::size_t find_column(const std::vector<std::string>& groups,
                        const std::vector<std::string>& columns, const std::string& group,
                        const std::string& name, const fs::path& tracks) {
  for (std::size_t c = 0; c < groups.size() && c < columns.size(); ++c) {
    if (groups[c] == group && columns[c] == name) return c;
  }
  throw UserError(tracks.string() + ": no column (" + group + ", " + name +
                  ") in the header rows (expected " + kTracksLayout + ")");
}

// Genre id -> title from genres.csv (columns genre_id and title); empty when absent.
std::map<int, std::string> read_genre_titles(const fs::path& genres_csv) {
  std::map<int, std::string> titles;
  std::error_code error;
  if (!fs::is_regular_file(genres_csv, error)) return titles;
  CsvReader reader(genres_csv);
  std::vector<std::string> header;
  if (!reader.next(header)) return titles;
  const std::size_t id_column = index_of(header, "genre_id");
  const std::size_t title_column = index_of(header, "title");
  if (id_column == header.size() || title_column == header.size()) {
    throw UserError(genres_csv.string() + ":1: expected the columns genre_id and title");
  }
  reader.expect_field_count(header.size());
  std::vector<std::string> fields;
  while (reader.next(fields)) {
    if (!all_digits(fields[id_column])) {
      throw UserError(reader.where() + ": genre_id: expected a number, got '" + fields[id_column] +
                      "'");
    }
    titles[std::stoi(fields[id_column])] = fields[title_column];
  }
  return titles;
}

// The genre ids of a genres_all cell, "[21, 15]" (or "[]").
std::vector<int> parse_genre_ids(const std::string& cell, const std::string& at) {
  const std::string_view text = trimmed(cell);
  const auto malformed = [&] {
    return UserError(at + ": genres_all: expected a list of genre ids like [21, 15], got '" + cell +
                     "'");
  };
  if (text.size() < 2 || text.front() != '[' || text.back() != ']') throw malformed();
  std::vector<int> ids;
  std::string_view rest = text.substr(1, text.size() - 2);
  if (trimmed(rest).empty()) return ids;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = trimmed(rest.substr(0, comma));
    if (!all_digits(item) || item.size() > 9) throw malformed();
    ids.push_back(std::stoi(std::string(item)));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return ids;
}

// The label names: data.genres (each checked against `present`) or all of `present`.
std::vector<std::string> choose_labels(const std::vector<std::string>& present,
                                       const DataConfig& config) {
  if (config.genres.empty()) return present;
  std::set<std::string> seen;
  for (const std::string& genre : config.genres) {
    if (std::find(present.begin(), present.end(), genre) == present.end()) {
      const std::optional<std::string> suggestion = closest_match(genre, present);
      std::string known;
      for (const std::string& name : present) known += (known.empty() ? "" : ", ") + name;
      throw UserError("data.genres: unknown genre '" + genre + "' for the " + config.subset +
                      " subset's " + config.labels +
                      (suggestion ? " \u2014 did you mean '" + *suggestion + "'?" : "") +
                      " (the genres are: " + known + ")");
    }
    if (!seen.insert(genre).second) {
      throw UserError("data.genres: genre '" + genre + "' is listed twice");
    }
  }
  return config.genres;
}

}  // namespace

DatasetIndex index_fma(const DataConfig& config) {
  const fs::path root = absolute_path(config.root);
  const std::string metadata_key = config.metadata.empty() ? "data.root" : "data.metadata";
  fs::path tracks = config.metadata.empty() ? root / "fma_metadata" / "tracks.csv"
                                            : absolute_path(config.metadata);
  std::error_code error;
  if (fs::is_directory(tracks, error)) tracks /= "tracks.csv";
  require_path(tracks, false, metadata_key, "the track metadata", kTracksLayout);
  const fs::path audio_dir =
      config.audio_dir.empty() ? root / ("fma_" + config.subset) : absolute_path(config.audio_dir);
  require_path(audio_dir, true, config.audio_dir.empty() ? "data.root" : "data.audio_dir",
               "the audio folder", "FMA's fma_<subset>/<tid[:3]>/<tid:06d>.mp3");
  const std::map<int, std::string> titles = read_genre_titles(tracks.parent_path() / "genres.csv");
  const auto genre_name = [&](int id) {
    const auto title = titles.find(id);
    return title != titles.end() ? title->second : "genre_" + std::to_string(id);
  };

  CsvReader reader(tracks);
  std::vector<std::string> groups, columns, index_row;
  if (!reader.next(groups) || !reader.next(columns) || !reader.next(index_row) ||
      index_row.empty() || index_row[0] != "track_id") {
    throw UserError(tracks.string() + ": expected " + kTracksLayout);
  }
  const std::size_t subset_column = find_column(groups, columns, "set", "subset", tracks);
  const std::size_t split_column = find_column(groups, columns, "set", "split", tracks);
  const bool single_label = config.labels == "genre_top";
  const std::size_t genre_column =
      find_column(groups, columns, "track", single_label ? "genre_top" : "genres_all", tracks);
  reader.expect_field_count(groups.size());

  const std::size_t wanted_rank = index_of(kSubsets, config.subset);
  std::vector<TrackRow> rows;
  std::set<std::string> top_genres;
  std::set<int> genre_ids;
  std::vector<std::string> fields;
  while (reader.next(fields)) {
    const std::size_t rank = index_of(kSubsets, fields[subset_column]);
    if (rank == kSubsets.size()) {
      throw UserError(reader.where() + ": subset: expected small, medium or large, got '" +
                      fields[subset_column] + "'");
    }
    if (rank > wanted_rank) continue;
    TrackRow& row = rows.emplace_back();
    if (!all_digits(fields[0]) || fields[0].size() > 9) {
      throw UserError(reader.where() + ": track_id: expected a number, got '" + fields[0] + "'");
    }
    row.id = std::stoi(fields[0]);
    const std::size_t split = index_of(kSplitNames, fields[split_column]);
    if (split == kSplitNames.size()) {
      throw UserError(reader.where() + ": split: expected training, validation or test, got '" +
                      fields[split_column] + "'");
    }
    row.split = static_cast<int>(split);
    if (single_label) {
      if (!fields[genre_column].empty()) {
        row.genres = {fields[genre_column]};
        top_genres.insert(fields[genre_column]);
      }
    } else {
      for (int id : parse_genre_ids(fields[genre_column], reader.where())) {
        row.genres.push_back(genre_name(id));
        genre_ids.insert(id);
      }
    }
  }

  std::vector<std::string> present(top_genres.begin(), top_genres.end());
  for (int id : genre_ids) present.push_back(genre_name(id));

  DatasetIndex index;
  index.multi_label = !single_label;
  index.label_names = choose_labels(present, config);
  const bool official = split_in_effect(config) == "official";
  for (const TrackRow& row : rows) {
    const std::string tid = six_digits(row.id);
    ClipEntry clip;
    clip.path = audio_dir / tid.substr(0, 3) / (tid + ".mp3");
    clip.id = tid;
    if (row.genres.empty()) {
      index.skipped.push_back(clip.path.string() +
                              (single_label ? ": no genre_top (none or several)" : ": no genres"));
      continue;
    }
    clip.targets.assign(index.label_names.size(), 0.0f);
    for (const std::string& genre : row.genres) {
      const std::size_t label = index_of(index.label_names, genre);
      if (label < index.label_names.size()) clip.targets[label] = 1.0f;
    }
    const auto first = std::find(clip.targets.begin(), clip.targets.end(), 1.0f);
    if (first == clip.targets.end()) continue;  // none of data.genres
    clip.primary_label = static_cast<int>(first - clip.targets.begin());
    if (kBrokenTracks.count(row.id) > 0) {
      index.skipped.push_back(clip.path.string() + ": known broken (empty or corrupt mp3)");
      continue;
    }
    clip.split = official ? row.split : -1;
    index.clips.push_back(std::move(clip));
  }
  if (index.clips.empty()) {
    throw UserError(tracks.string() + ": no tracks of the " + config.subset + " subset with " +
                    config.labels + (config.genres.empty() ? "" : " in data.genres"));
  }
  return index;
}

}  // namespace cadenza
