// Decoding audio files to mono float samples with libsndfile.
//
// Reads every container and codec this libsndfile was built with: WAV/WAVEX/RF64/W64,
// AU/SND (GTZAN), AIFF, CAF, FLAC, OGG/Vorbis, OGG/Opus, MP3 (MTAT, FMA) and the rarer
// formats in its list. Headerless data is refused, although libsndfile would read a .au
// file without a header as raw 8 kHz u-law samples.
//
// Invariants:
// - Samples are the mean of the file's channels (as librosa.to_mono and torchaudio's
//   mean over channels), at the file's own sample rate. Integer PCM is scaled to [-1, 1)
//   (a 16-bit value v becomes v / 32768); floating-point files keep their values, even
//   beyond [-1, 1]. NaN or infinite samples are refused.
// - Decoding reads until the decoder reports the end, never trusting the header's frame
//   count: a truncated file yields the samples it holds. libsndfile itself never returns
//   more frames than the count it reports. For an MP3 without a Xing/Info header that
//   count is mpg123's estimate from the file size and the first frame's bitrate, so a
//   variable-bitrate MP3 without one can be cut short (as soundfile and librosa cut it);
//   encoders that write VBR (LAME) write the header.
// - MP3 decoding is gapless: with LAME's Xing/Info tag, the encoder's priming and padding
//   samples are removed, so the length is the encoded signal's.
// - Every problem with the file (missing, unreadable, empty, corrupt, undecodable, an
//   implausible sample rate, no samples) throws UserError whose one-line message starts
//   with the path; garbage input never crashes. Wrong arguments from the caller (a
//   negative window) throw Error. mpg123 itself writes notes on corrupt MP3 data to
//   stderr ("Note: Illegal Audio-MPEG-Header ..."); libsndfile offers no way to silence it.
// - Thread-safe: each call opens its own libsndfile handle. Only sf_open() is serialised,
//   because libsndfile keeps the reason of a failed open in process-wide state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace cadenza {

struct DecodedAudio {
  int sample_rate = 0;      // Hz, the file's own rate
  int source_channels = 0;  // channels in the file, before the downmix
  std::vector<float> samples;  // mono
  // Frames the header declares when more than were decoded, else -1 (MP3 lengths, which
  // are estimates, are not judged).
  std::int64_t declared_frames = -1;

  double seconds() const;
  // Fewer frames decoded than the header declares: a file cut short (a broken download),
  // whose samples are those it still holds.
  bool cut_short() const { return declared_frames > std::int64_t(samples.size()); }
};

// What the header declares, without decoding.
struct AudioInfo {
  int sample_rate = 0;
  int channels = 0;
  // Frames the header declares, or -1 when it declares none (an MP3 stream whose length
  // mpg123 cannot tell). For an MP3 without a Xing/Info header this is mpg123's estimate
  // from the file size; decoding may then return a different count.
  std::int64_t frames = -1;

  double seconds() const;  // frames / sample_rate, or -1 when frames is unknown
};

// Reads the header; throws UserError "<path>: cannot decode audio: <reason>".
AudioInfo probe_audio(const std::filesystem::path& path);

// Decodes the whole file. Throws UserError "<path>: cannot decode audio: <reason>" (the
// reason is libsndfile's where it gives one) and "<path>: no audio (0 samples)".
DecodedAudio decode_audio(const std::filesystem::path& path);

// Decodes only the window [start, start + duration) seconds, rounded to the nearest
// frames. It seeks where libsndfile seeks exactly (PCM containers, FLAC, Vorbis, Opus);
// for MP3, whose seek in libsndfile 1.2 is not sample-accurate, and for streams of unknown
// length it decodes and drops the frames before the window. A window running past the end
// is cut short; one starting at or after the end throws UserError "<path>: no audio (0
// samples) in the window ...". The samples equal the same slice of decode_audio(path).
// start >= 0 and duration > 0, both finite (Error otherwise).
DecodedAudio decode_audio(const std::filesystem::path& path, double start_seconds,
                          double duration_seconds);

// Whether the file name ends in an extension of a format read here (.wav, .au, .aif,
// .aiff, .flac, .ogg, .opus, .mp3; any case): what a folder of music is searched for.
bool has_audio_extension(const std::filesystem::path& path);
// Those extensions without their dots, for messages: "wav, au, aif, aiff, flac, ogg, opus, mp3".
std::string audio_extensions_text();

// decode_audio(path), then resample() to `sample_rate` (Hz, positive).
std::vector<float> load_audio(const std::filesystem::path& path, int sample_rate);

}  // namespace cadenza
