// expand_blocks: block definitions, includes and the expansion of block uses (blocks.hpp).
#include "host/config/blocks.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <vector>

#include "host/core/error.hpp"

namespace cadenza {
namespace {

struct Block {
  std::string name;
  std::string file;  // where it is defined, for error messages
  YAML::Node params;  // map: parameter -> default (null: required)
  YAML::Node layers;  // sequence of layer maps
};

std::string at(const std::string& file, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? file : file + ":" + std::to_string(mark.line + 1);
}

std::string scalar_or(const YAML::Node& node, const std::string& fallback) {
  return node && node.IsScalar() ? node.Scalar() : fallback;
}

// Adds the `blocks` map of `root` (read from `file`) to `blocks`.
void add_blocks(const YAML::Node& root, const std::string& file, std::map<std::string, Block>& blocks) {
  const YAML::Node definitions = root["blocks"];
  if (!definitions || definitions.IsNull()) return;
  if (!definitions.IsMap())
    throw UserError(at(file, definitions) + ": blocks: expected a map of block names to {params, layers}");
  for (const auto& entry : definitions) {
    const std::string name = entry.first.Scalar();
    const YAML::Node body = entry.second;
    const std::string where = at(file, entry.first) + ": blocks." + name;
    if (!body.IsMap()) throw UserError(where + ": expected a map with params and layers");
    for (const auto& key : body) {
      const std::string k = key.first.Scalar();
      if (k != "params" && k != "layers")
        throw UserError(where + ": unknown key '" + k + "' (a block takes params and layers)");
    }
    Block block{name, file, body["params"], body["layers"]};
    if (block.params && !block.params.IsNull() && !block.params.IsMap())
      throw UserError(where + ".params: expected a map of parameter names to defaults (~: required)");
    if (!block.layers || !block.layers.IsSequence() || block.layers.size() == 0)
      throw UserError(where + ".layers: expected a non-empty list of layers");
    for (const YAML::Node& layer : block.layers) {
      if (!layer.IsMap()) throw UserError(at(file, layer) + ": blocks." + name + ": expected layer maps");
      if (layer["block"]) throw UserError(at(file, layer) + ": blocks." + name + ": blocks do not nest");
    }
    if (!blocks.emplace(name, block).second)
      throw UserError(where + ": block '" + name + "' is defined twice");
  }
}

// A copy of `node` with every scalar "$param" replaced by its value in `values`.
YAML::Node substituted(const YAML::Node& node, const std::map<std::string, YAML::Node>& values,
                       const std::string& where) {
  if (node.IsScalar()) {
    const std::string& text = node.Scalar();
    if (text.size() > 1 && text[0] == '$' && text != "$input") {
      const auto found = values.find(text.substr(1));
      if (found == values.end())
        throw UserError(where + ": '" + text + "' is not a parameter of the block");
      return YAML::Clone(found->second);
    }
    return YAML::Clone(node);
  }
  if (node.IsSequence()) {
    YAML::Node out(YAML::NodeType::Sequence);
    for (const YAML::Node& item : node) out.push_back(substituted(item, values, where));
    return out;
  }
  if (node.IsMap()) {
    YAML::Node out(YAML::NodeType::Map);
    for (const auto& entry : node) out[entry.first.Scalar()] = substituted(entry.second, values, where);
    return out;
  }
  return YAML::Clone(node);
}

std::vector<std::string> names_of(const YAML::Node& inputs) {
  std::vector<std::string> names;
  if (!inputs) return names;
  if (inputs.IsScalar()) return {inputs.Scalar()};
  for (const YAML::Node& item : inputs) names.push_back(item.Scalar());
  return names;
}

YAML::Node sequence_of(const std::vector<std::string>& names) {
  YAML::Node out(YAML::NodeType::Sequence);
  for (const std::string& name : names) out.push_back(name);
  return out;
}

class Expander {
 public:
  Expander(const std::map<std::string, Block>& blocks, std::string origin)
      : blocks_(blocks), origin_(std::move(origin)) {}

  // The expanded list; `expanded_from` gets the index in `layers` each layer came from.
  YAML::Node expand(const YAML::Node& layers, std::vector<std::size_t>& expanded_from) {
    YAML::Node out(YAML::NodeType::Sequence);
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const YAML::Node item = layers[i];
      if (item.IsMap() && item["block"]) {
        expand_use(item, i, out);
      } else {
        YAML::Node copy = YAML::Clone(item);
        if (item.IsMap() && item["inputs"]) copy["inputs"] = sequence_of(resolved(names_of(item["inputs"])));
        remember_last(copy, out);
        out.push_back(copy);
      }
      expanded_from.resize(out.size(), i);
    }
    return out;
  }

 private:
  void expand_use(const YAML::Node& use, std::size_t index, YAML::Node& out) {
    const std::string where = at(origin_, use) + ": model.layers[" + std::to_string(index) + "]";
    const std::string block_name = scalar_or(use["block"], "");
    const auto found = blocks_.find(block_name);
    if (found == blocks_.end()) {
      std::string known;
      for (const auto& [name, block] : blocks_) known += (known.empty() ? "" : ", ") + name;
      throw UserError(where + ".block: unknown block '" + block_name + "'" +
                      (known.empty() ? " (no blocks are defined)" : " (defined: " + known + ")"));
    }
    const Block& block = found->second;
    const std::string prefix = scalar_or(use["name"], "");
    if (prefix.empty()) throw UserError(where + ": a block use needs a name (its layers are named <name>.<layer>)");

    // Parameter values: the use's, else the defaults; every parameter must end up with one.
    std::map<std::string, YAML::Node> values;
    std::vector<std::string> param_names;
    if (block.params && block.params.IsMap()) {
      for (const auto& entry : block.params) {
        param_names.push_back(entry.first.Scalar());
        if (!entry.second.IsNull()) values.emplace(entry.first.Scalar(), entry.second);
      }
    }
    for (const auto& entry : use) {
      const std::string key = entry.first.Scalar();
      if (key == "block" || key == "name" || key == "inputs") continue;
      if (std::find(param_names.begin(), param_names.end(), key) == param_names.end()) {
        std::string accepted;
        for (const std::string& p : param_names) accepted += ", " + p;
        throw UserError(where + ": unknown key '" + key + "' for block " + block_name +
                        " (it takes block, name, inputs" + accepted + ")");
      }
      // Not values[key] = ...: assigning to a bound YAML::Node overwrites the node it is bound
      // to (here the block's default), not the binding.
      values.erase(key);
      values.emplace(key, entry.second);
    }
    for (const std::string& p : param_names)
      if (!values.count(p))
        throw UserError(where + ": block " + block_name + " needs '" + p + "' (it has no default)");

    const std::vector<std::string> block_input =
        use["inputs"] ? resolved(names_of(use["inputs"]))
                      : std::vector<std::string>{last_name_.empty() ? "input" : last_name_};
    std::set<std::string> local;
    for (std::size_t k = 0; k < block.layers.size(); ++k) {
      const YAML::Node& definition = block.layers[k];
      const std::string layer_where = at(block.file, definition) + ": blocks." + block_name +
                                      ".layers[" + std::to_string(k) + "]";
      YAML::Node layer = substituted(definition, values, layer_where);
      const std::string local_name =
          scalar_or(layer["name"], scalar_or(layer["type"], "layer") + std::to_string(k));
      std::vector<std::string> inputs;
      if (layer["inputs"]) {
        for (const std::string& name : names_of(layer["inputs"])) {
          if (name == "$input") {
            inputs.insert(inputs.end(), block_input.begin(), block_input.end());
          } else if (local.count(name)) {
            inputs.push_back(prefix + "." + name);
          } else {
            throw UserError(layer_where + ".inputs: '" + name + "' is not an earlier layer of block " +
                            block_name + " or $input");
          }
        }
      } else if (k == 0) {
        inputs = block_input;
      }
      if (!inputs.empty()) layer["inputs"] = sequence_of(inputs);
      layer["name"] = prefix + "." + local_name;
      local.insert(local_name);
      out.push_back(layer);
      last_name_ = prefix + "." + local_name;
    }
    output_of_use_[prefix] = last_name_;
  }

  void remember_last(const YAML::Node& layer, const YAML::Node& out) {
    last_name_ = layer.IsMap() && layer["name"] && layer["name"].IsScalar()
                     ? layer["name"].Scalar()
                     // config.cpp's default name: <type><index in the expanded list>
                     : scalar_or(layer["type"], "layer") + std::to_string(out.size());
  }

  std::vector<std::string> resolved(const std::vector<std::string>& names) const {
    std::vector<std::string> out;
    for (const std::string& name : names) {
      const auto alias = output_of_use_.find(name);
      out.push_back(alias == output_of_use_.end() ? name : alias->second);
    }
    return out;
  }

  const std::map<std::string, Block>& blocks_;
  std::string origin_;
  std::string last_name_;  // the name of the last expanded layer
  std::map<std::string, std::string> output_of_use_;  // block use name -> its last layer
};

}  // namespace

YAML::Node expand_blocks(const YAML::Node& root, const std::string& origin,
                         std::vector<std::size_t>* expanded_from) {
  if (expanded_from) expanded_from->clear();
  if (!root.IsMap() || (!root["include"] && !root["blocks"])) return root;
  std::map<std::string, Block> blocks;
  if (const YAML::Node includes = root["include"]) {
    const std::filesystem::path folder = std::filesystem::path(origin).parent_path();
    for (const std::string& name : names_of(includes)) {
      const std::string path = (folder / name).string();
      YAML::Node included;
      try {
        included = YAML::LoadFile(path);
      } catch (const YAML::BadFile&) {
        throw UserError(at(origin, includes) + ": include: cannot read '" + path + "'");
      } catch (const YAML::Exception& error) {
        throw UserError(path + ":" + std::to_string(error.mark.line + 1) + ": invalid YAML: " + error.msg);
      }
      for (const auto& entry : included)
        if (entry.first.Scalar() != "blocks")
          throw UserError(at(path, entry.first) + ": an included file holds only blocks, not '" +
                          entry.first.Scalar() + "'");
      add_blocks(included, path, blocks);
    }
  }
  add_blocks(root, origin, blocks);

  YAML::Node out(YAML::NodeType::Map);
  for (const auto& entry : root) {
    const std::string key = entry.first.Scalar();
    if (key == "include" || key == "blocks") continue;
    const YAML::Node& value = entry.second;
    if (key == "model" && value.IsMap() && value["layers"] && value["layers"].IsSequence()) {
      YAML::Node model = YAML::Clone(value);
      std::vector<std::size_t> from;
      model["layers"] = Expander(blocks, origin).expand(value["layers"], from);
      if (expanded_from) *expanded_from = std::move(from);
      out[entry.first] = model;
    } else {
      out[entry.first] = value;
    }
  }
  return out;
}

}  // namespace cadenza
