// tool_main: exception-to-exit-code translation shared by the tools.
#include "host/cli/tool_main.hpp"

#include <iostream>

#include "host/core/error.hpp"

namespace cadenza {

int tool_main(const char* tool_name, const std::function<int()>& body) {
  try {
    return body();
  } catch (const UserError& e) {
    std::cerr << tool_name << ": error: " << e.what() << std::endl;
    return kExitUserError;
  } catch (const JobError& e) {
    std::cerr << tool_name << ": job failed: " << e.what() << std::endl;
    return kExitInternalError;
  } catch (const std::exception& e) {
    std::cerr << tool_name << ": internal error: " << e.what() << std::endl;
    return kExitInternalError;
  }
}

}  // namespace cadenza
