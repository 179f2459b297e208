// scan_audio_folder: one recursive walk with the rules in audio_folder.hpp.
#include "host/audio/audio_folder.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <utility>

#include "host/audio/audio_decoder.hpp"
#include "host/core/text.hpp"

namespace cadenza {
namespace fs = std::filesystem;
namespace {

// Why a file of an audio format cadenza has no decoder for is left out, or nullopt for
// other files (covers, notes).
std::optional<std::string> unreadable_audio_format(const fs::path& path) {
  static const std::set<std::string> kOtherAudio = {".m4a", ".aac", ".mp4", ".wma", ".ape", ".wv",
                                                    ".alac", ".mka", ".webm", ".m4b", ".ac3", ".mp2"};
  const std::string extension = ascii_lowercase(path.extension().string());
  if (!kOtherAudio.count(extension)) return std::nullopt;
  return extension + " is not a format cadenza reads (" + audio_extensions_text() + "); convert it to one";
}

}  // namespace

bool is_hidden(const fs::path& path) { return path.filename().string().starts_with("."); }

AudioFolderScan scan_audio_folder(const fs::path& folder) {
  AudioFolderScan scan;
  std::error_code error;
  // Links to folders are followed (albums linked into a dataset tree); each folder is
  // searched once, by device and inode, so a link back up the tree ends.
  std::set<std::pair<dev_t, ino_t>> searched;
  const auto first_visit = [&](const fs::path& directory) {
    struct stat status {};
    return ::stat(directory.c_str(), &status) != 0 || searched.emplace(status.st_dev, status.st_ino).second;
  };
  first_visit(folder);
  fs::recursive_directory_iterator it(
      folder, fs::directory_options::skip_permission_denied | fs::directory_options::follow_directory_symlink, error);
  if (error) {
    scan.skipped.push_back(folder.string() + ": cannot read this folder: " + error.message());
    return scan;
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (error) {
      scan.skipped.push_back(folder.string() + ": cannot list it all: " + error.message());
      break;
    }
    const fs::path& path = it->path();
    if (is_hidden(path)) {
      if (it->is_directory(error)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_symlink(error) && !fs::exists(path, error)) {
      scan.skipped.push_back(path.string() + ": a link to a file that does not exist");
      continue;
    }
    if (it->is_directory(error)) {
      if (::access(path.c_str(), R_OK | X_OK) != 0) {
        scan.skipped.push_back(path.string() + ": cannot read this folder: " + std::strerror(errno));
        it.disable_recursion_pending();
      } else if (!first_visit(path)) {
        scan.skipped.push_back(path.string() + ": a link to a folder searched already");
        it.disable_recursion_pending();
      }
      continue;
    }
    if (!it->is_regular_file(error)) {
      if (has_audio_extension(path))
        scan.skipped.push_back(path.string() + ": not a regular file (a pipe, socket or device)");
      continue;
    }
    if (has_audio_extension(path))
      scan.audio.push_back(path);
    else if (const std::optional<std::string> reason = unreadable_audio_format(path))
      scan.skipped.push_back(path.string() + ": " + *reason);
    else
      ++scan.other_files[ascii_lowercase(path.extension().string())];
  }
  std::sort(scan.audio.begin(), scan.audio.end());
  std::sort(scan.skipped.begin(), scan.skipped.end());
  return scan;
}

}  // namespace cadenza
