// A streaming reader of delimiter-separated text (RFC 4180): one record at a time, with
// the line it started on, for dataset metadata such as MagnaTagATune's
// annotations_final.csv (tab-separated, every field quoted, CRLF) and FMA's tracks.csv
// (comma-separated, quoted fields holding commas and line breaks).
//
// Invariants:
// - A field that starts with '"' is quoted: it runs to the next lone '"', may hold the
//   delimiter and line breaks (kept as written), and '""' inside it is one '"'. After its
//   closing quote only the delimiter or the end of the record may follow. A '"' inside an
//   unquoted field is an ordinary character.
// - A record ends at LF, CRLF or a lone CR outside quotes, or at the end of the input; a
//   blank line is no record, so a final line break adds none. A UTF-8 byte order mark at
//   the very start is dropped.
// - Line numbers are 1-based and count the physical lines of the input, so a record after
//   a quoted field that spans lines has the number an editor shows.
// - Every problem throws UserError "<file>:<line>: <what was wrong>".
// - csv_record writes what the reader reads back field for field: a field holding the
//   delimiter, a '"', CR or LF is quoted, with each '"' doubled.
#pragma once

#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cadenza {

class CsvReader {
 public:
  // Reads a file; UserError "cannot read <file>: <reason>" when it cannot be opened.
  explicit CsvReader(const std::filesystem::path& file, char delimiter = ',');
  // Reads `text`; `origin` names it in error messages.
  CsvReader(std::string text, std::string origin, char delimiter = ',');

  // The next record's fields into `fields`; false (and `fields` empty) at the end.
  bool next(std::vector<std::string>& fields);

  // From now on every record must have exactly `count` fields (as the header has);
  // otherwise next() throws "<file>:<line>: expected <count> fields, got <n>".
  void expect_field_count(std::size_t count) { expected_field_count_ = count; }

  // Whether field `index` of the last record returned by next() was quoted (a caller that
  // trims spaces keeps a quoted field's as written).
  bool quoted(std::size_t index) const { return index < quoted_.size() && quoted_[index]; }

  // The line on which the last record returned by next() started.
  std::size_t line() const { return record_line_; }
  const std::string& origin() const { return origin_; }
  // "<origin>:<line>", the prefix of a message about the last record.
  std::string where() const;

 private:
  int peek();      // the next byte, or EOF
  void advance();  // moves past the byte peek() returned
  bool refill();   // reads more of the file into buffer_; false at its end
  [[noreturn]] void fail(std::size_t line, const std::string& message) const;

  std::string origin_;
  char delimiter_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_;
  std::string buffer_;
  std::size_t position_ = 0;  // of the next byte in buffer_
  std::size_t line_ = 1;      // of the next byte
  std::size_t record_line_ = 0;
  std::optional<std::size_t> expected_field_count_;
  std::vector<bool> quoted_;  // of the last record's fields
};

// One record of `fields`, ending in "\n", quoted where RFC 4180 needs it.
std::string csv_record(const std::vector<std::string>& fields, char delimiter = ',');

}  // namespace cadenza
