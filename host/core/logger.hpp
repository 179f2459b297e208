// Logger: leveled, line-oriented messages to a stream (stderr by default).
//
// Invariants: one Logger belongs to one Context (no process-wide logger); warnings are
// counted so tests can assert that a run produced none. Progress bars write through
// progress_line(), which redraws in place on a terminal and is silent otherwise.
#pragma once

#include <iosfwd>
#include <string>

namespace cadenza {

class Logger {
 public:
  enum class Level { info, warn, error, quiet };

  explicit Logger(std::ostream& out, Level level = Level::info);
  void set_level(Level level) { level_ = level; }
  Level level() const { return level_; }

  void info(const std::string& message);
  void warn(const std::string& message);
  void error(const std::string& message);
  int warnings() const { return warnings_; }

  // A line that redraws in place ("\r") when the stream is a terminal; dropped otherwise.
  void progress_line(const std::string& text);
  // Ends a progress line so the next message starts on a fresh line.
  void end_progress();

 private:
  void write(const char* tag, const std::string& message);
  std::ostream& out_;
  Level level_;
  bool terminal_ = false;
  bool progress_open_ = false;
  int warnings_ = 0;
};

}  // namespace cadenza
