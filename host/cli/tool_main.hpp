// tool_main: the one place where an exception becomes a line on stderr and an exit code.
//
// Exit codes of every tool: 0 success; 1 an internal error (a bug or a library failure,
// printed with its source location); 2 a user error (bad config, missing file, ...);
// 130 stopped by Ctrl-C or SIGTERM (after writing a checkpoint, when training).
#pragma once

#include <functional>

namespace cadenza {

constexpr int kExitInternalError = 1;
constexpr int kExitUserError = 2;
constexpr int kExitInterrupted = 130;

int tool_main(const char* tool_name, const std::function<int()>& body);

}  // namespace cadenza
