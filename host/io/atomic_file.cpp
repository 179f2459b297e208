// Whole-file reads and crash-safe file replacement on POSIX descriptors.
//
// Invariants:
// - The temporary file lives in the target's directory (so rename() is atomic) and is
//   created with O_EXCL under a name unique to this process and call.
// - Every failure inside the writer closes the descriptor and unlinks the temporary file
//   before its exception leaves; an exception from the caller's own code is cleaned up by
//   the destructor. After a successful rename the temporary name no longer exists.
// - FdBuffer writes only through write(2) and remembers the first errno, so the reason
//   reported is the system's, not a generic stream failure.
#include "host/io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <streambuf>
#include <vector>

#include "host/core/error.hpp"

namespace cadenza {
namespace {

std::atomic<unsigned long> temp_file_counter{0};

std::string reason(int error_number) { return std::strerror(error_number); }

// Closes a descriptor on scope exit (used where nothing else owns it).
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

[[noreturn]] void throw_read_error(const std::filesystem::path& path, int error_number) {
  CADENZA_USER_ERROR("cannot read " << path.string() << ": " << reason(error_number));
}

// fsync(2), retried when interrupted; returns 0 or an errno value.
int sync_descriptor(int fd) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

}  // namespace

// A write-only streambuf over a descriptor with a fixed buffer. Large writes bypass the
// buffer. After the first failed write(2) it refuses everything and keeps that errno.
class AtomicFileWriter::FdBuffer : public std::streambuf {
 public:
  FdBuffer() : storage_(kCapacity) { reset_put_area(); }
  ~FdBuffer() override { close_descriptor(); }
  FdBuffer(const FdBuffer&) = delete;
  FdBuffer& operator=(const FdBuffer&) = delete;

  void attach(int fd) { fd_ = fd; }
  int fd() const { return fd_; }
  int error_number() const { return error_number_; }

  // Closes the descriptor without flushing; returns 0 or the errno of close(2).
  int close_descriptor() {
    if (fd_ < 0) return 0;
    const int result = ::close(fd_);
    fd_ = -1;
    if (error_number_ == 0) error_number_ = EBADF;  // refuse further writes
    return result == 0 ? 0 : errno;
  }

 protected:
  int_type overflow(int_type ch) override {
    if (!flush_put_area()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }

  std::streamsize xsputn(const char* data, std::streamsize count) override {
    if (count <= epptr() - pptr()) {
      std::memcpy(pptr(), data, static_cast<std::size_t>(count));
      pbump(static_cast<int>(count));
      return count;
    }
    if (!flush_put_area()) return 0;
    if (count >= static_cast<std::streamsize>(kCapacity)) {
      return write_all(data, static_cast<std::size_t>(count)) ? count : 0;
    }
    std::memcpy(pptr(), data, static_cast<std::size_t>(count));
    pbump(static_cast<int>(count));
    return count;
  }

  int sync() override { return flush_put_area() ? 0 : -1; }

 private:
  static constexpr std::size_t kCapacity = 1 << 16;
  // Linux transfers at most about 2 GiB per write(2); stay well below.
  static constexpr std::size_t kMaxChunk = std::size_t{1} << 30;

  void reset_put_area() { setp(storage_.data(), storage_.data() + storage_.size()); }

  bool flush_put_area() {
    const bool ok = write_all(pbase(), static_cast<std::size_t>(pptr() - pbase()));
    reset_put_area();
    return ok;
  }

  bool write_all(const char* data, std::size_t count) {
    if (error_number_ != 0) return false;
    while (count > 0) {
      const ssize_t written = ::write(fd_, data, std::min(count, kMaxChunk));
      if (written < 0) {
        if (errno == EINTR) continue;
        error_number_ = errno;
        return false;
      }
      if (written == 0) {
        error_number_ = EIO;
        return false;
      }
      data += written;
      count -= static_cast<std::size_t>(written);
    }
    return true;
  }

  int fd_ = -1;
  std::vector<char> storage_;
  int error_number_ = 0;
};

AtomicFileWriter::AtomicFileWriter(std::filesystem::path target) : target_(std::move(target)) {
  if (!target_.has_filename()) {
    CADENZA_USER_ERROR("cannot write " << target_.string() << ": not a file name");
  }
  // Allocate first so that nothing can throw between creating the file and owning it.
  buffer_ = std::make_unique<FdBuffer>();
  stream_ = std::make_unique<std::ostream>(buffer_.get());
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    temp_path_ = target_;
    temp_path_ +=
        ".tmp." + std::to_string(::getpid()) + "." + std::to_string(temp_file_counter.fetch_add(1));
    fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    const int error_number = fd < 0 ? errno : 0;
    if (fd < 0 && !(error_number == EEXIST && attempt < 100) && error_number != EINTR) {
      CADENZA_USER_ERROR("cannot write " << target_.string() << ": cannot create "
                                         << temp_path_.string() << ": " << reason(error_number));
    }
  }
  buffer_->attach(fd);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) discard();
}

void AtomicFileWriter::discard() noexcept {
  buffer_->close_descriptor();
  if (!temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }
}

void AtomicFileWriter::fail(const std::string& what, int error_number) {
  discard();
  CADENZA_USER_ERROR("cannot write " << target_.string() << ": " << what << reason(error_number));
}

void AtomicFileWriter::write(std::string_view bytes) { write(bytes.data(), bytes.size()); }

void AtomicFileWriter::write(const void* data, std::size_t nbytes) {
  CADENZA_CHECK(!committed_, "write after commit of " << target_.string());
  stream_->write(static_cast<const char*>(data), static_cast<std::streamsize>(nbytes));
  throw_if_stream_failed();
}

std::ostream& AtomicFileWriter::stream() {
  CADENZA_CHECK(!committed_, "stream requested after commit of " << target_.string());
  return *stream_;
}

void AtomicFileWriter::throw_if_stream_failed() {
  if (*stream_) return;
  const int error_number = buffer_->error_number();
  if (error_number != 0) fail("", error_number);
  discard();
  CADENZA_USER_ERROR("cannot write " << target_.string()
                                     << ": formatting into the output stream failed");
}

void AtomicFileWriter::commit() {
  CADENZA_CHECK(!committed_, "commit called twice for " << target_.string());
  CADENZA_CHECK(!temp_path_.empty(), "commit after a failed write of " << target_.string());
  stream_->flush();
  throw_if_stream_failed();
  if (const int error_number = sync_descriptor(buffer_->fd())) {
    fail("fsync failed: ", error_number);
  }
  if (const int error_number = buffer_->close_descriptor()) fail("close failed: ", error_number);
  if (std::rename(temp_path_.c_str(), target_.c_str()) != 0) {
    const int error_number = errno;
    fail("rename of " + temp_path_.string() + " failed: ", error_number);
  }
  temp_path_.clear();
  committed_ = true;

  // Make the rename itself durable. Filesystems that cannot sync a directory report
  // EINVAL; for them the rename is as durable as it will get.
  const std::filesystem::path directory =
      target_.has_parent_path() ? target_.parent_path() : std::filesystem::path(".");
  const ScopedFd directory_fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (directory_fd.get() < 0) {
    const int error_number = errno;
    CADENZA_USER_ERROR("cannot write " << target_.string() << ": cannot open directory "
                                       << directory.string() << ": " << reason(error_number));
  }
  const int error_number = sync_descriptor(directory_fd.get());
  if (error_number != 0 && error_number != EINVAL) {
    CADENZA_USER_ERROR("cannot write " << target_.string() << ": fsync of directory "
                                       << directory.string()
                                       << " failed: " << reason(error_number));
  }
}

void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  AtomicFileWriter writer(path);
  writer.write(bytes);
  writer.commit();
}

void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::ostream&)>& fill) {
  AtomicFileWriter writer(path);
  fill(writer.stream());
  writer.commit();
}

void make_output_folder(const std::filesystem::path& path, const std::string& what) {
  std::error_code error;
  if (path.empty()) CADENZA_USER_ERROR(what << ": expected a folder name, got an empty one");
  std::filesystem::create_directories(path, error);
  if (!error && !std::filesystem::is_directory(path, error)) error = std::make_error_code(std::errc::not_a_directory);
  if (error) CADENZA_USER_ERROR(what << " " << path.string() << ": cannot create it: " << error.message());
}

void check_output_folder(const std::filesystem::path& path, const std::string& what) {
  namespace fs = std::filesystem;
  if (path.empty()) CADENZA_USER_ERROR(what << ": expected a folder name, got an empty one");
  const fs::path absolute = fs::absolute(path).lexically_normal();
  fs::path existing = absolute;
  std::error_code error;
  while (!fs::exists(existing, error) && existing.has_relative_path()) existing = existing.parent_path();
  if (!fs::is_directory(existing, error)) {
    CADENZA_USER_ERROR(what << " " << path.string() << ": cannot create it: " << existing.string()
                            << " is not a folder");
  }
  if (::access(existing.c_str(), W_OK | X_OK) != 0)
    CADENZA_USER_ERROR(what << " " << path.string() << ": cannot write in " << existing.string() << ": "
                            << std::strerror(errno));
}

std::string read_file(const std::filesystem::path& path) {
  const ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw_read_error(path, errno);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) throw_read_error(path, errno);
  // One byte beyond the reported size lets the usual case end without growing; files
  // whose size is not known in advance (pipes, /proc) grow by doubling.
  const std::size_t reported_size = info.st_size > 0 ? static_cast<std::size_t>(info.st_size) : 0;
  std::string content(std::max<std::size_t>(reported_size + 1, 4096), '\0');
  std::size_t used = 0;
  while (true) {
    if (used == content.size()) content.resize(content.size() * 2);
    const ssize_t got = ::read(fd.get(), content.data() + used, content.size() - used);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_read_error(path, errno);
    }
    if (got == 0) break;
    used += static_cast<std::size_t>(got);
  }
  content.resize(used);
  return content;
}

}  // namespace cadenza
