// Tests of the CSV reader: RFC 4180 quoting, line ends, delimiters, line numbers and the
// errors that name the file and line.
#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "host/core/error.hpp"
#include "host/io/csv.hpp"
#include "tests/test_support.hpp"

namespace cadenza {
namespace {

using Catch::Matchers::Contains;
using Records = std::vector<std::vector<std::string>>;

// Every record of `text`, with the line each started on.
Records read_all(const std::string& text, char delimiter = ',',
                 std::vector<std::size_t>* lines = nullptr) {
  CsvReader reader(text, "t.csv", delimiter);
  Records records;
  std::vector<std::string> fields;
  while (reader.next(fields)) {
    records.push_back(fields);
    if (lines != nullptr) lines->push_back(reader.line());
  }
  CHECK(fields.empty());
  return records;
}

std::string error_of(const std::string& text, char delimiter = ',',
                     std::size_t expected_fields = 0) {
  try {
    CsvReader reader(text, "t.csv", delimiter);
    std::vector<std::string> fields;
    if (expected_fields > 0) reader.expect_field_count(expected_fields);
    while (reader.next(fields)) {
    }
  } catch (const UserError& error) {
    return error.what();
  }
  FAIL("expected a UserError");
  return "";
}

}  // namespace

TEST_CASE("csv: plain fields, empty fields and line ends", "[cpu][csv]") {
  CHECK(read_all("a,b,c\n1,,3\n") == Records{{"a", "b", "c"}, {"1", "", "3"}});
  CHECK(read_all("a,b\r\n1,2\r\n") == Records{{"a", "b"}, {"1", "2"}});
  CHECK(read_all("a,b\r1,2") == Records{{"a", "b"}, {"1", "2"}});  // lone CR, no final break
  CHECK(read_all("a,\n,\n") == Records{{"a", ""}, {"", ""}});
  CHECK(read_all("") == Records{});
  CHECK(read_all("\xEF\xBB\xBFid,x\n") == Records{{"id", "x"}});  // byte order mark dropped
  std::vector<std::size_t> lines;
  CHECK(read_all("a\n\n\r\nb\n", ',', &lines) == Records{{"a"}, {"b"}});  // blank lines: no record
  CHECK(lines == std::vector<std::size_t>{1, 4});
}

TEST_CASE("csv: quoted fields", "[cpu][csv]") {
  // Doubled quotes, delimiters and line breaks inside quotes; a quote inside an unquoted field.
  CHECK(read_all("\"say \"\"hi\"\"\",\"a,b\",x\"y\n") == Records{{"say \"hi\"", "a,b", "x\"y"}});
  CHECK(read_all("\"\",\"\"\"\"\n") == Records{{"", "\""}});
  std::vector<std::size_t> lines;
  CHECK(read_all("id,text\n1,\"two\nlines\"\n2,\"crlf\r\ninside\"\r\n3,end\r\n", ',', &lines) ==
        Records{{"id", "text"}, {"1", "two\nlines"}, {"2", "crlf\r\ninside"}, {"3", "end"}});
  CHECK(lines == std::vector<std::size_t>{1, 2, 4, 6});

  CsvReader reader("\" a \", b ,\"\"\n", "t.csv");
  std::vector<std::string> fields;
  REQUIRE(reader.next(fields));
  CHECK(fields == std::vector<std::string>{" a ", " b ", ""});
  CHECK(reader.quoted(0));
  CHECK_FALSE(reader.quoted(1));
  CHECK(reader.quoted(2));
  CHECK_FALSE(reader.quoted(3));  // no such field
}

TEST_CASE("csv: a tab delimiter with every field quoted (MagnaTagATune's layout)", "[cpu][csv]") {
  const std::string text =
      "\"clip_id\"\t\"no voice\"\t\"mp3_path\"\r\n"
      "\"2\"\t\"0\"\t\"f/x-1-0-29.mp3\"\r\n"
      "\"6\"\t\"1\"\t\"0/a\tb, c.mp3\"\r\n";
  CHECK(read_all(text, '\t') == Records{{"clip_id", "no voice", "mp3_path"},
                                        {"2", "0", "f/x-1-0-29.mp3"},
                                        {"6", "1", "0/a\tb, c.mp3"}});
  // A comma is an ordinary character when the delimiter is a tab.
  CHECK(read_all("a,b\tc\n", '\t') == Records{{"a,b", "c"}});
}

TEST_CASE("csv: errors name the file and line", "[cpu][csv]") {
  CHECK(error_of("a,b\n1,2\n3\n", ',', 2) == "t.csv:3: expected 2 fields, got 1");
  CHECK(error_of("a,b\n\"x\ny\",1,2\n", ',', 2) == "t.csv:2: expected 2 fields, got 3");
  CHECK_THAT(error_of("a\n\"open\nnever closed\n"),
             Contains("t.csv:2: field 1: the quoted field opened on this line is not closed"));
  CHECK_THAT(error_of("a\n\"ab\"c,d\n"),
             Contains("t.csv:2: field 1: expected the delimiter or the end of the line after a "
                      "closing quote, got 'c'"));
}

TEST_CASE("csv: reading a file", "[cpu][csv]") {
  testing::TempDir dir;
  const std::filesystem::path path = dir / "big.csv";
  {
    std::ofstream file(path, std::ios::binary);
    file << "id,text\r\n";
    // Enough rows to cross the reader's buffer refills, a quoted line break in each.
    for (int i = 0; i < 20000; ++i) file << i << ",\"row " << i << "\r\nsecond, line\"\r\n";
  }
  CsvReader reader(path);
  std::vector<std::string> fields;
  REQUIRE(reader.next(fields));
  reader.expect_field_count(2);
  int rows = 0;
  while (reader.next(fields)) {
    REQUIRE(fields[0] == std::to_string(rows));
    REQUIRE(fields[1] == "row " + std::to_string(rows) + "\r\nsecond, line");
    REQUIRE(reader.line() == static_cast<std::size_t>(2 + 2 * rows));
    ++rows;
  }
  CHECK(rows == 20000);
  CHECK(reader.where() == path.string() + ":" + std::to_string(2 * 20000));

  CHECK_THROWS_WITH(CsvReader(dir / "missing.csv"),
                    Contains("cannot read " + (dir / "missing.csv").string() + ": No such file"));
}

TEST_CASE("csv: csv_record quotes what the reader needs quoted and reads back as written", "[cpu][csv]") {
  const std::vector<std::string> fields{"plain", "a,b", "say \"hi\"", "two\nlines", "", "tab\there"};
  CHECK(csv_record({"a", "b"}) == "a,b\n");
  CHECK(csv_record(fields) == "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",,tab\there\n");
  CHECK(read_all(csv_record(fields) + csv_record({"x", "y", "z", "", "", ""})) ==
        Records{fields, {"x", "y", "z", "", "", ""}});
  CHECK(read_all(csv_record(fields, '\t'), '\t') == Records{fields});
}

}  // namespace cadenza
