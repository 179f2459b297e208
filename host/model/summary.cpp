// model_summary: plans the model for batch 1 on a throwaway ArenaPlan and prints its rows.
#include "host/model/summary.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "host/core/arena.hpp"
#include "host/data/dataset.hpp"
#include "host/model/model.hpp"

namespace cadenza {

std::string model_summary(const Config& config, Backend& backend) {
  const auto num_samples = static_cast<int>(window_samples(config.data));
  const auto frontend = backend.make_frontend(config.features, config.data.sample_rate, num_samples, 1);
  const Shape input = frontend->features_shape(1);
  ArenaPlan plan;
  const Model model(config.model, input, dataset_label_count(config.data), plan, backend,
                    describe_model_input(config.features, config.data.sample_rate, num_samples, input));
  const std::vector<LayerSummary> rows = model.summary();
  // Columns as wide as their longest entry (block layers have long names: layer1.conv_1).
  std::size_t name_width = 20, type_width = 18;
  for (const LayerSummary& row : rows) {
    name_width = std::max(name_width, row.name.size() + 2);
    type_width = std::max(type_width, row.type.size() + 2);
  }
  const auto name_column = static_cast<int>(name_width), type_column = static_cast<int>(type_width);
  std::ostringstream os;
  os << std::left << std::setw(name_column) << "layer" << std::setw(type_column) << "type"
     << std::setw(22) << "output (batch 1)" << std::right << std::setw(14) << "parameters"
     << std::setw(16) << "forward FLOPs" << "\n";
  os << std::left << std::setw(name_column) << "input" << std::setw(type_column) << config.features.type
     << std::setw(22) << input.str() << "\n";
  std::int64_t flops = 0;
  for (const LayerSummary& row : rows) {
    os << std::left << std::setw(name_column) << row.name << std::setw(type_column) << row.type
       << std::setw(22) << row.output_shape.str() << std::right << std::setw(14) << row.parameters
       << std::setw(16) << row.forward_flops << "\n";
    flops += row.forward_flops;
  }
  os << "total: " << model.parameter_count() << " parameters, " << std::fixed << std::setprecision(3)
     << flops / 1e9 << " GFLOP forward per example\n";
  return os.str();
}

}  // namespace cadenza
