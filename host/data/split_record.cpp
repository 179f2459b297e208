// RUN_DIR/splits.csv: writing a dataset's splits and reading them back (split_record.hpp).
#include "host/data/split_record.hpp"

#include <algorithm>
#include <vector>

#include "host/core/error.hpp"
#include "host/data/dataset.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/csv.hpp"

namespace cadenza {
namespace {

constexpr const char* kRunRecordName = "splits.csv";

}  // namespace

void write_split_record(const std::filesystem::path& file, const Dataset& d) {
  std::vector<std::pair<int, Split>> rows;
  for (int s = 0; s < 3; ++s)
    for (int clip : d.splits[s])
      if (clip < d.original_clips) rows.emplace_back(clip, Split(s));
  std::sort(rows.begin(), rows.end());
  std::string text = csv_record({"clip", "split"});
  for (const auto& [clip, split] : rows) text += csv_record({d.clip_ids[clip], split_name(split)});
  write_file_atomically(file, text);
}

SplitRecord read_split_record(const std::filesystem::path& file) {
  SplitRecord record;
  record.file = file;
  CsvReader reader(file);
  std::vector<std::string> fields;
  if (!reader.next(fields) || fields != std::vector<std::string>{"clip", "split"})
    CADENZA_USER_ERROR(file.string() << ":1: expected the header clip,split");
  reader.expect_field_count(2);
  while (reader.next(fields)) {
    const std::optional<Split> split = parse_split(fields[1]);
    if (!split) CADENZA_USER_ERROR(reader.where() << ": split: expected train, val or test, got '" << fields[1] << "'");
    if (!record.split_of_clip.emplace(fields[0], *split).second)
      CADENZA_USER_ERROR(reader.where() << ": clip '" << fields[0] << "' is listed twice");
  }
  return record;
}

std::optional<SplitRecord> read_run_split_record(const std::filesystem::path& run_dir) {
  const std::filesystem::path file = run_dir / kRunRecordName;
  if (!std::filesystem::exists(file)) return std::nullopt;
  return read_split_record(file);
}

void write_run_split_record(const std::filesystem::path& run_dir, const Dataset& d) {
  write_split_record(run_dir / kRunRecordName, d);
}

}  // namespace cadenza
