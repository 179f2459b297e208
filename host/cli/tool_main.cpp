// tool_main: exception-to-exit-code translation shared by the tools.
#include "host/cli/tool_main.hpp"

#include <filesystem>
#include <iostream>

#include "host/cli/arguments.hpp"
#include "host/core/error.hpp"

namespace cadenza {

int tool_main(const char* tool_name, const std::function<int()>& body) {
  try {
    return body();
  } catch (const HelpRequest& help) {
    std::cout << help.usage;
    return 0;
  } catch (const UsageError& e) {
    std::cerr << e.usage() << tool_name << ": error: " << e.what() << std::endl;
    return kExitUserError;
  } catch (const UserError& e) {
    std::cerr << tool_name << ": error: " << e.what() << std::endl;
    return kExitUserError;
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the disk refused (full, read-only, a file where a folder belongs): the user's
    // to fix, so said as an input problem, without the library's prefix.
    std::string message = e.what();
    const std::string prefix = "filesystem error: ";
    if (message.starts_with(prefix)) message.erase(0, prefix.size());
    std::cerr << tool_name << ": error: " << message << std::endl;
    return kExitUserError;
  } catch (const Interrupted& e) {
    std::cerr << tool_name << ": stopped: " << e.what() << std::endl;
    return kExitInterrupted;
  } catch (const JobError& e) {
    std::cerr << tool_name << ": job failed: " << e.what() << std::endl;
    return kExitInternalError;
  } catch (const std::exception& e) {
    std::cerr << tool_name << ": internal error: " << e.what() << std::endl;
    return kExitInternalError;
  }
}

}  // namespace cadenza
