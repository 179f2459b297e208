// [cpu] host/io/jsonl: the reader of a run's metrics.jsonl and steps.jsonl keeps every
// complete line and skips what a killed run leaves (a line cut short), blank lines and a
// missing file; logged_step_losses reads null (a non-finite loss) as NaN.
#include <catch2/catch.hpp>

#include <cmath>

#include "host/io/jsonl.hpp"
#include "tests/dataset_fixtures.hpp"
#include "tests/test_support.hpp"

using namespace cadenza;

TEST_CASE("jsonl: complete lines kept in order; a cut line, blank lines and a missing file skipped", "[cpu][io]") {
  testing::TempDir dir;
  testing::write_file(dir.path() / "steps.jsonl",
                      "{\"step\":1,\"loss\":2.5}\n\n{\"step\":2,\"loss\":null}\n{\"step\":3,\"lo");
  const std::vector<nlohmann::json> lines = read_jsonl(dir.path() / "steps.jsonl");
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["step"] == 1);
  CHECK(lines[1]["step"] == 2);
  const std::vector<double> losses = logged_step_losses(dir.path());
  REQUIRE(losses.size() == 2);
  CHECK(losses[0] == 2.5);
  CHECK(std::isnan(losses[1]));
  CHECK(read_jsonl(dir.path() / "absent.jsonl").empty());
}
