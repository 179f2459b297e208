// Command-line parsing shared by the tools: values, repeatable flags, switches, --help as a
// HelpRequest carrying the usage, and the positional count as a UsageError that names
// what was expected.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "host/cli/arguments.hpp"

namespace cadenza {
namespace {

Arguments parse(std::vector<std::string> words, const ArgumentSpec& spec) {
  words.insert(words.begin(), "tool");
  std::vector<char*> argv;
  for (std::string& word : words) argv.push_back(word.data());
  return parse_arguments(static_cast<int>(argv.size()), argv.data(), spec);
}

const ArgumentSpec kSpec{.with_value = {"--device"},
                         .repeatable = {"--set"},
                         .switches = {"--quiet"},
                         .usage = "usage: tool RUN_DIR\n",
                         .min_positionals = 1,
                         .max_positionals = 1,
                         .positionals = "one run directory"};

TEST_CASE("arguments: values, repeatable flags, switches and positionals", "[cpu][cli]") {
  const Arguments args = parse({"runs/a", "--device=cpu", "--set", "a=1", "--set", "b=2", "--quiet"}, kSpec);
  CHECK(args.positionals == std::vector<std::string>{"runs/a"});
  CHECK(args.value("--device") == "cpu");
  CHECK(args.repeated.at("--set") == std::vector<std::string>{"a=1", "b=2"});
  CHECK(args.has("--quiet"));
  // After "--" every word is a positional, even one that looks like an option.
  const Arguments ended = parse({"--quiet", "--", "-x.wav"}, kSpec);
  CHECK(ended.positionals == std::vector<std::string>{"-x.wav"});
  CHECK(ended.has("--quiet"));
  CHECK(parse({"--", "--device"}, kSpec).positionals == std::vector<std::string>{"--device"});
}

TEST_CASE("arguments: --help asks for the usage, a wrong positional count names what was expected",
          "[cpu][cli]") {
  try {
    parse({"--help"}, kSpec);
    FAIL("--help did not throw");
  } catch (const HelpRequest& help) {
    CHECK(help.usage == "usage: tool RUN_DIR\n");
  }
  for (const auto& [words, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{}, "expected one run directory, got none"},
           {{"a", "b"}, "expected one run directory, got 2 arguments"}}) {
    try {
      parse(words, kSpec);
      FAIL("no UsageError");
    } catch (const UsageError& error) {
      CHECK(std::string(error.what()) == message);
      CHECK(error.usage() == kSpec.usage);
    }
  }
  const ArgumentSpec none{.usage = "usage: bench\n"};
  CHECK_THROWS_WITH(parse({"extra"}, none), "unexpected argument extra");
  CHECK_THROWS_WITH(parse({"--devise", "cpu"}, kSpec), Catch::Contains("did you mean --device?"));
}

TEST_CASE("arguments: -h is --help; one-dash options and repeated values are refused", "[cpu][cli]") {
  CHECK_THROWS_AS(parse({"-h"}, kSpec), HelpRequest);
  CHECK_THROWS_WITH(parse({"runs/a", "-s"}, kSpec), "unknown option -s (options start with --; see --help)");
  CHECK(parse({"-1"}, kSpec).positionals == std::vector<std::string>{"-1"});  // not an option
  CHECK_THROWS_WITH(parse({"runs/a", "--device", "cpu", "--device=cuda"}, kSpec),
                    "option --device given twice (cpu, cuda)");
  CHECK(parse({"runs/a", "--device=0.25"}, kSpec).fraction("--device", 0.5) == 0.25);
  CHECK(parse({"runs/a"}, kSpec).fraction("--device", 0.5) == 0.5);
  CHECK_THROWS_WITH(parse({"runs/a", "--device=2"}, kSpec).fraction("--device", 0.5),
                    "--device: expected a score between 0 and 1, got '2'");
}

TEST_CASE("arguments: a flag standing for a config key is checked under its own name", "[cpu][cli]") {
  CHECK(config_overrides(parse({"runs/a", "--device", "cuda:1", "--set", "train.lr=0.1"}, kSpec)) ==
        std::vector<std::string>{"train.lr=0.1", "train.device='cuda:1'"});
  CHECK_THROWS_WITH(config_overrides(parse({"runs/a", "--device", "cuda:"}, kSpec)),
                    "--device cuda:: train.device: expected auto, cpu, cuda or cuda:N, got 'cuda:'");
  CHECK_THROWS_WITH(config_overrides(parse({"runs/a", "--device", "banana"}, kSpec)),
                    "--device banana: train.device: expected auto, cpu, cuda or cuda:N, got 'banana'");
}

}  // namespace
}  // namespace cadenza
