// make_layer: the one table from a config's layer `type` to its constructor. Adding a
// layer type is one row here plus its file (and its keys in the config schema).
#include <functional>
#include <map>

#include "host/core/error.hpp"
#include "host/model/layers.hpp"

namespace cadenza {

std::unique_ptr<Layer> make_layer(const LayerConfig& config, bool is_last, int num_outputs,
                                  int index) {
  using Factory = std::function<std::unique_ptr<Layer>(const LayerConfig&)>;
  const std::map<std::string, Factory> factories = {
      {"conv1d", make_conv1d_layer},
      {"conv2d", make_conv2d_layer},
      {"batchnorm", make_batchnorm_layer},
      {"relu", make_activation_layer},
      {"elu", make_activation_layer},
      {"leaky_relu", make_activation_layer},
      {"sigmoid", make_activation_layer},
      {"tanh", make_activation_layer},
      {"power_to_db", make_activation_layer},
      {"harmonic_filterbank", make_harmonic_filterbank_layer},
      {"maxpool2d", make_maxpool2d_layer},
      {"avgpool2d", make_avgpool2d_layer},
      {"maxpool1d", make_maxpool1d_layer},
      {"avgpool1d", make_avgpool1d_layer},
      {"global_max_pool", make_global_max_pool_layer},
      {"global_avg_pool", make_global_avg_pool_layer},
      {"flatten", make_flatten_layer},
      {"reshape", make_reshape_layer},
      {"permute", make_permute_layer},
      {"to_sequence", make_to_sequence_layer},
      {"add", make_add_layer},
      {"concat", make_concat_layer},
      {"scale_channels", make_scale_channels_layer},
      {"dropout", [index](const LayerConfig& c) { return make_dropout_layer(c, index); }},
      {"dense",
       [&](const LayerConfig& c) {
         if (c.units == 0 && !is_last)
           CADENZA_USER_ERROR("layer '" << c.name << "' (dense): units 0 means one per label and "
                                        << "is allowed on the last layer only");
         return make_dense_layer(c, c.units > 0 ? c.units : num_outputs);
       }},
      {"gru", [index](const LayerConfig& c) { return make_recurrent_layer(c, index); }},
      {"lstm", [index](const LayerConfig& c) { return make_recurrent_layer(c, index); }},
      {"rnn", [index](const LayerConfig& c) { return make_recurrent_layer(c, index); }},
  };
  const auto found = factories.find(config.type);
  if (found == factories.end())
    CADENZA_USER_ERROR("layer '" << config.name << "': unknown type '" << config.type << "'");
  return found->second(config);
}

}  // namespace cadenza
