// Tests of the dataset readers on tiny hand-made trees (empty audio files: nothing is
// decoded here): labels, ids, paths, splits, tag and genre selection, skipped entries and
// the errors that name the key, file and line.
#include <algorithm>
#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "host/core/error.hpp"
#include "host/data/dataset_index.hpp"
#include "tests/dataset_fixtures.hpp"
#include "tests/test_support.hpp"

namespace cadenza {
namespace {

namespace fs = std::filesystem;
using testing::kFmaGenres;
using testing::kFmaTracks;
using testing::kGtzanGenres;
using testing::kMtatAnnotations;
using testing::write_file;
using Catch::Matchers::Contains;
using Strings = std::vector<std::string>;

DataConfig config_for(const std::string& dataset, const fs::path& root) {
  DataConfig config;
  config.dataset = dataset;
  config.root = root.string();
  return config;
}

std::string error_of(const DataConfig& config) {
  try {
    index_dataset(config);
  } catch (const UserError& error) {
    return error.what();
  }
  FAIL("expected a UserError");
  return "";
}

Strings ids_of(const DatasetIndex& index) {
  Strings ids;
  for (const ClipEntry& clip : index.clips) ids.push_back(clip.id);
  return ids;
}

Strings ids_at(const DatasetIndex& index, const std::vector<int>& positions) {
  Strings ids;
  for (int i : positions) ids.push_back(index.clips[i].id);
  return ids;
}

std::vector<int> splits_of(const DatasetIndex& index) {
  std::vector<int> splits;
  for (const ClipEntry& clip : index.clips) splits.push_back(clip.split);
  return splits;
}

// genres/<genre>/<genre>.0000{0..clips-1}.<extension> for every genre.
void make_gtzan(const fs::path& genres, int clips, const std::string& extension = ".au") {
  for (const std::string& genre : kGtzanGenres) {
    for (int i = 0; i < clips; ++i) {
      write_file(genres / genre / (genre + ".0000" + std::to_string(i) + extension));
    }
  }
}

}  // namespace

TEST_CASE("split names: each name parses back to its split; aliases of val; others refused", "[cpu][data]") {
  for (Split split : {Split::train, Split::val, Split::test}) CHECK(parse_split(split_name(split)) == split);
  CHECK(std::string(split_name(Split::val)) == "val");
  CHECK(parse_split("valid") == Split::val);
  CHECK(parse_split("validation") == Split::val);
  CHECK_FALSE(parse_split("all").has_value());
  CHECK_FALSE(parse_split("Train").has_value());
  CHECK_FALSE(parse_split("").has_value());
}

TEST_CASE("gtzan: genres, ids, paths and a random split", "[cpu][data]") {
  testing::TempDir dir;
  make_gtzan(dir / "genres", 3);
  write_file(dir / "genres" / "blues" / "notes.txt");      // not a clip
  write_file(dir / "genres" / "blues" / "blues.1.au");     // not a GTZAN id
  write_file(dir / "genres" / "jazz" / "jazz.00054.wav");  // empty in the WAV copy: still indexed

  const DatasetIndex index = index_dataset(config_for("gtzan", dir.path()));
  CHECK(index.label_names == kGtzanGenres);
  CHECK_FALSE(index.multi_label);
  CHECK(index.skipped.empty());
  REQUIRE(index.clips.size() == 31);
  CHECK(ids_of(index)[0] == "blues.00000");
  CHECK(ids_of(index)[2] == "blues.00002");
  CHECK(index.clips[3].id == "classical.00000");
  const ClipEntry& jazz = index.clips[18];
  CHECK(jazz.id == "jazz.00054");
  CHECK(jazz.path == dir / "genres" / "jazz" / "jazz.00054.wav");
  CHECK(jazz.primary_label == 5);
  CHECK(jazz.targets == std::vector<float>{0, 0, 0, 0, 0, 1, 0, 0, 0, 0});
  for (const ClipEntry& clip : index.clips) {
    CHECK(clip.path.is_absolute());
    CHECK(fs::exists(clip.path));
    CHECK(clip.split == -1);
    CHECK(clip.path.filename().string().rfind(kGtzanGenres[clip.primary_label] + ".", 0) == 0);
  }

  DataConfig config = config_for("gtzan", dir.path());
  config.split_fractions = {2.0 / 3.0, 1.0 / 3.0, 0.0};
  const auto splits = assign_splits(index, config, 7);
  CHECK(splits[0].size() + splits[1].size() == 31);
  CHECK(splits[2].empty());
  CHECK(splits == assign_splits(index, config, 7));
  CHECK(splits != assign_splits(index, config, 8));
  config.split_seed = 7;  // data.split_seed wins over the train seed
  CHECK(splits == assign_splits(index, config, 8));

  // The root may also be the genres folder itself; .wav copies read the same.
  testing::TempDir wav;
  make_gtzan(wav.path(), 2, ".wav");
  const DatasetIndex direct = index_dataset(config_for("gtzan", wav.path()));
  CHECK(direct.clips.size() == 20);
  CHECK(direct.clips[19].path == wav / "rock" / "rock.00001.wav");
}

TEST_CASE("gtzan: the artist-filtered split from the three lists", "[cpu][data]") {
  testing::TempDir dir;
  make_gtzan(dir / "genres", 3);
  DataConfig config = config_for("gtzan", dir.path());
  config.split = "filtered";

  CHECK_THAT(error_of(config),
             Contains("data.split_lists: the split list '" + (dir / "train_filtered.txt").string() +
                      "' does not exist") &&
                 Contains("torchaudio") && Contains("dnn-mgr"));

  // Three spellings: genre/genre.NNNNN.wav, genre.NNNNN, and dnn-mgr's clip number.
  const fs::path lists = dir / "lists";
  write_file(lists / "train_filtered.txt", "blues/blues.00000.wav\r\n  classical.00001\r\n\r\n");
  write_file(lists / "valid_filtered.txt", "3\n");  // the third clip: blues.00002
  write_file(lists / "test_filtered.txt", "rock/rock.00002.au\n");
  config.split_lists = lists.string();
  const DatasetIndex index = index_dataset(config);
  CHECK(ids_of(index) == Strings{"blues.00000", "blues.00002", "classical.00001", "rock.00002"});
  CHECK(splits_of(index) == std::vector<int>{0, 1, 0, 2});
  CHECK(index.skipped.size() == 26);
  CHECK(index.skipped[0] == (dir / "genres" / "blues" / "blues.00001.au").string() +
                                ": not in the artist-filtered split lists");
  const auto splits = assign_splits(index, config, 1);
  CHECK(ids_at(index, splits[0]) == Strings{"blues.00000", "classical.00001"});
  CHECK(ids_at(index, splits[1]) == Strings{"blues.00002"});
  CHECK(ids_at(index, splits[2]) == Strings{"rock.00002"});

  // A listed clip missing from the folder is skipped; most of them missing is an error.
  write_file(lists / "test_filtered.txt", "rock/rock.00002.au\nrock.00099\n");
  const DatasetIndex one_gone = index_dataset(config);
  CHECK(ids_of(one_gone) == ids_of(index));
  CHECK(std::count(one_gone.skipped.begin(), one_gone.skipped.end(),
                   (dir / "genres" / "rock" / "rock.00099").string() + ": listed at " +
                       (lists / "test_filtered.txt").string() + ":2 but not in the folder") == 1);
  write_file(lists / "test_filtered.txt", "rock/rock.00002.au\nrock.00099\nrock.00098\njazz.00097\njazz.00096\npop.00095\n");
  CHECK(error_of(config) == (lists / "test_filtered.txt").string() + ":2: clip rock.00099 is not in '" +
                                (dir / "genres").string() +
                                "', nor are 4 more of the 9 listed clips (data.root and data.split_lists are not of "
                                "the same GTZAN)");
  write_file(lists / "test_filtered.txt", "blues.00000\n");
  CHECK(error_of(config) == (lists / "test_filtered.txt").string() +
                                ":1: clip blues.00000 is already listed at " +
                                (lists / "train_filtered.txt").string() + ":1");
  write_file(lists / "test_filtered.txt", "polka.00001\n");
  CHECK_THAT(error_of(config), Contains("test_filtered.txt:1: expected a clip as genre.NNNNN"));
}

TEST_CASE("gtzan: errors name data.root and the path tried", "[cpu][data]") {
  testing::TempDir dir;
  CHECK(error_of(config_for("gtzan", dir / "nowhere")) ==
        "data.root: the dataset folder '" + (dir / "nowhere").string() +
            "' does not exist (GTZAN: genres/<genre>/<genre>.NNNNN.au or .wav)");
  CHECK_THAT(error_of(config_for("gtzan", dir.path())),
             Contains("data.root: no GTZAN genre folders in '" + (dir / "genres").string()));
  make_gtzan(dir / "genres", 1);
  fs::remove_all(dir / "genres" / "rock");
  CHECK_THAT(error_of(config_for("gtzan", dir.path())),
             Contains("data.root: the genre folder '" + (dir / "genres" / "rock").string() +
                      "' does not exist"));
  make_gtzan(dir / "genres", 1);
  write_file(dir / "genres" / "pop" / "pop.00000.wav");
  CHECK_THAT(error_of(config_for("gtzan", dir.path())),
             Contains("data.root: clip pop.00000 is there twice"));
  testing::TempDir empty;
  for (const std::string& genre : kGtzanGenres) fs::create_directories(empty / "genres" / genre);
  CHECK_THAT(
      error_of(config_for("gtzan", empty.path())),
      Contains("data.root: no clips in the genre folders of '" + (empty / "genres").string()));
}

namespace {

DataConfig mtat_config(const fs::path& root, Strings tags, const std::string& split = "auto") {
  DataConfig config = config_for("mtat", root);
  config.tags = std::move(tags);
  config.split = split;
  return config;
}

}  // namespace

TEST_CASE("mtat: top<N> by counts, the folder split and broken clips", "[cpu][data]") {
  testing::TempDir dir;
  write_file(dir / "annotations_final.csv", kMtatAnnotations);

  const DatasetIndex index = index_dataset(mtat_config(dir.path(), {"top3"}));
  CHECK(index.multi_label);
  CHECK(index.label_names == Strings{"guitar", "slow", "classical"});
  CHECK(ids_of(index) == Strings{"2", "6", "10", "11", "12"});
  CHECK(index.clips[0].targets == std::vector<float>{1, 0, 1});
  CHECK(index.clips[0].primary_label == 0);
  CHECK(index.clips[3].targets == std::vector<float>{0, 1, 1});
  CHECK(index.clips[3].primary_label == 1);
  CHECK(index.clips[4].targets == std::vector<float>{0, 0, 0});  // kept by the folder split
  CHECK(index.clips[4].primary_label == -1);
  CHECK(index.clips[1].path == dir / "0" / "a, b\tc-2.mp3");
  CHECK(splits_of(index) == std::vector<int>{2, 0, 0, 1, 2});
  CHECK(index.skipped ==
        Strings{(dir / "6" / "norine_braun-now_and_zen-08-gently-117-146.mp3").string() +
                ": known broken (empty mp3)"});
  const auto splits = assign_splits(index, mtat_config(dir.path(), {"top3"}), 1);
  CHECK(ids_at(index, splits[0]) == Strings{"6", "10"});
  CHECK(ids_at(index, splits[1]) == Strings{"11"});
  CHECK(ids_at(index, splits[2]) == Strings{"2", "12"});

  // Won's cleaned split drops the clips with none of the chosen tags.
  const DatasetIndex cleaned = index_dataset(mtat_config(dir.path(), {"top1"}, "cleaned"));
  CHECK(cleaned.label_names == Strings{"guitar"});
  CHECK(ids_of(cleaned) == Strings{"2", "6", "10"});
  CHECK(cleaned.skipped.size() == 3);
  CHECK(cleaned.skipped[0] ==
        (dir / "c" / "x-4.mp3").string() + ": none of the chosen tags (cleaned split)");

  // A random split leaves the splits to assign_splits; data.audio_dir moves the audio.
  DataConfig random = mtat_config(dir.path(), {"top5"}, "random");
  random.audio_dir = (dir / "audio").string();
  fs::create_directories(dir / "audio");
  const DatasetIndex shuffled = index_dataset(random);
  CHECK(shuffled.label_names == Strings{"guitar", "slow", "classical", "techno", "no voice"});
  CHECK(splits_of(shuffled) == std::vector<int>(5, -1));
  CHECK(shuffled.clips[2].path == dir / "audio" / "b" / "x-3.mp3");
}

TEST_CASE("mtat: an explicit tag list, and tag errors", "[cpu][data]") {
  testing::TempDir dir;
  write_file(dir / "annotations_final.csv", kMtatAnnotations);
  const DatasetIndex index = index_dataset(mtat_config(dir.path(), {"techno", "guitar"}));
  CHECK(index.label_names == Strings{"techno", "guitar"});
  CHECK(index.clips[0].targets == std::vector<float>{0, 1});
  CHECK(index.clips[0].primary_label == 1);

  const std::string csv = (dir / "annotations_final.csv").string();
  CHECK(error_of(mtat_config(dir.path(), {"guitr"})) ==
        "data.tags: unknown tag 'guitr' (not a column of '" + csv +
            "') \u2014 did you mean 'guitar'?; or use top<N> for the N most frequent tags");
  CHECK_THAT(error_of(mtat_config(dir.path(), {"slow", "slow"})),
             Contains("data.tags: tag 'slow' is listed twice"));
  CHECK(error_of(mtat_config(dir.path(), {"top6"})) ==
        "data.tags: expected top<N> with N in [1, 5] (the tags of '" + csv + "'), got 'top6'");
  CHECK_THAT(error_of(mtat_config(dir.path(), {"top0"})), Contains("got 'top0'"));

  std::string short_row = kMtatAnnotations;
  short_row.replace(short_row.find("\t\"0\"\t\"0\"\t\"0\"\t\"0\"\t\"0\""), 4, "");
  write_file(dir / "annotations_final.csv", short_row);
  CHECK(error_of(mtat_config(dir.path(), {"top3"})) == csv + ":6: expected 7 fields, got 6");
  write_file(dir / "annotations_final.csv",
             kMtatAnnotations + "\"13\"\t\"0\"\t\"yes\"\t\"0\"\t\"0\"\t\"0\"\t\"e/x.mp3\"\r\n");
  CHECK(error_of(mtat_config(dir.path(), {"top3"})) ==
        csv + ":8: tag 'slow': expected 0 or 1, got 'yes'");
  fs::remove(dir / "annotations_final.csv");
  CHECK_THAT(error_of(mtat_config(dir.path(), {"top3"})),
             Contains("data.root: the annotations file '" + csv + "' does not exist"));
}

TEST_CASE("mtat: top50 and top10 are the field's list in its order, other top<N> follow the counts", "[cpu][data]") {
  // The tags ranked by their counts in this CSV (the tag of rank k is on 60 - k clips),
  // with "female voice" more frequent than "metal", plus ten rarer tags; the columns are in
  // alphabetical order.
  const Strings by_count = {
      "guitar",    "classical",   "slow",     "techno",  "strings",    "drums",        "electronic",
      "rock",      "fast",        "piano",    "ambient", "beat",       "violin",       "vocal",
      "synth",     "female",      "indian",   "opera",   "male",       "singing",      "vocals",
      "no vocals", "harpsichord", "loud",     "quiet",   "flute",      "woman",        "male vocal",
      "no vocal",  "pop",         "soft",     "sitar",   "solo",       "man",          "classic",
      "choir",     "voice",       "new age",  "dance",   "male voice", "female vocal", "beats",
      "harp",      "cello",       "no voice", "weird",   "country",    "female voice", "metal",
      "choral"};
  Strings ranked = by_count;
  for (int i = 0; i < 10; ++i) ranked.push_back("rare " + std::to_string(i));
  Strings columns = ranked;
  std::sort(columns.begin(), columns.end());
  std::string csv = "\"clip_id\"";
  for (const std::string& tag : columns) csv += "\t\"" + tag + "\"";
  csv += "\t\"mp3_path\"\r\n";
  for (std::size_t row = 0; row < ranked.size(); ++row) {
    csv += '"' + std::to_string(row) + '"';
    for (const std::string& tag : columns) {
      const std::size_t rank = std::find(ranked.begin(), ranked.end(), tag) - ranked.begin();
      csv += row < ranked.size() - rank ? "\t\"1\"" : "\t\"0\"";
    }
    csv += "\t\"0/" + std::to_string(row) + ".mp3\"\r\n";
  }
  testing::TempDir dir;
  write_file(dir / "annotations_final.csv", csv);
  // The published models' order: "metal" before "female voice".
  Strings field_top50 = by_count;
  std::swap(field_top50[47], field_top50[48]);
  CHECK(index_dataset(mtat_config(dir.path(), {"top50"})).label_names == field_top50);
  CHECK(index_dataset(mtat_config(dir.path(), {"top10"})).label_names ==
        Strings(by_count.begin(), by_count.begin() + 10));
  CHECK(index_dataset(mtat_config(dir.path(), {"top49"})).label_names ==
        Strings(by_count.begin(), by_count.begin() + 49));
  CHECK(index_dataset(mtat_config(dir.path(), {"top52"})).label_names[50] == "rare 0");

  // top50 needs every tag of the list.
  std::string without_choral = csv;
  const std::size_t at = without_choral.find("\"choral\"");
  without_choral.replace(at, 8, "\"chorus\"");
  write_file(dir / "annotations_final.csv", without_choral);
  CHECK(error_of(mtat_config(dir.path(), {"top50"})) ==
        "data.tags: top50 is the field's list of MTAT tags, and 'choral' of it is not a column of '" +
            (dir / "annotations_final.csv").string() + "'; list the tags by name instead");
}

namespace {

void make_fma(const fs::path& root, bool with_genres = true) {
  write_file(root / "fma_metadata" / "tracks.csv", kFmaTracks);
  if (with_genres) write_file(root / "fma_metadata" / "genres.csv", kFmaGenres);
  for (const char* subset : {"fma_small", "fma_medium", "fma_large"}) {
    fs::create_directories(root / subset);
  }
}

DataConfig fma_config(const fs::path& root, const std::string& subset,
                      const std::string& labels = "genre_top") {
  DataConfig config = config_for("fma", root);
  config.subset = subset;
  config.labels = labels;
  return config;
}

}  // namespace

TEST_CASE("fma: subsets nest, the official split, broken and unlabelled tracks", "[cpu][data]") {
  testing::TempDir dir;
  make_fma(dir.path());

  const DatasetIndex small = index_dataset(fma_config(dir.path(), "small"));
  CHECK_FALSE(small.multi_label);
  CHECK(small.label_names == Strings{"Hip-Hop", "Pop", "Rock"});
  CHECK(ids_of(small) == Strings{"000002", "000005", "000010"});
  CHECK(small.clips[0].path == dir / "fma_small" / "000" / "000002.mp3");
  CHECK(small.clips[1].targets == std::vector<float>{0, 0, 1});
  CHECK(small.clips[1].primary_label == 2);
  CHECK(splits_of(small) == std::vector<int>{0, 1, 2});
  CHECK(small.skipped == Strings{(dir / "fma_small" / "098" / "098559.mp3").string() +
                                 ": known broken (empty or corrupt mp3)"});

  const DatasetIndex medium = index_dataset(fma_config(dir.path(), "medium"));
  CHECK(medium.label_names == Strings{"Folk", "Hip-Hop", "Pop", "Rock"});
  CHECK(ids_of(medium) == Strings{"000002", "000005", "000010", "000140"});
  CHECK(medium.clips[3].path == dir / "fma_medium" / "000" / "000140.mp3");
  CHECK(medium.skipped == Strings{(dir / "fma_medium" / "000" / "000141.mp3").string() +
                                      ": no genre_top (none or several)",
                                  (dir / "fma_medium" / "001" / "001486.mp3").string() +
                                      ": known broken (empty or corrupt mp3)",
                                  (dir / "fma_medium" / "098" / "098559.mp3").string() +
                                      ": known broken (empty or corrupt mp3)"});

  const DatasetIndex large = index_dataset(fma_config(dir.path(), "large"));
  CHECK(ids_of(large) == Strings{"000002", "000005", "000010", "000140", "000200"});
  CHECK(large.clips[4].split == 2);

  DataConfig random = fma_config(dir.path(), "small");
  random.split = "random";
  CHECK(splits_of(index_dataset(random)) == std::vector<int>{-1, -1, -1});
}

TEST_CASE("fma: genres_all, genre names and genre filtering", "[cpu][data]") {
  testing::TempDir dir;
  make_fma(dir.path());
  const DatasetIndex all = index_dataset(fma_config(dir.path(), "medium", "genres_all"));
  CHECK(all.multi_label);
  CHECK(all.label_names == Strings{"Pop", "Rock", "Folk", "Hip-Hop", "Punk"});  // by genre id
  CHECK(ids_of(all) == Strings{"000002", "000005", "000010", "000140", "000141"});
  CHECK(all.clips[1].targets == std::vector<float>{0, 1, 0, 0, 1});
  CHECK(all.clips[1].primary_label == 1);
  CHECK(all.clips[4].targets == std::vector<float>{0, 1, 1, 0, 0});

  // data.genres keeps those genres, in its order; other tracks leave quietly.
  DataConfig two = fma_config(dir.path(), "small");
  two.genres = {"Rock", "Hip-Hop"};
  const DatasetIndex filtered = index_dataset(two);
  CHECK(filtered.label_names == Strings{"Rock", "Hip-Hop"});
  CHECK(ids_of(filtered) == Strings{"000002", "000005"});
  CHECK(filtered.clips[0].primary_label == 1);
  CHECK(filtered.skipped.size() == 1);  // 098559 (Rock), broken

  DataConfig punk = fma_config(dir.path(), "small", "genres_all");
  punk.genres = {"Punk"};
  CHECK(ids_of(index_dataset(punk)) == Strings{"000005"});

  DataConfig typo = fma_config(dir.path(), "small");
  typo.genres = {"HipHop"};
  CHECK(error_of(typo) ==
        "data.genres: unknown genre 'HipHop' for the small subset's genre_top \u2014 did you mean "
        "'Hip-Hop'? (the genres are: Hip-Hop, Pop, Rock)");

  // Without genres.csv the genres are named by id.
  testing::TempDir bare;
  make_fma(bare.path(), false);
  CHECK(index_dataset(fma_config(bare.path(), "small", "genres_all")).label_names ==
        Strings{"genre_10", "genre_12", "genre_21", "genre_25"});
}

TEST_CASE("fma: metadata and audio folders, and errors", "[cpu][data]") {
  testing::TempDir dir;
  write_file(dir / "meta" / "tracks.csv", kFmaTracks);
  fs::create_directories(dir / "mp3");
  DataConfig config = fma_config(dir / "unused", "small");
  config.metadata = (dir / "meta").string();  // the folder, or the file itself
  config.audio_dir = (dir / "mp3").string();
  CHECK(index_dataset(config).clips[0].path == dir / "mp3" / "000" / "000002.mp3");
  config.metadata = (dir / "meta" / "tracks.csv").string();
  CHECK(index_dataset(config).clips.size() == 3);

  const std::string tracks = (dir / "fma_metadata" / "tracks.csv").string();
  CHECK_THAT(error_of(fma_config(dir.path(), "small")),
             Contains("data.root: the track metadata '" + tracks + "' does not exist"));
  make_fma(dir.path());
  fs::remove_all(dir / "fma_medium");
  CHECK_THAT(error_of(fma_config(dir.path(), "medium")),
             Contains("data.root: the audio folder '" + (dir / "fma_medium").string() +
                      "' does not exist"));
  write_file(dir / "fma_metadata" / "tracks.csv", kFmaTracks + "7,x,training,small,Rock\r\n");
  CHECK(error_of(fma_config(dir.path(), "small")) == tracks + ":13: expected 6 fields, got 5");
  write_file(dir / "fma_metadata" / "tracks.csv", kFmaTracks + "7,x,train,small,Rock,[12]\r\n");
  CHECK(error_of(fma_config(dir.path(), "small")) ==
        tracks + ":13: split: expected training, validation or test, got 'train'");
  write_file(dir / "fma_metadata" / "tracks.csv", kFmaTracks + "7,x,training,small,Rock,12\r\n");
  CHECK_THAT(error_of(fma_config(dir.path(), "small", "genres_all")),
             Contains(tracks + ":13: genres_all: expected a list of genre ids like [21, 15]"));
  std::string no_split = kFmaTracks;
  no_split.replace(no_split.find(",split,"), 7, ",fold,");
  write_file(dir / "fma_metadata" / "tracks.csv", no_split);
  CHECK_THAT(error_of(fma_config(dir.path(), "small")),
             Contains(tracks + ": no column (set, split) in the header rows"));
}

TEST_CASE("folder: a folder per label", "[cpu][data]") {
  testing::TempDir dir;
  write_file(dir / "b_label" / "x" / "one.wav");
  write_file(dir / "b_label" / "two.MP3");
  write_file(dir / "a_label" / "three.flac");
  write_file(dir / "a_label" / "notes.txt");
  write_file(dir / "a_label" / "cover.JPG");
  write_file(dir / "a_label" / ".four.wav");           // hidden, as macOS's ._ copies are
  write_file(dir / "a_label" / ".git" / "five.wav");   // in a hidden folder
  write_file(dir / "a_label" / "six.m4a");             // audio cadenza has no decoder for
  REQUIRE(::mkfifo((dir / "a_label" / "pipe.wav").c_str(), 0600) == 0);  // named as audio, but no file
  fs::create_symlink(dir / "nowhere.wav", dir / "a_label" / "broken.wav");
  fs::create_symlink(dir / "b_label" / "two.MP3", dir / "b_label" / "z_same.mp3");  // a link to a listed file
  write_file(dir / ".hidden" / "four.wav");
  write_file(dir / "loose.wav");
  fs::create_directories(dir / "no_audio");
  // A linked album is searched; a link back up the tree is not searched again.
  write_file(dir / ".store" / "album" / "seven.wav");
  fs::create_directory_symlink(dir / ".store" / "album", dir / "b_label" / "album_link");
  fs::create_directory_symlink(dir / "b_label", dir / "b_label" / "x" / "back_up");

  const DatasetIndex index = index_dataset(config_for("folder", dir.path()));
  CHECK(index.label_names == Strings{"a_label", "b_label"});
  // Ids are the paths below data.root: unique, and traceable to the file.
  CHECK(ids_of(index) ==
        Strings{"a_label/three.flac", "b_label/album_link/seven.wav", "b_label/two.MP3", "b_label/x/one.wav"});
  CHECK(index.clips[3].path == dir / "b_label" / "x" / "one.wav");
  CHECK(index.clips[3].targets == std::vector<float>{0, 1});
  CHECK(index.clips[0].primary_label == 0);
  CHECK(splits_of(index) == std::vector<int>{-1, -1, -1, -1});
  CHECK(index.skipped == Strings{(dir / "a_label" / "broken.wav").string() + ": a link to a file that does not exist",
                                 (dir / "a_label" / "pipe.wav").string() + ": not a regular file (a pipe, socket or device)",
                                 (dir / "a_label" / "six.m4a").string() +
                                     ": .m4a is not a format cadenza reads (wav, au, aif, aiff, flac, ogg, opus, mp3); "
                                     "convert it to one",
                                 (dir / "b_label" / "x" / "back_up").string() + ": a link to a folder searched already",
                                 (dir / "b_label" / "z_same.mp3").string() + ": the same file as " +
                                     (dir / "b_label" / "two.MP3").string() + "; used once"});
  CHECK(index.warnings == Strings{"left out 1 folder of data.root without audio files: 'no_audio'"});
  CHECK(index.notes == Strings{"left out 2 files that are not audio (.jpg 1, .txt 1)"});

  // A link that puts one file under two labels is a contradiction.
  fs::create_symlink(dir / "a_label" / "three.flac", dir / "b_label" / "three.flac");
  CHECK(error_of(config_for("folder", dir.path())) ==
        "data.root: " + (dir / "a_label" / "three.flac").string() + " and " + (dir / "b_label" / "three.flac").string() +
            " are the same file with other labels or splits; list each file once");

  testing::TempDir empty;
  write_file(empty / "label" / "readme.txt");
  CHECK_THAT(error_of(config_for("folder", empty.path())),
             Contains("data.root: no audio files in the subfolders of '" + empty.path().string()));
  // One label folder: most likely data.root is one level above the label folders.
  testing::TempDir one_level_up;
  write_file(one_level_up / "genres_original" / "rock" / "a.wav");
  write_file(one_level_up / "genres_original" / "jazz" / "b.wav");
  CHECK(error_of(config_for("folder", one_level_up.path())) ==
        "data.root: '" + one_level_up.path().string() +
            "' has one label folder with audio, 'genres_original', and a classifier needs two or more; if the label "
            "folders are inside it, use data.root=" + (one_level_up / "genres_original").string());
  // Label names go into JSON: a folder name in Latin-1 is refused by name; a file name is not.
  testing::TempDir latin1;
  write_file(latin1 / "caf\xe9" / "a.wav");
  write_file(latin1 / "rock" / "caf\xe9.wav");
  CHECK(error_of(config_for("folder", latin1.path())) ==
        "data: the label 'caf\xef\xbf\xbd' is not UTF-8 text (a folder or manifest written in another encoding); "
        "rename it, as label names go into JSON and the reports");
  fs::remove_all(latin1 / "caf\xe9");
  write_file(latin1 / "jazz" / "b.wav");
  CHECK(ids_of(index_dataset(config_for("folder", latin1.path()))) == Strings{"jazz/b.wav", "rock/caf\xe9.wav"});
}

TEST_CASE("csv manifest: paths, labels, the split column and errors", "[cpu][data]") {
  testing::TempDir dir;
  const fs::path manifest = dir / "lists" / "m.csv";
  const fs::path elsewhere = dir / "elsewhere" / "b.wav";  // listed by its absolute path
  for (const fs::path& file : {dir / "lists" / "a.wav", dir / "lists" / "b.wav", elsewhere, dir / "lists" / "c, d.wav",
                               dir / "lists" / "e.wav", dir / "lists" / "f.wav", dir / "lists" / " g.wav "})
    write_file(file);
  write_file(manifest,
             "path,label,split\n"
             "a.wav,rock,train\n" +
                 elsewhere.string() + ",jazz,valid\n"
             "\"c, d.wav\", rock ,TEST\n"
             "e.wav,,train\n"
             " f.wav ,jazz,train\n"
             "\" g.wav \",rock,train\n"
             "gone.wav,rock,train\n");
  DataConfig config;
  config.dataset = "csv";
  config.manifest = manifest.string();
  const DatasetIndex index = index_dataset(config);
  CHECK_FALSE(index.multi_label);
  CHECK(index.label_names == Strings{"jazz", "rock"});
  // Spaces around an unquoted path are layout; a quoted path keeps them.
  CHECK(ids_of(index) == Strings{"a.wav", elsewhere.string(), "c, d.wav", "f.wav", " g.wav "});
  CHECK(index.clips[0].path == dir / "lists" / "a.wav");
  CHECK(index.clips[4].path == dir / "lists" / " g.wav ");
  CHECK(index.clips[1].path == elsewhere);
  CHECK(index.clips[2].targets == std::vector<float>{0, 1});
  CHECK(splits_of(index) == std::vector<int>{0, 1, 2, 0, 0});
  // A listed file that does not exist is skipped, named with its line.
  CHECK(index.skipped ==
        Strings{(dir / "lists" / "e.wav").string() + ": no label (" + manifest.string() + ":5)",
                (dir / "lists" / "gone.wav").string() + ": listed at " + manifest.string() + ":8 but not found"});
  config.split = "random";
  CHECK(splits_of(index_dataset(config)) == std::vector<int>{-1, -1, -1, -1, -1});

  // Most listed files missing: a manifest of another folder.
  write_file(manifest, "path,label\na.wav,rock\nx.wav,jazz\ny.wav,jazz\n");
  CHECK(error_of(config) == manifest.string() + ": 2 of the 3 files it lists do not exist, such as " +
                                (dir / "lists" / "x.wav").string() + " (a relative path is read from the manifest's folder, " +
                                (dir / "lists").string() + ")");

  write_file(manifest, "path,label\na.wav,low;high\nb.wav,low\n");
  CHECK(index_dataset(config).warnings ==
        Strings{manifest.string() + ": the label column holds 'low;high', each one class; for several tags per clip, "
                                    "name the column labels"});
  write_file(manifest, "path,label\na.wav,Rock\nb.wav, rock\n");
  CHECK(index_dataset(config).warnings == Strings{"the labels 'Rock' and 'rock' differ only in case, and are two classes"});
  write_file(manifest, "path,label\na.wav,rock\nb.wav, rock\n");
  CHECK(error_of(config) == manifest.string() + ": every row has the label 'rock', and a classifier needs two or more");

  write_file(manifest, "labels,path\n\"rock; pop\",a.wav\npop,b.wav\n");
  config.split = "auto";  // no split column: random
  const DatasetIndex multi = index_dataset(config);
  CHECK(multi.multi_label);
  CHECK(multi.label_names == Strings{"pop", "rock"});
  CHECK(multi.clips[0].targets == std::vector<float>{1, 1});
  CHECK(splits_of(multi) == std::vector<int>{-1, -1});
  config.split = "manifest";
  CHECK(error_of(config) == "data.split: 'manifest' needs a split column in '" + manifest.string() +
                                "' (or use data.split: random)");

  config.split = "auto";
  write_file(manifest, "path,label,split\na.wav,rock,train\nb.wav,jazz,dev\n");
  CHECK(error_of(config) ==
        manifest.string() + ":3: split: expected train, val, valid or test, got 'dev'");
  write_file(manifest, "path,label\na.wav,rock\nb.wav,jazz,extra\n");
  CHECK(error_of(config) == manifest.string() + ":3: expected 2 fields, got 3");
  write_file(manifest, "file,genre\na.wav,rock\n");
  CHECK_THAT(error_of(config),
             Contains(manifest.string() + ":1: expected the columns path and label or labels, got "
                                          "file, genre"));
  config.manifest = (dir / "none.csv").string();
  CHECK_THAT(error_of(config), Contains("data.manifest: the manifest '" +
                                        (dir / "none.csv").string() + "' does not exist"));
}

TEST_CASE("index_dataset refuses the generated dataset", "[cpu][data]") {
  CHECK_THAT(error_of(DataConfig{}),
             Contains("data.dataset: 'synthetic' is not a dataset read from files"));
}

}  // namespace cadenza
