// Logger implementation: plain lines, with a tag for warnings and errors.
#include "host/core/logger.hpp"

#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace cadenza {

Logger::Logger(std::ostream& out, Level level) : out_(out), level_(level) {
  terminal_ = (&out == &std::cerr && isatty(STDERR_FILENO)) ||
              (&out == &std::cout && isatty(STDOUT_FILENO));
}

// One write per line: lines of several processes into one stream (the ranks of a job) do
// not interleave mid-line.
void Logger::write(const char* tag, const std::string& message) {
  end_progress();
  const std::string line = tag + message + '\n';
  out_.write(line.data(), std::streamsize(line.size()));
  out_.flush();
}

void Logger::info(const std::string& message) {
  if (level_ <= Level::info) write("", message);
}
void Logger::warn(const std::string& message) {
  ++warnings_;
  if (level_ <= Level::warn) write("warning: ", message);
}
void Logger::error(const std::string& message) {
  if (level_ <= Level::error) write("error: ", message);
}

void Logger::progress_line(const std::string& text) {
  if (!terminal_ || level_ > Level::info) return;
  out_ << '\r' << text << "\x1b[K";
  out_.flush();
  progress_open_ = true;
}

void Logger::end_progress() {
  if (!progress_open_) return;
  out_ << '\n';
  progress_open_ = false;
}

}  // namespace cadenza
