// model_summary: plans the model for batch 1 on a throwaway ArenaPlan and prints its rows.
#include "host/model/summary.hpp"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "host/core/arena.hpp"
#include "host/data/dataset.hpp"
#include "host/model/model.hpp"

namespace cadenza {

std::string model_summary(const Config& config, Backend& backend) {
  const int num_samples = static_cast<int>(std::lround(config.data.clip_seconds * config.data.sample_rate));
  const auto frontend = backend.make_frontend(config.features, config.data.sample_rate, num_samples, 1);
  const Shape input{1, 1, frontend->num_bins(), frontend->num_frames()};
  ArenaPlan plan;
  const Model model(config.model, input, dataset_label_count(config.data), plan, backend);
  std::ostringstream os;
  os << std::left << std::setw(20) << "layer" << std::setw(18) << "type" << std::setw(22)
     << "output (batch 1)" << std::right << std::setw(14) << "parameters" << std::setw(16)
     << "forward FLOPs" << "\n";
  os << std::left << std::setw(20) << "input" << std::setw(18) << config.features.type
     << std::setw(22) << input.str() << "\n";
  std::int64_t flops = 0;
  for (const LayerSummary& row : model.summary()) {
    os << std::left << std::setw(20) << row.name << std::setw(18) << row.type << std::setw(22)
       << row.output_shape.str() << std::right << std::setw(14) << row.parameters << std::setw(16)
       << row.forward_flops << "\n";
    flops += row.forward_flops;
  }
  os << "total: " << model.parameter_count() << " parameters, " << std::fixed << std::setprecision(3)
     << flops / 1e9 << " GFLOP forward per example\n";
  return os.str();
}

}  // namespace cadenza
