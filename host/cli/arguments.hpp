// Command-line parsing shared by the tools: long flags with values (--flag value or
// --flag=value), repeatable flags (--set), boolean switches and positionals.
// Unknown flags are UserErrors that name the flag and suggest the closest known one.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace cadenza {

struct ArgumentSpec {
  std::set<std::string> with_value;  // e.g. "--device"
  std::set<std::string> repeatable;  // e.g. "--set" (also take a value)
  std::set<std::string> switches;    // e.g. "--summary"
};

struct Arguments {
  std::vector<std::string> positionals;
  std::map<std::string, std::string> values;
  std::map<std::string, std::vector<std::string>> repeated;
  std::set<std::string> switches;

  std::optional<std::string> value(const std::string& flag) const;
  // The flag's value as a number, or `fallback` when absent; UserError "--flag: expected a
  // number, got ..." when it is not one (or not a whole number, for integer()).
  double number(const std::string& flag, double fallback) const;
  int integer(const std::string& flag, int fallback) const;
  bool has(const std::string& flag) const { return switches.count(flag) != 0; }
};

Arguments parse_arguments(int argc, char** argv, const ArgumentSpec& spec);

// The config overrides the tools' flags stand for, in this order: each --set, then
// --device (train.device), --threads (train.threads) and --windows (data.eval_windows)
// where given.
std::vector<std::string> config_overrides(const Arguments& args);

}  // namespace cadenza
