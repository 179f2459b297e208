// PcmCache implementation: the cache key, the parallel build with shard writes in input
// order, the publish under an exclusive flock(), and reads from the mapped shards.
//
// Key: FNV-1a 64 over a sequence of fields, each followed by a NUL byte: the format tag
// (kFormat), the sample rate in decimal, then per input file its absolute path with every
// link resolved (lexically normalised when that fails), its size in bytes, its
// modification time and its status-change time (ctime) in nanoseconds since the epoch
// (all decimal, all -1 when stat() fails): a file
// rewritten in place with its old size and modification time put back (mp3gain -p, cp -p)
// still has a new ctime, which no tool can set. For a transformed source also
// "stretch <rate> semitones <n>" (%.17g each). Written as 16 lower-case hex digits.
//
// Directory layout (cache_root/<key>/):
// - shard-0000.pcm, shard-0001.pcm, ...: int16 little-endian mono samples (each file's
//   scaled by its headroom_bits), the entries of the available files back to back in
//   input order; an entry never spans two shards.
// - manifest.json: format, key, sample_rate, shards (file name, samples) and files (path,
//   size, mtime_ns, ctime_ns, for a transformed source its transform, status "ok" with
//   shard/offset/length, headroom_bits when above 0 (see Pcm16) and a note for a file cut
//   short, or "failed" with reason). It is written last, so a directory whose manifest
//   parses and matches is complete.
//
// Invariants of the build: at most 2 * threads decoded files wait in memory for their turn
// to be written; only UserError from decoding marks a file failed, any other exception
// stops the build, removes its directory and propagates.
#include "host/data/pcm_cache.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "host/audio/audio_decoder.hpp"
#include "host/audio/resampler.hpp"
#include "host/audio/time_pitch.hpp"
#include "host/core/error.hpp"
#include "host/core/hash.hpp"
#include "host/core/text.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/file_lock.hpp"
#include "host/io/json_text.hpp"

namespace cadenza {
namespace {

// A cache directory whose contents contradict its manifest (or a shard gone): rebuilt. A
// cache the system cannot open (no memory to map it, no file descriptor, no permission)
// is not damaged: that error is the user's to see, and the cache stays.
class CacheDamaged : public UserError {
 public:
  using UserError::UserError;
};

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

static_assert(std::endian::native == std::endian::little,
              "shards hold little-endian int16 written from memory as they are");

constexpr const char* kFormat = "cadenza-pcm-1; mono mean; soxr HQ; int16";
constexpr const char* kManifestName = "manifest.json";
constexpr std::size_t kShortFilesShownInWarning = 3;

std::string system_reason(int error_number) {
  return std::generic_category().message(error_number);
}

// The path the key and the manifest record: absolute, with every link resolved, so that a
// dataset reached through a linked folder (a linked home, a second mount point of it) has
// the cache of its real place. Lexically normalised when resolving fails.
std::string resolved_path_text(const fs::path& path) {
  std::error_code error;
  const fs::path resolved = fs::weakly_canonical(path, error);
  return error ? fs::absolute(path).lexically_normal().string() : resolved.string();
}

std::string shard_name(std::size_t index) {
  char name[32];
  std::snprintf(name, sizeof(name), "shard-%04zu.pcm", index);
  return name;
}

// What the key records of one source.
struct FileStamp {
  std::string resolved_path;
  std::int64_t size = -1;      // bytes, -1 when stat() fails
  std::int64_t mtime_ns = -1;  // nanoseconds since the epoch, -1 when stat() fails
  std::int64_t ctime_ns = -1;  // the same for the status change
  std::string transform;       // "" or "stretch <rate> semitones <n>"
};

// "stretch 1.1000000000000001 semitones -2" for a transformed source, else "".
std::string transform_text(const PcmSource& source) {
  if (!source.transformed()) return "";
  char text[96];
  std::snprintf(text, sizeof(text), "stretch %.17g semitones %.17g", source.stretch, source.semitones);
  return text;
}

// How a failure names its source: the path, and the transform if any.
std::string source_name(const PcmSource& source) {
  return source.transformed() ? source.path.string() + " (" + transform_text(source) + ")" : source.path.string();
}

FileStamp stamp_file(const PcmSource& source) {
  FileStamp stamp;
  stamp.resolved_path = resolved_path_text(source.path);
  stamp.transform = transform_text(source);
  struct stat status {};
  if (::stat(stamp.resolved_path.c_str(), &status) == 0) {
    stamp.size = static_cast<std::int64_t>(status.st_size);
    stamp.mtime_ns = static_cast<std::int64_t>(status.st_mtim.tv_sec) * 1000000000 +
                     static_cast<std::int64_t>(status.st_mtim.tv_nsec);
    stamp.ctime_ns = static_cast<std::int64_t>(status.st_ctim.tv_sec) * 1000000000 +
                     static_cast<std::int64_t>(status.st_ctim.tv_nsec);
  }
  return stamp;
}

std::string cache_key(int sample_rate, const std::vector<FileStamp>& stamps) {
  Fnv1a64 hash;
  hash.add_field(kFormat);
  hash.add_field(sample_rate);
  for (const FileStamp& stamp : stamps) {
    hash.add_field(stamp.resolved_path);
    hash.add_field(stamp.size);
    hash.add_field(stamp.mtime_ns);
    hash.add_field(stamp.ctime_ns);
    if (!stamp.transform.empty()) hash.add_field(stamp.transform);
  }
  return hash.hex();
}

// Owns a file descriptor; closes it when destroyed.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool is_open() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

UniqueFd open_or_throw(const fs::path& path, int flags, const char* purpose) {
  int fd = -1;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, 0666);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    CADENZA_USER_ERROR("cannot open " << path.string() << " " << purpose << ": "
                                      << system_reason(errno));
  }
  return UniqueFd(fd);
}

void fsync_or_throw(int fd, const fs::path& path) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR)
      CADENZA_USER_ERROR("cannot fsync " << path.string() << ": " << system_reason(errno));
  }
}

void fsync_directory(const fs::path& directory) {
  const UniqueFd fd = open_or_throw(directory, O_RDONLY | O_DIRECTORY, "to sync it");
  fsync_or_throw(fd.get(), directory);
}

void write_all(int fd, const void* data, std::size_t bytes, const fs::path& path) {
  const char* next = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t written = ::write(fd, next, bytes);
    if (written < 0) {
      if (errno == EINTR) continue;
      CADENZA_USER_ERROR("cannot write " << path.string() << ": " << system_reason(errno));
    }
    next += written;
    bytes -= static_cast<std::size_t>(written);
  }
}

// The largest headroom a file may take: 2^100 above full scale is far beyond any audio, and
// 2^(100 - 15) still fits a float.
constexpr int kMaxHeadroomBits = 100;

// Samples as int16 at 2^-headroom_bits of their value: float x is stored as
// round(x * 32768 / 2^headroom_bits) (to nearest, ties to even) and read back as
// int16 * 2^headroom_bits / 32768. headroom_bits is the smallest that keeps every sample
// in range, so audio within full scale is stored exactly as 16-bit PCM, and the peaks above
// 1.0 that resampling a mastered track or decoding MP3 gives stay peaks (the decoder
// without the cache, as gpu_predict uses it, keeps them too).
struct Pcm16 {
  std::vector<std::int16_t> samples;
  int headroom_bits = 0;
};

// The decoder refuses NaN and infinite samples, so every sample here is finite.
Pcm16 to_pcm16(const std::vector<float>& samples) {
  double highest = 0.0, lowest = 0.0;
  for (const float sample : samples) {
    highest = std::max(highest, double(sample));
    lowest = std::min(lowest, double(sample));
  }
  // Rounded to nearest, x * 32768 stays within int16 below 32767.5 and from -32768.5 up.
  Pcm16 pcm;
  while (pcm.headroom_bits < kMaxHeadroomBits && (std::ldexp(highest * 32768.0, -pcm.headroom_bits) >= 32767.5 ||
                                                  std::ldexp(lowest * 32768.0, -pcm.headroom_bits) < -32768.5))
    ++pcm.headroom_bits;
  const float to_int = std::ldexp(32768.0f, -pcm.headroom_bits);
  pcm.samples.resize(samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const float scaled = std::clamp(samples[i] * to_int, -32768.0f, 32767.0f);
    pcm.samples[i] = static_cast<std::int16_t>(std::lrint(scaled));
  }
  return pcm;
}

// One file's decode result: samples, or the reason it has none.
struct DecodedFile {
  std::vector<std::int16_t> samples;
  int headroom_bits = 0;       // see Pcm16
  std::string failure_reason;  // empty when the file decoded
  std::string note;            // a doubt about samples that are used: "cut short: ..."
};

DecodedFile decode_file(const PcmSource& source, int sample_rate) {
  const fs::path& path = source.path;
  DecodedFile decoded;
  try {
    DecodedAudio audio = decode_audio(path);
    if (audio.cut_short())
      decoded.note = "cut short: " + std::to_string(audio.samples.size()) + " of the " +
                     std::to_string(audio.declared_frames) + " frames its header declares";
    std::vector<float> samples = audio.sample_rate == sample_rate
                                     ? std::move(audio.samples)
                                     : resample(audio.samples, audio.sample_rate, sample_rate);
    if (source.transformed() && !samples.empty())
      samples = stretch_and_shift(samples, sample_rate, source.stretch, source.semitones);
    Pcm16 pcm = to_pcm16(samples);
    decoded.samples = std::move(pcm.samples);
    decoded.headroom_bits = pcm.headroom_bits;
    if (decoded.samples.empty()) {
      decoded.failure_reason = "no audio (0 samples at " + std::to_string(sample_rate) + " Hz)";
    }
  } catch (const ResourceError&) {
    throw;  // the system's fault, not the file's: it stops the build and is not recorded
  } catch (const UserError& error) {
    // The decoder's messages start with the path; the manifest keeps only the reason.
    const std::string message = error.what();
    const std::string prefix = path.string() + ": ";
    decoded.failure_reason = message.starts_with(prefix) ? message.substr(prefix.size()) : message;
  }
  return decoded;
}

// Appends entries to shard files in a directory, opening a new shard when the next entry
// would take the current one past the size limit. Every shard is fsync()ed when closed.
class ShardWriter {
 public:
  struct Placement {
    int shard = 0;
    std::int64_t offset = 0;  // samples
  };

  ShardWriter(fs::path directory, std::int64_t shard_bytes)
      : directory_(std::move(directory)),
        shard_sample_limit_(std::max<std::int64_t>(1, shard_bytes / 2)) {}

  Placement append(const std::vector<std::int16_t>& samples) {
    const auto count = static_cast<std::int64_t>(samples.size());
    if (!fd_.is_open() ||
        (shard_samples_.back() > 0 && shard_samples_.back() + count > shard_sample_limit_)) {
      start_shard();
    }
    const Placement placement{static_cast<int>(shard_samples_.size() - 1), shard_samples_.back()};
    write_all(fd_.get(), samples.data(), samples.size() * sizeof(std::int16_t), current_path_);
    shard_samples_.back() += count;
    return placement;
  }

  // Closes the last shard; returns the samples held by each shard.
  const std::vector<std::int64_t>& finish() {
    close_shard();
    return shard_samples_;
  }

 private:
  void start_shard() {
    close_shard();
    current_path_ = directory_ / shard_name(shard_samples_.size());
    fd_ = open_or_throw(current_path_, O_WRONLY | O_CREAT | O_EXCL, "to write a PCM shard");
    shard_samples_.push_back(0);
  }
  void close_shard() {
    if (!fd_.is_open()) return;
    fsync_or_throw(fd_.get(), current_path_);
    fd_.reset();
  }

  fs::path directory_;
  std::int64_t shard_sample_limit_;
  UniqueFd fd_;
  fs::path current_path_;
  std::vector<std::int64_t> shard_samples_;
};

// A path as the manifest records it: the text itself when it is UTF-8, else "bytes:" and
// its bytes in hex, so that two names differing only in bytes that are not UTF-8 (Latin-1
// é and è) stay two files (valid_utf8 would make both U+FFFD).
std::string path_record(const std::string& path) {
  if (valid_utf8(path) == path) return path;
  static const char* kHex = "0123456789abcdef";
  std::string text = "bytes:";
  for (const unsigned char byte : path) {
    text += kHex[byte >> 4];
    text += kHex[byte & 15];
  }
  return text;
}

// The identity of one decode: a file as stamped (path, size, times, transform). Equal
// identities decode to equal samples, so a new cache copies them from an earlier one.
std::string decode_identity(const std::string& path, std::int64_t size, std::int64_t mtime_ns, std::int64_t ctime_ns,
                            const std::string& transform) {
  return path + '\0' + std::to_string(size) + '\0' + std::to_string(mtime_ns) + '\0' + std::to_string(ctime_ns) +
         '\0' + transform;
}

std::string stamp_identity(const FileStamp& stamp) {
  return decode_identity(path_record(stamp.resolved_path), stamp.size, stamp.mtime_ns, stamp.ctime_ns, stamp.transform);
}

// A file's decode in an earlier cache: where its samples lie, or why it failed.
struct EarlierDecode {
  fs::path shard;  // empty for a failure
  std::int64_t offset = 0, length = 0;
  int headroom_bits = 0;
  std::string failure_reason, note;
};

// One earlier cache: its directory, the number of files its manifest lists, their
// identities (all of them, or none when some entry predates identities) and its shards'
// bytes.
struct EarlierCache {
  fs::path directory;
  std::size_t files = 0;
  std::vector<std::string> identities;
  std::int64_t bytes = 0;
};

// Every complete or stopped cache under cache_root of this format and sample rate, and
// their decodes by identity. A cache that cannot be read is passed over (it is only a
// shortcut).
struct EarlierCaches {
  std::map<std::string, EarlierDecode> decodes;
  std::vector<EarlierCache> caches;
};

EarlierCaches earlier_caches(const fs::path& cache_root, int sample_rate) {
  EarlierCaches found;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(cache_root, error)) {
    const fs::path manifest_path = entry.path() / kManifestName;
    std::error_code unreadable;  // another user's private folder, a link loop: passed over
    if (!entry.is_directory(unreadable) || !fs::exists(manifest_path, unreadable)) continue;
    try {
      const Json manifest = Json::parse(read_file(manifest_path));
      if (manifest.at("format").get<std::string>() != kFormat || manifest.at("sample_rate").get<int>() != sample_rate)
        continue;
      EarlierCache cache{entry.path(), manifest.at("files").size(), {}, 0};
      bool every_file_identified = true;
      std::vector<fs::path> shards;
      for (const Json& shard : manifest.at("shards")) {
        shards.push_back(entry.path() / shard.at("file").get<std::string>());
        cache.bytes += 2 * shard.at("samples").get<std::int64_t>();
      }
      for (const Json& record : manifest.at("files")) {
        if (!record.contains("ctime_ns")) {
          every_file_identified = false;
          continue;
        }
        EarlierDecode decode;
        if (record.at("status").get<std::string>() == "ok") {
          decode.shard = shards.at(record.at("shard").get<std::size_t>());
          decode.offset = record.at("offset").get<std::int64_t>();
          decode.length = record.at("length").get<std::int64_t>();
          decode.headroom_bits = record.value("headroom_bits", 0);
          decode.note = record.value("note", std::string());
        } else {
          decode.failure_reason = record.at("reason").get<std::string>();
        }
        std::string identity = decode_identity(
            record.at("path").get<std::string>(), record.at("size").get<std::int64_t>(),
            record.at("mtime_ns").get<std::int64_t>(), record.at("ctime_ns").get<std::int64_t>(),
            record.value("transform", std::string()));
        cache.identities.push_back(identity);
        found.decodes.emplace(std::move(identity), std::move(decode));
      }
      if (!every_file_identified) cache.identities.clear();
      found.caches.push_back(std::move(cache));
    } catch (const std::exception&) {
      continue;
    }
  }
  return found;
}

// Whether a recorded failure was the system's (libsndfile's "System error : Too many open
// files."), which caches written before ResourceError kept as the file's: decoded again.
bool is_system_failure(const std::string& reason) { return reason.starts_with("System error"); }

// The earlier decode's samples read from its shard, or nullopt when they cannot be read
// (or the earlier failure was the system's, not the file's).
std::optional<DecodedFile> copy_earlier_decode(const EarlierDecode& earlier) {
  DecodedFile decoded;
  decoded.failure_reason = earlier.failure_reason;
  decoded.note = earlier.note;
  decoded.headroom_bits = earlier.headroom_bits;
  if (is_system_failure(earlier.failure_reason)) return std::nullopt;
  if (!earlier.failure_reason.empty()) return decoded;
  std::ifstream shard(earlier.shard, std::ios::binary);
  decoded.samples.resize(static_cast<std::size_t>(earlier.length));
  shard.seekg(static_cast<std::streamoff>(earlier.offset) * 2);
  shard.read(reinterpret_cast<char*>(decoded.samples.data()), static_cast<std::streamsize>(earlier.length) * 2);
  if (!shard || shard.gcount() != static_cast<std::streamsize>(earlier.length) * 2) return std::nullopt;
  return decoded;
}

// What build_cache_directory wrote: all the files, or fewer when options.stop_requested
// became true or the system refused to read one (ResourceError, its message kept here);
// the manifest then lists those first files.
struct BuiltFiles {
  std::size_t written = 0;
  std::string resource_failure;
};

// Decodes `sources` on `threads` threads and writes them in input order into `directory`
// (shards, then manifest.json). Reports progress through `log` from the calling thread.
BuiltFiles build_cache_directory(const fs::path& directory, const std::string& key,
                                 const std::vector<PcmSource>& sources, const std::vector<FileStamp>& stamps,
                                 const std::map<std::string, EarlierDecode>& earlier,
                                 const PcmCacheOptions& options, int threads, Logger& log) {
  const std::size_t file_count = sources.size();
  std::atomic<std::size_t> copied{0};
  // A file's decode: copied from an earlier cache when one holds it, else decoded.
  const auto decode_or_copy = [&](std::size_t index) {
    const auto found = earlier.find(stamp_identity(stamps[index]));
    if (found != earlier.end())
      if (std::optional<DecodedFile> copy = copy_earlier_decode(found->second)) {
        ++copied;
        return std::move(*copy);
      }
    return decode_file(sources[index], options.sample_rate);
  };
  const std::size_t reorder_window = 2 * static_cast<std::size_t>(threads);

  std::mutex mutex;
  std::condition_variable changed;
  std::size_t next_to_claim = 0;
  std::size_t next_to_write = 0;
  bool stopping = false;
  std::exception_ptr worker_exception;
  std::map<std::size_t, DecodedFile> decoded_waiting;

  auto decode_loop = [&] {
    for (;;) {
      std::size_t index = 0;
      {
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] {
          return stopping || next_to_claim >= file_count ||
                 next_to_claim < next_to_write + reorder_window;
        });
        if (stopping || next_to_claim >= file_count) return;
        index = next_to_claim++;
      }
      try {
        DecodedFile decoded = decode_or_copy(index);
        std::lock_guard lock(mutex);
        decoded_waiting.emplace(index, std::move(decoded));
      } catch (...) {
        std::lock_guard lock(mutex);
        if (!worker_exception) worker_exception = std::current_exception();
        stopping = true;
      }
      changed.notify_all();
    }
  };

  std::vector<std::thread> workers;
  // Stops and joins the workers however this function is left.
  struct StopAndJoin {
    std::mutex& mutex;
    std::condition_variable& changed;
    bool& stopping;
    std::vector<std::thread>& workers;
    ~StopAndJoin() {
      {
        std::lock_guard lock(mutex);
        stopping = true;
      }
      changed.notify_all();
      for (std::thread& worker : workers) worker.join();
    }
  } stop_and_join{mutex, changed, stopping, workers};
  for (int t = 0; t < threads; ++t) workers.emplace_back(decode_loop);

  Json file_records = Json::array();
  ShardWriter shards(directory, options.shard_bytes);
  const auto start = std::chrono::steady_clock::now();
  auto last_progress = start;
  std::size_t written = 0;
  std::string resource_failure;
  for (; written < file_count; ++written) {
    if (options.stop_requested && options.stop_requested()) break;
    const std::size_t index = written;
    DecodedFile decoded;
    {
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return worker_exception || decoded_waiting.contains(index); });
      if (worker_exception) {
        try {
          std::rethrow_exception(worker_exception);  // anything but a ResourceError leaves here
        } catch (const ResourceError& error) {
          resource_failure = error.what();
        }
      } else {
        decoded = std::move(decoded_waiting.extract(index).mapped());
        next_to_write = index + 1;
      }
    }
    if (!resource_failure.empty()) break;
    changed.notify_all();

    Json record = {{"path", path_record(stamps[index].resolved_path)},
                   {"size", stamps[index].size},
                   {"mtime_ns", stamps[index].mtime_ns},
                   {"ctime_ns", stamps[index].ctime_ns}};
    if (!stamps[index].transform.empty()) record["transform"] = stamps[index].transform;
    if (decoded.failure_reason.empty()) {
      const ShardWriter::Placement placement = shards.append(decoded.samples);
      record["status"] = "ok";
      record["shard"] = placement.shard;
      record["offset"] = placement.offset;
      record["length"] = static_cast<std::int64_t>(decoded.samples.size());
      if (decoded.headroom_bits > 0) record["headroom_bits"] = decoded.headroom_bits;
      if (!decoded.note.empty()) record["note"] = decoded.note;
    } else {
      record["status"] = "failed";
      record["reason"] = decoded.failure_reason;
    }
    file_records.push_back(std::move(record));

    const auto now = std::chrono::steady_clock::now();
    if (now - last_progress >= std::chrono::milliseconds(250) || index + 1 == file_count) {
      last_progress = now;
      const double elapsed = std::chrono::duration<double>(now - start).count();
      const double files_per_second =
          elapsed > 0.0 ? static_cast<double>(index + 1) / elapsed : 0.0;
      const double eta = files_per_second > 0.0
                             ? static_cast<double>(file_count - index - 1) / files_per_second
                             : 0.0;
      char text[160];
      std::snprintf(text, sizeof(text), "PCM cache: decoded %zu/%zu files, %.1f files/s, ETA %s",
                    index + 1, file_count, files_per_second, format_duration(eta).c_str());
      log.progress_line(text);
    }
  }
  log.end_progress();

  if (copied > 0)
    log.info("PCM cache: " + std::to_string(copied.load()) + " of " + std::to_string(file_count) +
             " files copied from earlier caches of the same files, the others decoded");

  Json shard_records = Json::array();
  const std::vector<std::int64_t>& shard_samples = shards.finish();
  for (std::size_t s = 0; s < shard_samples.size(); ++s) {
    shard_records.push_back({{"file", shard_name(s)}, {"samples", shard_samples[s]}});
  }
  const Json manifest = {{"format", kFormat},
                         {"key", key},
                         {"sample_rate", options.sample_rate},
                         {"shards", std::move(shard_records)},
                         {"files", std::move(file_records)}};
  write_file_atomically(directory / kManifestName, json_text(manifest, 2) + "\n");
  return {written, resource_failure};
}

// Removes what killed builds left (`<key>.building-*`) and a directory under the key that
// failed to open; only the holder of the key's lock may call this. Returns whether an
// incomplete cache directory was removed.
bool remove_leftovers(const fs::path& cache_root, const std::string& key) {
  const std::string building_prefix = key + ".building-";
  std::vector<fs::path> leftovers;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(cache_root, error)) {
    if (entry.path().filename().string().starts_with(building_prefix))
      leftovers.push_back(entry.path());
  }
  if (error) CADENZA_USER_ERROR("cannot list " << cache_root.string() << ": " << error.message());
  const fs::path directory = cache_root / key;
  const bool incomplete_cache = fs::exists(directory, error);
  if (incomplete_cache) leftovers.push_back(directory);
  for (const fs::path& leftover : leftovers) {
    fs::remove_all(leftover, error);
    if (error) CADENZA_USER_ERROR("cannot remove " << leftover.string() << ": " << error.message());
  }
  return incomplete_cache;
}

// The requested thread count (0: one per core), at least 1 and at most one per file.
int decode_thread_count(int requested, std::size_t file_count) {
  const std::size_t wanted = requested > 0 ? static_cast<std::size_t>(requested)
                                           : std::max(1u, std::thread::hardware_concurrency());
  return static_cast<int>(std::clamp<std::size_t>(wanted, 1, std::max<std::size_t>(file_count, 1)));
}

// Removes the earlier caches all of whose files the cache of `key` (made from `stamps`)
// holds, as when a file was added to a dataset: rebuilding one would only copy its files
// from that cache. Each goes under its key's lock and its readers' lock, manifest first, so
// that no build takes it for complete while it goes; one being built is left, and one being
// read is named and left. Best effort: a cache that cannot be removed stays.
void remove_subsumed_caches(const fs::path& cache_root, const std::string& key, const std::vector<FileStamp>& stamps,
                            const std::vector<EarlierCache>& caches, Logger& log) {
  std::set<std::string> held;
  for (const FileStamp& stamp : stamps) held.insert(stamp_identity(stamp));
  for (const EarlierCache& cache : caches) {
    const std::string name = cache.directory.filename().string();
    const std::string cache_key = name.substr(0, name.find('.'));
    if (cache_key == key || name.find(".building-") != std::string::npos || cache.identities.empty()) continue;
    if (!std::all_of(cache.identities.begin(), cache.identities.end(),
                     [&](const std::string& identity) { return held.contains(identity); }))
      continue;
    try {
      const std::optional<FileLock> lock = FileLock::try_acquire(cache_root / (cache_key + ".lock"));
      if (!lock) continue;
      const std::optional<FileLock> unread = FileLock::try_acquire(cache_root / (cache_key + ".readers"));
      if (!unread) {
        log.info("PCM cache: kept " + cache.directory.string() +
                 ", which a running process reads; the new cache holds every file of it, so it may be "
                 "deleted once that process ends");
        continue;
      }
      std::error_code error;
      fs::remove(cache.directory / kManifestName, error);
      if (error) continue;
      fs::remove_all(cache.directory, error);
      char size[32];
      std::snprintf(size, sizeof(size), "%.2f GiB", double(cache.bytes) / double(1LL << 30));
      log.info("PCM cache: removed " + cache.directory.string() + " (" + size +
               "): the new cache holds every file of it");
    } catch (const Error&) {
      continue;
    }
  }
}

// Builds the cache in `<key>.building-<pid>` and renames it to `<key>` once complete; then
// removes the earlier caches it makes redundant.
void build_and_publish(const fs::path& cache_root, const std::string& key,
                       const std::vector<PcmSource>& sources, const std::vector<FileStamp>& stamps,
                       const PcmCacheOptions& options, Logger& log) {
  const fs::path building = cache_root / (key + ".building-" + std::to_string(::getpid()));
  const fs::path directory = cache_root / key;
  const fs::path stopped = cache_root / (key + ".stopped");
  const EarlierCaches earlier = earlier_caches(cache_root, options.sample_rate);  // before `building` exists
  std::error_code error;
  fs::create_directory(building, error);
  if (error) CADENZA_USER_ERROR("cannot create " << building.string() << ": " << error.message());
  try {
    const BuiltFiles built = build_cache_directory(building, key, sources, stamps, earlier.decodes, options,
                                                   decode_thread_count(options.threads, sources.size()), log);
    const std::size_t written = built.written;
    fsync_directory(building);
    if (written < sources.size()) {
      // Kept for the next build to copy from, unless an earlier stop of this key kept more.
      const auto earlier_stop = std::find_if(earlier.caches.begin(), earlier.caches.end(),
                                             [&](const EarlierCache& cache) { return cache.directory == stopped; });
      const bool keep = written > (earlier_stop == earlier.caches.end() ? 0 : earlier_stop->files);
      if (keep) {
        fs::remove_all(stopped);
        fs::rename(building, stopped);
        fsync_directory(cache_root);
      } else {
        fs::remove_all(building);
      }
      const std::string what = "the decoded-audio cache was stopped after " + std::to_string(written) + " of " +
                               std::to_string(sources.size()) + " files; the next run decodes only the rest" +
                               (keep ? " (they are kept in " + stopped.string() + ")" : "");
      if (!built.resource_failure.empty()) throw ResourceError(built.resource_failure + "; " + what);
      throw Interrupted(what);
    }
    if (::rename(building.c_str(), directory.c_str()) != 0) {
      CADENZA_USER_ERROR("cannot rename " << building.string() << " to " << directory.string()
                                          << ": " << system_reason(errno));
    }
    fsync_directory(cache_root);
  } catch (...) {
    fs::remove_all(building, error);
    throw;
  }
  fs::remove_all(stopped, error);  // its files are in the complete cache now
  remove_subsumed_caches(cache_root, key, stamps, earlier.caches, log);
}

// The info line after opening, and a warning naming the files that end before their
// headers say. Files that cannot be decoded are counted here and named by the dataset's
// one line about files left out (warn_skipped_files), which lists them with the rest.
void report(const PcmCache& cache, bool built, double build_seconds, Logger& log) {
  std::int64_t total_samples = 0;
  for (std::size_t i = 0; i < cache.size(); ++i) total_samples += cache.length(i);
  const double hours = static_cast<double>(total_samples) / cache.sample_rate() / 3600.0;
  const double gib = static_cast<double>(total_samples) * 2.0 / static_cast<double>(1LL << 30);
  char summary[128];
  std::snprintf(summary, sizeof(summary),
                "%zu files, %.2f h of audio at %d Hz, %.2f GiB, %zu failed", cache.size(), hours,
                cache.sample_rate(), gib, cache.failures().size());
  if (built) {
    log.info("PCM cache built in " + format_duration(build_seconds) + ": " + summary + " (" +
             cache.directory().string() + ")");
  } else {
    log.info("PCM cache reused: " + std::string(summary) + " (" + cache.directory().string() + ")");
  }
  const std::vector<std::string>& short_files = cache.notes();
  if (short_files.empty()) return;
  std::ostringstream warning;
  warning << short_files.size() << " of " << cache.size()
          << " audio files end before their headers say and are used as far as they go: ";
  const std::size_t shown = std::min(short_files.size(), kShortFilesShownInWarning);
  for (std::size_t i = 0; i < shown; ++i) warning << (i > 0 ? "; " : "") << short_files[i];
  if (short_files.size() > shown)
    warning << "; and " << short_files.size() - shown << " more (all in "
            << (cache.directory() / kManifestName).string() << ")";
  log.warn(warning.str());
}

}  // namespace

PcmCache::MappedShard::MappedShard(const fs::path& path) {
  std::error_code missing;
  if (!fs::exists(path, missing) && !missing) throw CacheDamaged(path.string() + ": a PCM shard is missing");
  const UniqueFd fd = open_or_throw(path, O_RDONLY, "to map a PCM shard");
  struct stat status {};
  if (::fstat(fd.get(), &status) != 0) {
    CADENZA_USER_ERROR("cannot stat " << path.string() << ": " << system_reason(errno));
  }
  bytes_ = static_cast<std::size_t>(status.st_size);
  if (bytes_ == 0) throw CacheDamaged(path.string() + ": empty PCM shard");
  void* address = ::mmap(nullptr, bytes_, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (address == MAP_FAILED) {
    CADENZA_USER_ERROR("cannot map " << path.string() << ": " << system_reason(errno));
  }
  address_ = address;
}

PcmCache::MappedShard::~MappedShard() {
  if (address_ != nullptr) ::munmap(address_, bytes_);
}

PcmCache::MappedShard::MappedShard(MappedShard&& other) noexcept
    : address_(std::exchange(other.address_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

PcmCache::MappedShard& PcmCache::MappedShard::operator=(MappedShard&& other) noexcept {
  if (this != &other) {
    if (address_ != nullptr) ::munmap(address_, bytes_);
    address_ = std::exchange(other.address_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

PcmCache PcmCache::load(const fs::path& directory, const std::string& key, int sample_rate,
                        const std::vector<PcmSource>& sources, const std::vector<std::string>& recorded_paths) {
  const fs::path manifest_path = directory / kManifestName;
  const Json manifest = Json::parse(read_file(manifest_path));
  auto check = [&](bool condition, const std::string& what) {
    if (!condition) throw CacheDamaged(manifest_path.string() + ": " + what);
  };
  check(manifest.at("format").get<std::string>() == kFormat, "another cache format");
  check(manifest.at("key").get<std::string>() == key, "another key");
  check(manifest.at("sample_rate").get<int>() == sample_rate, "another sample rate");
  const Json& file_records = manifest.at("files");
  check(file_records.size() == sources.size(), "another number of files");

  PcmCache cache;
  cache.directory_ = directory;
  cache.sample_rate_ = sample_rate;
  for (const Json& shard : manifest.at("shards")) {
    const std::string name = shard.at("file").get<std::string>();
    check(name == shard_name(cache.shards_.size()), "unexpected shard name " + name);
    cache.shards_.emplace_back(directory / name);
    check(cache.shards_.back().sample_count() == shard.at("samples").get<std::int64_t>(),
          name + " does not hold the samples the manifest lists");
  }
  cache.entries_.reserve(sources.size());
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const Json& record = file_records[i];
    check(record.at("path").get<std::string>() == recorded_paths[i] &&
              record.value("transform", std::string()) == transform_text(sources[i]),
          "file " + std::to_string(i) + " is not " + source_name(sources[i]));
    Entry entry;
    if (record.at("status").get<std::string>() == "ok") {
      entry.shard = record.at("shard").get<int>();
      entry.offset = record.at("offset").get<std::int64_t>();
      entry.length = record.at("length").get<std::int64_t>();
      const int headroom_bits = record.value("headroom_bits", 0);
      check(headroom_bits >= 0 && headroom_bits <= kMaxHeadroomBits,
            "entry " + std::to_string(i) + " has headroom_bits " + std::to_string(headroom_bits));
      entry.scale = std::ldexp(1.0f, headroom_bits - 15);
      check(entry.shard >= 0 && static_cast<std::size_t>(entry.shard) < cache.shards_.size() &&
                entry.offset >= 0 && entry.length > 0 &&
                entry.offset + entry.length <=
                    cache.shards_[static_cast<std::size_t>(entry.shard)].sample_count(),
            "entry " + std::to_string(i) + " lies outside its shard");
      if (record.contains("note"))
        cache.notes_.push_back(source_name(sources[i]) + ": " + record.at("note").get<std::string>());
    } else {
      const std::string reason = record.at("reason").get<std::string>();
      check(!is_system_failure(reason), "file " + std::to_string(i) + " failed for the system, not itself");
      cache.failures_.push_back(source_name(sources[i]) + ": " + reason);
    }
    cache.entries_.push_back(entry);
  }
  return cache;
}

PcmCache PcmCache::open_or_build(const std::vector<fs::path>& files, const PcmCacheOptions& options,
                                 Logger& log) {
  std::vector<PcmSource> sources;
  sources.reserve(files.size());
  for (const fs::path& file : files) sources.push_back({file});
  return open_or_build(sources, options, log);
}

PcmCache PcmCache::open_or_build(const std::vector<PcmSource>& sources, const PcmCacheOptions& options,
                                 Logger& log) {
  if (options.cache_root.empty()) CADENZA_USER_ERROR("PCM cache: no cache directory given");
  if (options.sample_rate <= 0) {
    CADENZA_USER_ERROR("PCM cache: sample rate must be positive, got " << options.sample_rate);
  }
  if (options.threads < 0)
    CADENZA_USER_ERROR("PCM cache: threads must be 0 (all cores) or more, got " << options.threads);
  if (options.shard_bytes < 2)
    CADENZA_USER_ERROR("PCM cache: shard size must be at least 2 bytes, got "
                       << options.shard_bytes);
  std::error_code error;
  fs::create_directories(options.cache_root, error);
  if (error)
    CADENZA_USER_ERROR("cannot create " << options.cache_root.string() << ": " << error.message());

  std::vector<FileStamp> stamps;
  stamps.reserve(sources.size());
  for (const PcmSource& source : sources) stamps.push_back(stamp_file(source));
  // As the manifest records them: each load() compares with these instead of resolving every
  // path again (a look-up per path component).
  std::vector<std::string> recorded_paths;
  recorded_paths.reserve(stamps.size());
  for (const FileStamp& stamp : stamps) recorded_paths.push_back(path_record(stamp.resolved_path));
  const std::string key = cache_key(options.sample_rate, stamps);
  const fs::path directory = options.cache_root / key;

  // A directory under the key is complete or damaged, never in progress; a damaged one
  // opens as nothing and is rebuilt. One the system cannot open is an error, and stays.
  auto open_existing = [&]() -> std::optional<PcmCache> {
    std::error_code missing;
    if (!fs::exists(directory / kManifestName, missing)) return std::nullopt;
    try {
      return load(directory, key, options.sample_rate, sources, recorded_paths);
    } catch (const CacheDamaged&) {
      return std::nullopt;
    } catch (const Json::exception&) {
      return std::nullopt;
    }
  };

  std::optional<FileLock> readers_lock = FileLock::acquire_shared(options.cache_root / (key + ".readers"));
  std::optional<PcmCache> cache = open_existing();
  bool built = false;
  double build_seconds = 0.0;
  if (!cache) {
    const FileLock lock = FileLock::acquire(
        options.cache_root / (key + ".lock"),
        [&] { log.info("PCM cache " + directory.string() + " is being built by another process; waiting for it"); },
        options.stop_requested);
    cache = open_existing();
    if (!cache) {
      if (remove_leftovers(options.cache_root, key)) {
        log.info("PCM cache " + directory.string() + " was incomplete or damaged; rebuilding it");
      }
      const auto start = std::chrono::steady_clock::now();
      build_and_publish(options.cache_root, key, sources, stamps, options, log);
      build_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      cache = load(directory, key, options.sample_rate, sources, recorded_paths);
      built = true;
    }
  }
  cache->readers_lock_ = std::move(readers_lock);
  report(*cache, built, build_seconds, log);
  return std::move(*cache);
}

bool PcmCache::available(std::size_t i) const {
  CADENZA_CHECK(i < entries_.size(), "entry " << i << " of " << entries_.size());
  return entries_[i].shard >= 0;
}

std::int64_t PcmCache::length(std::size_t i) const {
  CADENZA_CHECK(i < entries_.size(), "entry " << i << " of " << entries_.size());
  return entries_[i].length;
}

void PcmCache::read(std::size_t i, std::int64_t offset, std::int64_t count, float* out) const {
  CADENZA_CHECK(i < entries_.size(), "entry " << i << " of " << entries_.size());
  CADENZA_CHECK(offset >= 0 && count >= 0, "offset " << offset << ", count " << count);
  const Entry& entry = entries_[i];
  const std::int64_t stored = std::clamp<std::int64_t>(entry.length - offset, 0, count);
  if (stored > 0) {
    const std::int16_t* samples =
        shards_[static_cast<std::size_t>(entry.shard)].samples() + entry.offset + offset;
    for (std::int64_t s = 0; s < stored; ++s) out[s] = static_cast<float>(samples[s]) * entry.scale;
  }
  std::fill(out + stored, out + count, 0.0f);
}

}  // namespace cadenza
