// Tests of the built-in synthetic dataset and of the stratified split.
//
// The synthetic set must be reproducible to the byte, well-formed (finite samples in
// [-1, 1], valid one-hot / multi-hot targets) and a real classification problem: the
// classes differ in brightness and onset rate, yet loudness alone does not separate them.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "host/core/error.hpp"
#include "host/data/split.hpp"
#include "host/data/synthetic_audio.hpp"

using namespace cadenza;
using Catch::Matchers::Contains;

namespace {

SyntheticDataConfig small_config(int num_classes, int clips_per_class, bool multi_label,
                                 std::uint64_t seed = 1234) {
  SyntheticDataConfig config;
  config.num_classes = num_classes;
  config.clips_per_class = clips_per_class;
  config.multi_label = multi_label;
  config.seed = seed;
  return config;
}

const float* clip_of(const SyntheticClipSet& set, int clip) {
  return set.pcm.data() + static_cast<std::size_t>(clip) * set.num_samples;
}

double rms_of_clip(const SyntheticClipSet& set, int clip) {
  const float* x = clip_of(set, clip);
  double sum = 0.0;
  for (int n = 0; n < set.num_samples; ++n) sum += double(x[n]) * x[n];
  return std::sqrt(sum / set.num_samples);
}

// Sign changes per sample: a crude brightness measure.
double zero_crossing_rate(const SyntheticClipSet& set, int clip) {
  const float* x = clip_of(set, clip);
  int crossings = 0;
  for (int n = 1; n < set.num_samples; ++n) crossings += (x[n] >= 0.0f) != (x[n - 1] >= 0.0f);
  return double(crossings) / set.num_samples;
}

// Frames (256 samples) whose energy more than doubles over the previous frame's.
int onset_count(const SyntheticClipSet& set, int clip) {
  constexpr int kHop = 256;
  const float* x = clip_of(set, clip);
  std::vector<double> energy(set.num_samples / kHop, 0.0);
  for (std::size_t f = 0; f < energy.size(); ++f) {
    for (int n = 0; n < kHop; ++n) energy[f] += double(x[f * kHop + n]) * x[f * kHop + n];
  }
  const double loudest = *std::max_element(energy.begin(), energy.end());
  int onsets = 0;
  for (std::size_t f = 1; f < energy.size(); ++f) {
    onsets += energy[f] > 2.0 * energy[f - 1] + 1e-3 * loudest;
  }
  return onsets;
}

// Per-class means of a per-clip feature.
template <typename Feature>
std::vector<double> class_means(const SyntheticClipSet& set, Feature feature) {
  std::vector<double> sum(set.num_labels, 0.0);
  std::vector<int> count(set.num_labels, 0);
  for (int i = 0; i < set.num_clips(); ++i) {
    sum[set.primary_label[i]] += feature(set, i);
    ++count[set.primary_label[i]];
  }
  for (int k = 0; k < set.num_labels; ++k) sum[k] /= count[k];
  return sum;
}

int index_of(const SyntheticClipSet& set, const std::string& name) {
  const auto it = std::find(set.label_names.begin(), set.label_names.end(), name);
  REQUIRE(it != set.label_names.end());
  return static_cast<int>(it - set.label_names.begin());
}

std::string user_error_of(const SyntheticDataConfig& config, int sample_rate,
                          double clip_seconds) {
  try {
    generate_synthetic(config, sample_rate, clip_seconds);
  } catch (const UserError& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("synthetic audio is identical for the same seed", "[cpu][data]") {
  for (const bool multi_label : {false, true}) {
    const SyntheticDataConfig config = small_config(6, 4, multi_label);
    const SyntheticClipSet a = generate_synthetic(config, 16000, 0.75);
    const SyntheticClipSet b = generate_synthetic(config, 16000, 0.75);
    REQUIRE(a.pcm.size() == b.pcm.size());
    CHECK(std::memcmp(a.pcm.data(), b.pcm.data(), a.pcm.size() * sizeof(float)) == 0);
    CHECK(a.targets == b.targets);
    CHECK(a.primary_label == b.primary_label);
  }
}

TEST_CASE("synthetic clip i depends only on the seed and i", "[cpu][data]") {
  // More clips per class leave the first clips untouched (class i % num_classes).
  const SyntheticClipSet few = generate_synthetic(small_config(4, 2, false), 16000, 0.5);
  const SyntheticClipSet more = generate_synthetic(small_config(4, 5, false), 16000, 0.5);
  REQUIRE(few.num_clips() == 8);
  CHECK(std::memcmp(few.pcm.data(), more.pcm.data(), few.pcm.size() * sizeof(float)) == 0);
  CHECK(std::equal(few.primary_label.begin(), few.primary_label.end(),
                   more.primary_label.begin()));
}

#ifdef _OPENMP
TEST_CASE("synthetic audio does not depend on the thread count", "[cpu][data]") {
  const SyntheticDataConfig config = small_config(5, 4, true);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const SyntheticClipSet serial = generate_synthetic(config, 16000, 0.5);
  omp_set_num_threads(std::max(threads, 3));
  const SyntheticClipSet parallel = generate_synthetic(config, 16000, 0.5);
  omp_set_num_threads(threads);
  CHECK(std::memcmp(serial.pcm.data(), parallel.pcm.data(), serial.pcm.size() * sizeof(float)) ==
        0);
  CHECK(serial.targets == parallel.targets);
}
#endif

TEST_CASE("synthetic audio differs between seeds", "[cpu][data]") {
  const SyntheticClipSet a = generate_synthetic(small_config(4, 3, false, 1), 16000, 0.5);
  const SyntheticClipSet b = generate_synthetic(small_config(4, 3, false, 2), 16000, 0.5);
  REQUIRE(a.pcm.size() == b.pcm.size());
  for (int i = 0; i < a.num_clips(); ++i) {
    CHECK(std::memcmp(clip_of(a, i), clip_of(b, i), a.num_samples * sizeof(float)) != 0);
  }
  CHECK(a.primary_label == b.primary_label);  // single-label classes do not depend on it
}

TEST_CASE("synthetic set has the requested shape and label names", "[cpu][data]") {
  const SyntheticClipSet set = generate_synthetic(small_config(5, 3, false), 22050, 0.3);
  CHECK(set.sample_rate == 22050);
  CHECK(set.num_samples == 6615);
  CHECK(set.num_labels == 5);
  CHECK(set.num_clips() == 15);
  CHECK(set.pcm.size() == 15u * 6615u);
  CHECK(set.targets.size() == 15u * 5u);
  REQUIRE(set.label_names.size() == 5);
  CHECK(set.label_names == synthetic_label_names(5));
  CHECK(std::set<std::string>(set.label_names.begin(), set.label_names.end()).size() == 5);
  for (const std::string& name : set.label_names) CHECK_FALSE(name.empty());
  CHECK(synthetic_label_names(kMaxSyntheticClasses).size() == kMaxSyntheticClasses);
}

TEST_CASE("synthetic samples are finite, within [-1, 1] and not silent", "[cpu][data]") {
  for (const bool multi_label : {false, true}) {
    const SyntheticClipSet set =
        generate_synthetic(small_config(kMaxSyntheticClasses, 3, multi_label), 16000, 1.0);
    for (int i = 0; i < set.num_clips(); ++i) {
      const float* x = clip_of(set, i);
      float peak = 0.0f;
      bool finite = true;
      for (int n = 0; n < set.num_samples; ++n) {
        finite = finite && std::isfinite(x[n]);
        peak = std::max(peak, std::abs(x[n]));
      }
      INFO("clip " << i << " multi_label " << multi_label);
      CHECK(finite);
      CHECK(peak <= 1.0f);
      CHECK(peak >= 0.12f);  // -18 dBFS is the quietest peak level
      CHECK(rms_of_clip(set, i) > 1e-3);
    }
  }
}

TEST_CASE("synthetic single-label targets are one-hot, class i % num_classes", "[cpu][data]") {
  const SyntheticClipSet set = generate_synthetic(small_config(8, 5, false), 16000, 0.25);
  CHECK_FALSE(set.multi_label);
  for (int i = 0; i < set.num_clips(); ++i) {
    const float* row = set.targets.data() + static_cast<std::size_t>(i) * set.num_labels;
    CHECK(set.primary_label[i] == i % 8);
    for (int k = 0; k < set.num_labels; ++k) {
      CHECK(row[k] == (k == set.primary_label[i] ? 1.0f : 0.0f));
    }
  }
}

TEST_CASE("synthetic multi-label clips have at least one tag, each tag often enough",
          "[cpu][data]") {
  const SyntheticClipSet set = generate_synthetic(small_config(8, 100, true), 8000, 0.05);
  CHECK(set.multi_label);
  std::vector<int> tag_count(set.num_labels, 0);
  int clips_with_several_tags = 0;
  for (int i = 0; i < set.num_clips(); ++i) {
    const float* row = set.targets.data() + static_cast<std::size_t>(i) * set.num_labels;
    int tags = 0;
    int first_tag = -1;
    for (int k = 0; k < set.num_labels; ++k) {
      REQUIRE((row[k] == 0.0f || row[k] == 1.0f));
      if (row[k] == 1.0f) {
        ++tags;
        ++tag_count[k];
        if (first_tag < 0) first_tag = k;
      }
    }
    CHECK(tags >= 1);
    CHECK(set.primary_label[i] == first_tag);
    clips_with_several_tags += tags > 1;
  }
  // Each tag is present with probability ~0.35 (800 clips: standard deviation ~0.017).
  for (int k = 0; k < set.num_labels; ++k) {
    INFO("tag " << set.label_names[k]);
    CHECK(tag_count[k] > 0.25 * set.num_clips());
    CHECK(tag_count[k] < 0.45 * set.num_clips());
  }
  CHECK(clips_with_several_tags > set.num_clips() / 2);
}

TEST_CASE("data.synthetic.tag_probability sets how many tags a clip has", "[cpu][data]") {
  SyntheticDataConfig sparse = small_config(10, 100, true);
  sparse.tag_probability = 0.12;  // MagnaTagATune's top 10: about 1.2 tags a clip
  const SyntheticClipSet set = generate_synthetic(sparse, 8000, 0.05);
  double tags = 0.0;
  for (const float t : set.targets) tags += t;
  // Expected 10 · 0.12 + P(none) = 1.2 + 0.88^10 ≈ 1.48 tags a clip; 1000 clips: sd ≈ 0.03.
  const double per_clip = tags / set.num_clips();
  CHECK(per_clip > 1.35);
  CHECK(per_clip < 1.6);
}

TEST_CASE("synthetic classes differ in brightness and onset rate", "[cpu][data]") {
  const SyntheticClipSet set = generate_synthetic(small_config(8, 20, false), 16000, 2.0);
  const std::vector<double> brightness = class_means(set, zero_crossing_rate);
  const std::vector<double> onsets = class_means(set, onset_count);
  for (int k = 0; k < set.num_labels; ++k) {
    INFO(set.label_names[k] << ": zero-crossing rate " << brightness[k] << ", onsets "
                            << onsets[k]);
    CHECK(brightness[k] > 0.0);
  }
  // By design: drums and arpeggios are brighter than bass and pads; arpeggios (sixteenths)
  // have many more onsets than pads and organ chords (one or two chords per bar).
  const int bass = index_of(set, "bass_pulse");
  const int arp = index_of(set, "bright_arp");
  const int pad = index_of(set, "soft_pad");
  const int drums = index_of(set, "drum_groove");
  const int organ = index_of(set, "organ_chords");
  CHECK(brightness[drums] > 3.0 * brightness[pad]);
  CHECK(brightness[arp] > 2.0 * brightness[bass]);
  CHECK(onsets[arp] > 3.0 * onsets[pad]);
  CHECK(onsets[arp] > 3.0 * onsets[organ]);
  CHECK(*std::max_element(brightness.begin(), brightness.end()) >
        3.0 * *std::min_element(brightness.begin(), brightness.end()));
}

TEST_CASE("synthetic classes are not separable by loudness alone", "[cpu][data]") {
  // Nearest class mean of log RMS, fitted and scored on the same clips (optimistic).
  const SyntheticClipSet set = generate_synthetic(small_config(8, 40, false), 16000, 1.0);
  auto log_rms = [](const SyntheticClipSet& s, int i) { return std::log(rms_of_clip(s, i)); };
  const std::vector<double> means = class_means(set, log_rms);
  int correct = 0;
  for (int i = 0; i < set.num_clips(); ++i) {
    const double value = log_rms(set, i);
    int nearest = 0;
    for (int k = 1; k < set.num_labels; ++k) {
      if (std::abs(value - means[k]) < std::abs(value - means[nearest])) nearest = k;
    }
    correct += nearest == set.primary_label[i];
  }
  const double accuracy = double(correct) / set.num_clips();
  INFO("loudness-only accuracy " << accuracy);
  CHECK(accuracy < 0.5);  // chance is 0.125; a usable problem needs far more than loudness
}

TEST_CASE("synthetic config errors name the key", "[cpu][data]") {
  CHECK_THAT(user_error_of(small_config(1, 2, false), 16000, 1.0),
             Contains("data.synthetic.num_classes"));
  CHECK_THAT(user_error_of(small_config(kMaxSyntheticClasses + 1, 2, true), 16000, 1.0),
             Contains("data.synthetic.num_classes"));
  CHECK_THAT(user_error_of(small_config(4, 0, false), 16000, 1.0),
             Contains("data.synthetic.clips_per_class"));
  CHECK_THAT(user_error_of(small_config(4, 2, false), 16000, 0.0),
             Contains("data.clip_seconds"));
  CHECK_THAT(user_error_of(small_config(4, 2, false), 16000, -1.0),
             Contains("data.clip_seconds"));
  CHECK_THAT(user_error_of(small_config(4, 2, false), 16000, std::nan("")),
             Contains("data.clip_seconds"));
  CHECK_THAT(user_error_of(small_config(4, 2, false), 1000, 1.0), Contains("data.sample_rate"));
  SyntheticDataConfig never = small_config(4, 2, true);
  never.tag_probability = 0.0;
  CHECK_THAT(user_error_of(never, 16000, 1.0), Contains("data.synthetic.tag_probability"));
  CHECK_THROWS_AS(synthetic_label_names(0), UserError);
}

// ---- stratified_split ----------------------------------------------------------------------

namespace {

// Labels 0..num_classes-1 with sizes[k] clips of class k, interleaved.
std::vector<int> labels_with_sizes(const std::vector<int>& sizes) {
  std::vector<int> labels;
  std::vector<int> left = sizes;
  for (bool any = true; any;) {
    any = false;
    for (std::size_t k = 0; k < left.size(); ++k) {
      if (left[k] > 0) {
        labels.push_back(static_cast<int>(k));
        --left[k];
        any = true;
      }
    }
  }
  return labels;
}

int count_of_class(const std::vector<int>& split, const std::vector<int>& labels, int label) {
  return static_cast<int>(
      std::count_if(split.begin(), split.end(), [&](int i) { return labels[i] == label; }));
}

std::string split_error_of(std::array<double, 3> fractions) {
  try {
    stratified_split({0, 1, 0, 1}, fractions, 1);
  } catch (const UserError& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("stratified split is disjoint, complete and sorted", "[cpu][data]") {
  const std::vector<int> labels = labels_with_sizes({37, 20, 5, 1, 12});
  const auto splits = stratified_split(labels, {0.7, 0.2, 0.1}, 99);
  std::vector<int> all;
  for (const std::vector<int>& split : splits) {
    CHECK(std::is_sorted(split.begin(), split.end()));
    all.insert(all.end(), split.begin(), split.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<int> expected(labels.size());
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<int>(i);
  CHECK(all == expected);
}

TEST_CASE("stratified split holds each split's share of all clips, shared by class size", "[cpu][data]") {
  const std::vector<int> sizes = {37, 20, 5, 1, 12};  // 75 clips: 52.5 / 15 / 7.5
  const std::vector<int> labels = labels_with_sizes(sizes);
  const auto splits = stratified_split(labels, {0.7, 0.2, 0.1}, 5);
  CHECK(splits[0].size() == 53);  // the tie of the two halves goes to train, the first
  CHECK(splits[1].size() == 15);
  CHECK(splits[2].size() == 7);
  for (int k = 0; k < static_cast<int>(sizes.size()); ++k) {
    INFO("class " << k << " of " << sizes[k]);
    const double n = sizes[k];
    const int train = count_of_class(splits[0], labels, k);
    const int val = count_of_class(splits[1], labels, k);
    CHECK(std::abs(train - n * 53 / 75) < 1.0);  // its share of train, rounded one way
    CHECK(val <= n - train);
    CHECK(std::abs(val - n * 15 / 75) < 1.0 + 1e-9);
  }
  // 100 clips per class split 80/20: exactly 80 and 20 of each class.
  const std::vector<int> even = labels_with_sizes({100, 100, 100});
  const auto even_splits = stratified_split(even, {0.8, 0.2, 0.0}, 5);
  for (int k = 0; k < 3; ++k) {
    CHECK(count_of_class(even_splits[0], even, k) == 80);
    CHECK(count_of_class(even_splits[1], even, k) == 20);
  }
  CHECK(even_splits[2].empty());
  // Six clips of each of ten genres at 0.8 / 0.1 / 0.1: six validation and six test clips,
  // where rounding each class (4.8 / 0.6 / 0.6) would leave both empty.
  const std::vector<int> small = labels_with_sizes(std::vector<int>(10, 6));
  const auto small_splits = stratified_split(small, {0.8, 0.1, 0.1}, 5);
  CHECK(small_splits[0].size() == 48);
  CHECK(small_splits[1].size() == 6);
  CHECK(small_splits[2].size() == 6);
  for (int k = 0; k < 10; ++k) CHECK(count_of_class(small_splits[1], small, k) <= 1);
}

TEST_CASE("stratified split leaves zero-fraction splits empty", "[cpu][data]") {
  const std::vector<int> labels = labels_with_sizes({7, 3, 11});
  const auto all_train = stratified_split(labels, {1.0, 0.0, 0.0}, 3);
  CHECK(all_train[0].size() == labels.size());
  CHECK(all_train[1].empty());
  CHECK(all_train[2].empty());
  const auto no_val = stratified_split(labels, {0.5, 0.0, 0.5}, 3);
  CHECK(no_val[1].empty());
  CHECK(no_val[0].size() + no_val[2].size() == labels.size());
  // Fractions that sum to 1 only within 1e-6 still leave test empty.
  const auto near_one = stratified_split(labels, {0.6, 0.3999995, 0.0}, 3);
  CHECK(near_one[2].empty());
}

TEST_CASE("stratified split is deterministic and depends on the seed", "[cpu][data]") {
  const std::vector<int> labels = labels_with_sizes({50, 50, 50, 50});
  const auto a = stratified_split(labels, {0.6, 0.2, 0.2}, 7);
  const auto b = stratified_split(labels, {0.6, 0.2, 0.2}, 7);
  const auto c = stratified_split(labels, {0.6, 0.2, 0.2}, 8);
  CHECK(a == b);
  CHECK(a[0] != c[0]);
  // The shuffle is not the identity: the train split is not the first 30 of each class.
  std::vector<int> first_of_each_class;
  for (int i = 0; i < 120; ++i) first_of_each_class.push_back(i);
  CHECK(a[0] != first_of_each_class);
}

TEST_CASE("stratified split accepts arbitrary label values", "[cpu][data]") {
  const std::vector<int> labels = {-3, 40, -3, 40, 7, -3, 40, 7};
  const auto splits = stratified_split(labels, {0.5, 0.5, 0.0}, 11);
  CHECK(splits[0].size() == 4);
  CHECK(splits[1].size() == 4);
  CHECK(count_of_class(splits[0], labels, 7) == 1);  // its share, 1, exactly
  CHECK(count_of_class(splits[0], labels, -3) + count_of_class(splits[0], labels, 40) == 3);  // 1.5 each
  CHECK(stratified_split({}, {0.8, 0.2, 0.0}, 1)[0].empty());
}

TEST_CASE("stratified split rejects invalid fractions naming the key", "[cpu][data]") {
  CHECK_THAT(split_error_of({0.8, 0.3, 0.0}), Contains("data.split_fractions"));
  CHECK_THAT(split_error_of({0.8, 0.1, 0.0}), Contains("sum to 1"));
  CHECK_THAT(split_error_of({1.2, -0.2, 0.0}), Contains("non-negative"));
  CHECK_THAT(split_error_of({0.0, 0.5, 0.5}), Contains("train fraction must be positive"));
  CHECK_THAT(split_error_of({std::nan(""), 0.5, 0.5}), Contains("data.split_fractions"));
  CHECK(split_error_of({0.8, 0.2000004, 0.0}) == "no error");
}
