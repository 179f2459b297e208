// The weight and optional bias of conv and dense layers: their planning, binding and
// initialisation rules (config key `init`), written once for both layer types.
//
// Rules: torch_default is PyTorch's default for nn.Conv2d / nn.Linear, weight and bias
// uniform in ±1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5)). The others zero the
// bias, as Keras does: he_normal N(0, 2/fan_in), he_uniform U(±sqrt(6/fan_in)),
// glorot_uniform U(±sqrt(6/(fan_in+fan_out))), normal N(0, 0.05²) (Keras' RandomNormal).
#pragma once

#include <string>
#include <vector>

#include "host/model/layer.hpp"

namespace cadenza {

class WeightAndBias {
 public:
  // Declares "<layer>.weight" of `weight_shape` and, when has_bias, "<layer>.bias" of
  // (weight_shape[0]).
  void plan(ArenaPlan& plan, const std::string& layer, const Shape& weight_shape, bool has_bias);
  void bind(const Arena& arena);
  // Both parameters with the initialisation `rule` gives for these fans.
  std::vector<NamedParameter> parameters(const std::string& layer, const std::string& rule,
                                         int fan_in, int fan_out) const;

  Tensor weight, weight_grad;
  Tensor bias, bias_grad;  // undefined without a bias

 private:
  ParameterId weight_id_, bias_id_;
  bool has_bias_ = false;
};

}  // namespace cadenza
