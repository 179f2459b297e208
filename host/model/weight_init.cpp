// Weight initialisation rules; see weight_init.hpp.
#include "host/model/weight_init.hpp"

#include <cmath>

#include "host/core/error.hpp"

namespace cadenza {

WeightAndBiasInit weight_init(const std::string& rule, int fan_in, int fan_out) {
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

}  // namespace cadenza
