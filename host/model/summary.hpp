// model_summary: the table `gpu_train CONFIG --summary` prints — each layer's output shape,
// parameter count and forward FLOPs for one example, and the totals — built without data
// or training.
#pragma once

#include <string>

#include "host/config/config.hpp"
#include "host/ops/backend.hpp"

namespace cadenza {

std::string model_summary(const Config& config, Backend& backend);

}  // namespace cadenza
