// End-to-end tests of load_dataset (host/data/dataset) on tiny trees in each publisher's
// layout with real, short audio files written by libsndfile: GTZAN's AU files at 22.05 kHz
// (resampled) with an empty clip, MTAT's mp3 at 16 kHz, FMA's stereo mp3 at 44.1 kHz with a
// corrupt one, a folder per label of WAV, FLAC and OGG, and CSV manifests.
//
// Each load must give the index's clips in order with lengths at data.sample_rate and the
// samples of load_audio() quantised to int16; undecodable clips are skipped with their
// reason and are in no split; splits are disjoint by clip and by file; a manifest listing
// one file in two splits is refused; the PCM cache is reused for the same files and rebuilt
// when one changes; offline-augmented copies are training clips, cached apart from the
// originals.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "host/audio/audio_decoder.hpp"
#include "host/io/atomic_file.hpp"
#include "host/config/config.hpp"
#include "host/core/error.hpp"
#include "host/core/logger.hpp"
#include "host/data/dataset.hpp"
#include "host/data/dataset_index.hpp"
#include "host/data/split.hpp"
#include "host/data/split_record.hpp"
#include "tests/dataset_fixtures.hpp"
#include "tests/test_support.hpp"

namespace cadenza {
namespace {

namespace fs = std::filesystem;
using testing::kGtzanGenres;
using testing::kMtatAnnotations;
using testing::write_file;
using Catch::Matchers::Contains;
using testing::TempDir;
using Strings = std::vector<std::string>;

constexpr int kRate = 16000;  // data.sample_rate of every test
constexpr int kAu16 = SF_FORMAT_AU | SF_FORMAT_PCM_16;
constexpr int kWav16 = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
constexpr int kFlac16 = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
constexpr int kVorbis = SF_FORMAT_OGG | SF_FORMAT_VORBIS;
constexpr int kMp3 = SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;

// Writes `seconds` of a two-partial tone at `pitch` Hz (channel c a fifth higher per
// channel; peak 0.7, so int16 never clips) and returns the frame count.
std::int64_t write_tone(const fs::path& path, int format, int sample_rate, int channels,
                        double seconds, double pitch) {
  const auto frames = static_cast<std::int64_t>(std::llround(seconds * sample_rate));
  std::vector<float> interleaved(static_cast<std::size_t>(frames * channels));
  for (std::int64_t frame = 0; frame < frames; ++frame) {
    const double t = static_cast<double>(frame) / sample_rate;
    for (int c = 0; c < channels; ++c) {
      const double f = pitch * std::pow(1.5, c);
      interleaved[static_cast<std::size_t>(frame * channels + c)] =
          static_cast<float>(0.45 * std::sin(2.0 * std::numbers::pi * f * t) +
                             0.25 * std::sin(2.0 * std::numbers::pi * 3.0 * f * t + 0.5));
    }
  }
  fs::create_directories(path.parent_path());
  testing::write_audio_file(path, format, sample_rate, channels, interleaved);
  return frames;
}

// Bytes that no decoder takes for audio (FMA's corrupt mp3 files).
std::string random_bytes(std::size_t count, unsigned seed) {
  std::mt19937 random(seed);
  std::string bytes(count, '\0');
  for (char& byte : bytes) byte = static_cast<char>(random() & 0xff);
  return bytes;
}

// The samples a file of `frames` frames at `source_rate` has at kRate, as the resampler
// makes them (within a couple of samples).
std::int64_t resampled_length(std::int64_t frames, int source_rate) {
  return std::llround(static_cast<double>(frames) * kRate / source_rate);
}

Config config_for(const std::string& dataset, const fs::path& root, const fs::path& cache) {
  Config config;
  config.data.dataset = dataset;
  config.data.root = root.string();
  config.data.sample_rate = kRate;
  config.data.cache_dir = cache.string();
  config.data.clip_seconds = 0.2;  // shorter than every test file: no padding warning
  return config;
}

struct Loaded {
  Dataset data;
  std::string log;
  int warnings = 0;
};

Loaded load(const Config& config, std::uint64_t train_seed = 1, const SplitRecord* recorded = nullptr) {
  std::ostringstream text;
  Logger log(text);
  Loaded loaded;
  loaded.data = load_dataset(config, train_seed, 2, log, recorded);
  loaded.log = text.str();
  loaded.warnings = log.warnings();
  return loaded;
}

std::string load_error(const Config& config) {
  try {
    load(config);
  } catch (const UserError& error) {
    return error.what();
  }
  FAIL("expected a UserError");
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

Strings ids_of(const DatasetIndex& index) {
  Strings ids;
  for (const ClipEntry& clip : index.clips) ids.push_back(clip.id);
  return ids;
}

Strings ids_at(const Dataset& d, const std::vector<int>& clips) {
  Strings ids;
  for (int clip : clips) ids.push_back(d.clip_ids[clip]);
  return ids;
}

std::vector<float> targets_of(const Dataset& d, int clip) {
  return std::vector<float>(d.clip_targets(clip), d.clip_targets(clip) + d.num_labels());
}

std::vector<float> read_clip(const Dataset& d, int clip) {
  std::vector<float> samples(static_cast<std::size_t>(d.lengths[clip]));
  d.audio->read(clip, 0, d.lengths[clip], samples.data());
  return samples;
}

// The clip's samples are load_audio()'s at kRate quantised to int16.
void check_matches_decoder(const Dataset& d, int clip, const fs::path& path) {
  INFO(path.string());
  const std::vector<float> expected = load_audio(path, kRate);
  REQUIRE(d.lengths[clip] == static_cast<std::int64_t>(expected.size()));
  const std::vector<float> got = read_clip(d, clip);
  double worst = 0.0;
  for (std::size_t i = 0; i < expected.size(); ++i)
    worst = std::max(worst, std::fabs(double(got[i]) - expected[i]));
  CHECK(worst <= 1.0 / 32768.0 + 1e-7);
}

// Checks a loaded dataset against the index of its config and returns that index: the
// same clips in the same order; splits sorted, disjoint by clip and by file, holding only
// decodable clips; every clip either in a split or, with length 0, listed in `skipped`
// ("<path>: <reason>") after the index's own skipped entries.
DatasetIndex check_clips_and_splits(const Dataset& d, const DataConfig& config) {
  const DatasetIndex index = index_dataset(config);
  const std::size_t clips = index.clips.size();
  REQUIRE(d.clip_ids == ids_of(index));
  REQUIRE(d.lengths.size() == clips);
  REQUIRE(d.primary_label.size() == clips);
  CHECK(d.label_names == index.label_names);
  CHECK(d.multi_label == index.multi_label);
  REQUIRE(d.targets.size() == clips * index.label_names.size());
  CHECK(d.sample_rate == kRate);
  CHECK(d.name == config.dataset);

  static const char* kSplitNames[] = {"train", "val", "test"};
  std::vector<int> split_of_clip(clips, -1);
  std::map<fs::path, int> split_of_file;
  for (int s = 0; s < 3; ++s) {
    CHECK(std::is_sorted(d.splits[s].begin(), d.splits[s].end()));
    for (int clip : d.splits[s]) {
      REQUIRE(clip >= 0);
      REQUIRE(static_cast<std::size_t>(clip) < clips);
      const fs::path& path = index.clips[clip].path;
      INFO(kSplitNames[s] << " split, clip " << clip << ": " << path.string());
      CHECK(split_of_clip[clip] == -1);
      split_of_clip[clip] = s;
      CHECK(d.lengths[clip] > 0);
      const auto [it, inserted] = split_of_file.emplace(path, s);
      CHECK((inserted || it->second == s));
    }
  }

  std::size_t undecodable = 0;
  for (std::size_t clip = 0; clip < clips; ++clip) {
    const std::string prefix = index.clips[clip].path.string() + ": ";
    INFO(prefix);
    const bool listed = std::any_of(d.skipped.begin(), d.skipped.end(), [&](const std::string& s) {
      return s.rfind(prefix, 0) == 0;
    });
    CHECK(std::equal(d.clip_targets(int(clip)), d.clip_targets(int(clip)) + d.num_labels(),
                     index.clips[clip].targets.begin(), index.clips[clip].targets.end()));
    CHECK(d.primary_label[clip] == index.clips[clip].primary_label);
    if (d.lengths[clip] == 0) {
      ++undecodable;
      CHECK(listed);
      CHECK(split_of_clip[clip] == -1);
    } else {
      CHECK_FALSE(listed);
      CHECK(split_of_clip[clip] != -1);
    }
  }
  REQUIRE(d.skipped.size() == index.skipped.size() + undecodable);
  CHECK(std::equal(index.skipped.begin(), index.skipped.end(), d.skipped.begin()));
  return index;
}

// "t<i>.wav", built by appending (GCC 12 warns falsely on "t" + std::to_string(i)).
std::string tone_file(int i) {
  std::string name = "t";
  name += std::to_string(i);
  name += ".wav";
  return name;
}

// The position of the clip with this id.
int clip_of(const Dataset& d, const std::string& id) {
  const auto it = std::find(d.clip_ids.begin(), d.clip_ids.end(), id);
  REQUIRE(it != d.clip_ids.end());
  return static_cast<int>(it - d.clip_ids.begin());
}

}  // namespace

TEST_CASE("load_dataset: gtzan AU files, resampled, an empty clip and a random split",
          "[cpu][data]") {
  TempDir dir;
  const fs::path genres = dir / "gtzan" / "genres";
  // 3 clips in even-numbered genres, 2 in odd ones, 0.5 to 1.4 s at GTZAN's 22050 Hz.
  std::map<std::string, std::int64_t> frames_of;  // clip id -> frames at 22050 Hz
  int k = 0;
  for (std::size_t g = 0; g < kGtzanGenres.size(); ++g) {
    const int clips = g % 2 == 0 ? 3 : 2;
    for (int i = 0; i < clips; ++i, ++k) {
      const std::string id = kGtzanGenres[g] + ".0000" + std::to_string(i);
      frames_of[id] = write_tone(genres / kGtzanGenres[g] / (id + ".au"), kAu16, 22050, 1,
                                 0.5 + 0.037 * k, 180.0 + 23.0 * k);
    }
  }
  const fs::path empty = genres / "jazz" / "jazz.00054.au";
  write_file(empty);  // like jazz.00054 of the published dataset

  Config config = config_for("gtzan", dir / "gtzan", dir / "cache");
  config.data.split = "random";
  config.data.split_fractions = {0.5, 0.25, 0.25};
  const Loaded loaded = load(config, 42);
  const Dataset& d = loaded.data;
  const DatasetIndex index = check_clips_and_splits(d, config.data);

  CHECK(d.label_names == kGtzanGenres);
  CHECK_FALSE(d.multi_label);
  REQUIRE(d.num_clips() == 26);
  const int jazz = clip_of(d, "jazz.00054");
  CHECK(d.lengths[jazz] == 0);
  REQUIRE(d.skipped.size() == 1);
  CHECK_THAT(d.skipped[0], Contains(empty.string() + ": ") && Contains("empty file"));
  INFO(loaded.log);
  // Genres of 2-3 clips without a val clip; the empty clip is counted in the cache's info
  // line (the callers' one line about files left out names it).
  CHECK(loaded.warnings == 1);
  CHECK_THAT(loaded.log, Contains("data: no val clip has the labels "));
  CHECK_THAT(loaded.log, Contains("PCM cache built") && Contains(", 1 failed ("));

  for (int clip = 0; clip < d.num_clips(); ++clip) {
    if (clip == jazz) continue;
    INFO(d.clip_ids[clip]);
    const std::int64_t expected = resampled_length(frames_of.at(d.clip_ids[clip]), 22050);
    CHECK(std::llabs(d.lengths[clip] - expected) <= 2);
    check_matches_decoder(d, clip, index.clips[clip].path);
  }

  // Reads past the end are zero-filled; a window equals the same slice of the whole clip.
  const int blues = clip_of(d, "blues.00001");
  const std::vector<float> whole = read_clip(d, blues);
  std::vector<float> tail(100, 1.0f);
  d.audio->read(blues, d.lengths[blues] - 40, 100, tail.data());
  CHECK(std::equal(tail.begin(), tail.begin() + 40, whole.end() - 40));
  CHECK(std::all_of(tail.begin() + 40, tail.end(), [](float x) { return x == 0.0f; }));
  std::vector<float> window(500);
  d.audio->read(blues, 1234, 500, window.data());
  CHECK(std::equal(window.begin(), window.end(), whole.begin() + 1234));

  // The split is the stratified one of the whole index (seeded by the train seed), less
  // the undecodable clip: 13 / 6.5 / 6.5 of the 26 clips, the tie to val; per genre about
  // half of its 2 or 3 clips in train.
  auto expected_splits = stratified_split(d.primary_label, config.data.split_fractions, 42);
  CHECK(expected_splits[0].size() == 13);
  CHECK(expected_splits[1].size() == 7);
  CHECK(expected_splits[2].size() == 6);
  for (std::vector<int>& split : expected_splits)
    split.erase(std::remove(split.begin(), split.end(), jazz), split.end());
  CHECK(d.splits == expected_splits);
  for (int g = 0; g < 10; ++g) {
    INFO(kGtzanGenres[g]);
    std::array<int, 3> counts{};
    for (int s = 0; s < 3; ++s)
      for (int clip : d.splits[s]) counts[s] += d.primary_label[clip] == g;
    const int decodable = g % 2 == 0 ? 3 : 2;  // jazz's third, empty, clip is in no split
    CHECK(counts[0] + counts[1] + counts[2] == decodable);
    if (g != 5) CHECK(std::abs(counts[0] - decodable / 2.0) < 1.0);
  }
  // Another train seed shuffles otherwise; data.split_seed wins over it.
  CHECK(load(config, 43).data.splits != d.splits);
  config.data.split_seed = 42;
  CHECK(load(config, 43).data.splits == d.splits);
}

TEST_CASE("load_dataset: mtat mp3 files, top2 tags, the folder split and a broken clip",
          "[cpu][data]") {
  TempDir dir;
  const fs::path root = dir / "mtat";
  write_file(root / "annotations_final.csv", kMtatAnnotations);
  const Strings mp3 = {"f/american_bach_soloists-1-01-30.mp3", "0/a, b\tc-2.mp3", "b/x-3.mp3",
                       "c/x-4.mp3", "d/x-5.mp3"};
  std::vector<std::int64_t> frames;
  for (std::size_t i = 0; i < mp3.size(); ++i)
    frames.push_back(write_tone(root / mp3[i], kMp3, 16000, 1, 0.5 + 0.05 * i, 220.0 + 70.0 * i));
  const fs::path broken = root / "6" / "norine_braun-now_and_zen-08-gently-117-146.mp3";
  write_file(broken);  // empty, as published; never decoded

  Config config = config_for("mtat", root, dir / "cache");
  config.data.tags = {"top2"};
  const Loaded loaded = load(config);
  const Dataset& d = loaded.data;
  const DatasetIndex index = check_clips_and_splits(d, config.data);

  CHECK(d.multi_label);
  CHECK(d.label_names == Strings{"guitar", "slow"});
  CHECK(d.clip_ids == Strings{"2", "6", "10", "11", "12"});
  CHECK(d.skipped == Strings{broken.string() + ": known broken (empty mp3)"});
  INFO(loaded.log);
  CHECK(loaded.warnings == 1);
  CHECK_THAT(loaded.log, Contains("data: no val clip has the label 'guitar'; its validation figures are undefined"));
  const std::vector<std::vector<float>> rows = {{1, 0}, {1, 1}, {1, 1}, {0, 1}, {0, 0}};
  for (int clip = 0; clip < 5; ++clip) {
    INFO(d.clip_ids[clip]);
    CHECK(targets_of(d, clip) == rows[clip]);
    CHECK(index.clips[clip].path == root / mp3[clip]);
    CHECK(std::llabs(d.lengths[clip] - frames[clip]) <= 2);  // 16 kHz: no resampling
    check_matches_decoder(d, clip, root / mp3[clip]);
  }
  CHECK(d.primary_label == std::vector<int>{0, 0, 0, 1, -1});
  // Folders 0-b train, c val, d-f test; clip 12 has none of the tags but stays.
  CHECK(ids_at(d, d.splits[0]) == Strings{"6", "10"});
  CHECK(ids_at(d, d.splits[1]) == Strings{"11"});
  CHECK(ids_at(d, d.splits[2]) == Strings{"2", "12"});
}

namespace {

// The shared tracks.csv plus a small track (000007) whose mp3 the test fills with random bytes.
const std::string kTracks = testing::kFmaTracks + "7,x,training,small,Pop,[10]\r\n";

}  // namespace

TEST_CASE("load_dataset: fma stereo mp3 at 44.1 kHz, the official split and a corrupt track",
          "[cpu][data]") {
  TempDir dir;
  const fs::path root = dir / "fma";
  write_file(root / "fma_metadata" / "tracks.csv", kTracks);
  const fs::path audio = root / "fma_small" / "000";
  std::map<std::string, std::int64_t> frames_of;
  frames_of["000002"] = write_tone(audio / "000002.mp3", kMp3, 44100, 2, 0.5, 330.0);
  frames_of["000005"] = write_tone(audio / "000005.mp3", kMp3, 44100, 2, 0.6, 440.0);
  frames_of["000010"] = write_tone(audio / "000010.mp3", kMp3, 44100, 2, 0.7, 550.0);
  const fs::path corrupt = audio / "000007.mp3";
  testing::write_bytes(corrupt, random_bytes(8192, 12345));

  const Config config = config_for("fma", root, dir / "cache");  // small, genre_top, official
  Loaded loaded;
  REQUIRE_NOTHROW(loaded = load(config));
  const Dataset& d = loaded.data;
  const DatasetIndex index = check_clips_and_splits(d, config.data);

  CHECK_FALSE(d.multi_label);
  CHECK(d.label_names == Strings{"Hip-Hop", "Pop", "Rock"});
  CHECK(d.clip_ids == Strings{"000002", "000005", "000010", "000007"});
  CHECK(targets_of(d, 1) == std::vector<float>{0, 0, 1});
  CHECK(d.primary_label == std::vector<int>{0, 2, 1, 1});
  for (int clip = 0; clip < 3; ++clip) {
    INFO(d.clip_ids[clip]);
    const std::int64_t expected = resampled_length(frames_of.at(d.clip_ids[clip]), 44100);
    CHECK(std::llabs(d.lengths[clip] - expected) <= 2);
    check_matches_decoder(d, clip, index.clips[clip].path);  // the mean of both channels
  }

  // The corrupt track: length 0, skipped with the decoder's reason, in no split, one warning.
  CHECK(d.lengths[3] == 0);
  REQUIRE(d.skipped.size() == 2);
  CHECK(d.skipped[0] == (root / "fma_small" / "098" / "098559.mp3").string() +
                            ": known broken (empty or corrupt mp3)");
  CHECK_THAT(d.skipped[1], Contains(corrupt.string() + ": ") && Contains("cannot decode audio"));
  INFO(loaded.log);
  // Genres a split of four tracks misses; the corrupt track is counted in the cache's info
  // line and named by the one line about files left out (warn_skipped_files), not twice.
  CHECK(loaded.warnings == 2);
  CHECK_THAT(loaded.log, Contains("data: no train clip has the labels 'Pop', 'Rock': the model learns nothing of "
                                  "them (are their files decodable?)"));
  CHECK_THAT(loaded.log, Contains("4 files, ") && Contains(", 1 failed (") && !Contains(corrupt.string()));
  std::vector<float> silence(64, 1.0f);
  d.audio->read(3, 0, 64, silence.data());
  CHECK(std::all_of(silence.begin(), silence.end(), [](float x) { return x == 0.0f; }));

  CHECK(ids_at(d, d.splits[0]) == Strings{"000002"});
  CHECK(ids_at(d, d.splits[1]) == Strings{"000005"});
  CHECK(ids_at(d, d.splits[2]) == Strings{"000010"});
}

TEST_CASE("load_dataset: a folder per label of WAV, FLAC and OGG files", "[cpu][data]") {
  TempDir dir;
  const fs::path root = dir / "library";
  struct File {
    fs::path path;
    int format;
    int sample_rate;
    int channels;
  };
  const std::vector<File> files = {
      {root / "bass" / "low.flac", kFlac16, 44100, 2},
      {root / "bass" / "deep" / "lower.wav", kWav16, 16000, 1},
      {root / "drums" / "kick.ogg", kVorbis, 22050, 2},
      {root / "drums" / "snare.wav", kWav16, 48000, 2},
      {root / "piano" / "c4.wav", kWav16, 22050, 1},
      {root / "piano" / "e4.ogg", kVorbis, 44100, 1},
  };
  std::vector<std::int64_t> expected_lengths;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const File& f = files[i];
    const std::int64_t frames =
        write_tone(f.path, f.format, f.sample_rate, f.channels, 0.5 + 0.1 * i, 150.0 + 90.0 * i);
    expected_lengths.push_back(resampled_length(frames, f.sample_rate));
  }
  write_file(root / "piano" / "notes.txt", "not audio");

  Config config = config_for("folder", root, dir / "cache");
  config.data.split_fractions = {0.5, 0.5, 0.0};
  const Loaded loaded = load(config);
  const Dataset& d = loaded.data;
  const DatasetIndex index = check_clips_and_splits(d, config.data);

  CHECK_FALSE(d.multi_label);
  CHECK(d.label_names == Strings{"bass", "drums", "piano"});
  // By label, then path: bass/deep/lower.wav sorts before bass/low.flac.
  CHECK(d.clip_ids == Strings{"bass/deep/lower.wav", "bass/low.flac", "drums/kick.ogg", "drums/snare.wav",
                              "piano/c4.wav", "piano/e4.ogg"});
  CHECK(d.skipped.empty());
  INFO(loaded.log);
  CHECK(loaded.warnings == 0);
  const std::vector<std::size_t> file_of_clip = {1, 0, 2, 3, 4, 5};
  for (int clip = 0; clip < d.num_clips(); ++clip) {
    const File& f = files[file_of_clip[clip]];
    INFO(f.path.string());
    CHECK(index.clips[clip].path == f.path);
    const int label = clip / 2;
    CHECK(d.primary_label[clip] == label);
    CHECK(targets_of(d, clip) == one_hot(3, label));
    CHECK(std::llabs(d.lengths[clip] - expected_lengths[file_of_clip[clip]]) <= 2);
    check_matches_decoder(d, clip, f.path);
  }
  // Stratified halves: one clip of each label in train, the other in val.
  for (int s = 0; s < 2; ++s) {
    std::vector<int> labels;
    for (int clip : d.splits[s]) labels.push_back(d.primary_label[clip]);
    CHECK(labels == std::vector<int>{0, 1, 2});
  }
  CHECK(d.splits[2].empty());
}

TEST_CASE("load_dataset: a CSV manifest, and a file in two splits is refused", "[cpu][data]") {
  TempDir dir;
  const fs::path audio = dir / "audio";
  write_tone(audio / "a.wav", kWav16, 16000, 1, 0.5, 200.0);
  write_tone(audio / "b.flac", kFlac16, 22050, 2, 0.6, 300.0);
  write_tone(audio / "c.wav", kWav16, 44100, 1, 0.7, 400.0);
  write_tone(audio / "d.ogg", kVorbis, 22050, 1, 0.8, 500.0);
  const fs::path manifest = dir / "lists" / "good.csv";
  write_file(manifest,
             "path,label,split\n"
             "../audio/a.wav,rock,train\n" +
                 (audio / "b.flac").string() + ",jazz,valid\n" +
                 "../audio/c.wav, rock ,TEST\n"
                 "../audio/d.ogg,jazz,train\n"
                 "../audio/e.wav,,train\n");

  Config config = config_for("csv", "", dir / "cache");
  config.data.manifest = manifest.string();
  const Loaded loaded = load(config);
  const Dataset& d = loaded.data;
  const DatasetIndex index = check_clips_and_splits(d, config.data);
  CHECK(d.label_names == Strings{"jazz", "rock"});
  CHECK(d.clip_ids == Strings{"../audio/a.wav", (audio / "b.flac").string(), "../audio/c.wav", "../audio/d.ogg"});
  CHECK(d.primary_label == std::vector<int>{1, 0, 1, 0});
  CHECK(d.skipped ==
        Strings{(audio / "e.wav").string() + ": no label (" + manifest.string() + ":6)"});
  CHECK(ids_at(d, d.splits[0]) == Strings{"../audio/a.wav", "../audio/d.ogg"});
  CHECK(ids_at(d, d.splits[1]) == Strings{(audio / "b.flac").string()});
  CHECK(ids_at(d, d.splits[2]) == Strings{"../audio/c.wav"});
  for (int clip = 0; clip < 4; ++clip) check_matches_decoder(d, clip, index.clips[clip].path);

  // Several labels per clip (a labels column) cannot be balanced by class.
  const fs::path tagged = dir / "lists" / "tagged.csv";
  write_file(tagged, "path,labels\n../audio/a.wav,rock;live\n../audio/b.flac,jazz\n");
  Config tags = config;
  tags.data.manifest = tagged.string();
  tags.data.balance = "oversample";
  CHECK_THROWS_WITH(load(tags), "data.balance: expected none for multi-label data (classes are balanced for "
                                "single-label data only, and " + tagged.string() +
                                " has several labels per clip), got 'oversample'");

  // The manifest's split column edited after a run recorded its splits: the run's are kept,
  // and a warning says how many clips the manifest now puts elsewhere.
  write_split_record(dir / "splits.csv", d);
  const SplitRecord record = read_split_record(dir / "splits.csv");
  const std::string original = read_file(manifest);
  std::string edited = original;
  const std::string row = "../audio/d.ogg,jazz,train";
  edited.replace(edited.find(row), row.size(), "../audio/d.ogg,jazz,test");
  write_file(manifest, edited);
  const Loaded moved = load(config, 1, &record);
  CHECK(moved.data.splits == d.splits);
  CHECK_THAT(moved.log, Contains("data: 1 clip has another split in the dataset than in the run's record; the run's "
                                 "is kept (" + (dir / "splits.csv").string() + ")"));
  write_file(manifest, original);

  // The same file in train and test (spelt differently, or through a link) is a leak, and
  // under two labels a contradiction: refused, naming both entries.
  fs::create_symlink(audio / "b.flac", audio / "link.flac");
  const fs::path twice = dir / "lists" / "twice.csv";
  config.data.manifest = twice.string();
  const std::string rows = "path,label,split\n../audio/a.wav,rock,train\n../audio/b.flac,jazz,val\n";
  write_file(twice, rows + "../audio/./x/../a.wav,rock,test\n");
  CHECK(load_error(config) == twice.string() + ": " + (audio / "a.wav").string() +
                                  " is listed twice with other labels or splits; list each file once");
  write_file(twice, rows + "../audio/link.flac,rock,val\n");
  CHECK(load_error(config) == twice.string() + ": " + (audio / "b.flac").string() + " and " +
                                  (audio / "link.flac").string() +
                                  " are the same file with other labels or splits; list each file once");
  fs::create_hard_link(audio / "b.flac", audio / "hard.flac");  // a hard link is the same file too
  write_file(twice, rows + "../audio/hard.flac,rock,val\n");
  CHECK(load_error(config) == twice.string() + ": " + (audio / "b.flac").string() + " and " +
                                  (audio / "hard.flac").string() +
                                  " are the same file with other labels or splits; list each file once");
  // Twice with the same label and split: used once, the repeat listed as skipped.
  write_file(twice, "path,label,split\n../audio/a.wav,rock,train\n../audio/b.flac,jazz,val\n../audio/a.wav,rock,train\n");
  const Dataset once = load(config).data;
  CHECK(once.clip_ids == Strings{"../audio/a.wav", "../audio/b.flac"});
  CHECK(once.skipped == Strings{(audio / "a.wav").string() + ": the same file as " + (audio / "a.wav").string() +
                                "; used once"});
}

TEST_CASE("load_dataset: an empty split the fractions ask for and clips shorter than an example are warned",
          "[cpu][data]") {
  TempDir dir;
  const fs::path root = dir / "library";
  for (const char* file : {"a/one.wav", "a/two.wav", "b/three.wav", "b/four.wav"})
    write_tone(root / file, kWav16, 16000, 1, 0.3, 440.0);
  Config config = config_for("folder", root, dir / "cache");
  config.data.split_fractions = {0.9, 0.05, 0.05};  // 3.6 / 0.2 / 0.2 of 4 clips: 4 / 0 / 0
  const Loaded loaded = load(config);
  CHECK(loaded.data.indices(Split::train).size() == 4);
  CHECK_THAT(loaded.log, Contains("data: the val split is empty: data.split_fractions gives it 0.05 of 4 clips, "
                                  "which rounds to none; use more clips or a larger fraction") &&
                             Contains("data: the test split is empty"));
  config.data.split_fractions = {0.5, 0.5, 0.0};
  CHECK_FALSE(contains(load(config).log, "split is empty"));

  // Clips shorter than an example window are said to be padded.
  config.data.clip_seconds = 1.0;
  CHECK_THAT(load(config).log, Contains("data: 4 of 4 clips are shorter than data.clip_seconds (1 s) by more than a "
                                        "tenth (the shortest is 0.3 s): their examples are padded with silence"));
  config.data.clip_seconds = 0.33;  // 0.3 s clips: padded by less than a tenth
  CHECK_FALSE(contains(load(config).log, "padded with silence"));

  // A split whose clips cannot be decoded says so, not that it rounded to none.
  const fs::path broken = dir / "broken";
  for (const char* file : {"a/one.wav", "a/two.wav", "b/three.wav", "b/four.wav"}) {
    fs::create_directories((broken / file).parent_path());
    testing::write_bytes(broken / file, "RIFF\x04\x00\x00\x00WAVE");
  }
  Config broken_config = config_for("folder", broken, dir / "cache");
  broken_config.data.split_fractions = {0.5, 0.5, 0.0};
  CHECK_THAT(load(broken_config).log,
             Contains("data: the val split is empty: the 2 clips data.split_fractions gave it cannot be decoded"));

  // The synthetic set's sizes are the config's, split the same way.
  Config synthetic;
  synthetic.data.synthetic.num_classes = 2;
  synthetic.data.synthetic.clips_per_class = 3;
  synthetic.data.clip_seconds = 0.25;
  synthetic.data.split_fractions = {0.8, 0.1, 0.1};  // 4.8 / 0.6 / 0.6 of 6 clips: 5 / 1 / 0
  CHECK_THAT(load(synthetic).log, Contains("data: the test split is empty: data.split_fractions gives it 0.1 of 6 "
                                           "clips, which rounds to none") &&
                                      !Contains("the val split is empty"));
}

TEST_CASE("load_dataset: the PCM cache is reused, and rebuilt when a file changes", "[cpu][data]") {
  TempDir dir;
  const fs::path root = dir / "library";
  const fs::path changed = root / "a" / "one.wav";
  const fs::path touched = root / "b" / "three.wav";
  write_tone(changed, kWav16, 22050, 1, 0.5, 300.0);
  write_tone(root / "a" / "two.flac", kFlac16, 16000, 1, 0.6, 400.0);
  write_tone(touched, kWav16, 16000, 2, 0.7, 500.0);
  write_tone(root / "b" / "four.wav", kWav16, 16000, 1, 0.5, 600.0);
  const Config config = config_for("folder", root, dir / "cache");

  const Loaded first = load(config);
  CHECK_THAT(first.log, Contains("PCM cache built"));
  check_clips_and_splits(first.data, config.data);
  const Loaded second = load(config);
  CHECK_THAT(second.log, Contains("PCM cache reused"));
  CHECK_FALSE(contains(second.log, "PCM cache built"));
  CHECK(second.data.lengths == first.data.lengths);
  CHECK(second.data.splits == first.data.splits);
  for (int clip = 0; clip < first.data.num_clips(); ++clip)
    CHECK(read_clip(second.data, clip) == read_clip(first.data, clip));

  // Rewriting a file (another tone, longer) gives a new cache with the new audio.
  const int one = clip_of(first.data, "a/one.wav");
  const std::int64_t frames = write_tone(changed, kWav16, 22050, 1, 0.8, 700.0);
  const Loaded third = load(config);
  CHECK_THAT(third.log, Contains("PCM cache built"));
  CHECK(std::llabs(third.data.lengths[one] - resampled_length(frames, 22050)) <= 2);
  check_matches_decoder(third.data, one, changed);
  // The three unchanged files are copied from the first cache, not decoded again.
  CHECK_THAT(third.log, Contains("PCM cache: 3 of 4 files copied from earlier caches of the same files"));
  for (int clip = 0; clip < first.data.num_clips(); ++clip)
    if (clip != one) CHECK(read_clip(third.data, clip) == read_clip(first.data, clip));

  // Only touching a file (its modification time) rebuilds too; then the cache is reused.
  fs::last_write_time(touched, fs::last_write_time(touched) + std::chrono::seconds(2));
  CHECK_THAT(load(config).log, Contains("PCM cache built"));
  CHECK_THAT(load(config).log, Contains("PCM cache reused"));

  // Rewritten in place with its size and modification time put back (as mp3gain -p or
  // cp -p do): the status-change time still tells, and the new audio is read.
  const auto modified = fs::last_write_time(changed);
  const std::uintmax_t size = fs::file_size(changed);
  write_tone(changed, kWav16, 22050, 1, 0.8, 900.0);
  REQUIRE(fs::file_size(changed) == size);
  fs::last_write_time(changed, modified);
  const Loaded rewritten = load(config);
  CHECK_THAT(rewritten.log, Contains("PCM cache built"));
  check_matches_decoder(rewritten.data, one, changed);

  // A file cut short (a broken download) is used as far as it goes, and said so in a
  // warning, when the cache is built and whenever it is reused.
  const fs::path cut = root / "b" / "four.wav";  // 0.5 s at 16 kHz: 8000 frames
  const std::string bytes = read_file(cut);
  std::ofstream(cut, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  for (const char* cache : {"PCM cache built", "PCM cache reused"}) {
    const Loaded loaded = load(config);
    INFO(loaded.log);
    CHECK_THAT(loaded.log, Contains(cache) &&
                               Contains("1 of 4 audio files end before their headers say and are used as far as they "
                                        "go: " + cut.string() + ": cut short: ") &&
                               Contains(" of the 8000 frames its header declares"));
    CHECK(loaded.warnings == 2);  // and the label of the two without the one val clip (3.2 / 0.8)
  }
}


TEST_CASE("load_dataset: offline copies are stretched, shifted training clips cached apart",
          "[cpu][data][augment]") {
  TempDir dir;
  const fs::path root = dir / "library";
  for (const char* label : {"low", "high"}) {
    for (int i = 0; i < 2; ++i)
      write_tone(root / label / tone_file(i), kWav16, kRate, 1, 0.6,
                 std::string(label) == "low" ? 220.0 : 880.0);
  }
  Config config = config_for("folder", root, dir / "cache");
  config.data.split_fractions = {0.5, 0.5, 0.0};
  config.augment.offline_copies = 2;
  config.augment.time_stretch = {0.8, 1.25};
  config.augment.pitch_shift = {-2.0, 2.0};
  const Loaded first = load(config);
  const Dataset& d = first.data;
  REQUIRE(d.num_clips() == 4 + 2 * 2);  // 2 training clips, 2 copies each
  CHECK(contains(first.log, "offline augmentation: 4 stretched and pitch-shifted copies of 2 training clips"));
  const std::vector<int> originals = {d.splits[0][0], d.splits[0][1]};
  CHECK(d.splits[0] == std::vector<int>{originals[0], originals[1], 4, 5, 6, 7});
  for (int copy = 4; copy < 8; ++copy) {
    const int original = originals[(copy - 4) / 2];
    INFO("copy " << copy << " of clip " << original);
    CHECK(d.clip_ids[copy] == d.clip_ids[original] + "+copy" + std::to_string(copy - 4));
    CHECK(targets_of(d, copy) == targets_of(d, original));
    CHECK(d.primary_label[copy] == d.primary_label[original]);
    // round(n / rate) with rate in [0.8, 1.25]; the copies differ from their original.
    CHECK(d.lengths[copy] >= std::llround(d.lengths[original] / 1.25));
    CHECK(d.lengths[copy] <= std::llround(d.lengths[original] / 0.8));
    CHECK(read_clip(d, copy) != read_clip(d, original));
  }
  CHECK(read_clip(d, 4) != read_clip(d, 5));  // two copies of one clip draw differently
  for (int s = 1; s < 3; ++s)
    for (int clip : d.splits[s]) CHECK(clip < 4);  // copies are training clips only

  // The same config reuses both caches; another seed rebuilds only the copies'.
  const Loaded again = load(config);
  CHECK(contains(again.log, "PCM cache reused: 4 files"));
  CHECK_FALSE(contains(again.log, "PCM cache built"));
  CHECK(read_clip(again.data, 6) == read_clip(d, 6));
  config.augment.offline_seed = 2;
  const Loaded reseeded = load(config);
  CHECK(contains(reseeded.log, "PCM cache reused: 4 files"));
  CHECK(contains(reseeded.log, "PCM cache built"));
  CHECK(read_clip(reseeded.data, 4) != read_clip(d, 4));
}

TEST_CASE("load_dataset: a run's recorded splits hold when files are added or removed", "[cpu][data]") {
  TempDir dir;
  const fs::path root = dir / "library";
  for (const char* label : {"low", "high"})
    for (int i = 0; i < 4; ++i)
      write_tone(root / label / tone_file(i), kWav16, kRate, 1, 0.5, 200.0 + 100.0 * i);
  Config config = config_for("folder", root, dir / "cache");
  config.data.split_fractions = {0.5, 0.25, 0.25};
  config.augment.offline_copies = 1;  // copies are not recorded: they follow their originals
  const Dataset trained = load(config).data;
  write_split_record(dir / "splits.csv", trained);
  const SplitRecord record = read_split_record(dir / "splits.csv");
  CHECK(record.split_of_clip.size() == 8);
  const auto split_of = [](const Dataset& d, const std::string& id) {
    const int clip = clip_of(d, id);
    for (int s = 0; s < 3; ++s)
      if (std::count(d.splits[s].begin(), d.splits[s].end(), clip)) return s;
    return -1;
  };

  // Unchanged: the same splits, and no warning.
  const Loaded same = load(config, 1, &record);
  CHECK(same.data.splits == trained.splits);
  CHECK(same.warnings == 0);

  // Files added and removed would move clips between splits if the dataset were split
  // again (another seed stands in for that here); with the record, every clip the run knew
  // keeps its split, the new ones are in none, and a warning says so.
  write_tone(root / "low" / "new.wav", kWav16, kRate, 1, 0.5, 700.0);
  write_tone(root / "high" / "new.wav", kWav16, kRate, 1, 0.5, 800.0);
  const std::string gone_id = trained.clip_ids[trained.splits[2][0]];
  fs::remove(root / gone_id);
  const Loaded changed = load(config, 99, &record);
  const Dataset& d = changed.data;
  for (int clip = 0; clip < trained.original_clips; ++clip) {
    const std::string& id = trained.clip_ids[clip];
    if (id == gone_id) continue;
    INFO(id);
    CHECK(split_of(d, id) == split_of(trained, id));
  }
  CHECK(split_of(d, "low/new.wav") == -1);
  CHECK(split_of(d, "high/new.wav") == -1);
  CHECK(changed.warnings == 1);
  CHECK_THAT(changed.log, Contains("data: the dataset differs from the one the run was split on (2 clips are new "
                                   "(in none of its splits), 1 of its clips is gone); the run's splits are kept (" +
                                   (dir / "splits.csv").string() + ")"));

  // A record listing none of the clips (the run evaluated on another dataset) is set aside.
  SplitRecord elsewhere;
  elsewhere.file = dir / "other.csv";
  elsewhere.split_of_clip = {{"rock/a.wav", Split::test}};
  const Loaded other = load(config, 99, &elsewhere);
  CHECK(other.data.splits == load(config, 99).data.splits);
  CHECK_THAT(other.log, Contains("data: " + elsewhere.file.string() +
                                 " lists none of this dataset's clips; it is split as the config says"));

  // A malformed record is named with its line.
  write_file(dir / "bad.csv", "clip,split\nlow/t0.wav,train\nlow/t1.wav,dev\n");
  CHECK_THROWS_WITH(read_split_record(dir / "bad.csv"),
                    (dir / "bad.csv").string() + ":3: split: expected train, val or test, got 'dev'");
  write_file(dir / "bad.csv", "clip,split\nlow/t0.wav,train\nlow/t0.wav,test\n");
  CHECK_THROWS_WITH(read_split_record(dir / "bad.csv"), (dir / "bad.csv").string() + ":3: clip 'low/t0.wav' is listed twice");
}

TEST_CASE("load_dataset: the synthetic set takes offline copies in memory", "[cpu][data][augment]") {
  Config config;
  config.data.synthetic.num_classes = 2;
  config.data.synthetic.clips_per_class = 4;
  config.data.clip_seconds = 0.5;
  config.data.split_fractions = {0.5, 0.5, 0.0};
  config.augment.offline_copies = 1;
  config.augment.time_stretch = {1.25, 1.25};
  const Dataset d = load(config).data;
  REQUIRE(d.num_clips() == 8 + 4);
  CHECK(d.splits[0].size() == 8);
  for (int copy = 8; copy < 12; ++copy) CHECK(d.lengths[copy] == std::llround(8000 / 1.25));
}

TEST_CASE("files left out are one warning line, however many there are", "[cpu][data]") {
  Dataset data;
  std::ostringstream text;
  Logger log(text);
  warn_skipped_files(data, log);
  CHECK(log.warnings() == 0);
  for (int i = 0; i < 5000; ++i) data.skipped.push_back("c/" + std::to_string(i) + ".mp3: none of the chosen tags");
  warn_skipped_files(data, log, "RUN/skipped_files.txt");
  CHECK(log.warnings() == 1);
  CHECK(text.str() == "warning: data: 5000 files left out (broken, unlabelled, undecodable, or outside the split or "
                      "tags chosen): c/0.mp3: none of the chosen tags; c/1.mp3: none of the chosen tags; c/2.mp3: none "
                      "of the chosen tags; and 4997 more; all in RUN/skipped_files.txt\n");
}

TEST_CASE("the list of files left out holds every one, and a stale list goes", "[cpu][data]") {
  const testing::TempDir dir;
  const fs::path list = dir / "skipped_files.txt";
  Dataset data;
  data.skipped = {"a.wav: broken", "b c.mp3: no label"};
  write_skipped_files(data, list);
  CHECK(read_file(list) == "a.wav: broken\nb c.mp3: no label\n");
  data.skipped.clear();
  write_skipped_files(data, list);
  CHECK_FALSE(fs::exists(list));
}

}  // namespace cadenza
