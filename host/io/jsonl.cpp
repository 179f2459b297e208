// read_jsonl and logged_step_losses (see jsonl.hpp).
#include "host/io/jsonl.hpp"

#include <cmath>
#include <fstream>
#include <string>

namespace cadenza {

std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path) {
  std::vector<nlohmann::json> values;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    nlohmann::json value = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!value.is_discarded()) values.push_back(std::move(value));
  }
  return values;
}

std::vector<double> logged_step_losses(const std::filesystem::path& run_dir) {
  std::vector<double> losses;
  for (const nlohmann::json& step : read_jsonl(run_dir / "steps.jsonl"))
    if (step.contains("loss"))  // a non-finite loss is written as null
      losses.push_back(step["loss"].is_number() ? step["loss"].get<double>() : std::nan(""));
  return losses;
}

}  // namespace cadenza
