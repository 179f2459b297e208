// Reusable blocks in the config language: a block is a named, parameterised list of
// layers (Won et al.'s Conv_2d, Res_2d, ResSE_1d), defined once and used by name.
//
//   include: [blocks/won2020.yaml]      # files (relative to this one) holding `blocks`
//   blocks:
//     Conv_2d:
//       params: {filters: ~, pool: 2}   # each parameter with its default; ~: required
//       layers:
//         - {type: conv2d, name: conv, filters: $filters}
//         - {type: batchnorm, name: bn}
//         - {type: relu, name: relu}
//         - {type: maxpool2d, name: mp, pool: $pool}
//   model:
//     layers:
//       - {block: Conv_2d, name: layer1, filters: 64, pool: [2, 4]}
//
// Expansion rules:
// - A use `{block: B, name: N, <params>, inputs: [X]}` becomes B's layers, each named
//   "N.<its name>" (so its parameters are N.conv.weight, as PyTorch names a submodule's).
// - `$param` (a whole scalar, also inside lists) is replaced by the use's value or the
//   parameter's default.
// - Inside a block, `inputs` name the block's own layers or `$input`, which is what feeds
//   the block: the use's `inputs`, else the layer before the use. The block's first layer
//   reads `$input` unless it names its inputs.
// - After the use, the name N stands for the block's last layer in later `inputs`.
// Blocks do not nest. Errors name the block, the use and the key, with file and line.
#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace cadenza {

// Returns `root` without `include` and `blocks`, every block use in model.layers expanded.
// `origin` is the file the YAML came from (includes are relative to its folder). With
// `expanded_from`, sets it to the layer list's index in `root` of each expanded layer.
YAML::Node expand_blocks(const YAML::Node& root, const std::string& origin,
                         std::vector<std::size_t>* expanded_from = nullptr);

}  // namespace cadenza
