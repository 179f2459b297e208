// A flock() on a lock file, held for the object's lifetime. Exclusive: the PCM cache's
// builds of one key, one gpu_train per run directory. Shared: the processes reading a PCM
// cache, so that no build removes it under them.
//
// Invariants: closing the descriptor releases the lock, and so does the kernel when the
// holder dies, so a killed process never leaves a stale lock. The lock file itself stays:
// removing it would let two processes lock two different files of the same name.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>

namespace cadenza {

class FileLock {
 public:
  // The lock, or nullopt at once when another process holds it. Throws UserError when the
  // lock file cannot be opened (a missing or read-only folder); one another user made,
  // which this one may not write, is locked through a read-only descriptor.
  static std::optional<FileLock> try_acquire(const std::filesystem::path& path);
  // The lock; when another process holds it, calls on_wait() and waits for it, asking
  // stop_requested (when given) every tenth of a second: Interrupted once it answers true.
  static FileLock acquire(const std::filesystem::path& path, const std::function<void()>& on_wait,
                          const std::function<bool()>& stop_requested = {});
  // A shared lock, waiting while another process holds the exclusive one; nullopt when the
  // lock file can be neither created nor opened or the filesystem takes no locks, so that
  // a reader of a read-only shared folder goes on without it.
  static std::optional<FileLock> acquire_shared(const std::filesystem::path& path);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace cadenza
