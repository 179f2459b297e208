// Indexes of real datasets as published: each clip's audio path, id, targets and official
// split, read from the dataset's folders and metadata files without decoding any audio.
//
// Readers (data.dataset):
// - gtzan:  <root>/genres/<genre>/<genre>.NNNNN.{au,wav} (root may also be the genres
//           folder itself, or hold genres_original/); the 10 genres in alphabetical order.
//           Splits: random, or filtered (Kereliuk & Sturm's artist-filtered 443/197/290,
//           from train_filtered.txt, valid_filtered.txt, test_filtered.txt in
//           data.split_lists; clips in none of them are skipped). jazz.00054 is empty in
//           the common WAV copy; it is indexed like any clip and the decoder reports it.
// - mtat:   <root>/annotations_final.csv (tab-separated, quoted, CRLF: clip_id, 188 tags,
//           mp3_path); the tags of data.tags (top<N>: the N most frequent in the CSV, ties
//           in column order; or names); audio at <audio_dir or root>/<mp3_path>. Splits:
//           folder (mp3_path's folder 0-b train, c val, d-f test), cleaned (the same,
//           dropping clips with none of the chosen tags), random. Broken clips 35644,
//           55753, 57881 are skipped.
// - fma:    tracks.csv (3 header rows) of data.metadata or <root>/fma_metadata; the
//           tracks of data.subset and the smaller subsets; labels genre_top (single-label,
//           sorted by name; tracks without one are skipped) or genres_all (multi-label,
//           by genre id, named from genres.csv beside tracks.csv, else "genre_<id>");
//           data.genres keeps only those genres, in that order. Audio at
//           <audio_dir or root/fma_<subset>>/<tid[:3]>/<tid:06d>.mp3. Splits: official
//           (set.split), random. The known empty or broken tracks are skipped.
// - folder: <root>/<label>/**/*.{wav,au,aiff,flac,ogg,opus,mp3}; labels are the sorted
//           names of the subfolders holding audio, two or more; single-label; split random.
//           Hidden files and folders are passed over; files of other audio formats (.m4a,
//           .wma, ...) and broken links are skipped; other files are counted in `notes`,
//           label folders without audio named in `warnings`.
// - csv:    data.manifest with a header row and columns path (relative to the manifest's
//           folder, or absolute), label (single-label) or labels (multi-label, ';'-
//           separated), and optionally split (train, val, valid, validation or test).
//           Labels are the sorted distinct values (two or more when single-label). Rows
//           without a label are skipped.
//           Splits: manifest (the split column), random; auto uses the column if present.
//
// Invariants:
// - Every path is absolute, every id unique, every label name UTF-8 text, and no file is
//   listed twice (drop_duplicate_files); clips come in a fixed order for the same files (gtzan: by
//   genre then id; folder: by label then path; mtat, fma, csv: the metadata's row order).
// - targets has one entry per label name, each 0 or 1. A single-label clip has exactly
//   one 1, at primary_label; a multi-label clip's primary_label is its first tag present,
//   or -1 when it has none (only mtat's folder and random splits keep such clips).
// - Either every clip has its split set (0..2: the split in effect is an official one) or
//   none has (-1: the split is random, made by assign_splits).
// - Nothing is printed: skipped entries are listed in `skipped`, problems throw UserError
//   naming the key (data.root, data.tags, ...) or the file and line, and what was expected.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/config/config.hpp"

namespace cadenza {

enum class Split : int { train = 0, val = 1, test = 2 };

// The name configs, tools and reports use: "train", "val" or "test".
const char* split_name(Split split);

// A split from its name: "train", "val" (also "valid" or "validation") or "test", exactly
// as written (callers lower-case or trim where their input allows it); nullopt otherwise.
std::optional<Split> parse_split(std::string_view name);

struct ClipEntry {
  std::filesystem::path path;  // absolute
  std::string id;              // "blues.00000", MTAT clip_id, FMA track id, or the path
                               // relative to data.root (folder), or as the manifest writes it
  std::vector<float> targets;  // one per label: one-hot or multi-hot
  int primary_label = -1;      // the class, or the first tag present; for stratification
  int split = -1;              // a Split when the split in effect assigns one, else -1
};

struct DatasetIndex {
  std::vector<std::string> label_names;
  bool multi_label = false;
  std::vector<ClipEntry> clips;
  std::vector<std::string> skipped;  // "<path>: <reason>" for each entry left out
  std::vector<std::string> notes;     // what was passed over by design (covers, notes): for the log
  std::vector<std::string> warnings;  // what the user may not have meant (an empty label folder)
};

// Indexes data.dataset (any but synthetic, which is generated, not read).
DatasetIndex index_dataset(const DataConfig& config);

// Whether the clips carry their own splits (an official split, a manifest's split column),
// rather than none, for assign_splits to draw at random.
bool has_own_splits(const DatasetIndex& index);

// The clip indices of train, val and test, each sorted: the clips' own splits when they
// are set, else stratified_split by primary_label with data.split_fractions, seeded by
// data.split_seed, or by `train_seed` when that is 0.
std::array<std::vector<int>, 3> assign_splits(const DatasetIndex& index, const DataConfig& config,
                                              std::uint64_t train_seed);

// The readers index_dataset dispatches to.
DatasetIndex index_gtzan(const DataConfig& config);
DatasetIndex index_mtat(const DataConfig& config);
DatasetIndex index_fma(const DataConfig& config);
DatasetIndex index_folder(const DataConfig& config);
DatasetIndex index_csv_manifest(const DataConfig& config);

// N when mtat's data.tags is the one entry "top<N>" (N of at most 4 digits).
std::optional<std::size_t> mtat_top_count(const std::vector<std::string>& tags);

// What data.split means for this config: its value, or for auto the dataset's standard
// split ("manifest" for csv, which falls back to random without a split column).
std::string split_in_effect(const DataConfig& config);

// Helpers shared by the readers.

// `path` made absolute against the current directory, with "." and ".." resolved.
std::filesystem::path absolute_path(const std::filesystem::path& path);

// A target vector of `count` zeros with a 1 at `label`.
std::vector<float> one_hot(std::size_t count, int label);

// Drops every clip whose file is one an earlier clip already has (a link, or a path written
// twice), listing it in `skipped`; UserError naming both entries when the two differ in
// labels or split, as one file cannot be trained and tested on, or be two classes.
// `where` names the source (data.root, a manifest) in the message.
void drop_duplicate_files(DatasetIndex& index, const std::string& where);

// Throws UserError "<key>: <what> '<path>' does not exist (<expected>)" (or "is not a
// folder", "is not a file") unless `path` is a directory (want_directory) or a regular file.
void require_path(const std::filesystem::path& path, bool want_directory, const std::string& key,
                  const std::string& what, const std::string& expected);

}  // namespace cadenza
