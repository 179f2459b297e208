// The built-in synthetic dataset: music-like clips generated in memory from a seed, so
// demos and tests need no download.
//
// Each label is a "source" with its own pitch register, rhythm (tempo range and one-bar
// onset pattern) and timbre (harmonic series, envelope, vibrato, or drum sounds). A
// single-label clip plays one source (clip i has class i % num_classes); a multi-label
// clip mixes a random non-empty subset of sources and its target is the multi-hot
// presence vector. Tempo, notes, timbre details, detune, start offset, loudness,
// background noise colour and SNR vary per clip, so no single simple feature (loudness,
// brightness, onset rate) separates the classes, while their log-mel patterns do (a linear
// model on per-band log-mel statistics scores ~99% on the default 8 classes).
//
// Invariants:
// - Clip i depends only on (seed, i, num_classes, multi_label, tag_probability, sample_rate,
//   clip length), not on clips_per_class: clips are generated in parallel, each from its
//   own random streams.
// - All randomness comes from host/math/random_math.hpp (integer hashing); synthesis is in
//   double precision and rounded to float once at the end, so the bytes are identical run
//   to run, for any thread count, and across machines that share the C math library
//   (sin/exp/pow/log), provided the file is compiled without fast-math and without FMA
//   contraction (-ffp-contract=off; GCC contracts a*b+c by default when the target has
//   FMA, e.g. with -march=native or on aarch64, which changes the last bits).
// - Every sample is finite and in [-1, 1]; every clip's peak is between -18 and -1 dBFS.
#pragma once

#include <string>
#include <vector>

#include "host/config/config.hpp"

namespace cadenza {

// The largest data.synthetic.num_classes supported (the number of distinct sources).
constexpr int kMaxSyntheticClasses = 12;

// All clips of the synthetic set, generated up front.
struct SyntheticClipSet {
  int sample_rate = 0;
  int num_samples = 0;  // per clip
  int num_labels = 0;
  bool multi_label = false;
  std::vector<std::string> label_names;  // (num_labels), e.g. "bass_pulse", "bright_arp"
  std::vector<float> pcm;                // (num_clips, num_samples), each value in [-1, 1]
  std::vector<float> targets;            // (num_clips, num_labels): one-hot or multi-hot
  std::vector<int> primary_label;        // (num_clips): the class, or the first present tag

  int num_clips() const { return static_cast<int>(primary_label.size()); }
};

// The label names of a synthetic set with `num_classes` labels, in label order (the same
// names generate_synthetic reports). Throws UserError naming data.synthetic.num_classes
// when it is outside [2, kMaxSyntheticClasses].
std::vector<std::string> synthetic_label_names(int num_classes);

// Generates num_classes * clips_per_class clips of round(clip_seconds * sample_rate)
// samples. Throws UserError naming the config key (data.synthetic.num_classes,
// data.synthetic.clips_per_class, data.sample_rate, data.clip_seconds) when a value is
// out of range.
SyntheticClipSet generate_synthetic(const SyntheticDataConfig& config, int sample_rate,
                                    double clip_seconds);

}  // namespace cadenza
