// Decoding with libsndfile: open, optionally seek, read interleaved float blocks and
// average each frame's channels.
//
// Invariants:
// - A handle lives in a SndfileHandle from sf_open() to its end of scope, so every exit,
//   exceptions included, closes it.
// - Reads go through one block buffer of at most kBlockSamples interleaved samples and
//   stop only when sf_readf_float() returns no frame; a decoder error reported then by
//   sf_error() is a UserError, a short file is not.
// - Memory reserved up front is capped, so a header declaring absurd lengths cannot
//   exhaust memory before a single frame is read.
#include "host/audio/audio_decoder.hpp"

#include <sndfile.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>

#include "host/audio/resampler.hpp"
#include "host/core/error.hpp"
#include "host/core/text.hpp"

namespace cadenza {
namespace {

namespace fs = std::filesystem;

// Interleaved samples per sf_readf_float() call.
constexpr std::size_t kBlockSamples = std::size_t{1} << 16;
// At most this many samples are reserved before decoding (about 6 minutes at 44.1 kHz);
// longer files grow the vector as they decode.
constexpr std::int64_t kMaxReservedSamples = std::int64_t{1} << 24;
// Frame positions are clamped here so that any finite window converts without overflow.
constexpr double kMaxFramePosition = 1e15;
// Sample rates outside this range come from a corrupt header; resampling them to a usual
// rate could ask for absurd amounts of memory.
constexpr int kMinSampleRate = 1000;
constexpr int kMaxSampleRate = 1000000;

struct SndfileCloser {
  void operator()(SNDFILE* file) const { sf_close(file); }
};
using SndfileHandle = std::unique_ptr<SNDFILE, SndfileCloser>;

struct OpenedAudio {
  SndfileHandle file;
  SF_INFO info{};
};

[[noreturn]] void throw_cannot_decode(const fs::path& path, std::string_view reason) {
  CADENZA_USER_ERROR(path.string() << ": cannot decode audio: " << reason);
}

// libsndfile's messages may end in a newline; the user's line must not.
std::string without_trailing_space(std::string message) {
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) {
    message.pop_back();
  }
  return message;
}

// libsndfile's reason for a failed sf_open() of a regular file. It reports a stream its
// decoder cannot start (mpg123 finding no MPEG frame in a .mp3 file) as "File does not
// exist or is not a regular file (possibly a pipe?)", which would mislead.
std::string open_failure_reason(const char* message) {
  std::string reason = without_trailing_space(message);
  if (reason.rfind("File does not exist or is not a regular file", 0) == 0) {
    return "no decodable audio stream found";
  }
  return reason;
}

// Whether an open() that failed with `error` says something of the system rather than of
// the file: a limit reached, memory, an I/O or network fault. Such a failure may not recur.
bool is_resource_failure(int error) {
  switch (error) {
    case EMFILE: case ENFILE: case ENOMEM: case EIO: case ESTALE: case ETIMEDOUT: case EAGAIN: case EINTR:
    case ENOBUFS:
      return true;
    default:
      return false;
  }
}

OpenedAudio open_audio(const fs::path& path) {
  std::error_code status_error;
  const fs::file_status status = fs::status(path, status_error);
  if (status.type() == fs::file_type::not_found) throw_cannot_decode(path, "no such file");
  if (status_error) throw_cannot_decode(path, status_error.message());
  if (fs::is_directory(status)) throw_cannot_decode(path, "is a directory");
  // A pipe, socket or device: opening a pipe would wait for a writer for ever.
  if (!fs::is_regular_file(status)) throw_cannot_decode(path, "not a regular file (a pipe, socket or device)");
  std::error_code size_error;
  if (fs::file_size(path, size_error) == 0 && !size_error) throw_cannot_decode(path, "empty file (0 bytes)");

  OpenedAudio audio;
  {
    // sf_open() writes its outcome to libsndfile's process-wide error state, which
    // sf_strerror(nullptr) reads back; one open at a time keeps each reason its own.
    static std::mutex open_mutex;
    const std::lock_guard<std::mutex> lock(open_mutex);
    errno = 0;
    audio.file.reset(sf_open(path.c_str(), SFM_READ, &audio.info));
    if (!audio.file) {
      const int open_error = errno;
      if (sf_error(nullptr) == SF_ERR_SYSTEM && is_resource_failure(open_error))
        throw ResourceError(path.string() + ": cannot open: " +
                            std::error_code(open_error, std::generic_category()).message() +
                            " (the system's limit or fault, not the file's)");
      throw_cannot_decode(path, open_failure_reason(sf_strerror(nullptr)));
    }
  }
  if ((audio.info.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_RAW) {
    throw_cannot_decode(path, "no audio header (not a known audio format)");
  }
  if (audio.info.channels < 1 || audio.info.samplerate < kMinSampleRate ||
      audio.info.samplerate > kMaxSampleRate) {
    throw_cannot_decode(path, "implausible header: " + std::to_string(audio.info.channels) +
                                  " channel(s) at " + std::to_string(audio.info.samplerate) +
                                  " Hz");
  }
  // Integer PCM comes back divided by 2^(bits-1); libsndfile's default, made explicit.
  sf_command(audio.file.get(), SFC_SET_NORM_FLOAT, nullptr, SF_TRUE);
  return audio;
}

// Reads up to `max_frames` frames (until the end when negative). With `mono`, appends
// each frame's channel mean to it; without, drops the frames. Returns the frames read.
std::int64_t read_frames(const OpenedAudio& audio, const fs::path& path,
                         std::int64_t max_frames, std::vector<float>* mono) {
  const int channels = audio.info.channels;
  const std::int64_t block_frames =
      std::max<std::int64_t>(1, static_cast<std::int64_t>(kBlockSamples) / channels);
  std::vector<float> block(static_cast<std::size_t>(block_frames * channels));
  std::int64_t frames_read = 0;
  while (max_frames < 0 || frames_read < max_frames) {
    const std::int64_t wanted =
        max_frames < 0 ? block_frames : std::min(block_frames, max_frames - frames_read);
    const sf_count_t got = sf_readf_float(audio.file.get(), block.data(), wanted);
    if (got <= 0) break;
    frames_read += got;
    if (mono == nullptr) continue;
    const std::size_t old_size = mono->size();
    mono->resize(old_size + static_cast<std::size_t>(got));
    float* out = mono->data() + old_size;
    if (channels == 1) {
      std::copy(block.begin(), block.begin() + got, out);
      continue;
    }
    for (sf_count_t frame = 0; frame < got; ++frame) {
      const float* sample = block.data() + frame * channels;
      float sum = 0.0f;
      for (int channel = 0; channel < channels; ++channel) sum += sample[channel];
      out[frame] = sum / static_cast<float>(channels);
    }
  }
  if (sf_error(audio.file.get()) != SF_ERR_NO_ERROR) {
    throw_cannot_decode(path, without_trailing_space(sf_strerror(audio.file.get())));
  }
  return frames_read;
}

// Moves the read position to `start_frame`: by seeking where libsndfile seeks to the
// exact frame, otherwise by decoding and dropping the frames before it. MP3 is never
// sought: libsndfile 1.2's mpg123 seek can land frames away from the target and start
// without the bit reservoir, so the samples would differ from a full decode.
void skip_to_frame(const OpenedAudio& audio, const fs::path& path, std::int64_t start_frame) {
  if (start_frame == 0) return;
  const bool seeks_exactly = (audio.info.format & SF_FORMAT_TYPEMASK) != SF_FORMAT_MPEG;
  if (audio.info.seekable && seeks_exactly) {
    // libsndfile never reads past the frame count it reports, so a start beyond it is the
    // end of the audio.
    const sf_count_t target = std::min<sf_count_t>(start_frame, audio.info.frames);
    if (sf_seek(audio.file.get(), target, SEEK_SET) != target) {
      throw_cannot_decode(path, "cannot seek to frame " + std::to_string(target) + ": " +
                                    without_trailing_space(sf_strerror(audio.file.get())));
    }
    return;
  }
  read_frames(audio, path, start_frame, nullptr);
}

void reserve_for(const SF_INFO& info, std::vector<float>& samples) {
  if (info.frames > 0 && info.frames < SF_COUNT_MAX) {
    samples.reserve(static_cast<std::size_t>(std::min<std::int64_t>(info.frames,
                                                                     kMaxReservedSamples)));
  }
}

// The frames the header declares when it declares more than were decoded. Stream formats
// (FLAC, Vorbis, Opus) give their count in SF_INFO. For RIFF/WAV libsndfile trims SF_INFO
// to the bytes present and notes the header's own size in its log, as "data : 20000
// (should be 12000)": the declared frames are then the decoded ones scaled by that ratio.
// MP3 lengths are estimates, never judged. -1 when the header declares nothing more.
std::int64_t declared_frames(const OpenedAudio& audio, std::int64_t decoded) {
  if ((audio.info.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG) return -1;
  if (audio.info.frames > decoded && audio.info.frames < SF_COUNT_MAX) return audio.info.frames;
  char log[4096] = {};
  sf_command(audio.file.get(), SFC_GET_LOG_INFO, log, sizeof log);
  for (std::string_view rest(log); !rest.empty();) {
    const std::size_t end = std::min(rest.find('\n'), rest.size());
    const std::string line(rest.substr(0, end));
    rest.remove_prefix(std::min(end + 1, rest.size()));
    long long written = 0, present = 0;
    if (std::sscanf(line.c_str(), "data : %lld (should be %lld)", &written, &present) == 2 && present > 0 &&
        written > present)
      return static_cast<std::int64_t>(std::llround(double(decoded) * double(written) / double(present)));
  }
  return -1;
}

void require_finite(const fs::path& path, const std::vector<float>& samples) {
  const bool all_finite = std::all_of(samples.begin(), samples.end(),
                                      [](float sample) { return std::isfinite(sample); });
  if (!all_finite) throw_cannot_decode(path, "samples that are NaN or infinite");
}

std::int64_t nearest_frame(double seconds, int sample_rate) {
  return std::llround(std::min(seconds * sample_rate, kMaxFramePosition));
}

}  // namespace

double DecodedAudio::seconds() const {
  return sample_rate > 0 ? static_cast<double>(samples.size()) / sample_rate : 0.0;
}

double AudioInfo::seconds() const {
  return frames >= 0 && sample_rate > 0 ? static_cast<double>(frames) / sample_rate : -1.0;
}

AudioInfo probe_audio(const fs::path& path) {
  const OpenedAudio audio = open_audio(path);
  AudioInfo info;
  info.sample_rate = audio.info.samplerate;
  info.channels = audio.info.channels;
  info.frames = audio.info.frames < SF_COUNT_MAX ? audio.info.frames : -1;
  return info;
}

DecodedAudio decode_audio(const fs::path& path) {
  const OpenedAudio audio = open_audio(path);
  DecodedAudio decoded;
  decoded.sample_rate = audio.info.samplerate;
  decoded.source_channels = audio.info.channels;
  reserve_for(audio.info, decoded.samples);
  read_frames(audio, path, -1, &decoded.samples);
  if (decoded.samples.empty()) CADENZA_USER_ERROR(path.string() << ": no audio (0 samples)");
  require_finite(path, decoded.samples);
  decoded.declared_frames = declared_frames(audio, static_cast<std::int64_t>(decoded.samples.size()));
  return decoded;
}

DecodedAudio decode_audio(const fs::path& path, double start_seconds,
                          double duration_seconds) {
  CADENZA_CHECK(std::isfinite(start_seconds) && start_seconds >= 0.0,
                "window start must be finite and >= 0, got " << start_seconds);
  CADENZA_CHECK(std::isfinite(duration_seconds) && duration_seconds > 0.0,
                "window duration must be finite and > 0, got " << duration_seconds);
  const OpenedAudio audio = open_audio(path);
  const int sample_rate = audio.info.samplerate;
  const std::int64_t start_frame = nearest_frame(start_seconds, sample_rate);
  const std::int64_t end_frame = nearest_frame(start_seconds + duration_seconds, sample_rate);
  const std::int64_t window_frames = std::max<std::int64_t>(1, end_frame - start_frame);

  DecodedAudio decoded;
  decoded.sample_rate = sample_rate;
  decoded.source_channels = audio.info.channels;
  decoded.samples.reserve(static_cast<std::size_t>(std::min(window_frames, kMaxReservedSamples)));
  skip_to_frame(audio, path, start_frame);
  read_frames(audio, path, window_frames, &decoded.samples);
  if (decoded.samples.empty()) {
    CADENZA_USER_ERROR(path.string() << ": no audio (0 samples) in the window starting at "
                                     << start_seconds << " s");
  }
  require_finite(path, decoded.samples);
  return decoded;
}

std::vector<float> load_audio(const fs::path& path, int sample_rate) {
  CADENZA_CHECK(sample_rate > 0, "sample rate must be positive, got " << sample_rate);
  DecodedAudio decoded = decode_audio(path);
  if (decoded.sample_rate == sample_rate) return std::move(decoded.samples);
  return resample(decoded.samples, decoded.sample_rate, sample_rate);
}

namespace {
const char* const kAudioExtensions[] = {".wav", ".au", ".aif", ".aiff", ".flac", ".ogg", ".opus", ".mp3"};
}  // namespace

bool has_audio_extension(const std::filesystem::path& path) {
  const std::string extension = ascii_lowercase(path.extension().string());
  return std::any_of(std::begin(kAudioExtensions), std::end(kAudioExtensions),
                     [&](const char* known) { return extension == known; });
}

std::string audio_extensions_text() {
  std::string text;
  for (const char* extension : kAudioExtensions) text += (text.empty() ? "" : ", ") + std::string(extension + 1);
  return text;
}

}  // namespace cadenza
