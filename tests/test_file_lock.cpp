// FileLock on lock files another user made: one this user may only read is locked through
// a read-only descriptor; one it may not open at all is refused (try_acquire) or gone
// without (acquire_shared), at once. The calls run in a child process as an unprivileged
// user (nobody, when the tests run as root, since root opens any file), under an alarm, so
// that a hang fails the test instead of stalling the suite.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "host/core/error.hpp"
#include "host/io/file_lock.hpp"
#include "tests/test_support.hpp"

using namespace cadenza;
namespace fs = std::filesystem;

namespace {

constexpr uid_t kNobody = 65534;

// Runs `body` in a child as an unprivileged user; its exit status, or -1 when it was killed
// (by the alarm: a hang).
template <typename Body>
int status_as_another_user(Body body) {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::alarm(10);
    if (::geteuid() == 0 && (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)) ::_exit(90);
    int code = 0;
    try {
      code = body();
    } catch (...) {
      code = 91;
    }
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("lock files of another user: read-only ones lock, unreadable ones fail at once", "[cpu][io]") {
  const testing::TempDir dir;
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  const fs::path readable = dir / "readable.lock", closed = dir / "closed.lock";
  std::ofstream(readable).put('\n');
  std::ofstream(closed).put('\n');
  fs::permissions(readable, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  fs::permissions(closed, fs::perms::none);

  CHECK(status_as_another_user([&] {
          if (!FileLock::try_acquire(readable)) return 1;  // nobody else holds it
          return FileLock::acquire_shared(readable) ? 0 : 2;
        }) == 0);
  CHECK(status_as_another_user([&] {
          if (FileLock::acquire_shared(closed)) return 1;
          try {
            FileLock::try_acquire(closed);
          } catch (const UserError& error) {
            return std::string(error.what()).starts_with("cannot open the lock file " + closed.string() +
                                                         ": Permission denied")
                       ? 0
                       : 2;
          }
          return 3;
        }) == 0);
}
