// WeightAndBias: see weight_and_bias.hpp.
#include "host/model/weight_and_bias.hpp"

#include <cmath>

#include "host/core/error.hpp"

namespace cadenza {
namespace {

struct Inits {
  TensorInit weight, bias;
};

Inits init_rule(const std::string& rule, int fan_in, int fan_out) {
  using Kind = TensorInit::Kind;
  const float in = static_cast<float>(fan_in), out = static_cast<float>(fan_out);
  const TensorInit zero{Kind::constant, 0.0f};
  if (rule == "torch_default") {
    const float bound = 1.0f / std::sqrt(in);
    return {{Kind::uniform, bound}, {Kind::uniform, bound}};
  }
  if (rule == "he_normal") return {{Kind::normal, std::sqrt(2.0f / in)}, zero};
  if (rule == "he_uniform") return {{Kind::uniform, std::sqrt(6.0f / in)}, zero};
  if (rule == "glorot_uniform") return {{Kind::uniform, std::sqrt(6.0f / (in + out))}, zero};
  if (rule == "normal") return {{Kind::normal, 0.05f}, zero};
  CADENZA_CHECK(false, "unknown init rule '" << rule << "' (the config validates these)");
  return {};
}

}  // namespace

void WeightAndBias::plan(ArenaPlan& plan, const std::string& layer, const Shape& weight_shape,
                         bool has_bias) {
  has_bias_ = has_bias;
  weight_id_ = plan.add_parameter(layer + ".weight", weight_shape);
  if (has_bias) bias_id_ = plan.add_parameter(layer + ".bias", Shape{weight_shape[0]});
}

void WeightAndBias::bind(const Arena& arena) {
  weight = arena.value(weight_id_);
  weight_grad = arena.gradient(weight_id_);
  if (has_bias_) {
    bias = arena.value(bias_id_);
    bias_grad = arena.gradient(bias_id_);
  }
}

std::vector<NamedParameter> WeightAndBias::parameters(const std::string& layer,
                                                      const std::string& rule, int fan_in,
                                                      int fan_out) const {
  const Inits init = init_rule(rule, fan_in, fan_out);
  std::vector<NamedParameter> out{{layer + ".weight", weight_id_, init.weight}};
  if (has_bias_) out.push_back({layer + ".bias", bias_id_, init.bias});
  return out;
}

}  // namespace cadenza
