// Reading, validating and writing run configs (the one place that parses YAML), and the
// model hash.
//
// Invariants:
// - Every problem is a one-line UserError "<where>: <key path>: <what was wrong>" (or
//   "<where>: unknown key '<key path>' ..."), where <where> is "file:line" (the line when
//   yaml-cpp knows it), the file alone, or "--set <override>" for anything an override
//   put there.
// - Overrides are applied to the YAML tree before anything is read, so their values are
//   validated exactly as the file's own.
// - Keys are read, written and hashed by walking the tables of config_schema.cpp; to_yaml
//   writes every key, numbers in their shortest exact form, so reading its output gives
//   back an equal Config.
// - model_hash is FNV-1a over "key=value" lines of the model-defining keys whose values
//   differ from the defaults, so it is the same in every process and build, and adding a
//   key whose default keeps the old behaviour does not change it.
#include "host/config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <type_traits>

#include "host/config/blocks.hpp"
#include "host/config/config_schema.hpp"
#include "host/config/did_you_mean.hpp"
#include "host/core/error.hpp"
#include "host/core/hash.hpp"
#include "host/core/text.hpp"

namespace cadenza {
namespace {

// ---------------------------------------------------------------------------------------
// Text helpers

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

std::string suggestion_text(const std::optional<std::string>& suggestion) {
  return suggestion ? " \u2014 did you mean " + quoted(*suggestion) + "?" : "";
}

std::string child_path(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "." + name;
}

std::string indexed_path(const std::string& list_path, std::size_t index) {
  return list_path + "[" + std::to_string(index) + "]";
}

// "model.layers[2].filters" -> "model.layers[2]" -> "model.layers" -> "model" -> "".
std::string parent_path(const std::string& path) {
  const std::size_t cut = path.find_last_of(".[");
  return cut == std::string::npos ? "" : path.substr(0, cut);
}

// Whether `path` is `ancestor` or lies below it.
bool is_within(const std::string& path, const std::string& ancestor) {
  if (path.compare(0, ancestor.size(), ancestor) != 0) return false;
  return path.size() == ancestor.size() || path[ancestor.size()] == '.' ||
         path[ancestor.size()] == '[';
}

// ---------------------------------------------------------------------------------------
// Scalars

std::string_view without_plus(std::string_view text) {
  return !text.empty() && text.front() == '+' ? text.substr(1) : text;
}

template <typename Number>
std::optional<Number> parse_whole(std::string_view text) {
  Number value{};
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, value);
  if (result.ec != std::errc() || result.ptr != end) return std::nullopt;
  return value;
}

std::optional<long long> parse_integer(std::string_view text) {
  return parse_whole<long long>(without_plus(text));
}

std::optional<std::uint64_t> parse_unsigned(std::string_view text) {
  return parse_whole<std::uint64_t>(without_plus(text));
}

std::optional<double> parse_number(std::string_view text) {
  const std::optional<double> value = parse_whole<double>(without_plus(text));
  if (!value || !std::isfinite(*value)) return std::nullopt;
  return value;
}

std::optional<bool> parse_bool(std::string_view text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return std::nullopt;
}

// How a rejected value is quoted back: numbers bare, other scalars in quotes, lists and
// maps in flow style.
std::string shown(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsScalar()) {
    const bool plain_number = node.Tag() != "!" && parse_number(node.Scalar()).has_value();
    return plain_number ? node.Scalar() : quoted(node.Scalar());
  }
  YAML::Emitter emitter;
  emitter.SetSeqFormat(YAML::Flow);
  emitter.SetMapFormat(YAML::Flow);
  emitter << node;
  constexpr std::size_t kMaxShown = 80;
  std::string text = emitter.c_str();
  return text.size() > kMaxShown ? text.substr(0, kMaxShown) + "..." : text;
}

// ---------------------------------------------------------------------------------------
// Writing values: the one-line YAML form of each field type.

// Plain when it cannot be read as anything but this string; double-quoted otherwise.
std::string yaml_string(const std::string& text) {
  const auto plain_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' ||
           c == '-' || c == '+' || c == ':';
  };
  const bool means_null = text == "~" || text == "null" || text == "Null" || text == "NULL";
  const bool plain = !text.empty() && !means_null && plain_char(text.front()) &&
                     text.front() != '-' && text.front() != ':' && text.back() != ':' &&
                     std::all_of(text.begin(), text.end(), plain_char);
  if (plain) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\x%02X", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string text_of(int value) { return std::to_string(value); }
std::string text_of(std::uint64_t value) { return std::to_string(value); }
std::string text_of(double value) { return format_number(value); }
std::string text_of(bool value) { return value ? "true" : "false"; }
std::string text_of(const std::string& value) { return yaml_string(value); }

template <typename Element, std::size_t kSize>
std::string text_of(const std::array<Element, kSize>& values) {
  std::vector<std::string> items;
  for (const Element& value : values) items.push_back(text_of(value));
  return "[" + joined(items) + "]";
}

template <typename Number>
std::string text_of(const std::vector<Number>& values) {
  std::vector<std::string> items;
  for (Number value : values) items.push_back(text_of(value));
  return "[" + joined(items) + "]";
}

std::string text_of(const std::vector<std::string>& values) {
  std::vector<std::string> items;
  for (const std::string& value : values) items.push_back(yaml_string(value));
  return "[" + joined(items) + "]";
}

std::string field_text(const ConfigField& field);

// The keys of a layer's type, each with its one-line value (the type must be known).
std::vector<std::pair<const LayerKeySpec*, std::string>> layer_entries(const LayerConfig& layer) {
  const LayerTypeSpec* type = find_layer_type(layer.type);
  CADENZA_CHECK(type != nullptr, "layer type '" << layer.type << "' is not in the schema");
  LayerConfig copy = layer;
  std::vector<std::pair<const LayerKeySpec*, std::string>> entries;
  for (const std::string& name : layer_keys_of(*type)) {
    const LayerKeySpec* key = find_layer_key(name);
    entries.emplace_back(key, field_text(key->field(copy)));
  }
  return entries;
}

// Layers in flow style: [{type: relu, name: relu0, inputs: [input]}, ...].
std::string text_of(const std::vector<LayerConfig>& layers) {
  std::vector<std::string> items;
  for (const LayerConfig& layer : layers) {
    std::vector<std::string> entries;
    for (const auto& [key, text] : layer_entries(layer)) entries.push_back(key->path + ": " + text);
    items.push_back("{" + joined(entries) + "}");
  }
  return "[" + joined(items) + "]";
}

std::string field_text(const ConfigField& field) {
  return std::visit([](auto* target) { return text_of(*target); }, field);
}

std::string note_comment(const std::string& note) { return note.empty() ? "" : "  # " + note; }

std::string indent(std::size_t depth) { return std::string(2 * depth, ' '); }

// ---------------------------------------------------------------------------------------
// Unknown keys

// " — did you mean 'train.lr'?", or the keys of the nearest valid section.
std::string unknown_key_detail(const std::string& path) {
  if (std::optional<std::string> suggestion = closest_key(path, all_config_paths())) {
    return suggestion_text(suggestion);
  }
  std::string section = parent_path(path);
  while (!section.empty() && !is_config_section(section)) section = parent_path(section);
  return "; " + (section.empty() ? std::string("the top level") : section) +
         " takes: " + joined(section_children(section));
}

// The same for a layer key; `type` is null when the layer's type is not known.
std::string unknown_layer_key_detail(const std::string& item_path, const std::string& name,
                                     const LayerTypeSpec* type) {
  std::vector<std::string> keys;
  if (type != nullptr) {
    keys = layer_keys_of(*type);
  } else {
    for (const LayerKeySpec& key : layer_keys()) keys.push_back(key.path);
  }
  const std::string for_type = type != nullptr ? " for a " + type->type + " layer" : "";
  if (std::optional<std::string> suggestion = closest_match(name, keys)) {
    return for_type + suggestion_text(child_path(item_path, *suggestion));
  }
  std::string owners;
  for (const LayerTypeSpec& other : layer_types()) {
    const std::vector<std::string> other_keys = layer_keys_of(other);
    if (std::find(other_keys.begin(), other_keys.end(), name) != other_keys.end()) {
      owners += (owners.empty() ? "" : ", ") + other.type;
    }
  }
  return for_type + "; " + (type != nullptr ? type->type + " layers take: " : "layers take: ") +
         joined(keys) + (owners.empty() ? "" : " (" + name + " is a key of " + owners + " layers)");
}

// ---------------------------------------------------------------------------------------
// Overrides: "a.b[2].c=value"

struct PathStep {
  std::string key;
  std::optional<std::size_t> index;
};

struct AppliedOverride {
  std::string text;  // as given
  std::string path;  // its key, as error messages write paths
  // Where in the config read an error is this override's to name: its key, or for a key of
  // model.layers[i], the layers that entry expanded to (a block use: all of its layers).
  std::vector<std::string> blamed;
};

std::optional<std::vector<PathStep>> parse_key_path(std::string_view text) {
  std::vector<PathStep> steps;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t dot = std::min(text.find('.', start), text.size());
    std::string_view part = text.substr(start, dot - start);
    PathStep step;
    if (const std::size_t bracket = part.find('['); bracket != std::string_view::npos) {
      if (part.back() != ']') return std::nullopt;
      const std::optional<std::uint64_t> index =
          parse_whole<std::uint64_t>(part.substr(bracket + 1, part.size() - bracket - 2));
      if (!index) return std::nullopt;
      step.index = static_cast<std::size_t>(*index);
      part = part.substr(0, bracket);
    }
    const bool valid_name = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
    if (!valid_name) return std::nullopt;
    step.key = std::string(part);
    steps.push_back(step);
    start = dot + 1;
  }
  return steps;
}

std::string path_text(const std::vector<PathStep>& steps) {
  std::string path;
  for (const PathStep& step : steps) {
    path = child_path(path, step.key);
    if (step.index) path = indexed_path(path, *step.index);
  }
  return path;
}

// Whether entry `index` of a config's model.layers list (the file's, before expansion) is
// a block use: its keys are the block's parameters.
bool is_block_use(const YAML::Node& root, std::size_t index) {
  const YAML::Node layers = root["model"] ? root["model"]["layers"] : YAML::Node();
  return layers.IsSequence() && index < layers.size() && layers[index].IsMap() && layers[index]["block"];
}

// Refuses keys the schema does not have, before the tree is touched.
void check_override_path(const std::string& origin, const std::vector<PathStep>& steps,
                         const std::string& path, const YAML::Node& root) {
  const bool indexed = std::any_of(steps.begin(), steps.end(),
                                   [](const PathStep& step) { return step.index.has_value(); });
  if (!indexed) {
    if (find_config_key(path) == nullptr && !is_config_section(path)) {
      throw UserError(origin + ": unknown key " + quoted(path) + unknown_key_detail(path));
    }
    return;
  }
  const bool layer_path = steps.size() >= 2 && steps.size() <= 3 && steps[0].key == "model" &&
                          !steps[0].index && steps[1].key == "layers" && steps[1].index &&
                          (steps.size() == 2 || !steps[2].index);
  if (!layer_path) {
    throw UserError(origin + ": " + path +
                    ": only model.layers takes an index, as in model.layers[2].filters");
  }
  // A block use's keys are its block's parameters, which expand_blocks checks.
  if (steps.size() == 3 && !is_block_use(root, *steps[1].index) && find_layer_key(steps[2].key) == nullptr) {
    throw UserError(origin + ": unknown key " + quoted(path) +
                    unknown_layer_key_detail(parent_path(path), steps[2].key, nullptr));
  }
}

// Puts `value` at `steps` in the tree, making maps on the way where there are none. A
// section the config gives as something else (train: 5) is an error, not replaced: the
// override would otherwise hide the config's mistake and drop its value.
void set_in_tree(YAML::Node& root, const std::vector<PathStep>& steps, const YAML::Node& value,
                 const std::string& origin) {
  YAML::Node node;
  node.reset(root);  // reset rebinds; assignment would overwrite the node's contents
  std::string path;
  for (std::size_t s = 0; s < steps.size(); ++s) {
    const PathStep& step = steps[s];
    if (node.IsDefined() && !node.IsNull() && !node.IsMap()) {
      throw UserError(origin + ": " + (path.empty() ? "the config" : path) + " is " + shown(node) +
                      ", not a map of keys that " + child_path(path, step.key) + " could be set in");
    }
    if (!node.IsMap()) node = YAML::Node(YAML::NodeType::Map);
    path = child_path(path, step.key);
    YAML::Node slot = node[step.key];
    if (step.index) {
      const std::size_t count = slot.IsSequence() ? slot.size() : 0;
      if (*step.index >= count) {
        throw UserError(origin + ": " + indexed_path(path, *step.index) + " does not exist (" +
                        path + " has " + std::to_string(count) + " entries)");
      }
      slot.reset(slot[*step.index]);
      path = indexed_path(path, *step.index);
    }
    if (s + 1 == steps.size()) {
      slot = value;
    } else {
      node.reset(slot);
    }
  }
}

std::vector<AppliedOverride> apply_overrides(YAML::Node& root,
                                             const std::vector<std::string>& overrides) {
  std::vector<AppliedOverride> applied;
  for (const std::string& text : overrides) {
    const std::string origin = "--set " + text;
    const std::size_t equals = text.find('=');
    if (equals == std::string::npos || equals == 0) {
      throw UserError(origin +
                      ": expected key=value, as in train.lr=0.01 or "
                      "model.layers[2].filters=64");
    }
    const std::string key_text = text.substr(0, equals);
    const std::optional<std::vector<PathStep>> steps = parse_key_path(key_text);
    if (!steps) {
      throw UserError(origin + ": malformed key " + quoted(key_text) +
                      " (expected a dotted key, as in train.lr or model.layers[2].filters)");
    }
    const std::string path = path_text(*steps);
    check_override_path(origin, *steps, path, root);
    YAML::Node value;
    try {
      value = YAML::Load(text.substr(equals + 1));
    } catch (const YAML::Exception& error) {
      throw UserError(origin + ": " + path + ": the value is not valid YAML: " + error.msg);
    }
    set_in_tree(root, *steps, value, origin);
    applied.push_back({text, path, {path}});
  }
  return applied;
}

// Points the overrides of model.layers[i] at the layers entry i of the file's list became
// (expanded_from: the file's index of each expanded layer; empty when nothing expanded).
void blame_expanded_layers(std::vector<AppliedOverride>& applied, const YAML::Node& file_root,
                           const std::vector<std::size_t>& expanded_from) {
  if (expanded_from.empty()) return;
  for (AppliedOverride& o : applied) {
    const std::optional<std::vector<PathStep>> steps = parse_key_path(o.path);
    if (!steps || steps->size() < 2 || (*steps)[0].key != "model" || !(*steps)[1].index) continue;
    const std::size_t entry = *(*steps)[1].index;
    const std::string key = steps->size() == 3 && !is_block_use(file_root, entry) ? "." + (*steps)[2].key : "";
    o.blamed.clear();
    for (std::size_t j = 0; j < expanded_from.size(); ++j)
      if (expanded_from[j] == entry) o.blamed.push_back(indexed_path("model.layers", j) + key);
  }
}

// ---------------------------------------------------------------------------------------
// Reading the tree into a Config

class ConfigReader {
 public:
  ConfigReader(std::string origin, std::vector<AppliedOverride> overrides)
      : origin_(std::move(origin)), overrides_(std::move(overrides)) {}

  Config read(const YAML::Node& root) {
    Config config;
    if (root.IsDefined() && !root.IsNull()) {
      if (!root.IsMap()) {
        fail("", "expected a map of " + joined(section_children("")) + " at the top level, got " +
                     shown(root));
      }
      read_section(root, "", config);
    }
    check_across_keys(config);
    return config;
  }

 private:
  // The last override that set `path` or a section holding it.
  const AppliedOverride* override_of(const std::string& path) const {
    for (auto it = overrides_.rbegin(); it != overrides_.rend(); ++it) {
      for (const std::string& blamed : it->blamed)
        if (is_within(path, blamed)) return &*it;
    }
    return nullptr;
  }

  // "file:12", "file" or "--set key=value": where the value at `path` came from.
  std::string where(const std::string& path) const {
    if (const AppliedOverride* setter = override_of(path)) return "--set " + setter->text;
    for (std::string at = path;; at = parent_path(at)) {
      if (const auto line = lines_.find(at); line != lines_.end()) {
        return origin_ + ":" + std::to_string(line->second);
      }
      if (at.empty()) return origin_;
    }
  }

  [[noreturn]] void fail(const std::string& path, const std::string& message) const {
    throw UserError(where(path) + ": " + (path.empty() ? "" : path + ": ") + message);
  }

  [[noreturn]] void reject(const std::string& path, const ValueRule& rule, const ConfigField& field,
                           const YAML::Node& value,
                           const std::optional<std::string>& suggestion = std::nullopt) const {
    fail(path, "expected " + describe_expected(rule, field) + ", got " + shown(value) +
                   suggestion_text(suggestion));
  }

  void remember(const std::string& path, const YAML::Mark& mark) {
    if (!mark.is_null()) lines_[path] = mark.line + 1;
  }

  // Calls visit(name, path, value) for each entry of a map, refusing repeated keys.
  template <typename Visit>
  void for_each_entry(const YAML::Node& map, const std::string& prefix, Visit visit) {
    std::set<std::string> seen;
    for (const auto& entry : map) {
      if (!entry.first.IsScalar()) fail(prefix, "expected key names, got " + shown(entry.first));
      const std::string& name = entry.first.Scalar();
      const std::string path = child_path(prefix, name);
      if (!seen.insert(name).second) {
        // The map is the file's unless an override gave it (set a section holding it);
        // an override of the key itself leaves the file's two entries in place.
        const AppliedOverride* setter = override_of(path);
        if (setter && std::find(setter->blamed.begin(), setter->blamed.end(), path) == setter->blamed.end())
          fail(path, "given twice");
        const auto first = lines_.find(path);
        const std::string first_at =
            first != lines_.end() ? " (first at line " + std::to_string(first->second) + ")" : "";
        const YAML::Mark mark = entry.first.Mark();
        throw UserError((mark.is_null() ? origin_ : origin_ + ":" + std::to_string(mark.line + 1)) + ": " + path +
                        ": given twice" + first_at);
      }
      remember(path, entry.first.Mark());
      visit(name, path, entry.second);
    }
  }

  void read_section(const YAML::Node& map, const std::string& prefix, Config& config) {
    for_each_entry(
        map, prefix, [&](const std::string&, const std::string& path, const YAML::Node& value) {
          if (const KeySpec* key = find_config_key(path)) {
            read_value(path, key->field(config), key->rule, value);
          } else if (is_config_section(path)) {
            if (value.IsNull()) return;
            if (!value.IsMap()) {
              fail(path,
                   "expected a map of " + joined(section_children(path)) + ", got " + shown(value));
            }
            read_section(value, path, config);
          } else {
            throw UserError(where(path) + ": unknown key " + quoted(path) +
                            unknown_key_detail(path));
          }
        });
  }

  void read_value(const std::string& path, const ConfigField& field, const ValueRule& rule,
                  const YAML::Node& value) {
    std::visit([&](auto* target) { read_into(*target, path, field, rule, value); }, field);
  }

  void read_into(int& target, const std::string& path, const ConfigField& field,
                 const ValueRule& rule, const YAML::Node& value) const {
    const std::optional<long long> parsed =
        value.IsScalar() ? parse_integer(value.Scalar()) : std::nullopt;
    if (!parsed || *parsed < std::numeric_limits<int>::min() ||
        *parsed > std::numeric_limits<int>::max() ||
        !within_bounds(rule, static_cast<double>(*parsed))) {
      reject(path, rule, field, value);
    }
    target = static_cast<int>(*parsed);
  }

  void read_into(std::uint64_t& target, const std::string& path, const ConfigField& field,
                 const ValueRule& rule, const YAML::Node& value) const {
    const std::optional<std::uint64_t> parsed =
        value.IsScalar() ? parse_unsigned(value.Scalar()) : std::nullopt;
    if (!parsed) reject(path, rule, field, value);
    target = *parsed;
  }

  void read_into(double& target, const std::string& path, const ConfigField& field,
                 const ValueRule& rule, const YAML::Node& value) const {
    const std::optional<double> parsed =
        value.IsScalar() ? parse_number(value.Scalar()) : std::nullopt;
    if (!parsed || !within_bounds(rule, *parsed)) reject(path, rule, field, value);
    target = *parsed;
  }

  void read_into(bool& target, const std::string& path, const ConfigField& field,
                 const ValueRule& rule, const YAML::Node& value) const {
    const std::optional<bool> parsed = value.IsScalar() ? parse_bool(value.Scalar()) : std::nullopt;
    if (!parsed) reject(path, rule, field, value);
    target = *parsed;
  }

  // A missing value (`key:` or `key: ~`) is the empty string.
  void read_into(std::string& target, const std::string& path, const ConfigField& field,
                 const ValueRule& rule, const YAML::Node& value) const {
    if (!value.IsNull() && !value.IsScalar()) reject(path, rule, field, value);
    const std::string text = value.IsNull() ? "" : value.Scalar();
    if (!accepts_text(rule, text))
      reject(path, rule, field, value, closest_match(text, rule.choices));
    target = text;
  }

  // One integer n means [n, n].
  void read_into(std::array<int, 2>& target, const std::string& path, const ConfigField& field,
                 const ValueRule& rule, const YAML::Node& value) const {
    std::vector<YAML::Node> items;
    if (value.IsScalar()) {
      items = {value, value};
    } else if (value.IsSequence() && value.size() == 2) {
      items = {value[0], value[1]};
    } else {
      reject(path, rule, field, value);
    }
    for (std::size_t i = 0; i < 2; ++i) {
      const std::optional<long long> parsed =
          items[i].IsScalar() ? parse_integer(items[i].Scalar()) : std::nullopt;
      if (!parsed || !within_bounds(rule, static_cast<double>(*parsed)) ||
          *parsed > std::numeric_limits<int>::max()) {
        reject(path, rule, field, value);
      }
      target[i] = static_cast<int>(*parsed);
    }
  }

  template <std::size_t kSize>
  void read_into(std::array<double, kSize>& target, const std::string& path,
                 const ConfigField& field, const ValueRule& rule, const YAML::Node& value) const {
    if (!value.IsSequence() || value.size() != kSize) reject(path, rule, field, value);
    for (std::size_t i = 0; i < kSize; ++i) {
      const YAML::Node item = value[i];
      const std::optional<double> parsed =
          item.IsScalar() ? parse_number(item.Scalar()) : std::nullopt;
      if (!parsed || !within_bounds(rule, *parsed)) reject(path, rule, field, value);
      target[i] = *parsed;
    }
  }

  // One number means a list of that number; a missing value (`key:`) or [] is the empty
  // list. Integer lists take whole numbers within int's range.
  template <typename Number>
    requires std::is_same_v<Number, int> || std::is_same_v<Number, double>
  void read_into(std::vector<Number>& target, const std::string& path, const ConfigField& field,
                 const ValueRule& rule, const YAML::Node& value) const {
    target.clear();
    if (value.IsNull()) return;
    std::vector<YAML::Node> items;
    if (value.IsScalar()) {
      items = {value};
    } else if (value.IsSequence()) {
      for (const YAML::Node& item : value) items.push_back(item);
    } else {
      reject(path, rule, field, value);
    }
    for (const YAML::Node& item : items) {
      std::optional<double> parsed;
      if (item.IsScalar() && std::is_same_v<Number, double>) {
        parsed = parse_number(item.Scalar());
      } else if (item.IsScalar()) {
        const std::optional<long long> whole = parse_integer(item.Scalar());
        if (whole && *whole <= std::numeric_limits<int>::max() && *whole >= std::numeric_limits<int>::min())
          parsed = static_cast<double>(*whole);
      }
      if (!parsed || !within_bounds(rule, *parsed)) reject(path, rule, field, value);
      target.push_back(static_cast<Number>(*parsed));
    }
  }

  // One name means a list of that name; a missing value (`key:`) or [] is the empty list.
  void read_into(std::vector<std::string>& target, const std::string& path,
                 const ConfigField& field, const ValueRule& rule, const YAML::Node& value) const {
    if (value.IsScalar()) {
      target = {value.Scalar()};
      return;
    }
    target.clear();
    if (value.IsNull()) return;
    if (!value.IsSequence()) reject(path, rule, field, value);
    for (const YAML::Node& item : value) {
      if (!item.IsScalar()) reject(path, rule, field, value);
      target.push_back(item.Scalar());
    }
  }

  void read_into(std::vector<LayerConfig>& layers, const std::string& path,
                 const ConfigField& field, const ValueRule& rule, const YAML::Node& value) {
    layers.clear();
    if (value.IsNull()) return;  // refused as empty by check_across_keys
    if (!value.IsSequence()) reject(path, rule, field, value);
    std::vector<std::set<std::string>> given_keys;
    for (std::size_t i = 0; i < value.size(); ++i) {
      given_keys.push_back(read_layer(indexed_path(path, i), value[i], layers));
    }
    name_layers(path, layers, given_keys);
    connect_layers(path, layers, given_keys);
  }

  // Reads one entry of model.layers into a new last element of `layers`; returns the keys given.
  std::set<std::string> read_layer(const std::string& item_path, const YAML::Node& item,
                                   std::vector<LayerConfig>& layers) {
    remember(item_path, item.Mark());
    const std::string type_choices = "one of " + joined(layer_type_names());
    if (!item.IsMap()) {
      fail(item_path, "expected a map with a type (" + type_choices + "), got " + shown(item));
    }
    LayerConfig& layer = layers.emplace_back();
    const YAML::Node type_value = item["type"];
    if (!type_value.IsDefined())
      fail(item_path, "missing required key 'type' (" + type_choices + ")");
    const std::string type_path = child_path(item_path, "type");
    remember(type_path, type_value.Mark());
    const LayerKeySpec& type_key = *find_layer_key("type");
    read_value(type_path, type_key.field(layer), type_key.rule, type_value);
    const LayerTypeSpec& type = *find_layer_type(layer.type);
    const std::vector<std::string> allowed = layer_keys_of(type);

    std::set<std::string> given;
    for_each_entry(item, item_path,
                   [&](const std::string& name, const std::string& path, const YAML::Node& value) {
                     if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
                       throw UserError(where(path) + ": unknown key " + quoted(path) +
                                       unknown_layer_key_detail(item_path, name, &type));
                     }
                     const LayerKeySpec& key = *find_layer_key(name);
                     read_value(path, key.field(layer), key.rule, value);
                     given.insert(name);
                   });
    for (const std::string& name : type.required) {
      if (given.count(name) == 0) {
        const LayerKeySpec& key = *find_layer_key(name);
        fail(item_path, "missing required key " + quoted(name) + " (" +
                            describe_expected(key.rule, key.field(layer)) + ") for a " + type.type +
                            " layer");
      }
    }
    return given;
  }

  // Default names are "<type><index>"; every name must be unique and not "input".
  void name_layers(const std::string& path, std::vector<LayerConfig>& layers,
                   const std::vector<std::set<std::string>>& given_keys) {
    std::map<std::string, std::size_t> index_of_name;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const bool named = given_keys[i].count("name") > 0;
      if (!named) layers[i].name = layers[i].type + std::to_string(i);
      const std::string name_path = child_path(indexed_path(path, i), "name");
      const std::string what = quoted(layers[i].name) + (named ? "" : " (the default name)");
      if (layers[i].name == "input") {
        fail(name_path, what + " is reserved for the model's input; choose another name");
      }
      const auto [earlier, inserted] = index_of_name.emplace(layers[i].name, i);
      if (!inserted) {
        fail(name_path, what + " is already the name of " + indexed_path(path, earlier->second));
      }
    }
  }

  // Default inputs are the previous layer (the model's input for the first); named inputs
  // must be earlier layers; a dense layer may leave units 0 only when it is the last, and a
  // recurrent layer never.
  void connect_layers(const std::string& path, std::vector<LayerConfig>& layers,
                      const std::vector<std::set<std::string>>& given_keys) {
    std::vector<std::string> earlier_names = {"input"};
    for (std::size_t i = 0; i < layers.size(); ++i) {
      LayerConfig& layer = layers[i];
      const std::string item_path = indexed_path(path, i);
      const std::string inputs_path = child_path(item_path, "inputs");
      const LayerTypeSpec& type = *find_layer_type(layer.type);
      if (given_keys[i].count("inputs") == 0) layer.inputs = {earlier_names.back()};
      const bool count_fits = type.input_count == kTwoOrMoreInputs
                                  ? layer.inputs.size() >= 2
                                  : layer.inputs.size() == type.input_count;
      if (!count_fits) {
        const std::string expected = type.input_count == kTwoOrMoreInputs
                                         ? std::string("two or more inputs")
                                         : count_of(type.input_count, "input");
        fail(inputs_path, "a " + type.type + " layer reads " + expected + ", got " +
                              std::to_string(layer.inputs.size()) + " (" + joined(layer.inputs) +
                              ")");
      }
      for (const std::string& input : layer.inputs) {
        if (std::find(earlier_names.begin(), earlier_names.end(), input) != earlier_names.end()) {
          continue;
        }
        for (std::size_t later = i; later < layers.size(); ++later) {
          if (layers[later].name == input) {
            fail(inputs_path, quoted(input) + " is " + indexed_path(path, later) +
                                  (later == i ? ", this layer itself" : ", which comes later") +
                                  "; inputs must be earlier layers or input");
          }
        }
        fail(inputs_path, "expected one of " + joined(earlier_names) +
                              " (input or an earlier layer), got " + quoted(input) +
                              suggestion_text(closest_match(input, earlier_names)));
      }
      if (type.type == "dense" && layer.units == 0 && i + 1 != layers.size()) {
        if (given_keys[i].count("units") > 0) {
          fail(child_path(item_path, "units"),
               "expected an integer > 0, got 0 (0, one per label, is for the last layer only)");
        }
        fail(item_path,
             "missing required key 'units' (an integer > 0) for a dense layer that is "
             "not the last (only the last may leave it out: one per label)");
      }
      const bool recurrent = type.type == "gru" || type.type == "lstm" || type.type == "rnn";
      if (recurrent && layer.units == 0) {
        fail(child_path(item_path, "units"),
             "expected an integer > 0 (the hidden size) for a " + type.type + " layer, got 0");
      }
      earlier_names.push_back(layer.name);
    }
  }

  // Rules that involve more than one key.
  void check_across_keys(const Config& config) const {
    const DataConfig& data = config.data;
    const DatasetSpec& dataset = *find_dataset(data.dataset);
    if (dataset.needs_root && data.root.empty()) {
      fail("data.root",
           "required for dataset " + quoted(data.dataset) + " (the folder holding its files)");
    }
    const auto& splits = dataset.splits;
    if (data.split != "auto" &&
        std::find(splits.begin(), splits.end(), data.split) == splits.end()) {
      fail("data.split", "expected auto or " + joined(splits) + " for dataset " +
                             quoted(data.dataset) + ", got " + quoted(data.split));
    }
    if (data.dataset == "csv" && data.manifest.empty()) {
      fail("data.manifest",
           "required for dataset 'csv' (a CSV file with a header row and the columns path and "
           "label or labels)");
    }
    if (data.dataset == "mtat" && data.tags.empty()) {
      fail("data.tags", "expected top<N> or a list of tag names, got none");
    }
    const auto& fractions = data.split_fractions;
    if (std::abs(fractions[0] + fractions[1] + fractions[2] - 1.0) > 1e-6 || fractions[0] <= 0) {
      fail("data.split_fractions",
           "expected 3 numbers >= 0 (train, val, test) summing to 1 with train > 0, got " +
               text_of(fractions));
    }

    const PhasesConfig& phases = config.train.phases;
    for (std::size_t i = 1; i < phases.epochs.size(); ++i)
      if (phases.epochs[i] <= phases.epochs[i - 1])
        fail("train.phases.epochs", "expected increasing epochs, got " + text_of(phases.epochs));
    if (phases.lr.size() != phases.epochs.size())
      fail("train.phases.lr", "expected one lr per phase (" + std::to_string(phases.epochs.size()) +
                                  " for train.phases.epochs " + text_of(phases.epochs) + "), got " +
                                  text_of(phases.lr));
    if (!phases.epochs.empty() && config.train.schedule.type != "constant")
      fail("train.schedule.type", "expected constant with train.phases (each phase has its own lr), got " +
                                      quoted(config.train.schedule.type));

    const FrontendSpec& features = config.features;
    if (features.win_length > features.n_fft) {
      fail("features.win_length", "expected an integer in [0, n_fft] = [0, " +
                                      text_of(features.n_fft) + "] (0: n_fft), got " +
                                      text_of(features.win_length));
    }
    const double nyquist = data.sample_rate / 2.0;
    if (features.f_max > nyquist) {
      fail("features.f_max", "expected 0 (sample_rate / 2) or a number up to sample_rate / 2 = " + text_of(nyquist) +
                                 ", got " + text_of(features.f_max));
    }
    const double f_max = features.f_max != 0 ? features.f_max : nyquist;
    if (features.f_min >= f_max) {
      fail("features.f_min", std::string("expected a number in [0, ") + (features.f_max != 0 ? "f_max" : "sample_rate / 2") +
                                 ") = [0, " + text_of(f_max) + "), got " + text_of(features.f_min));
    }
    if (features.type == "mfcc" && features.n_mfcc > features.n_mels) {
      fail("features.n_mfcc", "expected 1 to features.n_mels = " + text_of(features.n_mels) +
                                  " for type mfcc, got " + text_of(features.n_mfcc));
    }
    if (features.type == "mfcc" && features.log != "db") {
      fail("features.log", "expected db for type mfcc (MFCC is the DCT of the dB mel spectrogram, as in "
                           "torchaudio and librosa), got " + quoted(features.log));
    }

    if (config.model.layers.empty())
      fail("model.layers", "expected a non-empty list of layers, got none");
    // A harmonic filterbank places its filters by the bins' frequencies: it needs the
    // audio's sample rate and, reading the model input, an STFT (bins 0 .. sample_rate / 2).
    for (std::size_t i = 0; i < config.model.layers.size(); ++i) {
      const LayerConfig& layer = config.model.layers[i];
      if (layer.type != "harmonic_filterbank") continue;
      const std::string item_path = indexed_path("model.layers", i);
      if (layer.sample_rate != data.sample_rate)
        fail(child_path(item_path, "sample_rate"),
             "expected data.sample_rate = " + text_of(data.sample_rate) + ", got " +
                 text_of(layer.sample_rate));
      const bool reads_input =
          std::find(layer.inputs.begin(), layer.inputs.end(), "input") != layer.inputs.end();
      if (reads_input && features.type != "stft")
        fail("features.type", "expected stft for " + item_path +
                                  " (harmonic_filterbank reads a power STFT), got " +
                                  quoted(features.type));
    }

    const bool known_multi_label = (data.dataset == "synthetic" && data.synthetic.multi_label) ||
                                   data.dataset == "mtat" ||
                                   (data.dataset == "fma" && data.labels == "genres_all");
    const bool sigmoid_loss =
        config.loss.type == "sigmoid_bce" || (config.loss.type == "auto" && known_multi_label);
    if (config.loss.label_smoothing > 0 && sigmoid_loss) {
      fail("loss.label_smoothing",
           "expected 0 with sigmoid_bce (label smoothing is for "
           "softmax_cross_entropy only), got " +
               text_of(config.loss.label_smoothing));
    }

    const AugmentConfig& augment = config.augment;
    if (features.type == "waveform") {
      for (const auto& [key, count] : {std::pair{"augment.time_masks", augment.time_masks},
                                       std::pair{"augment.freq_masks", augment.freq_masks}}) {
        if (count > 0)
          fail(key, "expected 0 with features.type waveform (masks are for spectrograms), got " +
                        text_of(count));
      }
    }
    const std::pair<const char*, const std::array<double, 2>*> ranges[] = {
        {"augment.gain_db", &augment.gain_db},
        {"augment.noise_snr_db", &augment.noise_snr_db},
        {"augment.time_stretch", &augment.time_stretch},
        {"augment.pitch_shift", &augment.pitch_shift}};
    for (const auto& [key, range] : ranges) {
      if ((*range)[0] > (*range)[1])
        fail(key, "expected [min, max] with min <= max, got " + text_of(*range));
    }
    if (data.balance != "none" && known_multi_label) {
      fail("data.balance", "expected none for multi-label data (classes are balanced for "
                           "single-label data only), got " + quoted(data.balance));
    }

    if (config.train.nesterov && config.train.momentum == 0) {
      fail("train.nesterov", "true needs train.momentum > 0, as torch.optim.SGD");
    }
  }

  std::string origin_;
  std::vector<AppliedOverride> overrides_;
  std::map<std::string, int> lines_;  // key path -> 1-based line in the file
};

// Reads a whole file; errors name the file and the system's reason.
std::string read_text_file(const std::string& path) {
  const auto failure = [&] {
    return UserError("cannot read config " + quoted(path) + ": " + std::strerror(errno));
  };
  errno = 0;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) throw failure();
  std::string text;
  char buffer[1 << 16];
  std::size_t count = 0;
  while ((count = std::fread(buffer, 1, sizeof(buffer), file.get())) > 0)
    text.append(buffer, count);
  if (std::ferror(file.get())) throw failure();
  return text;
}

// Whether text holds no YAML value (nothing, or comments only); invalid YAML is not empty.
bool yaml_is_empty(const std::string& text) {
  try {
    const YAML::Node root = YAML::Load(text);
    return !root.IsDefined() || root.IsNull();
  } catch (const YAML::Exception&) {
    return false;
  }
}

// The keys (or whole sections) that decide the model's shapes and its weights' meaning;
// the dataset's label keys are added to these.
const std::vector<std::string> kModelDefiningKeys = {
    "data.dataset", "data.sample_rate", "data.clip_seconds", "features", "model.layers"};

// The keys (or sections) whose values model_hash covers: kModelDefiningKeys and the keys
// that choose the dataset's labels.
std::vector<std::string> model_defining_keys(const Config& config) {
  std::vector<std::string> keys = kModelDefiningKeys;
  if (const DatasetSpec* dataset = find_dataset(config.data.dataset))
    keys.insert(keys.end(), dataset->label_keys.begin(), dataset->label_keys.end());
  return keys;
}

}  // namespace

std::int64_t window_samples(const DataConfig& data) { return std::llround(data.clip_seconds * data.sample_rate); }

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  const std::string text = read_text_file(path);
  if (yaml_is_empty(text))
    throw UserError(path + ": the file is empty (expected a map of " + joined(section_children("")) + ")");
  Config config = parse_config(text, path, overrides);
  config.source_path = path;
  return config;
}

Config parse_config(const std::string& yaml_text, const std::string& origin,
                    const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& error) {
    const std::string at = error.mark.is_null() ? ""
                                                : ":" + std::to_string(error.mark.line + 1) + ":" +
                                                      std::to_string(error.mark.column + 1);
    throw UserError(origin + at + ": invalid YAML: " + error.msg);
  }
  if (root.IsDefined() && !root.IsNull() && !root.IsMap()) {
    throw UserError(origin + ":" + std::to_string(root.Mark().line + 1) + ": expected a map of " +
                    joined(section_children("")) + " at the top level, got " + shown(root));
  }
  // Overrides first: model.layers[i] is the i-th entry of the file's list, a block use
  // included (its keys are the block's parameters), as the user reads the file.
  std::vector<AppliedOverride> applied = apply_overrides(root, overrides);
  std::vector<std::size_t> expanded_from;
  const YAML::Node expanded = expand_blocks(root, origin, &expanded_from);
  blame_expanded_layers(applied, root, expanded_from);
  return ConfigReader(origin, std::move(applied)).read(expanded);
}

std::string to_yaml(const Config& config) {
  Config copy = config;  // the schema's accessors take a mutable Config
  std::string out;
  std::vector<std::string> open_sections;
  for (const KeySpec& key : config_keys()) {
    std::vector<std::string> sections;
    for (std::size_t start = 0, dot; (dot = key.path.find('.', start)) != std::string::npos;
         start = dot + 1) {
      sections.push_back(key.path.substr(start, dot - start));
    }
    const std::string name = key.path.substr(key.path.rfind('.') + 1);
    std::size_t common = 0;
    while (common < open_sections.size() && common < sections.size() &&
           open_sections[common] == sections[common]) {
      ++common;
    }
    open_sections.resize(common);
    for (; common < sections.size(); ++common) {
      out += indent(common) + sections[common] + ":\n";
      open_sections.push_back(sections[common]);
    }
    const std::size_t depth = sections.size();
    out += indent(depth) + name + ":";
    const ConfigField field = key.field(copy);
    if (const auto* layers = std::get_if<std::vector<LayerConfig>*>(&field);
        layers && !(*layers)->empty()) {
      // Block style: one "- type: ..." entry per layer, its keys below it.
      out += note_comment(key.note) + "\n";
      for (const LayerConfig& layer : **layers) {
        bool first = true;
        for (const auto& [layer_key, text] : layer_entries(layer)) {
          out += indent(depth + 1) + (first ? "- " : "  ") + layer_key->path + ": " + text +
                 note_comment(layer_key->note) + "\n";
          first = false;
        }
      }
    } else {
      out += " " + field_text(field) + note_comment(key.note) + "\n";
    }
  }
  return out;
}

namespace {

// One scalar value of a config: its path (layers indexed, model.layers[2].filters), the
// schema row's path it belongs to (model.layers), its text, and whether it is the default.
struct FlatValue {
  std::string path;
  std::string schema_path;
  std::string text;
  bool is_default;
};

std::vector<FlatValue> flat_values(const Config& config) {
  Config copy = config;  // the schema's accessors take a mutable Config
  Config defaults;
  const LayerConfig default_layer;
  std::vector<FlatValue> values;
  for (const KeySpec& key : config_keys()) {
    const ConfigField field = key.field(copy);
    if (const auto* layers = std::get_if<std::vector<LayerConfig>*>(&field)) {
      for (std::size_t i = 0; i < (*layers)->size(); ++i) {
        for (const auto& [layer_key, text] : layer_entries((**layers)[i])) {
          LayerConfig unset = default_layer;
          values.push_back({indexed_path(key.path, i) + "." + layer_key->path, key.path, text,
                            text == field_text(layer_key->field(unset))});
        }
      }
    } else {
      const std::string text = field_text(field);
      values.push_back({key.path, key.path, text, text == field_text(key.field(defaults))});
    }
  }
  return values;
}

}  // namespace

std::map<std::string, std::string> config_values(const Config& config) {
  std::map<std::string, std::string> out;
  for (const FlatValue& v : flat_values(config)) out[v.path] = v.text;
  return out;
}

std::uint64_t model_hash(const Config& config) {
  const std::vector<std::string> hashed = model_defining_keys(config);
  // "path=value" lines for the values that differ from the defaults, so that a key added
  // later with a default that keeps the old behaviour leaves existing hashes unchanged.
  std::string canonical;
  for (const FlatValue& v : flat_values(config)) {
    const bool decides_model = std::any_of(hashed.begin(), hashed.end(), [&](const std::string& h) {
      return is_within(v.schema_path, h);
    });
    if (decides_model && !v.is_default) canonical += v.path + "=" + v.text + "\n";
  }
  return fnv1a_64(canonical);
}

std::optional<std::string> model_changing_override(const std::string& path,
                                                   const std::vector<std::string>& overrides) {
  // The overrides are added one at a time, as given: the first whose addition changes the
  // hash is named. A prefix the cross-key checks refuse (the first of two keys that only
  // make sense together) is passed over; the whole list is validated by the caller.
  // A prefix refused for a key that defines the model (data.sample_rate=8000 against the
  // run's features.f_max 8000) is named as such too: the refusal would otherwise blame
  // the run's own key.
  const std::string text = read_text_file(path);  // read once, parsed with each prefix
  const Config run = load_config(path);
  const std::vector<std::string> hashed = model_defining_keys(run);
  std::uint64_t previous = model_hash(run);
  std::vector<std::string> prefix;
  for (const std::string& override_text : overrides) {
    prefix.push_back(override_text);
    try {
      const std::uint64_t hash = model_hash(parse_config(text, path, prefix));
      if (hash != previous) return override_text;
      previous = hash;
    } catch (const UserError&) {
      const std::string key = override_text.substr(0, override_text.find('='));
      if (std::any_of(hashed.begin(), hashed.end(), [&](const std::string& h) { return is_within(key, h); }))
        return override_text;
    }
  }
  return std::nullopt;
}

std::optional<std::string> config_value_problem(const std::string& key, const std::string& value) {
  const std::string text = key + "=" + value;
  try {
    parse_config("model: {layers: [{type: dense}]}", "probe", {text});  // the smallest valid config
  } catch (const UserError& error) {
    const std::string message = error.what(), prefix = "--set " + text + ": ";
    return message.starts_with(prefix) ? message.substr(prefix.size()) : message;
  }
  return std::nullopt;
}

}  // namespace cadenza
