// Reading the JSON-lines files a run writes (metrics.jsonl, steps.jsonl): one JSON value
// per line, appended as training goes.
//
// Invariants:
// - A line that does not parse is skipped, not an error: a run killed while appending
//   leaves at most its last line cut short, and every complete line before it still counts.
// - Blank lines are skipped; a missing file reads as no lines.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

namespace cadenza {

// The values of the file's lines that parse, in file order.
std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path);

// The "loss" of every line of run_dir/steps.jsonl that has one, in step order; NaN where
// it is null (JSON has no NaN or infinity, so the trainer writes a non-finite loss as null).
std::vector<double> logged_step_losses(const std::filesystem::path& run_dir);

}  // namespace cadenza
