// Synthesis of the built-in synthetic dataset (see synthetic_audio.hpp).
//
// Per clip: choose the sources (one class, or a random non-empty subset of tags) -> for
// each source draw tempo, start offset, detune and timbre variation, lay onsets on the
// source's one-bar grid patterns, give tonal onsets pitches, and render every note or drum
// hit additively into a double buffer -> scale each source to unit RMS times a random gain
// -> add coloured background noise at a random SNR -> scale to a random peak level.
//
// Invariants: every random choice of clip i is drawn from streams keyed by
// hash64(seed, i), in a fixed order; oscillators read one shared sine table and advance by
// recurrences (no per-sample transcendental calls), so the output is the same for any
// thread count.
#include "host/data/synthetic_audio.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

#include "host/core/error.hpp"
#include "host/math/random_math.hpp"

namespace cadenza {
namespace {

constexpr double kTwoPi = 6.283185307179586476925286766559;

// ---------------------------------------------------------------------------------------
// Randomness: streams of the counter RNG under one clip's key, hash64(seed, clip index).

constexpr std::uint64_t kStreamClipChoices = 1;      // sources, gains, noise, peak level
constexpr std::uint64_t kStreamBackgroundNoise = 2;  // one value per sample
constexpr std::uint64_t kStreamSourceChoices = 16;   // + source index: tempo, notes, timbre
constexpr std::uint64_t kStreamSourceNoise = 64;     // + source index: drum noise samples

// Sequential draws from one stream: the n-th draw uses counter n.
class Draws {
 public:
  Draws(std::uint64_t key, std::uint64_t stream) : key_(key), stream_(stream) {}

  double uniform() { return uniform01(key_, stream_, counter_++); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double centred() { return 2.0 * uniform() - 1.0; }  // in [-1, 1)
  int index(int n) {  // in [0, n)
    const std::uint64_t count = static_cast<std::uint64_t>(n);
    return static_cast<int>(uniform_index(key_, stream_, counter_++, count));
  }
  bool chance(double probability) { return uniform() < probability; }
  // exp(uniform(-log(spread), log(spread))): a factor between 1/spread and spread.
  double log_uniform_factor(double spread) {
    return std::exp(uniform(-std::log(spread), std::log(spread)));
  }

 private:
  std::uint64_t key_;
  std::uint64_t stream_;
  std::uint64_t counter_ = 0;
};

// ---------------------------------------------------------------------------------------
// Oscillators: a phase is a 32-bit fixed-point fraction of a cycle, so advancing it is one
// integer add that wraps by itself.

constexpr int kSineTableBits = 12;
constexpr int kSineTableSize = 1 << kSineTableBits;
constexpr int kPhaseFractionBits = 32 - kSineTableBits;
constexpr double kCyclesToPhase = 4294967296.0;  // 2^32

// One period of sine at kSineTableSize points plus a guard point, read with linear
// interpolation (error below 3e-7, about -130 dB).
const double* sine_table() {
  static const std::array<double, kSineTableSize + 1> table = [] {
    std::array<double, kSineTableSize + 1> values{};
    for (int i = 0; i <= kSineTableSize; ++i) values[i] = std::sin(kTwoPi * i / kSineTableSize);
    return values;
  }();
  return table.data();
}

inline double sine_of_phase(const double* table, std::uint32_t phase) {
  constexpr double kFractionScale = 1.0 / (1u << kPhaseFractionBits);
  const std::uint32_t i = phase >> kPhaseFractionBits;
  const double fraction = (phase & ((1u << kPhaseFractionBits) - 1)) * kFractionScale;
  return table[i] + fraction * (table[i + 1] - table[i]);
}

// The phase of `cycles` (any real number; only its fractional part matters).
inline std::uint32_t phase_of_cycles(double cycles) {
  const double fraction = cycles - std::floor(cycles);
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(fraction * kCyclesToPhase));
}

// The phase step of `cycles_per_sample`, in [0, 1).
inline std::uint32_t phase_step(double cycles_per_sample) {
  return static_cast<std::uint32_t>(cycles_per_sample * kCyclesToPhase);
}

inline double midi_to_hz(double note) { return 440.0 * std::pow(2.0, (note - 69.0) / 12.0); }

// Partials are kept below this fraction of the sample rate (no aliasing).
constexpr double kMaxPartialFraction = 0.45;

// ---------------------------------------------------------------------------------------
// The sources.

enum class Voice { none, tonal, kick, snare, hat, shaker };
enum class PitchMotion {
  melody,        // a random walk of single notes with steps up to max_leap semitones
  arpeggio,      // one chord per bar, its tones (root, third, fifth, octave) cycled by step
  block_chords,  // a new three-note chord on every onset
};

// One line of a source's rhythm: the sound played on the onsets of a one-bar pattern.
struct Track {
  Voice voice = Voice::none;
  const char* pattern = "";       // one bar of 4 beats: 'x' onset, '.' none
  double skip_probability = 0.0;  // each onset is dropped with this probability
};

struct Partial {
  double ratio = 0.0;  // frequency / fundamental
  double amplitude = 0.0;
};

struct Timbre {
  int harmonics = 0;       // harmonic series h = 1..harmonics, amplitude 1 / h^rolloff
  double rolloff = 1.0;
  bool odd_only = false;   // odd harmonics only (square, clarinet)
  std::array<Partial, 6> fixed_partials{};  // used instead when fixed_partial_count > 0
  int fixed_partial_count = 0;
  double attack_s = 0.01;  // linear rise
  double decay_s = 0.0;    // exponential time constant after the attack; 0: sustained
  double release_s = 0.05; // exponential time constant after the note ends
  double damping_per_s = 0.0;  // extra decay rate of a partial per unit of (ratio - 1)
  double vibrato_cents = 0.0;
  double vibrato_hz = 0.0;
  double tremolo_depth = 0.0;  // fraction of the amplitude the tremolo removes at its trough
  double tremolo_hz = 0.0;
};

struct Source {
  const char* name = "";
  int lowest_note = 0;   // MIDI register of the tonal track, inclusive
  int highest_note = 0;
  PitchMotion motion = PitchMotion::melody;
  int max_leap = 0;
  double min_bpm = 0.0;
  double max_bpm = 0.0;
  int steps_per_beat = 4;  // 4: sixteenth-note grid; 3: eighth-triplet grid
  double legato = 1.0;     // note length / time to the pattern's next onset
  std::array<Track, 3> tracks{};
  Timbre timbre{};
};

// Ordered so that the first eight (the default num_classes) are the most varied set.
// Registers, tempi and timbres overlap between several sources on purpose.
const std::array<Source, kMaxSyntheticClasses> kSources = {{
    {.name = "bass_pulse", .lowest_note = 31, .highest_note = 47,
     .motion = PitchMotion::melody, .max_leap = 5, .min_bpm = 85, .max_bpm = 115,
     .steps_per_beat = 4, .legato = 0.85,
     .tracks = {{{Voice::tonal, "x.x.x.x.x.x.x.x.", 0.1}}},
     .timbre = {.harmonics = 8, .rolloff = 1.0, .attack_s = 0.005, .decay_s = 0.3,
                .release_s = 0.03, .damping_per_s = 3.0}},
    {.name = "bright_arp", .lowest_note = 69, .highest_note = 91,
     .motion = PitchMotion::arpeggio, .min_bpm = 115, .max_bpm = 140,
     .steps_per_beat = 4, .legato = 0.6,
     .tracks = {{{Voice::tonal, "xxxxxxxxxxxxxxxx", 0.05}}},
     .timbre = {.harmonics = 12, .rolloff = 0.8, .attack_s = 0.003, .decay_s = 0.15,
                .release_s = 0.03, .damping_per_s = 2.0}},
    {.name = "soft_pad", .lowest_note = 52, .highest_note = 74,
     .motion = PitchMotion::block_chords, .min_bpm = 60, .max_bpm = 85,
     .steps_per_beat = 4, .legato = 1.02,
     .tracks = {{{Voice::tonal, "x...............", 0.0}}},
     .timbre = {.harmonics = 4, .rolloff = 2.0, .attack_s = 0.35, .release_s = 0.4,
                .vibrato_cents = 8, .vibrato_hz = 4.5, .tremolo_depth = 0.15,
                .tremolo_hz = 3.0}},
    {.name = "reed_shuffle", .lowest_note = 50, .highest_note = 70,
     .motion = PitchMotion::melody, .max_leap = 4, .min_bpm = 95, .max_bpm = 130,
     .steps_per_beat = 3, .legato = 0.9,
     .tracks = {{{Voice::tonal, "x.xx.xx.xx.x", 0.1}}},
     .timbre = {.harmonics = 9, .rolloff = 1.0, .odd_only = true, .attack_s = 0.03,
                .release_s = 0.05, .vibrato_cents = 12, .vibrato_hz = 5.5}},
    {.name = "drum_groove", .min_bpm = 85, .max_bpm = 125, .steps_per_beat = 4,
     .tracks = {{{Voice::kick, "x.....x.x.......", 0.05},
                 {Voice::snare, "....x.......x...", 0.05},
                 {Voice::hat, "x.x.x.x.x.x.x.x.", 0.1}}}},
    {.name = "pluck_tresillo", .lowest_note = 57, .highest_note = 76,
     .motion = PitchMotion::melody, .max_leap = 7, .min_bpm = 90, .max_bpm = 120,
     .steps_per_beat = 4, .legato = 1.0,
     .tracks = {{{Voice::tonal, "x..x..x.x..x..x.", 0.08}}},
     .timbre = {.harmonics = 10, .rolloff = 0.9, .attack_s = 0.002, .decay_s = 0.4,
                .release_s = 0.08, .damping_per_s = 8.0}},
    {.name = "bell_sparse", .lowest_note = 74, .highest_note = 93,
     .motion = PitchMotion::melody, .max_leap = 12, .min_bpm = 70, .max_bpm = 110,
     .steps_per_beat = 4, .legato = 4.0,
     .tracks = {{{Voice::tonal, "xxxxxxxxxxxxxxxx", 0.85}}},
     .timbre = {.fixed_partials = {{{1.0, 1.0}, {2.0, 0.6}, {2.76, 0.45}, {5.4, 0.3},
                                    {8.93, 0.2}}},
                .fixed_partial_count = 5, .attack_s = 0.002, .decay_s = 0.8,
                .release_s = 0.4, .damping_per_s = 1.5}},
    {.name = "organ_chords", .lowest_note = 48, .highest_note = 67,
     .motion = PitchMotion::block_chords, .min_bpm = 75, .max_bpm = 105,
     .steps_per_beat = 4, .legato = 0.95,
     .tracks = {{{Voice::tonal, "x.......x.......", 0.05}}},
     .timbre = {.fixed_partials = {{{1, 1.0}, {2, 0.8}, {3, 0.6}, {4, 0.5}, {6, 0.35},
                                    {8, 0.25}}},
                .fixed_partial_count = 6, .attack_s = 0.015, .release_s = 0.05,
                .tremolo_depth = 0.12, .tremolo_hz = 6.0}},
    {.name = "shaker_shuffle", .min_bpm = 100, .max_bpm = 140, .steps_per_beat = 3,
     .tracks = {{{Voice::shaker, "x.xx.xx.xx.x", 0.1}, {Voice::kick, "x.....x.....", 0.3}}}},
    {.name = "vibrato_lead", .lowest_note = 62, .highest_note = 81,
     .motion = PitchMotion::melody, .max_leap = 5, .min_bpm = 70, .max_bpm = 100,
     .steps_per_beat = 4, .legato = 0.95,
     .tracks = {{{Voice::tonal, "x.x.x...x...x.x.", 0.1}}},
     .timbre = {.harmonics = 6, .rolloff = 1.3, .attack_s = 0.04, .release_s = 0.08,
                .vibrato_cents = 35, .vibrato_hz = 5.8}},
    {.name = "chip_square", .lowest_note = 60, .highest_note = 84,
     .motion = PitchMotion::arpeggio, .min_bpm = 130, .max_bpm = 165,
     .steps_per_beat = 4, .legato = 0.5,
     .tracks = {{{Voice::tonal, "x.xxx.xxx.xxx.xx", 0.1}}},
     .timbre = {.harmonics = 15, .rolloff = 1.0, .odd_only = true, .attack_s = 0.001,
                .release_s = 0.005}},
    {.name = "sub_drone", .lowest_note = 26, .highest_note = 41,
     .motion = PitchMotion::melody, .max_leap = 3, .min_bpm = 50, .max_bpm = 75,
     .steps_per_beat = 4, .legato = 1.05,
     .tracks = {{{Voice::tonal, "x...............", 0.0}}},
     .timbre = {.harmonics = 3, .rolloff = 1.5, .attack_s = 0.5, .release_s = 0.5,
                .tremolo_depth = 0.35, .tremolo_hz = 1.2}},
}};

// Per-clip level ranges.
constexpr double kMinPeakDb = -18.0;
constexpr double kMaxPeakDb = -1.0;
constexpr double kMinSnrDb = 12.0;
constexpr double kMaxSnrDb = 30.0;
constexpr double kMaxTagGainDb = 8.0;  // multi-label: each source at 0 to -8 dB
constexpr double kMaxDetuneCents = 30.0;
constexpr double kTimingJitterS = 0.004;

// ---------------------------------------------------------------------------------------
// Events.

struct Note {
  double onset_s = 0.0;
  double length_s = 0.0;  // until the release starts
  double frequency_hz = 0.0;
  double velocity = 0.0;
};

struct Hit {
  Voice voice = Voice::none;
  double onset_s = 0.0;
  double velocity = 0.0;
};

// Working buffers of one thread, each at least one clip long.
struct Scratch {
  std::vector<double> source;
  std::vector<double> mix;
  std::vector<double> envelope;
  std::vector<double> frequency_factor;
  std::vector<double> tone;
  explicit Scratch(int num_samples)
      : source(num_samples), mix(num_samples), envelope(num_samples),
        frequency_factor(num_samples), tone(num_samples) {}
};

// The samples [begin, end) of the clip that an event starting at onset_s and lasting
// duration_s touches, and the event's time at `begin`.
struct SampleSpan {
  int begin = 0;
  int end = 0;
  double start_time_s = 0.0;
};

SampleSpan span_of(double onset_s, double duration_s, double sample_rate, int num_samples) {
  SampleSpan span;
  const double first = std::max(0.0, std::ceil(onset_s * sample_rate));
  const double last = std::min(static_cast<double>(num_samples),
                               std::ceil((onset_s + duration_s) * sample_rate));
  span.begin = static_cast<int>(first);
  span.end = std::max(span.begin, static_cast<int>(last));
  span.start_time_s = span.begin / sample_rate - onset_s;
  return span;
}

// The partials of a timbre whose frequency stays below the anti-aliasing limit.
std::vector<Partial> audible_partials(const Timbre& timbre, double fundamental_hz,
                                      double max_frequency_factor, double sample_rate) {
  std::vector<Partial> partials;
  if (timbre.fixed_partial_count > 0) {
    partials.assign(timbre.fixed_partials.begin(),
                    timbre.fixed_partials.begin() + timbre.fixed_partial_count);
  } else {
    for (int h = 1; h <= timbre.harmonics; h += timbre.odd_only ? 2 : 1) {
      partials.push_back({static_cast<double>(h), 1.0 / std::pow(h, timbre.rolloff)});
    }
  }
  const double limit_hz = kMaxPartialFraction * sample_rate;
  std::erase_if(partials, [&](const Partial& p) {
    return fundamental_hz * p.ratio * max_frequency_factor >= limit_hz;
  });
  return partials;
}

// One partial of a note from its first sample: phase, phase step (before vibrato) and an
// exponentially decaying amplitude.
struct PartialOscillator {
  std::uint32_t phase = 0;
  double phase_step = 0.0;  // in 2^-32 cycles per sample
  double amplitude = 0.0;
  double amplitude_step = 1.0;
};

// Adds `count` samples of the partial to `tone`; with kVibrato the phase step of sample i
// is scaled by frequency_factor[i].
template <bool kVibrato>
void add_partial(const PartialOscillator& oscillator, const double* frequency_factor,
                 int count, double* tone) {
  const double* table = sine_table();
  const double phase_step = oscillator.phase_step;
  const std::uint32_t constant_step = static_cast<std::uint32_t>(phase_step);
  const double amplitude_step = oscillator.amplitude_step;
  std::uint32_t phase = oscillator.phase;
  double amplitude = oscillator.amplitude;
  for (int i = 0; i < count; ++i) {
    tone[i] += amplitude * sine_of_phase(table, phase);
    if constexpr (kVibrato) {
      phase += static_cast<std::uint32_t>(phase_step * frequency_factor[i]);
    } else {
      phase += constant_step;
    }
    amplitude *= amplitude_step;
  }
}

// Adds one tonal note to `out`: the timbre's partials under an attack / decay / release
// envelope, with vibrato and tremolo. Partial start phases come from `draws`.
void render_note(const Note& note, const Timbre& timbre, Draws& draws, double sample_rate,
                 Scratch& scratch, std::vector<double>& out) {
  const double* table = sine_table();
  const int num_samples = static_cast<int>(out.size());
  const double ringing_s = timbre.decay_s > 0.0
                               ? std::min(note.length_s + 7.0 * timbre.release_s,
                                          timbre.attack_s + 7.0 * timbre.decay_s)
                               : note.length_s + 7.0 * timbre.release_s;
  const SampleSpan span = span_of(note.onset_s, ringing_s, sample_rate, num_samples);
  const double vibrato_phase = draws.uniform();
  const double tremolo_phase = draws.uniform();
  const int count = span.end - span.begin;
  if (count <= 0) return;
  const double dt = 1.0 / sample_rate;
  const double t0 = span.start_time_s;

  // Envelope: linear attack, then exponential decay; exponential release after length_s.
  double decay_gain = 1.0;
  double decay_step = 1.0;
  if (timbre.decay_s > 0.0) {
    decay_gain = std::exp(-std::max(0.0, t0 - timbre.attack_s) / timbre.decay_s);
    decay_step = std::exp(-dt / timbre.decay_s);
  }
  double release_gain = std::exp(-std::max(0.0, t0 - note.length_s) / timbre.release_s);
  const double release_step = std::exp(-dt / timbre.release_s);
  std::uint32_t tremolo = phase_of_cycles(tremolo_phase + timbre.tremolo_hz * t0);
  const std::uint32_t tremolo_step = phase_step(timbre.tremolo_hz * dt);
  double* envelope = scratch.envelope.data();
  for (int i = 0; i < count; ++i) {
    const double t = t0 + i * dt;
    const double attack_gain = t < timbre.attack_s ? t / timbre.attack_s : 1.0;
    const double tremolo_gain =
        1.0 - timbre.tremolo_depth * 0.5 * (1.0 + sine_of_phase(table, tremolo));
    envelope[i] = note.velocity * attack_gain * decay_gain * release_gain * tremolo_gain;
    if (t >= timbre.attack_s) decay_gain *= decay_step;
    if (t >= note.length_s) release_gain *= release_step;
    tremolo += tremolo_step;
  }

  // Vibrato as an instantaneous frequency factor 1 + depth * sin (depth from cents).
  const double vibrato_depth = timbre.vibrato_cents * std::log(2.0) / 1200.0;
  double* frequency_factor = scratch.frequency_factor.data();
  if (vibrato_depth > 0.0) {
    std::uint32_t vibrato = phase_of_cycles(vibrato_phase + timbre.vibrato_hz * t0);
    const std::uint32_t vibrato_step = phase_step(timbre.vibrato_hz * dt);
    for (int i = 0; i < count; ++i) {
      frequency_factor[i] = 1.0 + vibrato_depth * sine_of_phase(table, vibrato);
      vibrato += vibrato_step;
    }
  }

  double* tone = scratch.tone.data();
  std::fill(tone, tone + count, 0.0);
  for (const Partial& partial :
       audible_partials(timbre, note.frequency_hz, 1.0 + vibrato_depth, sample_rate)) {
    const double frequency = note.frequency_hz * partial.ratio;
    const double damping = timbre.damping_per_s * (partial.ratio - 1.0);
    const double phase_cycles = draws.uniform() + frequency * t0;
    const PartialOscillator oscillator{phase_of_cycles(phase_cycles),
                                       frequency * dt * kCyclesToPhase,
                                       partial.amplitude * std::exp(-damping * t0),
                                       std::exp(-damping * dt)};
    if (vibrato_depth > 0.0) {
      add_partial<true>(oscillator, frequency_factor, count, tone);
    } else {
      add_partial<false>(oscillator, frequency_factor, count, tone);
    }
  }
  double* target = out.data() + span.begin;
  for (int i = 0; i < count; ++i) target[i] += envelope[i] * tone[i];
}

// Per-clip variation of the drum sounds.
struct DrumVariation {
  double kick_hz = 55.0;      // where the kick's pitch sweep ends
  double snare_hz = 190.0;    // the snare's tonal body
  double decay_factor = 1.0;  // scales every drum decay
};

// A drum sound: a decaying sine (with an exponential pitch sweep from sweep_ratio times
// its frequency down to it) plus decaying shaped noise.
struct DrumSound {
  double tone_level = 0.0;
  double tone_hz = 0.0;
  double tone_decay_s = 1.0;
  double sweep_ratio = 1.0;
  double sweep_s = 1.0;
  double noise_level = 0.0;
  double noise_decay_s = 1.0;
  double noise_attack_s = 0.0;
};

DrumSound drum_sound(Voice voice, const DrumVariation& drums) {
  const double d = drums.decay_factor;
  switch (voice) {
    case Voice::kick:
      return {.tone_level = 1.0, .tone_hz = drums.kick_hz, .tone_decay_s = 0.15 * d,
              .sweep_ratio = 3.0, .sweep_s = 0.035};
    case Voice::snare:
      return {.tone_level = 0.5, .tone_hz = drums.snare_hz, .tone_decay_s = 0.05 * d,
              .noise_level = 1.0, .noise_decay_s = 0.12 * d};
    case Voice::hat:
      return {.noise_level = 1.0, .noise_decay_s = 0.04 * d};
    case Voice::shaker:
      return {.noise_level = 1.0, .noise_decay_s = 0.06 * d, .noise_attack_s = 0.01};
    default:
      return {};
  }
}

// Adds one drum hit to `out`. Noise samples come from `noise` (one draw per sample).
// Noise shaping: the first difference of white noise (a high-pass) for snares; taken twice
// for hats; smoothed by a one-pole low-pass for the shaker (a band-pass).
void render_hit(const Hit& hit, const DrumVariation& drums, Draws& noise, double sample_rate,
                std::vector<double>& out) {
  const double* table = sine_table();
  const DrumSound sound = drum_sound(hit.voice, drums);
  const double dt = 1.0 / sample_rate;
  const double duration_s =
      7.0 * std::max(sound.tone_level > 0.0 ? sound.tone_decay_s : 0.0,
                     sound.noise_level > 0.0 ? sound.noise_decay_s : 0.0) +
      sound.noise_attack_s;
  const SampleSpan span =
      span_of(hit.onset_s, duration_s, sample_rate, static_cast<int>(out.size()));
  const double t0 = span.start_time_s;

  double tone_gain = sound.tone_level * std::exp(-t0 / sound.tone_decay_s);
  const double tone_step = std::exp(-dt / sound.tone_decay_s);
  double noise_gain = sound.noise_level * std::exp(-t0 / sound.noise_decay_s);
  const double noise_step = std::exp(-dt / sound.noise_decay_s);
  double sweep = std::exp(-t0 / sound.sweep_s);
  const double sweep_step = std::exp(-dt / sound.sweep_s);
  std::uint32_t phase = 0;
  double previous_white = 0.0;
  double previous_difference = 0.0;
  double smoothed = 0.0;
  for (int n = span.begin; n < span.end; ++n) {
    double value = 0.0;
    if (sound.tone_level > 0.0) {
      value += tone_gain * sine_of_phase(table, phase);
      const double frequency = sound.tone_hz * (1.0 + (sound.sweep_ratio - 1.0) * sweep);
      phase += phase_step(frequency * dt);
      tone_gain *= tone_step;
      sweep *= sweep_step;
    }
    if (sound.noise_level > 0.0) {
      const double white = noise.centred();
      const double difference = white - previous_white;
      double shaped = difference;
      if (hit.voice == Voice::hat) shaped = difference - previous_difference;
      if (hit.voice == Voice::shaker) shaped = smoothed = 0.6 * smoothed + 0.4 * difference;
      previous_white = white;
      previous_difference = difference;
      const double t = t0 + (n - span.begin) * dt;
      const double attack_gain = t < sound.noise_attack_s ? t / sound.noise_attack_s : 1.0;
      value += noise_gain * attack_gain * shaped;
      noise_gain *= noise_step;
    }
    out[n] += hit.velocity * value;
  }
}

// Steps from pattern position `step` to the pattern's next onset (wrapping into the next
// bar); the whole bar when it is the only onset.
int steps_to_next_onset(const char* pattern, int bar_steps, int step) {
  for (int ahead = 1; ahead < bar_steps; ++ahead) {
    if (pattern[(step + ahead) % bar_steps] == 'x') return ahead;
  }
  return bar_steps;
}

// The chord tones above a root: root, third (major or minor), fifth, octave.
std::array<int, 4> chord_tones(int root, bool minor) {
  return {root, root + (minor ? 3 : 4), root + 7, root + 12};
}

// Keeps a melody note inside [lowest, highest] by reflecting at the edges.
int reflect_into(int note, int lowest, int highest) {
  while (note < lowest || note > highest) {
    note = note < lowest ? 2 * lowest - note : 2 * highest - note;
  }
  return note;
}

// One onset of a track, before it becomes notes or a hit.
struct Onset {
  int step = 0;  // grid step from the pattern start (may be in an earlier bar than the clip)
  double time_s = 0.0;
  double velocity = 0.0;
  double length_s = 0.0;
};

// Renders one source's part of a clip into `out` (zeroed first).
void render_source(int source_index, std::uint64_t clip_key, double sample_rate,
                   Scratch& scratch, std::vector<double>& out) {
  const Source& source = kSources[source_index];
  Draws draws(clip_key, kStreamSourceChoices + source_index);
  Draws noise(clip_key, kStreamSourceNoise + source_index);
  std::fill(out.begin(), out.end(), 0.0);
  const double clip_s = out.size() / sample_rate;

  // Tempo, the position of the clip within the bar, tuning and timbre of this clip.
  const double bpm = draws.uniform(source.min_bpm, source.max_bpm);
  const int bar_steps = 4 * source.steps_per_beat;
  const double step_s = 60.0 / bpm / source.steps_per_beat;
  const double start_offset_s = draws.uniform(0.0, bar_steps * step_s);
  const double detune = std::pow(2.0, draws.uniform(-kMaxDetuneCents, kMaxDetuneCents) / 1200.0);
  Timbre timbre = source.timbre;
  timbre.harmonics = std::max(1, timbre.harmonics + draws.index(3) - 1);
  timbre.rolloff = std::max(0.3, timbre.rolloff + draws.uniform(-0.25, 0.25));
  timbre.attack_s *= draws.log_uniform_factor(1.33);
  timbre.decay_s *= draws.log_uniform_factor(1.33);
  timbre.release_s *= draws.log_uniform_factor(1.33);
  timbre.damping_per_s *= draws.log_uniform_factor(1.33);
  timbre.vibrato_cents *= draws.log_uniform_factor(1.3);
  timbre.vibrato_hz *= draws.log_uniform_factor(1.1);
  timbre.tremolo_hz *= draws.log_uniform_factor(1.2);
  DrumVariation drums;
  drums.kick_hz *= draws.log_uniform_factor(1.2);
  drums.snare_hz *= draws.log_uniform_factor(1.15);
  drums.decay_factor = draws.log_uniform_factor(1.25);

  // Onsets of every track on the grid, from the bar that contains the clip start.
  const int total_steps = static_cast<int>(std::ceil((clip_s + start_offset_s) / step_s));
  std::array<std::vector<Onset>, 3> onsets;
  bool any_onset_in_clip = false;
  for (std::size_t track_index = 0; track_index < source.tracks.size(); ++track_index) {
    const Track& track = source.tracks[track_index];
    if (track.voice == Voice::none) continue;
    for (int step = 0; step < total_steps; ++step) {
      const int position = step % bar_steps;
      if (track.pattern[position] != 'x' || draws.chance(track.skip_probability)) continue;
      Onset onset;
      onset.step = step;
      onset.time_s = step * step_s - start_offset_s + kTimingJitterS * draws.centred();
      const bool on_beat = position % source.steps_per_beat == 0;
      onset.velocity = draws.uniform(0.75, 1.0) * (on_beat ? 1.0 : 0.85);
      onset.length_s =
          source.legato * steps_to_next_onset(track.pattern, bar_steps, position) * step_s;
      any_onset_in_clip = any_onset_in_clip || (onset.time_s >= 0.0 && onset.time_s < clip_s);
      onsets[track_index].push_back(onset);
    }
  }
  if (!any_onset_in_clip) {  // a sparse pattern left the clip empty: play one onset
    Onset onset;
    onset.time_s = draws.uniform(0.0, 0.5 * clip_s);
    onset.velocity = 1.0;
    onset.length_s = source.legato * source.steps_per_beat * step_s;
    onsets[0].push_back(onset);
  }

  for (std::size_t track_index = 0; track_index < source.tracks.size(); ++track_index) {
    const Voice voice = source.tracks[track_index].voice;
    if (voice == Voice::none) continue;
    if (voice != Voice::tonal) {
      for (const Onset& onset : onsets[track_index]) {
        render_hit({voice, onset.time_s, onset.velocity}, drums, noise, sample_rate, out);
      }
      continue;
    }
    // Pitches: a melody walk, a per-bar arpeggio, or a new chord per onset.
    const int register_size = source.highest_note - source.lowest_note + 1;
    int melody_note = source.lowest_note + draws.index(register_size);
    int arpeggio_bar = -1;
    std::array<int, 4> arpeggio_tones{};
    for (const Onset& onset : onsets[track_index]) {
      std::array<int, 4> notes{};
      int note_count = 1;
      switch (source.motion) {
        case PitchMotion::melody:
          melody_note = reflect_into(melody_note + draws.index(2 * source.max_leap + 1) -
                                         source.max_leap,
                                     source.lowest_note, source.highest_note);
          notes[0] = melody_note;
          break;
        case PitchMotion::arpeggio: {
          const int bar = onset.step / bar_steps;
          if (bar != arpeggio_bar) {
            arpeggio_bar = bar;
            const int root = source.lowest_note +
                             draws.index(source.highest_note - 12 - source.lowest_note + 1);
            arpeggio_tones = chord_tones(root, draws.chance(0.5));
          }
          notes[0] = arpeggio_tones[(onset.step % bar_steps) % 4];
          break;
        }
        case PitchMotion::block_chords: {
          const int root = source.lowest_note +
                           draws.index(source.highest_note - 7 - source.lowest_note + 1);
          notes = chord_tones(root, draws.chance(0.5));
          note_count = 3;
          break;
        }
      }
      for (int k = 0; k < note_count; ++k) {
        const Note note{onset.time_s, onset.length_s, midi_to_hz(notes[k]) * detune,
                        onset.velocity / std::sqrt(static_cast<double>(note_count))};
        render_note(note, timbre, draws, sample_rate, scratch, out);
      }
    }
  }
}

double rms_of(const std::vector<double>& samples) {
  double sum = 0.0;
  for (const double s : samples) sum += s * s;
  return samples.empty() ? 0.0 : std::sqrt(sum / samples.size());
}

// Generates clip `clip_index` into pcm (num_samples floats) and its target row.
void generate_clip(const SyntheticDataConfig& config, int clip_index, double sample_rate,
                   Scratch& scratch, float* pcm, float* target, int* primary_label) {
  const int num_labels = config.num_classes;
  const std::uint64_t clip_key = hash64(config.seed, static_cast<std::uint64_t>(clip_index));
  Draws choices(clip_key, kStreamClipChoices);

  std::vector<int> present;
  if (config.multi_label) {
    for (int k = 0; k < num_labels; ++k) {
      if (choices.chance(config.tag_probability)) present.push_back(k);
    }
    if (present.empty()) present.push_back(choices.index(num_labels));
  } else {
    present.push_back(clip_index % num_labels);
  }

  std::vector<double>& mix = scratch.mix;
  std::fill(mix.begin(), mix.end(), 0.0);
  for (const int k : present) {
    const double gain_db = config.multi_label ? choices.uniform(-kMaxTagGainDb, 0.0) : 0.0;
    render_source(k, clip_key, sample_rate, scratch, scratch.source);
    const double rms = rms_of(scratch.source);
    if (rms <= 0.0) continue;
    const double gain = std::pow(10.0, gain_db / 20.0) / rms;
    for (std::size_t n = 0; n < mix.size(); ++n) mix[n] += gain * scratch.source[n];
  }
  *primary_label = present.front();
  for (const int k : present) target[k] = 1.0f;

  // Background noise: white noise through a one-pole low-pass of random colour.
  const double colour = choices.uniform(0.0, 0.85);
  const double snr_db = choices.uniform(kMinSnrDb, kMaxSnrDb);
  const double peak_db = choices.uniform(kMinPeakDb, kMaxPeakDb);
  Draws background(clip_key, kStreamBackgroundNoise);
  std::vector<double>& noise = scratch.source;
  double smoothed = 0.0;
  for (double& value : noise) {
    smoothed = colour * smoothed + (1.0 - colour) * background.centred();
    value = smoothed;
  }
  const double noise_rms = rms_of(noise);
  const double signal_rms = rms_of(mix);
  const double noise_gain = signal_rms > 0.0 && noise_rms > 0.0
                                ? signal_rms / std::pow(10.0, snr_db / 20.0) / noise_rms
                                : 1.0;
  double peak = 0.0;
  for (std::size_t n = 0; n < mix.size(); ++n) {
    mix[n] += noise_gain * noise[n];
    peak = std::max(peak, std::abs(mix[n]));
  }
  const double scale = peak > 0.0 ? std::pow(10.0, peak_db / 20.0) / peak : 0.0;
  for (std::size_t n = 0; n < mix.size(); ++n) pcm[n] = static_cast<float>(scale * mix[n]);
}

}  // namespace

std::vector<std::string> synthetic_label_names(int num_classes) {
  if (num_classes < 2 || num_classes > kMaxSyntheticClasses) {
    CADENZA_USER_ERROR("data.synthetic.num_classes: expected an integer from 2 to "
                       << kMaxSyntheticClasses << ", got " << num_classes);
  }
  std::vector<std::string> names;
  for (int k = 0; k < num_classes; ++k) names.emplace_back(kSources[k].name);
  return names;
}

SyntheticClipSet generate_synthetic(const SyntheticDataConfig& config, int sample_rate,
                                    double clip_seconds) {
  SyntheticClipSet set;
  set.label_names = synthetic_label_names(config.num_classes);
  if (config.clips_per_class < 1) {
    CADENZA_USER_ERROR("data.synthetic.clips_per_class: expected a positive integer, got "
                       << config.clips_per_class);
  }
  if (!(config.tag_probability > 0.0 && config.tag_probability <= 1.0)) {
    CADENZA_USER_ERROR("data.synthetic.tag_probability: expected a probability in (0, 1], got "
                       << config.tag_probability);
  }
  constexpr int kMinSampleRate = 8000;
  constexpr int kMaxSampleRate = 192000;
  if (sample_rate < kMinSampleRate || sample_rate > kMaxSampleRate) {
    CADENZA_USER_ERROR("data.sample_rate: the synthetic dataset needs " << kMinSampleRate
                       << " to " << kMaxSampleRate << " Hz, got " << sample_rate);
  }
  constexpr double kMaxClipSeconds = 600.0;
  const double samples = std::round(clip_seconds * sample_rate);
  if (!(clip_seconds > 0.0) || clip_seconds > kMaxClipSeconds || samples < 1.0) {
    CADENZA_USER_ERROR("data.clip_seconds: expected a length from one sample to "
                       << kMaxClipSeconds << " s, got " << clip_seconds);
  }
  const long long num_clips =
      static_cast<long long>(config.num_classes) * config.clips_per_class;
  if (num_clips > std::numeric_limits<int>::max()) {
    CADENZA_USER_ERROR("data.synthetic.clips_per_class: " << config.clips_per_class
                       << " clips per class make too many clips");
  }

  set.sample_rate = sample_rate;
  set.num_samples = static_cast<int>(samples);
  set.num_labels = config.num_classes;
  set.multi_label = config.multi_label;
  set.pcm.assign(static_cast<std::size_t>(num_clips) * set.num_samples, 0.0f);
  set.targets.assign(static_cast<std::size_t>(num_clips) * set.num_labels, 0.0f);
  set.primary_label.assign(static_cast<std::size_t>(num_clips), 0);
  sine_table();  // build the shared table before the threads read it

  const int clip_count = static_cast<int>(num_clips);
#pragma omp parallel
  {
    Scratch scratch(set.num_samples);
#pragma omp for schedule(dynamic, 4)
    for (int clip = 0; clip < clip_count; ++clip) {
      generate_clip(config, clip, sample_rate, scratch,
                    set.pcm.data() + static_cast<std::size_t>(clip) * set.num_samples,
                    set.targets.data() + static_cast<std::size_t>(clip) * set.num_labels,
                    set.primary_label.data() + clip);
    }
  }
  return set;
}

}  // namespace cadenza
