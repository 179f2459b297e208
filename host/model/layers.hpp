// The constructors of the built-in layer types, one per file of this folder; make_layer
// (layer_factory.cpp) maps a config's `type` to them.
#pragma once

#include <memory>

#include "host/model/layer.hpp"

namespace cadenza {

std::unique_ptr<Layer> make_conv2d_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_batchnorm_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_activation_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_maxpool2d_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_global_avg_pool_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_dropout_layer(const LayerConfig& config, int layer_index);
std::unique_ptr<Layer> make_flatten_layer(const LayerConfig& config);
std::unique_ptr<Layer> make_dense_layer(const LayerConfig& config, int units);

}  // namespace cadenza
