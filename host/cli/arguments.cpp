// Command-line parsing; see arguments.hpp.
#include "host/cli/arguments.hpp"

#include <cctype>
#include <cmath>
#include <string>

#include "host/config/config.hpp"
#include "host/config/did_you_mean.hpp"
#include "host/core/error.hpp"
#include "host/core/text.hpp"

namespace cadenza {

std::optional<std::string> Arguments::value(const std::string& flag) const {
  const auto found = values.find(flag);
  if (found == values.end()) return std::nullopt;
  return found->second;
}

double Arguments::number(const std::string& flag, double fallback) const {
  const auto text = value(flag);
  if (!text) return fallback;
  std::size_t used = 0;
  double parsed = 0.0;
  try {
    parsed = std::stod(*text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text->size() || !std::isfinite(parsed))
    CADENZA_USER_ERROR(flag << ": expected a number, got '" << *text << "'");
  return parsed;
}

int Arguments::integer(const std::string& flag, int fallback) const {
  if (!value(flag)) return fallback;
  const double parsed = number(flag, fallback);
  if (parsed != std::floor(parsed) || std::abs(parsed) > 1e9)
    CADENZA_USER_ERROR(flag << ": expected a whole number, got '" << *value(flag) << "'");
  return static_cast<int>(parsed);
}

double Arguments::fraction(const std::string& flag, double fallback) const {
  if (!value(flag)) return fallback;
  const double parsed = number(flag, fallback);
  if (parsed < 0.0 || parsed > 1.0)
    CADENZA_USER_ERROR(flag << ": expected a score between 0 and 1, got '" << *value(flag) << "'");
  return parsed;
}

Arguments parse_arguments(int argc, char** argv, const ArgumentSpec& spec) {
  Arguments args;
  bool options_ended = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (options_ended) {  // after "--" everything is a positional ("-x.wav" included)
      args.positionals.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    if (arg == "-h") throw HelpRequest{spec.usage};
    // "-s": an option written with one dash (a path starting with "-" needs "./-s" or "--").
    if (arg.size() >= 2 && arg[0] == '-' && arg[1] != '-' && std::isalpha(static_cast<unsigned char>(arg[1])))
      CADENZA_USER_ERROR("unknown option " << arg << " (options start with --; see --help)");
    if (arg.size() < 2 || arg.rfind("--", 0) != 0) {
      args.positionals.push_back(arg);
      continue;
    }
    std::optional<std::string> inline_value;
    if (const auto eq = arg.find('='); eq != std::string::npos) {
      inline_value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    const bool takes_value = spec.with_value.count(arg) || spec.repeatable.count(arg);
    if (arg == "--help") throw HelpRequest{spec.usage};
    if (!takes_value && !spec.switches.count(arg)) {
      std::vector<std::string> known(spec.with_value.begin(), spec.with_value.end());
      known.insert(known.end(), spec.repeatable.begin(), spec.repeatable.end());
      known.insert(known.end(), spec.switches.begin(), spec.switches.end());
      const auto suggestion = closest_match(arg, known);
      CADENZA_USER_ERROR("unknown option " << arg
                                           << (suggestion ? " — did you mean " + *suggestion + "?" : "")
                                           << " (see --help)");
    }
    if (!takes_value) {
      if (inline_value) CADENZA_USER_ERROR("option " << arg << " takes no value");
      args.switches.insert(arg);
      continue;
    }
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else {
      if (i + 1 >= argc) CADENZA_USER_ERROR("option " << arg << " needs a value");
      value = argv[++i];
    }
    if (spec.repeatable.count(arg))
      args.repeated[arg].push_back(value);
    else if (!args.values.emplace(arg, value).second)
      CADENZA_USER_ERROR("option " << arg << " given twice (" << args.values[arg] << ", " << value << ")");
  }
  const std::size_t count = args.positionals.size();
  if (count < spec.min_positionals || count > spec.max_positionals) {
    if (spec.max_positionals == 0) throw UsageError("unexpected argument " + args.positionals[0], spec.usage);
    throw UsageError("expected " + spec.positionals + ", got " +
                         (count == 0 ? std::string("none") : count_of(count, "argument")),
                     spec.usage);
  }
  return args;
}

namespace {

// `text` as a YAML single-quoted scalar: read back as that string whatever it holds
// ("cuda:" unquoted is a map).
std::string yaml_quoted(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

std::vector<std::string> config_overrides(const Arguments& args) {
  std::vector<std::string> overrides;
  if (const auto it = args.repeated.find("--set"); it != args.repeated.end()) overrides = it->second;
  struct FlagKey {
    const char* flag;
    const char* key;
    bool text;  // a string value, passed quoted; else a number, as written
  };
  for (const FlagKey& f : {FlagKey{"--device", "train.device", true}, FlagKey{"--threads", "train.threads", false},
                           FlagKey{"--windows", "data.eval_windows", false}})
    if (const auto value = args.value(f.flag)) {
      const std::string yaml = f.text ? yaml_quoted(*value) : *value;
      if (const auto problem = config_value_problem(f.key, yaml))
        CADENZA_USER_ERROR(f.flag << " " << *value << ": " << *problem);
      overrides.push_back(std::string(f.key) + "=" + yaml);
    }
  return overrides;
}

}  // namespace cadenza
