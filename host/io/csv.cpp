// CsvReader: a byte-at-a-time RFC 4180 state machine over a refilled buffer (see csv.hpp).
#include "host/io/csv.hpp"

#include <cerrno>
#include <cstring>
#include <string_view>

#include "host/core/error.hpp"

namespace cadenza {
namespace {

constexpr std::size_t kChunkBytes = 1 << 16;
constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

}  // namespace

CsvReader::CsvReader(const std::filesystem::path& file, char delimiter)
    : origin_(file.string()),
      delimiter_(delimiter),
      file_(std::fopen(file.c_str(), "rb"), &std::fclose) {
  if (!file_) {
    throw UserError("cannot read " + origin_ + ": " + std::strerror(errno));
  }
  if (peek() != EOF &&
      std::string_view(buffer_).substr(0, kByteOrderMark.size()) == kByteOrderMark) {
    position_ = kByteOrderMark.size();
  }
}

CsvReader::CsvReader(std::string text, std::string origin, char delimiter)
    : origin_(std::move(origin)),
      delimiter_(delimiter),
      file_(nullptr, &std::fclose),
      buffer_(std::move(text)) {
  if (std::string_view(buffer_).substr(0, kByteOrderMark.size()) == kByteOrderMark) {
    position_ = kByteOrderMark.size();
  }
}

std::string CsvReader::where() const { return origin_ + ":" + std::to_string(record_line_); }

void CsvReader::fail(std::size_t line, const std::string& message) const {
  throw UserError(origin_ + ":" + std::to_string(line) + ": " + message);
}

bool CsvReader::refill() {
  if (!file_) return false;
  buffer_.resize(kChunkBytes);
  const std::size_t got = std::fread(buffer_.data(), 1, kChunkBytes, file_.get());
  if (got == 0 && std::ferror(file_.get())) {
    fail(line_, std::string("read error: ") + std::strerror(errno));
  }
  buffer_.resize(got);
  position_ = 0;
  return got > 0;
}

int CsvReader::peek() {
  if (position_ == buffer_.size() && !refill()) return EOF;
  return static_cast<unsigned char>(buffer_[position_]);
}

void CsvReader::advance() { ++position_; }

bool CsvReader::next(std::vector<std::string>& fields) {
  fields.clear();
  quoted_.clear();
  // Blank lines hold no record.
  for (int c = peek(); c == '\n' || c == '\r'; c = peek()) {
    advance();
    if (c == '\r' && peek() == '\n') advance();
    ++line_;
  }
  if (peek() == EOF) return false;
  record_line_ = line_;

  const int delimiter = static_cast<unsigned char>(delimiter_);
  std::string field;
  while (true) {
    field.clear();
    quoted_.push_back(peek() == '"');
    if (quoted_.back()) {
      const std::size_t opened_at = line_;
      advance();
      while (true) {
        const int c = peek();
        if (c == EOF) {
          fail(opened_at, "field " + std::to_string(fields.size() + 1) +
                              ": the quoted field opened on this line is not closed before the "
                              "end of the file");
        }
        advance();
        if (c == '"') {
          if (peek() != '"') break;
          advance();
        } else if (c == '\n' || (c == '\r' && peek() != '\n')) {
          ++line_;
        }
        field += static_cast<char>(c);
      }
      const int after = peek();
      if (after != delimiter && after != '\n' && after != '\r' && after != EOF) {
        fail(line_, "field " + std::to_string(fields.size() + 1) +
                        ": expected the delimiter or the end of the line after a closing quote, "
                        "got '" +
                        std::string(1, static_cast<char>(after)) + "'");
      }
    } else {
      for (int c = peek(); c != delimiter && c != '\n' && c != '\r' && c != EOF; c = peek()) {
        field += static_cast<char>(c);
        advance();
      }
    }
    fields.push_back(field);

    const int c = peek();
    if (c == delimiter) {
      advance();
      continue;
    }
    if (c == '\r' || c == '\n') {
      advance();
      if (c == '\r' && peek() == '\n') advance();
      ++line_;
    }
    break;
  }

  if (expected_field_count_ && fields.size() != *expected_field_count_) {
    fail(record_line_, "expected " + std::to_string(*expected_field_count_) + " fields, got " +
                           std::to_string(fields.size()));
  }
  return true;
}

std::string csv_record(const std::vector<std::string>& fields, char delimiter) {
  std::string line;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line += delimiter;
    const std::string& field = fields[i];
    if (field.find_first_of(std::string{delimiter, '"', '\r', '\n'}) == std::string::npos) {
      line += field;
      continue;
    }
    line += '"';
    for (char c : field) line += c == '"' ? std::string("\"\"") : std::string(1, c);
    line += '"';
  }
  return line + "\n";
}

}  // namespace cadenza
