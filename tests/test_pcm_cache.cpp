// Tests of the decoded-audio cache (host/data/pcm_cache).
//
// Every audio file is written by the test with libsndfile into a temporary directory: WAVs
// at 16 kHz (stored exactly), 22.05 kHz stereo and 44.1 kHz float (resampled), plus a file
// of random bytes and an empty one. The cache must hold load_audio()'s samples to within
// int16 rounding, skip the broken files with their reasons and one warning, be reused for
// the same inputs and rebuilt for changed ones, build once when two threads or two
// processes open it at the same time, clean up after killed builds, keep a stopped build's
// files for the next one, remove the earlier caches a new one holds every file of unless a
// process reads them, treat a directory without its manifest as missing, keep peaks above
// full scale, open one cache for a dataset reached through a linked folder, and write the
// same bytes for any thread count.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sndfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "host/audio/audio_decoder.hpp"
#include "host/audio/resampler.hpp"
#include "host/core/error.hpp"
#include "host/core/logger.hpp"
#include "host/data/pcm_cache.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/file_lock.hpp"
#include "tests/test_support.hpp"

namespace cadenza {
namespace {

using cadenza::testing::TempDir;
using cadenza::testing::write_audio_file;
using cadenza::testing::write_bytes;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace fs = std::filesystem;

// Writes `seconds` of a two-tone signal (peak below 0.9, so int16 never clips) per channel.
void write_wav(const fs::path& path, int format, int sample_rate, int channels, double seconds) {
  const auto frames = static_cast<sf_count_t>(seconds * sample_rate);
  std::vector<float> interleaved(static_cast<std::size_t>(frames * channels));
  for (sf_count_t frame = 0; frame < frames; ++frame) {
    const double t = static_cast<double>(frame) / sample_rate;
    for (int channel = 0; channel < channels; ++channel) {
      interleaved[static_cast<std::size_t>(frame * channels + channel)] = static_cast<float>(
          0.5 * std::sin(2.0 * std::numbers::pi * (300.0 + 150.0 * channel) * t) +
          0.3 * std::sin(2.0 * std::numbers::pi * 1234.0 * t));
    }
  }
  write_audio_file(path, format, sample_rate, channels, interleaved);
}

// Five inputs in a fixed order: three good WAVs with a corrupt and an empty file between.
struct Dataset {
  explicit Dataset(const TempDir& dir) {
    files = {dir / "exact_16k.wav", dir / "corrupt.wav", dir / "stereo_22k.wav", dir / "empty.wav",
             dir / "float_44k.wav"};
    write_wav(files[0], SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 0.5);
    std::mt19937 random(7);
    std::string noise(3000, '\0');
    for (char& byte : noise) byte = static_cast<char>(random() & 0xff);
    write_bytes(files[1], noise);
    write_wav(files[2], SF_FORMAT_WAV | SF_FORMAT_PCM_16, 22050, 2, 0.7);
    write_bytes(files[3], "");
    write_wav(files[4], SF_FORMAT_WAV | SF_FORMAT_FLOAT, 44100, 1, 0.3);
  }
  std::vector<fs::path> files;
  const std::vector<std::size_t> good = {0, 2, 4};
  const std::vector<std::size_t> broken = {1, 3};
};

// A logger writing into a string, as a test can read it.
struct CapturedLog {
  std::ostringstream text;
  Logger log{text};
};

PcmCacheOptions options_for(const fs::path& root, int sample_rate = 16000, int threads = 2) {
  PcmCacheOptions options;
  options.cache_root = root;
  options.sample_rate = sample_rate;
  options.threads = threads;
  return options;
}

std::vector<float> read_entry(const PcmCache& cache, std::size_t i) {
  std::vector<float> samples(static_cast<std::size_t>(cache.length(i)));
  cache.read(i, 0, cache.length(i), samples.data());
  return samples;
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (std::size_t s = 0; s < a.size(); ++s)
    worst = std::max(worst, std::fabs(double(a[s]) - b[s]));
  return worst;
}

// Names in `directory`, sorted.
std::vector<std::string> entries_of(const fs::path& directory) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(directory))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool was_built(const CapturedLog& captured) {
  return captured.text.str().find("PCM cache built") != std::string::npos;
}

TEST_CASE("the PCM cache holds load_audio's samples and skips broken files", "[cpu][data][cache]") {
  TempDir dir;
  const Dataset data(dir);
  CapturedLog captured;
  const PcmCache cache =
      PcmCache::open_or_build(data.files, options_for(dir / "cache"), captured.log);

  REQUIRE(cache.size() == data.files.size());
  CHECK(cache.sample_rate() == 16000);
  CHECK(cache.directory().parent_path() == dir / "cache");
  for (const std::size_t i : data.good) {
    INFO(data.files[i]);
    REQUIRE(cache.available(i));
    const std::vector<float> expected = load_audio(data.files[i], 16000);
    REQUIRE(cache.length(i) == static_cast<std::int64_t>(expected.size()));
    // int16 rounding: half a step, plus float rounding of the reference.
    CHECK(max_abs_difference(read_entry(cache, i), expected) <= 0.5 / 32768 + 1e-7);
  }
  // A 16-bit file at the cache's own rate is stored exactly.
  CHECK(read_entry(cache, 0) == load_audio(data.files[0], 16000));
  CHECK(cache.length(2) ==
        static_cast<std::int64_t>(resampled_length(
            static_cast<std::size_t>(probe_audio(data.files[2]).frames), 22050, 16000)));

  REQUIRE(cache.failures().size() == data.broken.size());
  for (std::size_t f = 0; f < data.broken.size(); ++f) {
    const std::size_t i = data.broken[f];
    CHECK_FALSE(cache.available(i));
    CHECK(cache.length(i) == 0);
    CHECK_THAT(cache.failures()[f], StartsWith(data.files[i].string() + ": "));
    CHECK(cache.failures()[f].size() > data.files[i].string().size() + 2);
  }
  // Counted in the info line; the dataset's line about files left out names them.
  CHECK(captured.log.warnings() == 0);
  CHECK_THAT(captured.text.str(), Contains("5 files, ") && Contains(", 2 failed ("));
  CHECK(was_built(captured));

  const auto manifest = nlohmann::json::parse(cadenza::read_file(cache.directory() / "manifest.json"));
  CHECK(manifest.at("format") == "cadenza-pcm-1; mono mean; soxr HQ; int16");
  CHECK(manifest.at("sample_rate") == 16000);
  CHECK(manifest.at("key") == cache.directory().filename().string());
  CHECK(manifest.at("files").size() == 5);
  CHECK(manifest.at("files")[0].at("status") == "ok");
  CHECK(manifest.at("files")[0].at("path") == fs::absolute(data.files[0]).string());
  CHECK(manifest.at("files")[0].at("size") ==
        static_cast<std::int64_t>(fs::file_size(data.files[0])));
  CHECK(manifest.at("files")[1].at("status") == "failed");
  CHECK_FALSE(manifest.at("files")[1].at("reason").get<std::string>().empty());
  CHECK(fs::file_size(cache.directory() / "shard-0000.pcm") ==
        2 * static_cast<std::uintmax_t>(cache.length(0) + cache.length(2) + cache.length(4)));
  // Only the cache and its lock files (builds', readers') remain; no build directory.
  const std::string key = cache.directory().filename().string();
  CHECK(entries_of(dir / "cache") == std::vector<std::string>{key, key + ".lock", key + ".readers"});
}

TEST_CASE("the PCM cache is reused for the same inputs and rebuilt for changed ones",
          "[cpu][data][cache]") {
  TempDir dir;
  const Dataset data(dir);
  CapturedLog first_log;
  const PcmCache first =
      PcmCache::open_or_build(data.files, options_for(dir / "cache"), first_log.log);
  // A rebuild would replace the directory and lose this file.
  write_bytes(first.directory() / "marker", "still here");

  SECTION("same inputs: reused, same values") {
    CapturedLog log;
    const PcmCache again =
        PcmCache::open_or_build(data.files, options_for(dir / "cache", 16000, 1), log.log);
    CHECK_FALSE(was_built(log));
    CHECK_THAT(log.text.str(), Contains("PCM cache reused"));
    CHECK(fs::exists(again.directory() / "marker"));
    CHECK(again.directory() == first.directory());
    CHECK(again.failures() == first.failures());
    CHECK(log.log.warnings() == 0);
    CHECK_THAT(log.text.str(), Contains(", 2 failed ("));
    for (std::size_t i = 0; i < data.files.size(); ++i) {
      CHECK(again.available(i) == first.available(i));
      CHECK(read_entry(again, i) == read_entry(first, i));
    }
  }
  SECTION("a touched file gives another key") {
    fs::last_write_time(data.files[2],
                        fs::last_write_time(data.files[2]) + std::chrono::seconds(2));
    CapturedLog log;
    const PcmCache rebuilt =
        PcmCache::open_or_build(data.files, options_for(dir / "cache"), log.log);
    CHECK(was_built(log));
    CHECK(rebuilt.directory() != first.directory());
    CHECK(read_entry(rebuilt, 2) == read_entry(first, 2));
  }
  SECTION("an added or removed file gives another key") {
    std::vector<fs::path> fewer(data.files.begin(), data.files.end() - 1);
    CapturedLog log;
    const PcmCache smaller = PcmCache::open_or_build(fewer, options_for(dir / "cache"), log.log);
    CHECK(was_built(log));
    CHECK(smaller.size() == 4);
    CHECK(smaller.directory() != first.directory());
  }
  SECTION("another sample rate gives another key") {
    CapturedLog log;
    const PcmCache at_8k =
        PcmCache::open_or_build(data.files, options_for(dir / "cache", 8000), log.log);
    CHECK(was_built(log));
    CHECK(at_8k.directory() != first.directory());
    CHECK(at_8k.sample_rate() == 8000);
    CHECK(at_8k.length(0) == static_cast<std::int64_t>(resampled_length(8000, 16000, 8000)));
  }
  SECTION("a directory without its manifest is rebuilt") {
    fs::remove(first.directory() / "manifest.json");
    CapturedLog log;
    const PcmCache rebuilt =
        PcmCache::open_or_build(data.files, options_for(dir / "cache"), log.log);
    CHECK(was_built(log));
    CHECK_THAT(log.text.str(), Contains("incomplete or damaged"));
    CHECK_FALSE(fs::exists(rebuilt.directory() / "marker"));
    CHECK(read_entry(rebuilt, 4) == read_entry(first, 4));
  }
  SECTION("a truncated manifest is rebuilt") {
    const std::string manifest = cadenza::read_file(first.directory() / "manifest.json");
    write_bytes(first.directory() / "manifest.json", manifest.substr(0, manifest.size() / 2));
    CapturedLog log;
    const PcmCache rebuilt =
        PcmCache::open_or_build(data.files, options_for(dir / "cache"), log.log);
    CHECK(was_built(log));
    CHECK(read_entry(rebuilt, 0) == read_entry(first, 0));
  }
}

TEST_CASE("PCM cache reads zero-pad past the end", "[cpu][data][cache]") {
  TempDir dir;
  const Dataset data(dir);
  CapturedLog captured;
  const PcmCache cache =
      PcmCache::open_or_build(data.files, options_for(dir / "cache"), captured.log);
  const std::vector<float> whole = read_entry(cache, 2);
  const std::int64_t length = cache.length(2);

  std::vector<float> tail(30, -1.0f);
  cache.read(2, length - 10, 30, tail.data());
  for (int s = 0; s < 10; ++s) CHECK(tail[s] == whole[static_cast<std::size_t>(length - 10 + s)]);
  for (int s = 10; s < 30; ++s) CHECK(tail[s] == 0.0f);

  std::vector<float> beyond(5, -1.0f);
  cache.read(2, length + 100, 5, beyond.data());
  CHECK(beyond == std::vector<float>(5, 0.0f));

  std::vector<float> unavailable(5, -1.0f);
  cache.read(1, 0, 5, unavailable.data());
  CHECK(unavailable == std::vector<float>(5, 0.0f));

  std::vector<float> middle(100);
  cache.read(2, 1000, 100, middle.data());
  CHECK(std::equal(middle.begin(), middle.end(), whole.begin() + 1000));
}

TEST_CASE("PCM cache bytes do not depend on the thread count", "[cpu][data][cache]") {
  TempDir dir;
  const Dataset data(dir);
  // Small shards, so entries are spread over several.
  PcmCacheOptions one_thread = options_for(dir / "one", 16000, 1);
  PcmCacheOptions three_threads = options_for(dir / "three", 16000, 3);
  one_thread.shard_bytes = three_threads.shard_bytes = 20000;
  CapturedLog log_one, log_three;
  const PcmCache a = PcmCache::open_or_build(data.files, one_thread, log_one.log);
  const PcmCache b = PcmCache::open_or_build(data.files, three_threads, log_three.log);

  REQUIRE(a.directory().filename() == b.directory().filename());
  const std::vector<std::string> names = entries_of(a.directory());
  REQUIRE(names == entries_of(b.directory()));
  CHECK(names == std::vector<std::string>{"manifest.json", "shard-0000.pcm", "shard-0001.pcm",
                                          "shard-0002.pcm"});
  for (const std::string& name : names) {
    INFO(name);
    CHECK(cadenza::read_file(a.directory() / name) == cadenza::read_file(b.directory() / name));
  }
  for (const std::size_t i : data.good) {
    CHECK(max_abs_difference(read_entry(b, i), load_audio(data.files[i], 16000)) <=
          0.5 / 32768 + 1e-7);
  }
}

TEST_CASE("PCM cache opened by two threads at once is built once", "[cpu][data][cache]") {
  TempDir dir;
  const Dataset data(dir);
  CapturedLog logs[2];
  std::vector<std::vector<float>> seen(2);
  std::vector<fs::path> directories(2);
  std::vector<std::thread> openers;
  for (int t = 0; t < 2; ++t) {
    openers.emplace_back([&, t] {
      const PcmCache cache =
          PcmCache::open_or_build(data.files, options_for(dir / "cache"), logs[t].log);
      seen[t] = read_entry(cache, 4);
      directories[t] = cache.directory();
    });
  }
  for (std::thread& opener : openers) opener.join();
  CHECK(was_built(logs[0]) + was_built(logs[1]) == 1);
  CHECK(directories[0] == directories[1]);
  CHECK_FALSE(seen[0].empty());
  CHECK(seen[0] == seen[1]);
}

TEST_CASE("PCM cache opened by two processes at once is built once", "[cpu][data][cache]") {
  TempDir dir;
  const Dataset data(dir);
  const fs::path child_log_path = dir / "child.log";
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child reports through its log file and exit status only.
    int status = 1;
    try {
      std::ofstream child_log(child_log_path);
      Logger log(child_log);
      const PcmCache cache = PcmCache::open_or_build(data.files, options_for(dir / "cache"), log);
      status = cache.available(4) && cache.length(4) > 0 ? 0 : 2;
    } catch (...) {
      status = 3;
    }
    ::_exit(status);
  }
  CapturedLog parent_log;
  const PcmCache cache =
      PcmCache::open_or_build(data.files, options_for(dir / "cache"), parent_log.log);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const bool child_built = cadenza::read_file(child_log_path).find("PCM cache built") != std::string::npos;
  CHECK(was_built(parent_log) + child_built == 1);
  CHECK(entries_of(dir / "cache").size() == 3);  // one cache and its two lock files
  CHECK(max_abs_difference(read_entry(cache, 4), load_audio(data.files[4], 16000)) <=
        0.5 / 32768 + 1e-7);
}

TEST_CASE("a PCM cache build left by a killed process is removed", "[cpu][data][cache]") {
  TempDir dir;
  const Dataset data(dir);
  CapturedLog first_log;
  const std::string key =
      PcmCache::open_or_build(data.files, options_for(dir / "cache"), first_log.log)
          .directory()
          .filename()
          .string();
  // As a build killed half-way leaves it: no directory under the key, a partial build beside.
  fs::remove_all(dir / "cache" / key);
  const fs::path stale = dir / "cache" / (key + ".building-999999");
  fs::create_directory(stale);
  write_bytes(stale / "shard-0000.pcm", std::string(1000, 'x'));
  const fs::path other_key_build = dir / "cache" / "0123456789abcdef.building-1";
  fs::create_directory(other_key_build);

  CapturedLog log;
  const PcmCache cache = PcmCache::open_or_build(data.files, options_for(dir / "cache"), log.log);
  CHECK(was_built(log));
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(other_key_build));  // another key's build is not this build's to remove
  CHECK(max_abs_difference(read_entry(cache, 2), load_audio(data.files[2], 16000)) <=
        0.5 / 32768 + 1e-7);
}

// Holds every free file descriptor of the process while it lives (each further open fails
// with EMFILE), so that a test can show what a system limit does.
class FileDescriptorsExhausted {
 public:
  FileDescriptorsExhausted() {
    for (int fd; (fd = ::dup(STDERR_FILENO)) >= 0;) held_.push_back(fd);
  }
  ~FileDescriptorsExhausted() {
    for (int fd : held_) ::close(fd);
  }

 private:
  std::vector<int> held_;
};

TEST_CASE("a system limit is not taken for a property of a file or of the cache", "[cpu][data][cache]") {
  TempDir dir;
  const Dataset data(dir);
  // The decoder says the system refused the file, as a ResourceError, not an undecodable file.
  {
    const FileDescriptorsExhausted exhausted;
    CHECK_THROWS_MATCHES(load_audio(data.files[0], 16000), ResourceError,
                         Catch::Matchers::Message(data.files[0].string() + ": cannot open: Too many open files "
                                                  "(the system's limit or fault, not the file's)"));
  }
  // A complete cache the system cannot open is reported, and kept (not rebuilt as damaged).
  CapturedLog built;
  const fs::path directory = PcmCache::open_or_build(data.files, options_for(dir / "cache"), built.log).directory();
  {
    const FileDescriptorsExhausted exhausted;
    CapturedLog log;
    CHECK_THROWS_WITH(PcmCache::open_or_build(data.files, options_for(dir / "cache"), log.log),
                      Contains("Too many open files"));
  }
  CHECK(fs::exists(directory / "manifest.json"));
  CapturedLog reopened;
  CHECK_NOTHROW(PcmCache::open_or_build(data.files, options_for(dir / "cache"), reopened.log));
  CHECK_FALSE(was_built(reopened));

  // A failure the system caused, as caches written before kept it, is decoded again: the
  // cache counts as damaged, and the file is not copied from it.
  const fs::path manifest = directory / "manifest.json";
  nlohmann::json j = nlohmann::json::parse(read_file(manifest));
  j["files"][0] = {{"path", j["files"][0]["path"]},         {"size", j["files"][0]["size"]},
                   {"mtime_ns", j["files"][0]["mtime_ns"]}, {"ctime_ns", j["files"][0]["ctime_ns"]},
                   {"status", "failed"},                    {"reason", "System error : Too many open files."}};
  write_file_atomically(manifest, j.dump());
  CapturedLog healed;
  const PcmCache cache = PcmCache::open_or_build(data.files, options_for(dir / "cache"), healed.log);
  CHECK(was_built(healed));
  REQUIRE(cache.available(0));
  CHECK(max_abs_difference(read_entry(cache, 0), load_audio(data.files[0], 16000)) <= 0.5 / 32768 + 1e-7);
}

TEST_CASE("Ctrl-C while another process builds the cache stops the wait", "[cpu][data][cache]") {
  TempDir dir;
  const Dataset data(dir);
  CapturedLog first;
  const std::string key =
      PcmCache::open_or_build(data.files, options_for(dir / "cache"), first.log).directory().filename().string();
  fs::remove_all(dir / "cache" / key);
  // The key's lock held as another process's build holds it (another open file description).
  const auto held = FileLock::try_acquire(dir / "cache" / (key + ".lock"));
  REQUIRE(held);
  int asked = 0;
  PcmCacheOptions options = options_for(dir / "cache");
  options.stop_requested = [&] { return ++asked >= 3; };
  CapturedLog log;
  CHECK_THROWS_AS(PcmCache::open_or_build(data.files, options, log.log), Interrupted);
  CHECK(asked == 3);
  CHECK_THAT(log.text.str(), Contains("is being built by another process; waiting for it"));
}

TEST_CASE("a file name that is not UTF-8 is recorded by its bytes, and the cache is reused", "[cpu][data][cache]") {
  TempDir dir;
  const fs::path latin1 = dir / "caf\xe9.wav", other = dir / "caf\xe8.wav";
  write_wav(latin1, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 0.2);
  write_wav(other, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 0.2);
  CapturedLog built;
  const PcmCache cache = PcmCache::open_or_build({latin1, other}, options_for(dir / "cache"), built.log);
  const nlohmann::json manifest = nlohmann::json::parse(read_file(cache.directory() / "manifest.json"));
  // Two names that valid_utf8 would both write as "caf\uFFFD.wav" stay apart.
  const std::string first = manifest["files"][0]["path"], second = manifest["files"][1]["path"];
  CHECK(first.starts_with("bytes:"));
  CHECK(first != second);
  CapturedLog again;
  CHECK_NOTHROW(PcmCache::open_or_build({latin1, other}, options_for(dir / "cache"), again.log));
  CHECK_FALSE(was_built(again));
}

TEST_CASE("a pipe given as an audio file is refused, not waited on", "[cpu][data][cache]") {
  TempDir dir;
  const fs::path pipe = dir / "stream.wav";
  REQUIRE(::mkfifo(pipe.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(load_audio(pipe, 16000),
                    pipe.string() + ": cannot decode audio: not a regular file (a pipe, socket or device)");
  CapturedLog log;
  const PcmCache cache = PcmCache::open_or_build({pipe}, options_for(dir / "cache"), log.log);
  CHECK_FALSE(cache.available(0));
  REQUIRE(cache.failures().size() == 1);
  CHECK_THAT(cache.failures()[0], Contains("not a regular file"));
}

// PcmCacheOptions whose stop_requested answers true from its `stop_at`-th question on.
PcmCacheOptions stopping_at(const fs::path& root, int stop_at, int& asked) {
  PcmCacheOptions options = options_for(root);
  options.stop_requested = [stop_at, &asked] { return ++asked >= stop_at; };
  return options;
}

TEST_CASE("a stopped PCM cache build keeps its files for the next build", "[cpu][data][cache]") {
  TempDir dir;
  const Dataset data(dir);
  CapturedLog reference_log;
  const PcmCache reference = PcmCache::open_or_build(data.files, options_for(dir / "reference"), reference_log.log);
  const std::string key = reference.directory().filename().string();
  const fs::path stopped = dir / "cache" / (key + ".stopped");

  // Asked before each file: the third answer stops the build after two files.
  int asked = 0;
  CapturedLog log;
  CHECK_THROWS_MATCHES(PcmCache::open_or_build(data.files, stopping_at(dir / "cache", 3, asked), log.log),
                       Interrupted, Catch::Message("the decoded-audio cache was stopped after 2 of 5 files; the "
                                                   "next run decodes only the rest (they are kept in " +
                                                   stopped.string() + ")"));
  CHECK(asked == 3);
  CHECK(entries_of(dir / "cache") == std::vector<std::string>{key + ".lock", key + ".readers", key + ".stopped"});
  const nlohmann::json manifest = nlohmann::json::parse(cadenza::read_file(stopped / "manifest.json"));
  REQUIRE(manifest.at("files").size() == 2);
  CHECK(manifest.at("files")[0].at("status") == "ok");
  CHECK(manifest.at("files")[1].at("status") == "failed");  // the corrupt file's failure is kept too

  SECTION("a build stopped sooner keeps the earlier stop's files") {
    int asked_again = 0;
    CapturedLog again;
    CHECK_THROWS_MATCHES(PcmCache::open_or_build(data.files, stopping_at(dir / "cache", 2, asked_again), again.log),
                         Interrupted,
                         Catch::Message("the decoded-audio cache was stopped after 1 of 5 files; the next run "
                                        "decodes only the rest"));
    CHECK(nlohmann::json::parse(cadenza::read_file(stopped / "manifest.json")).at("files").size() == 2);
  }
  SECTION("the next build copies them, decodes the rest and removes them") {
    CapturedLog next;
    const PcmCache cache = PcmCache::open_or_build(data.files, options_for(dir / "cache"), next.log);
    CHECK_THAT(next.text.str(), Contains("PCM cache: 2 of 5 files copied from earlier caches"));
    CHECK_FALSE(fs::exists(stopped));
    CHECK(cache.failures() == reference.failures());
    for (std::size_t i = 0; i < data.files.size(); ++i) {
      CHECK(cache.available(i) == reference.available(i));
      if (cache.available(i)) CHECK(read_entry(cache, i) == read_entry(reference, i));
    }
  }
}

TEST_CASE("a new PCM cache removes the earlier ones it holds every file of", "[cpu][data][cache]") {
  TempDir dir;
  const Dataset data(dir);
  const std::vector<fs::path> first_three(data.files.begin(), data.files.begin() + 3);
  const std::vector<fs::path> last_three(data.files.begin() + 2, data.files.end());
  CapturedLog log;
  const fs::path small = PcmCache::open_or_build(first_three, options_for(dir / "cache"), log.log).directory();
  const fs::path other = PcmCache::open_or_build(last_three, options_for(dir / "cache"), log.log).directory();
  const fs::path at_8k = PcmCache::open_or_build(first_three, options_for(dir / "cache", 8000), log.log).directory();

  SECTION("the dataset grew: its old caches go, another rate's stays") {
    CapturedLog grown;
    const PcmCache all = PcmCache::open_or_build(data.files, options_for(dir / "cache"), grown.log);
    CHECK_FALSE(fs::exists(small));
    CHECK_FALSE(fs::exists(other));
    CHECK(fs::exists(at_8k));  // its samples are not the new cache's
    CHECK_THAT(grown.text.str(), Contains("PCM cache: removed " + small.string() + " (") &&
                                     Contains("): the new cache holds every file of it"));
    CHECK(read_entry(all, 0).size() == std::size_t(all.length(0)));
  }
  SECTION("a cache a process reads stays, named") {
    const PcmCache reading = PcmCache::open_or_build(first_three, options_for(dir / "cache"), log.log);
    CapturedLog grown;
    PcmCache::open_or_build(data.files, options_for(dir / "cache"), grown.log);
    CHECK(fs::exists(small / "manifest.json"));
    CHECK_FALSE(fs::exists(other));
    CHECK_THAT(grown.text.str(), Contains("PCM cache: kept " + small.string() + ", which a running process reads"));
    CHECK(read_entry(reading, 0).size() == std::size_t(reading.length(0)));
  }
  SECTION("a cache with a file the new one lacks stays, and one being built is left") {
    const auto held = FileLock::try_acquire(dir / "cache" / (small.filename().string() + ".lock"));
    REQUIRE(held);
    std::vector<fs::path> four(data.files.begin() + 1, data.files.end());
    CapturedLog grown;
    PcmCache::open_or_build(four, options_for(dir / "cache"), grown.log);
    CHECK(fs::exists(small));  // locked, and it holds files[0], which `four` lacks
    CHECK_FALSE(fs::exists(other));
    CapturedLog again;
    PcmCache::open_or_build(data.files, options_for(dir / "cache"), again.log);
    CHECK(fs::exists(small / "manifest.json"));  // its lock is still held
  }
}

TEST_CASE("a PCM cache keeps peaks above full scale and stores audio within it exactly", "[cpu][data][cache]") {
  TempDir dir;
  // Float audio peaking at 1.5, as a resampled mastered track or a decoded MP3 may.
  std::vector<float> loud(8000);
  for (std::size_t s = 0; s < loud.size(); ++s) loud[s] = 1.5f * std::sin(0.01f * float(s));
  write_audio_file(dir / "loud.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, loud);
  // 16-bit audio using the whole range, the most negative value included.
  const std::vector<short> full = {-32768, 32767, 0, -1, 1, 12345, -32768};
  SNDFILE* file = cadenza::testing::open_audio_for_writing(dir / "full.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1);
  REQUIRE(sf_writef_short(file, full.data(), sf_count_t(full.size())) == sf_count_t(full.size()));
  sf_close(file);
  const std::vector<fs::path> files = {dir / "loud.wav", dir / "full.wav"};

  CapturedLog log;
  const PcmCache cache = PcmCache::open_or_build(files, options_for(dir / "cache"), log.log);
  const std::vector<float> loud_read = read_entry(cache, 0);
  CHECK(*std::max_element(loud_read.begin(), loud_read.end()) > 1.49f);
  CHECK(max_abs_difference(loud_read, loud) <= 1.0 / 32768 + 1e-7);  // half a step of 2 / 32768
  const std::vector<float> full_read = read_entry(cache, 1);
  REQUIRE(full_read.size() == full.size());
  for (std::size_t s = 0; s < full.size(); ++s) CHECK(full_read[s] == float(full[s]) / 32768.0f);
  const nlohmann::json manifest = nlohmann::json::parse(read_file(cache.directory() / "manifest.json"));
  CHECK(manifest["files"][0]["headroom_bits"] == 1);
  CHECK_FALSE(manifest["files"][1].contains("headroom_bits"));

  SECTION("a new cache copying the file from this one keeps its scale") {
    write_audio_file(dir / "quiet.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, std::vector<float>(100, 0.25f));
    CapturedLog grown;
    const PcmCache bigger = PcmCache::open_or_build(
        std::vector<fs::path>{dir / "loud.wav", dir / "full.wav", dir / "quiet.wav"}, options_for(dir / "cache"),
        grown.log);
    CHECK_THAT(grown.text.str(), Contains("2 of 3 files copied from earlier caches"));
    CHECK(read_entry(bigger, 0) == loud_read);
  }
}

TEST_CASE("a dataset reached through a linked folder opens the cache of its real place", "[cpu][data][cache]") {
  TempDir dir;
  fs::create_directory(dir / "real");
  write_wav(dir / "real" / "a.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 0.2);
  fs::create_directory_symlink(dir / "real", dir / "linked");
  CapturedLog first;
  const fs::path built =
      PcmCache::open_or_build(std::vector<fs::path>{dir / "real" / "a.wav"}, options_for(dir / "cache"), first.log)
          .directory();
  CapturedLog second;
  const PcmCache through_link =
      PcmCache::open_or_build(std::vector<fs::path>{dir / "linked" / "a.wav"}, options_for(dir / "cache"), second.log);
  CHECK(was_built(first));
  CHECK_FALSE(was_built(second));
  CHECK(through_link.directory() == built);
}

TEST_CASE("a PCM cache of no files is empty", "[cpu][data][cache]") {
  TempDir dir;
  CapturedLog captured;
  const PcmCache cache = PcmCache::open_or_build(std::vector<fs::path>{}, options_for(dir / "cache"), captured.log);
  CHECK(cache.size() == 0);
  CHECK(cache.failures().empty());
  CHECK(captured.log.warnings() == 0);
  CHECK(entries_of(cache.directory()) == std::vector<std::string>{"manifest.json"});
}

}  // namespace
}  // namespace cadenza
