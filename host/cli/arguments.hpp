// Command-line parsing shared by the tools: long flags with values (--flag value or
// --flag=value), repeatable flags (--set), boolean switches and positionals.
// Unknown flags are UserErrors that name the flag and suggest the closest known one.
// Every tool takes --help, which prints its usage (tool_main does); a wrong number of
// positionals is a UsageError, printed after the usage.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "host/core/error.hpp"

namespace cadenza {

struct ArgumentSpec {
  std::set<std::string> with_value = {};  // e.g. "--device"
  std::set<std::string> repeatable = {};  // e.g. "--set" (also take a value)
  std::set<std::string> switches = {};    // e.g. "--summary"; --help is always accepted
  std::string usage = {};                 // the text --help prints
  // How many positionals the tool takes, and what they are ("one run directory"), for the
  // error when the count is outside [min, max].
  std::size_t min_positionals = 0, max_positionals = 0;
  std::string positionals = {};
};

// parse_arguments' answer to --help: tool_main prints `usage` on stdout and exits 0.
struct HelpRequest {
  std::string usage;
};

// A mistake in the command line's shape (the positionals): tool_main prints the usage on
// stderr, then the message.
class UsageError : public UserError {
 public:
  UsageError(const std::string& message, std::string usage) : UserError(message), usage_(std::move(usage)) {}
  const std::string& usage() const { return usage_; }

 private:
  std::string usage_;
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
  // A number in [0, 1] (a score threshold), or `fallback` when absent; UserError otherwise.
  double fraction(const std::string& flag, double fallback) const;
  bool has(const std::string& flag) const { return switches.count(flag) != 0; }
};

// Throws HelpRequest for --help, UsageError for a count of positionals outside the spec's
// bounds, and UserError for an unknown option, a missing value or a value given to a switch.
// After "--" every argument is a positional, as getopt has it (a file named "-x.wav").
Arguments parse_arguments(int argc, char** argv, const ArgumentSpec& spec);

// The config overrides the tools' flags stand for, in this order: each --set, then
// --device (train.device), --threads (train.threads) and --windows (data.eval_windows)
// where given. A flag's value the key's schema refuses is a UserError naming the flag.
std::vector<std::string> config_overrides(const Arguments& args);

}  // namespace cadenza
