// FileLock: flock(2) on a file opened for the purpose (file_lock.hpp).
#include "host/io/file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <system_error>
#include <thread>
#include <utility>

#include "host/core/error.hpp"

namespace cadenza {
namespace {

// The lock file's descriptor, or -1 with errno set.
int try_open_lock_file(const std::filesystem::path& path) {
  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  } while (fd < 0 && errno == EINTR);
  // flock() needs no write access: another user's lock file (a shared cache) opens
  // read-only. Once: a file this user may not read either fails with that errno.
  if (fd < 0 && errno == EACCES) {
    do {
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
  }
  return fd;
}

int open_lock_file(const std::filesystem::path& path) {
  const int fd = try_open_lock_file(path);
  if (fd < 0)
    CADENZA_USER_ERROR("cannot open the lock file " << path.string() << ": "
                                                    << std::generic_category().message(errno));
  return fd;
}

// flock(2), retried when interrupted; 0 or an errno value.
int flock_retrying(int fd, int operation) {
  while (::flock(fd, operation) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

[[noreturn]] void lock_failed(const std::filesystem::path& path, int error_number) {
  CADENZA_USER_ERROR("cannot lock " << path.string() << ": " << std::generic_category().message(error_number));
}

}  // namespace

std::optional<FileLock> FileLock::try_acquire(const std::filesystem::path& path) {
  FileLock lock(open_lock_file(path));
  const int error_number = flock_retrying(lock.fd_, LOCK_EX | LOCK_NB);
  if (error_number == EWOULDBLOCK) return std::nullopt;
  if (error_number != 0) lock_failed(path, error_number);
  return lock;
}

FileLock FileLock::acquire(const std::filesystem::path& path, const std::function<void()>& on_wait,
                           const std::function<bool()>& stop_requested) {
  FileLock lock(open_lock_file(path));
  int error_number = flock_retrying(lock.fd_, LOCK_EX | LOCK_NB);
  if (error_number == EWOULDBLOCK) {
    on_wait();
    if (!stop_requested) {
      error_number = flock_retrying(lock.fd_, LOCK_EX);
    } else {
      while ((error_number = flock_retrying(lock.fd_, LOCK_EX | LOCK_NB)) == EWOULDBLOCK) {
        if (stop_requested()) throw Interrupted("stopped while waiting for the lock " + path.string());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
  if (error_number != 0) lock_failed(path, error_number);
  return lock;
}

std::optional<FileLock> FileLock::acquire_shared(const std::filesystem::path& path) {
  const int fd = try_open_lock_file(path);
  if (fd < 0) return std::nullopt;
  FileLock lock(fd);
  if (flock_retrying(lock.fd_, LOCK_SH) != 0) return std::nullopt;
  return lock;
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace cadenza
