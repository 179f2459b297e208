// Errors: the exception types library code throws and the check macros that throw them.
//
// Invariants:
// - Library code never exits or prints an error itself; it throws. Only a tool's main()
//   turns an exception into one line on stderr and a non-zero exit (see host/cli/tool_main.hpp).
// - UserError is a mistake the user can fix (a config key, a missing file, a shape that
//   does not fit); its message is already the whole line the user sees, naming the file,
//   key or layer and what was expected; ResourceError is one whose cause is the system's
//   (a limit, an I/O error), not the file's. Error is everything else (a bug, a library
//   failure) and carries the source location of the check that failed; JobError is the
//   failure of another rank of a data-parallel job; Interrupted is a stop the user asked
//   for (Ctrl-C, SIGTERM), thrown where work can end cleanly, its message saying what was kept.
// - Vendor status codes (CUDA, cuDNN, cuBLAS, cuFFT, NCCL) are checked by the macro in
//   cuda/check.cuh, which throws Error the same way.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace cadenza {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A mistake in the user's input; the message names what was wrong and what was expected.
class UserError : public Error {
 public:
  using Error::Error;
};

// The system refused a resource while reading a file (too many open files, no memory, an
// I/O error, a stale network handle): the user's to fix, as a UserError, but not a
// property of the file, so never recorded as one (a cache does not remember the file as
// undecodable).
class ResourceError : public UserError {
 public:
  using UserError::UserError;
};

// Another process of a data-parallel job died, hung or broke the communicator: not a
// mistake of this process; the message names the rank, the operation and the timeout.
class JobError : public Error {
 public:
  using Error::Error;
};

// The user asked the process to stop (Ctrl-C, SIGTERM) and the work under way ended at a
// point where nothing is half-written; the message says what was kept.
class Interrupted : public Error {
 public:
  using Error::Error;
};

// Builds "file:line: message" for an internal check that failed.
std::string located_message(const char* file, int line, const std::string& message);

}  // namespace cadenza

// Throws cadenza::Error with file:line when `cond` is false. The trailing arguments are
// streamed into the message: CADENZA_CHECK(n > 0, "batch must be positive, got " << n).
#define CADENZA_CHECK(cond, ...)                                                        \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::ostringstream cadenza_check_os_;                                             \
      cadenza_check_os_ << "check failed: " #cond ": " << __VA_ARGS__;                  \
      throw ::cadenza::Error(::cadenza::located_message(__FILE__, __LINE__,             \
                                                        cadenza_check_os_.str()));      \
    }                                                                                   \
  } while (0)

// Throws cadenza::UserError with the streamed message (no source location: the user
// needs to know what to fix, not where in our code it was noticed).
#define CADENZA_USER_ERROR(...)                                                         \
  do {                                                                                  \
    std::ostringstream cadenza_user_os_;                                                \
    cadenza_user_os_ << __VA_ARGS__;                                                    \
    throw ::cadenza::UserError(cadenza_user_os_.str());                                 \
  } while (0)
