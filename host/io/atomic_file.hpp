// Whole-file reads and crash-safe file replacement.
//
// Invariants:
// - A file written here is either absent or complete: the bytes go to a temporary file in
//   the target's directory, named "<name>.tmp.<pid>.<counter>", which is flushed and
//   fsync()ed, renamed over the target, and then the directory itself is fsync()ed. A
//   reader never sees a partly written target, and a crash leaves either the old or the
//   new content.
// - If the write fails, throws, or is abandoned before commit(), the temporary file is
//   removed and the previous content of the target is left untouched.
// - Failures throw UserError naming the path and the system's reason (strerror(errno)).
// - The new file gets the default permissions of a newly created file (0666 & ~umask);
//   a symlink at the target is replaced by the regular file, not followed.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

namespace cadenza {

// Writes one file atomically. Construction creates the temporary file; write() and
// stream() append to it; commit() makes it the target. Destroying the writer without
// commit() removes the temporary file and keeps the old target.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::filesystem::path target);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(std::string_view bytes);
  void write(const void* data, std::size_t nbytes);
  // A buffered stream onto the same temporary file, for formatted output. Its errors
  // are reported by the next write() or by commit().
  std::ostream& stream();
  // Flushes, fsyncs, renames over the target and fsyncs the directory. Call once. If only
  // the directory sync fails, the new content is in place but may not survive a crash;
  // commit() still throws so that the caller knows.
  void commit();

  const std::filesystem::path& target() const { return target_; }
  const std::filesystem::path& temp_path() const { return temp_path_; }

 private:
  class FdBuffer;

  void throw_if_stream_failed();
  // Discards the temporary file, then throws UserError "cannot write <target>: <what><reason>".
  [[noreturn]] void fail(const std::string& what, int error_number);
  // Closes the descriptor (if open) and removes the temporary file; never throws.
  void discard() noexcept;

  std::filesystem::path target_;
  std::filesystem::path temp_path_;
  std::unique_ptr<FdBuffer> buffer_;
  std::unique_ptr<std::ostream> stream_;
  bool committed_ = false;
};

// Replaces `path` with `bytes` atomically.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes);

// Replaces `path` with what `fill` writes to the stream, atomically. If `fill` throws,
// the exception propagates and the old content stays.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::ostream&)>& fill);

// Returns the whole content of a file; UserError "cannot read <path>: <reason>".
std::string read_file(const std::filesystem::path& path);

// Creates the folder `path` and its parents where missing, before a tool's work, so that
// a bad output path fails at once; UserError "<what> <path>: cannot create it: <reason>"
// (a file in the way, no permission, a read-only disk).
void make_output_folder(const std::filesystem::path& path, const std::string& what);

// Checks, without creating anything, that make_output_folder(path, what) could succeed:
// `path` is a folder, or its nearest existing ancestor is a folder this process may write
// in. For a tool whose output folder should appear only once it has something to hold.
void check_output_folder(const std::filesystem::path& path, const std::string& what);

}  // namespace cadenza
