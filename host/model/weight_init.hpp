// Weight initialisation rules of conv and dense layers (config key `init`).
//
// torch_default is PyTorch's default for nn.Conv2d / nn.Linear: weight and bias uniform in
// ±1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5)). The others zero the bias, as Keras
// does: he_normal N(0, 2/fan_in), he_uniform U(±sqrt(6/fan_in)), glorot_uniform
// U(±sqrt(6/(fan_in+fan_out))), normal N(0, 0.05²) (Keras' RandomNormal default).
#pragma once

#include <string>

#include "host/model/layer.hpp"

namespace cadenza {

struct WeightAndBiasInit {
  TensorInit weight;
  TensorInit bias;
};

WeightAndBiasInit weight_init(const std::string& rule, int fan_in, int fan_out);

}  // namespace cadenza
