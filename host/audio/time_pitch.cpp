// Time-stretching and pitch-shifting with Rubber Band's RubberBandStretcher, offline mode.
//
// Invariants:
// - Options: OptionProcessOffline (the whole clip is known: Rubber Band pads and compensates
//   its delay itself, so output sample t lines up with input sample t * rate), OptionEngineFiner
//   (R3, Rubber Band's higher-quality engine for mixes, soft onsets and bass), the default
//   multi-resolution window (OptionWindowStandard), OptionFormantShifted (the whole spectrum
//   moves, as in a resampled recording), OptionThreadingNever (R3 has no threads today; this
//   keeps it so if a later version adds some). OptionPitchHighQuality states the intent, but
//   Rubber Band 3.1 ignores it offline: there R3 always stretches, then resamples.
// - Protocol: study() sees the clip and its silent tail, then process() takes blocks of
//   kBlockSamples (declared with setMaxProcessSize) and everything available() is
//   retrieve()d after each block, so the output buffer never fills. Feeding stops once
//   stretched_length() samples are out: later input only appends output, so stopping
//   early changes no sample and skips most of the tail's work (checked against runs to the
//   end).
// - Rubber Band's output depends on how the input is cut into process() calls (each call
//   picks one output hop for all the frames it completes); near the end of a clip another
//   cutting changes samples by up to ~0.3. Here the cuts depend on n only (blocks from the
//   clip's start, then from the tail's start), so the bytes depend on the arguments only.
// - setExpectedInputDuration() and study() give Rubber Band the length of clip + tail, so
//   its own target length, round((n + tail) / rate), always exceeds ours.
#include "host/audio/time_pitch.hpp"

#include <rubberband/RubberBandStretcher.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>
#include <string>

#include "host/core/error.hpp"

namespace cadenza {
namespace {

using RubberBand::RubberBandStretcher;

// Samples per process() call.
constexpr std::size_t kBlockSamples = 1024;

// Silence after the clip: sample_rate / kTailDivisor samples, a quarter second. That is ten
// times the most found missing at the end of a clip without it (23 ms, at 22.05 kHz, rate 4,
// -24 semitones; the corners of the accepted ranges at 8 to 48 kHz were searched).
constexpr int kTailDivisor = 4;

constexpr RubberBandStretcher::Options kOptions =
    RubberBandStretcher::OptionProcessOffline | RubberBandStretcher::OptionEngineFiner |
    RubberBandStretcher::OptionWindowStandard | RubberBandStretcher::OptionFormantShifted |
    RubberBandStretcher::OptionPitchHighQuality | RubberBandStretcher::OptionThreadingNever;

// Keeps Rubber Band's messages (at debug level 0: errors and warnings) instead of letting
// them go to std::cerr.
class MessageCollector : public RubberBandStretcher::Logger {
 public:
  void log(const char* message) override { messages_.emplace_back(message); }
  void log(const char* message, double a) override {
    std::ostringstream os;
    os << message << ' ' << a;
    messages_.push_back(os.str());
  }
  void log(const char* message, double a, double b) override {
    std::ostringstream os;
    os << message << ' ' << a << ' ' << b;
    messages_.push_back(os.str());
  }
  const std::vector<std::string>& messages() const { return messages_; }

 private:
  std::vector<std::string> messages_;
};

void check_arguments(const std::vector<float>& samples, int sample_rate, double rate,
                     double semitones) {
  if (sample_rate < kTimePitchMinSampleRate || sample_rate > kTimePitchMaxSampleRate) {
    CADENZA_USER_ERROR("stretch_and_shift: sample_rate must be " << kTimePitchMinSampleRate
                       << " to " << kTimePitchMaxSampleRate << " Hz (Rubber Band's range), got "
                       << sample_rate << "; resample the clip first");
  }
  if (!std::isfinite(rate) || rate < kTimePitchMinRate || rate > kTimePitchMaxRate) {
    CADENZA_USER_ERROR("stretch_and_shift: rate (speed factor, > 1 is faster) must be "
                       << kTimePitchMinRate << " to " << kTimePitchMaxRate << ", got " << rate);
  }
  if (!std::isfinite(semitones) || std::fabs(semitones) > kTimePitchMaxSemitones) {
    CADENZA_USER_ERROR("stretch_and_shift: semitones must be " << -kTimePitchMaxSemitones
                       << " to " << kTimePitchMaxSemitones << ", got " << semitones);
  }
  const auto bad = std::find_if(samples.begin(), samples.end(),
                                [](float sample) { return !std::isfinite(sample); });
  if (bad != samples.end()) {
    CADENZA_USER_ERROR("stretch_and_shift: samples must be finite, but sample "
                       << (bad - samples.begin()) << " of " << samples.size() << " is " << *bad);
  }
}

}  // namespace

std::size_t stretched_length(std::size_t num_samples, double rate) {
  CADENZA_CHECK(std::isfinite(rate) && rate > 0.0, "rate must be positive, got " << rate);
  return static_cast<std::size_t>(std::round(static_cast<double>(num_samples) / rate));
}

std::vector<float> stretch_and_shift(const std::vector<float>& samples, int sample_rate,
                                     double rate, double semitones) {
  check_arguments(samples, sample_rate, rate, semitones);
  const std::size_t output_length = stretched_length(samples.size(), rate);
  std::vector<float> output;
  if (output_length == 0) return output;  // empty input, or one sample at rate > 2

  auto messages = std::make_shared<MessageCollector>();
  RubberBandStretcher stretcher(static_cast<std::size_t>(sample_rate), 1, messages, kOptions,
                                1.0 / rate, std::pow(2.0, semitones / 12.0));
  // A library older than 3.0 ignores OptionEngineFiner; asking links only against 3.0+.
  CADENZA_CHECK(stretcher.getEngineVersion() == 3,
                "Rubber Band runs engine R" << stretcher.getEngineVersion() << ", not R3");
  stretcher.setDebugLevel(0);

  const std::vector<float> tail(static_cast<std::size_t>(sample_rate / kTailDivisor), 0.0f);
  stretcher.setExpectedInputDuration(samples.size() + tail.size());
  stretcher.setMaxProcessSize(kBlockSamples);
  const float* channel = samples.data();
  stretcher.study(&channel, samples.size(), false);
  channel = tail.data();
  stretcher.study(&channel, tail.size(), true);

  output.reserve(output_length + kBlockSamples);
  const auto retrieve_available = [&] {
    for (int available = stretcher.available(); available > 0;
         available = stretcher.available()) {
      const std::size_t old_size = output.size();
      const auto wanted = static_cast<std::size_t>(available);
      output.resize(old_size + wanted);
      float* destination = output.data() + old_size;
      output.resize(old_size + stretcher.retrieve(&destination, wanted));
    }
  };
  // The clip, then the tail, whose last block is the final one.
  for (const std::vector<float>* part : {&samples, &tail}) {
    for (std::size_t offset = 0; offset < part->size() && output.size() < output_length;
         offset += kBlockSamples) {
      const std::size_t count = std::min(kBlockSamples, part->size() - offset);
      channel = part->data() + offset;
      stretcher.process(&channel, count, part == &tail && offset + count == part->size());
      retrieve_available();
    }
  }

  if (!messages->messages().empty()) {
    std::ostringstream os;
    os << "Rubber Band reported a problem stretching " << samples.size() << " samples at "
       << sample_rate << " Hz, rate " << rate << ", " << semitones
       << " semitones: " << messages->messages().front();
    throw Error(os.str());
  }
  CADENZA_CHECK(output.size() >= output_length,
                "Rubber Band produced " << output.size() << " samples from " << samples.size()
                                        << " plus " << tail.size() << " of silence, expected "
                                        << output_length);
  output.resize(output_length);
  return output;
}

}  // namespace cadenza
