// describe_model_input: the model input's shape said in the config's terms.
#include "host/features/frontend_spec.hpp"

#include <iomanip>
#include <sstream>

namespace cadenza {

std::string describe_model_input(const FrontendSpec& spec, int sample_rate, std::int64_t samples, const Shape& input) {
  std::ostringstream os;
  os << "the model input " << input.str() << " is ";
  const auto clip = [&] {
    os << samples << " samples (data.clip_seconds " << std::setprecision(6) << double(samples) / sample_rate
       << " s at " << sample_rate << " Hz";
  };
  if (spec.type == "waveform" || input.rank() < 4) {
    clip();
    os << ")";
    return os.str();
  }
  const char* rows = spec.type == "mfcc" ? " coefficients" : spec.type == "stft" ? " frequency bins" : " mel bands";
  os << input[2] << rows << " by " << input[3] << " frames of ";
  clip();
  os << ", features.hop_length " << spec.hop_length << ")";
  return os.str();
}

}  // namespace cadenza
