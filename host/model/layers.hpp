// The constructors of the built-in layer types, one per file of this folder; make_layer
// (layer_factory.cpp) maps a config's `type` to them.
#pragma once

#include <memory>

#include "host/model/layer.hpp"

namespace cadenza {

std::unique_ptr<Layer> make_conv1d_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_conv2d_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_batchnorm_layer(const LayerConfig& config);
// A batchnorm, or a conv1d / conv2d, with the relu that follows it fused in (Model fuses
// them; no config type).
std::unique_ptr<Layer> make_batchnorm_relu_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_conv_relu_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_activation_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_maxpool2d_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_avgpool2d_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_maxpool1d_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_avgpool1d_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_global_max_pool_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_global_avg_pool_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_dropout_layer(const LayerConfig& config, int layer_index);
std::unique_ptr<Layer> make_flatten_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_reshape_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_permute_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_to_sequence_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_add_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_concat_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_scale_channels_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_dense_layer(const LayerConfig& config, int units);
std::unique_ptr<Layer> make_harmonic_filterbank_layer(const LayerConfig& config);
// gru, lstm and rnn; the index keys the dropout between stacked layers.
std::unique_ptr<Layer> make_recurrent_layer(const LayerConfig& config, int layer_index);

}  // namespace cadenza
