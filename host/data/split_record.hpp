// The split of every clip of a run, kept in RUN_DIR/splits.csv: resuming, evaluating and
// embedding the run use these splits rather than splitting the dataset again, so files
// added to or removed from the dataset since training never move a training clip into
// the test split.
//
// Invariants:
// - The file is CSV with the header "clip,split" and one row per clip of the run's
//   splits, by clip id, in clip order; offline-augmented copies are not listed (they
//   follow their originals). Ids are unique within a dataset (dataset_index.hpp).
// - Applying a record keeps each listed clip in its recorded split; a clip of the dataset
//   that the record does not list is in no split. Clips that cannot be decoded are in
//   no split either way, and a record never lists them. A record that lists none of a
//   dataset's clips (the run evaluated on another dataset) is not applied.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "host/data/dataset_index.hpp"

namespace cadenza {

struct Dataset;

struct SplitRecord {
  std::filesystem::path file;
  std::map<std::string, Split> split_of_clip;
};

// Writes the splits of d's own clips (not its offline copies) to `file`, atomically.
void write_split_record(const std::filesystem::path& file, const Dataset& d);

// The record in `file`; UserError naming the file and line when it is malformed.
SplitRecord read_split_record(const std::filesystem::path& file);

// run_dir/splits.csv, the name a run's record has; nullopt when the run has none (it was
// trained without one, and its splits are made again from the dataset).
std::optional<SplitRecord> read_run_split_record(const std::filesystem::path& run_dir);
// write_split_record to run_dir/splits.csv.
void write_run_split_record(const std::filesystem::path& run_dir, const Dataset& d);

}  // namespace cadenza
