// The GTZAN reader: <genres>/<genre>/<genre>.NNNNN.{au,wav} and the artist-filtered split
// lists (see dataset_index.hpp).
//
// Invariants: labels are the 10 genres in alphabetical order; clips are ordered by genre,
// then id; an id appears once (a clip present as both .au and .wav is refused); under the
// filtered split every indexed clip is in exactly one of the three lists, and a listed clip
// missing from the folder is skipped (an error when most listed clips are).
#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <map>
#include <optional>
#include <string_view>

#include "host/core/error.hpp"
#include "host/data/dataset_index.hpp"

namespace cadenza {
namespace {

namespace fs = std::filesystem;

const std::array<std::string, 10> kGenres = {"blues", "classical", "country", "disco",  "hiphop",
                                             "jazz",  "metal",     "pop",     "reggae", "rock"};
constexpr std::size_t kClipsPerGenre = 100;  // in the published dataset
constexpr std::size_t kIdDigits = 5;
const std::string kLayout = "GTZAN: genres/<genre>/<genre>.NNNNN.au or .wav";

// The three lists of the filtered split, in Split order.
const std::array<std::string, 3> kFilteredListNames = {"train_filtered.txt", "valid_filtered.txt",
                                                       "test_filtered.txt"};
const std::string kFilteredListsSource =
    "the artist-filtered split of Kereliuk & Sturm needs train_filtered.txt, valid_filtered.txt "
    "and test_filtered.txt in the folder data.split_lists (default: data.root); they are "
    "published in torchaudio's GTZAN dataset source (torchaudio/datasets/gtzan.py: "
    "filtered_train, filtered_valid, filtered_test) and in dnn-mgr "
    "(github.com/coreyker/dnn-mgr)";

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

// The genre index of "<genre>.NNNNN", if it is one.
std::optional<int> genre_of_id(std::string_view id) {
  const std::size_t dot = id.find('.');
  if (dot == std::string_view::npos || id.size() - dot - 1 != kIdDigits ||
      !all_digits(id.substr(dot + 1))) {
    return std::nullopt;
  }
  const auto genre = std::find(kGenres.begin(), kGenres.end(), id.substr(0, dot));
  if (genre == kGenres.end()) return std::nullopt;
  return static_cast<int>(genre - kGenres.begin());
}

// The folder holding the genre folders: root/genres, root/genres_original (Kaggle's
// copy) or root itself.
fs::path find_genres_folder(const fs::path& root) {
  require_path(root, true, "data.root", "the dataset folder", kLayout);
  for (const fs::path& candidate : {root / "genres", root / "genres_original", root}) {
    std::error_code error;
    if (fs::is_directory(candidate / kGenres[0], error)) return candidate;
  }
  std::string genres;
  for (const std::string& genre : kGenres) genres += (genres.empty() ? "" : ", ") + genre;
  throw UserError("data.root: no GTZAN genre folders in '" + (root / "genres").string() + "', '" +
                  (root / "genres_original").string() + "' or '" + root.string() +
                  "' (expected <genre>/<genre>.NNNNN.au or .wav for " + genres + ")");
}

// The clips of one genre folder, by id.
std::map<std::string, fs::path> genre_clips(const fs::path& genre_folder, int genre) {
  require_path(genre_folder, true, "data.root", "the genre folder", kLayout);
  std::map<std::string, fs::path> clips;
  for (const fs::directory_entry& entry : fs::directory_iterator(genre_folder)) {
    const fs::path& path = entry.path();
    const std::string extension = path.extension().string();
    if (!entry.is_regular_file() || (extension != ".au" && extension != ".wav")) continue;
    const std::string id = path.stem().string();
    if (genre_of_id(id) != genre) continue;
    const auto [existing, inserted] = clips.emplace(id, absolute_path(path));
    if (!inserted) {
      throw UserError("data.root: clip " + id + " is there twice, as '" +
                      existing->second.string() + "' and '" + path.string() +
                      "'; keep one of them");
    }
  }
  return clips;
}

// "blues.00029" from a list line: "blues.00029", "blues/blues.00029.wav" (or .au), or
// dnn-mgr's 1-based number of the clip in genre-then-id order ("30").
std::optional<std::string> listed_id(std::string_view entry) {
  if (all_digits(entry) && entry.size() <= 4) {
    const std::size_t number = std::stoul(std::string(entry));
    if (number < 1 || number > kGenres.size() * kClipsPerGenre) return std::nullopt;
    const std::string digits = std::to_string((number - 1) % kClipsPerGenre);
    return kGenres[(number - 1) / kClipsPerGenre] + "." +
           std::string(kIdDigits - digits.size(), '0') + digits;
  }
  std::string_view name = entry.substr(entry.find_last_of('/') + 1);
  for (std::string_view extension : {".wav", ".au"}) {
    if (name.size() > extension.size() &&
        name.substr(name.size() - extension.size()) == extension) {
      name.remove_suffix(extension.size());
    }
  }
  if (!genre_of_id(name)) return std::nullopt;
  return std::string(name);
}

std::string_view trimmed(std::string_view text) {
  const auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// Sets each clip's split from the three lists; clips in none are moved to `skipped`, and so
// are listed clips missing from the folder, unless most of them are (an error).
void apply_filtered_split(DatasetIndex& index, const DataConfig& config, const fs::path& genres) {
  const fs::path lists_folder =
      absolute_path(config.split_lists.empty() ? config.root : config.split_lists);
  std::map<std::string, std::size_t> clip_of_id;
  for (std::size_t i = 0; i < index.clips.size(); ++i) clip_of_id[index.clips[i].id] = i;
  std::map<std::string, std::string> listed_at;  // id -> "file:line"
  std::vector<std::pair<std::string, std::string>> missing;  // listed, not on disk: id, "file:line"

  for (std::size_t split = 0; split < kFilteredListNames.size(); ++split) {
    const fs::path list = lists_folder / kFilteredListNames[split];
    require_path(list, false, "data.split_lists", "the split list", kFilteredListsSource);
    std::ifstream file(list);
    std::string line;
    for (std::size_t line_number = 1; std::getline(file, line); ++line_number) {
      const std::string_view entry = trimmed(line);
      if (entry.empty()) continue;
      const std::string at = list.string() + ":" + std::to_string(line_number);
      const std::optional<std::string> id = listed_id(entry);
      if (!id) {
        throw UserError(at +
                        ": expected a clip as genre.NNNNN, genre/genre.NNNNN.wav or its "
                        "number 1-1000, got '" +
                        std::string(entry) + "'");
      }
      const auto [first, inserted] = listed_at.emplace(*id, at);
      if (!inserted) {
        throw UserError(at + ": clip " + *id + " is already listed at " + first->second);
      }
      const auto clip = clip_of_id.find(*id);
      if (clip == clip_of_id.end()) {
        missing.push_back({*id, at});
        continue;
      }
      index.clips[clip->second].split = static_cast<int>(split);
    }
  }
  // A clip or two gone (the empty jazz.00054 deleted, as some guides advise) is skipped;
  // most of them gone means lists and folder are not of one GTZAN.
  if (!missing.empty() && 2 * missing.size() > listed_at.size()) {
    throw UserError(missing.front().second + ": clip " + missing.front().first + " is not in '" + genres.string() +
                    "', nor are " + std::to_string(missing.size() - 1) + " more of the " +
                    std::to_string(listed_at.size()) + " listed clips (data.root and data.split_lists are not "
                    "of the same GTZAN)");
  }
  for (const auto& [id, at] : missing) {
    const fs::path genre_folder = genres / kGenres[static_cast<std::size_t>(*genre_of_id(id))];
    index.skipped.push_back((genre_folder / id).string() + ": listed at " + at + " but not in the folder");
  }

  std::vector<ClipEntry> listed;
  for (ClipEntry& clip : index.clips) {
    if (clip.split < 0) {
      index.skipped.push_back(clip.path.string() + ": not in the artist-filtered split lists");
    } else {
      listed.push_back(std::move(clip));
    }
  }
  index.clips = std::move(listed);
}

}  // namespace

DatasetIndex index_gtzan(const DataConfig& config) {
  const fs::path genres = find_genres_folder(absolute_path(config.root));
  DatasetIndex index;
  index.label_names.assign(kGenres.begin(), kGenres.end());
  for (int genre = 0; genre < static_cast<int>(kGenres.size()); ++genre) {
    for (auto& [id, path] : genre_clips(genres / kGenres[genre], genre)) {
      index.clips.push_back({path, id, one_hot(kGenres.size(), genre), genre, -1});
    }
  }
  if (index.clips.empty()) {
    throw UserError("data.root: no clips in the genre folders of '" + genres.string() +
                    "' (expected <genre>/<genre>.NNNNN.au or .wav)");
  }
  if (split_in_effect(config) == "filtered") apply_filtered_split(index, config, genres);
  return index;
}

}  // namespace cadenza
