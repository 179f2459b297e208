// tool_main: exception-to-exit-code translation shared by the tools.
#include "host/cli/tool_main.hpp"

#include <filesystem>
#include <iostream>

#include "host/cli/arguments.hpp"
#include "host/core/error.hpp"

namespace cadenza {
namespace {

// "TOOL: KIND: MESSAGE" in one write to stderr: the ranks of a job print their errors at
// the same moment into one stream (mpirun's), and pieces of separate writes interleave.
void say(const char* tool_name, const char* kind, const std::string& message, const std::string& before = "") {
  const std::string text = before + tool_name + ": " + kind + ": " + message + "\n";
  std::cerr.write(text.data(), std::streamsize(text.size()));
  std::cerr.flush();
}

}  // namespace

int tool_main(const char* tool_name, const std::function<int()>& body) {
  try {
    return body();
  } catch (const HelpRequest& help) {
    std::cout << help.usage;
    return 0;
  } catch (const UsageError& e) {
    say(tool_name, "error", e.what(), e.usage());
    return kExitUserError;
  } catch (const UserError& e) {
    say(tool_name, "error", e.what());
    return kExitUserError;
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the disk refused (full, read-only, a file where a folder belongs): the user's
    // to fix, so said as an input problem, without the library's prefix.
    std::string message = e.what();
    const std::string prefix = "filesystem error: ";
    if (message.starts_with(prefix)) message.erase(0, prefix.size());
    say(tool_name, "error", message);
    return kExitUserError;
  } catch (const Interrupted& e) {
    say(tool_name, "stopped", e.what());
    return kExitInterrupted;
  } catch (const JobError& e) {
    say(tool_name, "job failed", e.what());
    return kExitInternalError;
  } catch (const std::exception& e) {
    say(tool_name, "internal error", e.what());
    return kExitInternalError;
  }
}

}  // namespace cadenza
