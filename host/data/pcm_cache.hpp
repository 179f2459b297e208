// The decoded-audio cache: every file of a dataset decoded, downmixed and resampled once,
// stored as int16 PCM in shard files that training processes memory-map.
//
// Invariants:
// - A cache lives in `cache_root/<key>/`, where the key hashes the format, the sample rate
//   and every input file's absolute path (links resolved), size, modification and
//   status-change times and transform (see pcm_cache.cpp). Any change to the inputs gives
//   another key, so a stale cache is never reused. A build copies each file whose path, size, times and transform
//   an earlier cache under cache_root holds (same format and rate) from that cache's shard
//   instead of decoding it again: adding a file to a dataset decodes that file only. A
//   complete build then removes each earlier cache (of another key, not being built or
//   read) all of whose files it holds, since rebuilding that one would only copy them
//   back: the cache of a dataset that grew does not stay beside the new one.
// - A PcmCache holds a shared flock() on `cache_root/<key>.readers` for its lifetime (when
//   the folder allows one), and a build removes an earlier cache only when it can lock that
//   file exclusively: a run on another node of a shared filesystem keeps reading its cache
//   while a run of the grown dataset builds the new one.
// - A cache directory is complete once it exists under its key: it is built in
//   `<key>.building-<pid>/`, its shards and manifest.json are fsync()ed, and only then is it
//   renamed to `<key>/`. A directory under the key whose manifest is missing or does not
//   match the inputs is treated as missing and rebuilt.
// - Builds of one key are serialised by an exclusive flock() on `cache_root/<key>.lock`: a
//   process that finds a build under way waits for it and opens its result. The holder of
//   the lock removes `<key>.building-*` directories left by killed builds.
// - A file that cannot be decoded is recorded with its reason and skipped; a failure of the
//   system's (ResourceError: too many open files, no memory, an I/O fault) is never
//   recorded: it stops the build as a stop does. A cache the system cannot open is an
//   error, never taken for a damaged one and removed.
// - A build stopped on request (PcmCacheOptions::stop_requested) keeps the files it wrote,
//   the first n of the inputs, as `<key>.stopped/` with their manifest: the next build of
//   the key copies them and decodes only the rest. Of two stopped builds of one key the one
//   with more files is kept; a complete build removes it.
// - Shard bytes and manifest are the same whatever the thread count: files are decoded in
//   parallel but written in input order.
// - A PcmCache owns read-only MAP_SHARED mappings of its shards (so processes reading the
//   same cache share the page cache) and unmaps them when destroyed; it is move-only, and
//   read() is safe from many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "host/core/logger.hpp"
#include "host/io/file_lock.hpp"

namespace cadenza {

// One entry of a cache: a file decoded at the cache's rate, then, for offline
// augmentation, time-stretched by `stretch` (rate, > 1 faster) and pitch-shifted by
// `semitones` (host/audio/time_pitch.hpp).
struct PcmSource {
  std::filesystem::path path;
  double stretch = 1.0;
  double semitones = 0.0;
  bool transformed() const { return stretch != 1.0 || semitones != 0.0; }
};

struct PcmCacheOptions {
  std::filesystem::path cache_root;  // caches live in cache_root/<key>/
  int sample_rate = 16000;           // Hz, the rate every file is resampled to
  int threads = 0;                   // decode threads; 0: std::thread::hardware_concurrency()
  // A new shard starts when the next entry would take the current one past this size (an
  // entry larger than this gets a shard of its own). Only the layout depends on it, so a
  // cache built with another value is reused as it is.
  std::int64_t shard_bytes = std::int64_t{1} << 30;
  // When set, a build asks it before each file (from the calling thread) and, once it
  // answers true, keeps what it wrote (see above) and throws Interrupted.
  std::function<bool()> stop_requested;
};

class PcmCache {
 public:
  // Opens the cache of exactly these files at this rate, building it first if it is
  // missing. Files that cannot be decoded are skipped: recorded with their reason and
  // reported through `log` as one warning line with the count and the first few, never
  // fatal. Throws UserError for an unusable cache_root or a failed write.
  static PcmCache open_or_build(const std::vector<PcmSource>& sources, const PcmCacheOptions& options,
                                Logger& log);
  // The same for plain files (no transform).
  static PcmCache open_or_build(const std::vector<std::filesystem::path>& files,
                                const PcmCacheOptions& options, Logger& log);

  PcmCache(PcmCache&&) noexcept = default;
  PcmCache& operator=(PcmCache&&) noexcept = default;
  PcmCache(const PcmCache&) = delete;
  PcmCache& operator=(const PcmCache&) = delete;
  ~PcmCache() = default;

  int sample_rate() const { return sample_rate_; }
  std::size_t size() const { return entries_.size(); }  // one entry per input file, same order
  bool available(std::size_t i) const;                  // false when the file failed to decode
  std::int64_t length(std::size_t i) const;             // samples (0 when unavailable)
  // Writes samples [offset, offset + count) of entry i as the decoder gave them (peaks above
  // 1.0 included; 16-bit precision relative to the file's full scale or peak), zero past the
  // end (all zeros for an unavailable entry). offset and count are non-negative.
  void read(std::size_t i, std::int64_t offset, std::int64_t count, float* out) const;
  const std::vector<std::string>& failures() const { return failures_; }  // "<path>: <reason>"
  // Files used although they hold fewer frames than their headers declare: "<path>: cut short: ...".
  const std::vector<std::string>& notes() const { return notes_; }
  const std::filesystem::path& directory() const { return directory_; }

 private:
  // One shard file mapped read-only; unmapped when destroyed.
  class MappedShard {
   public:
    explicit MappedShard(const std::filesystem::path& path);
    ~MappedShard();
    MappedShard(MappedShard&& other) noexcept;
    MappedShard& operator=(MappedShard&& other) noexcept;
    MappedShard(const MappedShard&) = delete;
    MappedShard& operator=(const MappedShard&) = delete;

    const std::int16_t* samples() const { return static_cast<const std::int16_t*>(address_); }
    std::int64_t sample_count() const { return static_cast<std::int64_t>(bytes_ / 2); }

   private:
    void* address_ = nullptr;
    std::size_t bytes_ = 0;
  };

  struct Entry {
    int shard = -1;           // -1: the file failed to decode
    std::int64_t offset = 0;  // first sample within the shard
    std::int64_t length = 0;  // samples
    float scale = 1.0f / 32768.0f;  // float = int16 * scale: 2^headroom_bits / 32768
  };

  // Maps a complete cache directory whose manifest must describe exactly these inputs,
  // recorded under `recorded_paths` (one per source, as the build wrote them); throws Error
  // (or nlohmann::json's exception for a malformed manifest) otherwise.
  static PcmCache load(const std::filesystem::path& directory, const std::string& key, int sample_rate,
                       const std::vector<PcmSource>& sources, const std::vector<std::string>& recorded_paths);

  PcmCache() = default;

  std::optional<FileLock> readers_lock_;  // released after the shards are unmapped
  std::filesystem::path directory_;
  int sample_rate_ = 0;
  std::vector<Entry> entries_;
  std::vector<MappedShard> shards_;
  std::vector<std::string> failures_;
  std::vector<std::string> notes_;
};

}  // namespace cadenza
