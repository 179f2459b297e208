// The config schema: one table row per key a config file may hold, in the order to_yaml
// writes them, with the struct field it fills, the values it accepts and a note on its
// default; plus the tables of layer types and datasets. Reading, validation, to_yaml and
// model_hash all walk these tables, so adding a key is adding one row.
//
// Invariants:
// - A key's path is the dotted path of its struct member (`train.lr` is Config::train.lr),
//   so every field is written under its own name; rows of one section are contiguous.
// - Layer keys are named as LayerConfig's members; a layer type takes `type`, `name`,
//   `inputs` and the keys its LayerTypeSpec lists, nothing else.
// - Nothing here reads YAML; config.cpp is the one place that does.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "host/config/config.hpp"

namespace cadenza {

// Where a key's value lives. The pointed-to type decides how it is read and written:
// an int pair also accepts one integer n (meaning [n, n]); a double array is a list of
// exactly that many numbers; a string, integer or number list also accepts one element.
using ConfigField =
    std::variant<int*, std::uint64_t*, double*, bool*, std::string*, std::array<int, 2>*,
                 std::array<double, 2>*, std::array<double, 3>*, std::vector<int>*,
                 std::vector<double>*, std::vector<std::string>*, std::vector<LayerConfig>*>;

struct Bound {
  double value;
  bool inclusive;
};

// What a key accepts beyond its type. Numeric bounds apply to each element of a list.
struct ValueRule {
  std::optional<Bound> min;
  std::optional<Bound> max;
  std::vector<std::string> choices;             // strings: the accepted values (empty: any)
  bool (*accepts)(std::string_view) = nullptr;  // strings: a test beyond choices
  std::string expectation;                      // replaces the generated "expected ..." phrase
};

template <typename Owner>
struct KeySpecOf {
  std::string path;  // "train.lr"; for layer keys just the key ("filters")
  ConfigField (*field)(Owner&);
  ValueRule rule;
  std::string note;  // the default's meaning, written by to_yaml as a comment
};
using KeySpec = KeySpecOf<Config>;
using LayerKeySpec = KeySpecOf<LayerConfig>;

struct LayerTypeSpec {
  std::string type;
  std::vector<std::string> keys;      // besides type, name and inputs, in to_yaml order
  std::vector<std::string> required;  // keys that have no usable default
  std::size_t input_count;            // how many layers it reads, or kTwoOrMoreInputs
};
inline constexpr std::size_t kTwoOrMoreInputs = 0;

struct DatasetSpec {
  std::string name;
  bool needs_root;                      // reads files under data.root
  std::vector<std::string> label_keys;  // the keys that define its label set (for model_hash)
  std::vector<std::string> splits;      // the data.split values it takes besides auto; the
                                        // first is what auto means (csv: see DataConfig)
};

// The rows, in to_yaml order.
const std::vector<KeySpec>& config_keys();
const std::vector<LayerKeySpec>& layer_keys();  // type, name and inputs first
const std::vector<LayerTypeSpec>& layer_types();
const std::vector<DatasetSpec>& datasets();

// The row for a path or name, or nullptr.
const KeySpec* find_config_key(std::string_view path);
const LayerKeySpec* find_layer_key(std::string_view name);
const LayerTypeSpec* find_layer_type(std::string_view type);
const DatasetSpec* find_dataset(std::string_view name);

// Every key and section path ("data", "data.synthetic", "train.lr", ...), in table order.
std::vector<std::string> all_config_paths();
// The names directly under a section ("" for the top level), in table order.
std::vector<std::string> section_children(std::string_view section);
bool is_config_section(std::string_view path);
// The keys a layer of this type takes: type, name, inputs, then the type's own.
std::vector<std::string> layer_keys_of(const LayerTypeSpec& type);
std::vector<std::string> layer_type_names();

// "an integer >= 1", "one of adam, adamw, sgd", ... (what the error says was expected).
std::string describe_expected(const ValueRule& rule, const ConfigField& field);
bool within_bounds(const ValueRule& rule, double value);
bool accepts_text(const ValueRule& rule, std::string_view text);

// "a, b, c", as messages list keys and values.
std::string joined(const std::vector<std::string>& items);

// The shortest text that reads back as exactly `value` ("0.001", "1e-05", "2").
std::string format_number(double value);

}  // namespace cadenza
