// scan_audio_folder: the audio files of a folder tree, as a dataset (data/folder_dataset)
// and a list of songs to score (inference/song_predictor) both take them.
//
// Invariants: `audio` is sorted and holds every regular file (or link to one) with an
// extension cadenza decodes (audio_decoder.hpp), links to folders followed, each folder
// searched once; hidden files and folders (a name starting with '.': .DS_Store, macOS's
// ._name copies, .git) are passed over; a link to nothing, a link to a folder searched
// already (a loop, or one folder linked twice), a file of an audio format cadenza has no
// decoder for (.m4a, .wma, ...), a pipe, socket or device with an audio file's name and a
// folder that cannot be read are in `skipped` with the reason, sorted; any other file
// (covers, notes) is only counted by its extension.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace cadenza {

struct AudioFolderScan {
  std::vector<std::filesystem::path> audio;
  std::vector<std::string> skipped;        // "<path>: <reason>"
  std::map<std::string, int> other_files;  // by lower-case extension ("" for none)
};

AudioFolderScan scan_audio_folder(const std::filesystem::path& folder);

// Whether a file or folder name starts with '.'.
bool is_hidden(const std::filesystem::path& path);

}  // namespace cadenza
