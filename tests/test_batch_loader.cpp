// BatchLoader: fills equal those of direct reads whatever the thread count, padding rows
// repeat the first example, fills overlap the caller, and a read's exception reaches
// wait() without stopping the loader.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "host/core/error.hpp"
#include "host/data/batch_loader.hpp"

using namespace cadenza;

namespace {

// Clip c's sample i is c * 1000 + i (exact in float), for clips of `length` samples; a
// read of clip `failing` throws; `reads` counts reads.
class CountingAudio final : public ClipAudio {
 public:
  CountingAudio(std::int64_t length, int failing) : length_(length), failing_(failing) {}
  void read(int clip, std::int64_t offset, std::int64_t count, float* out) const override {
    ++reads;
    if (clip == failing_) throw UserError("clip " + std::to_string(clip) + " cannot be read");
    for (std::int64_t i = 0; i < count; ++i)
      out[i] = offset + i < length_ ? float(clip * 1000 + offset + i) : 0.0f;
  }
  mutable std::atomic<int> reads{0};

 private:
  std::int64_t length_;
  int failing_;
};

Dataset counting_dataset(int clips, int labels, std::int64_t length, int failing = -1) {
  Dataset d;
  for (int k = 0; k < labels; ++k) d.label_names.push_back("label_" + std::to_string(k));
  for (int c = 0; c < clips; ++c) {
    for (int k = 0; k < labels; ++k) d.targets.push_back(k == c % labels ? 1.0f : 0.0f);
    d.primary_label.push_back(c % labels);
    d.lengths.push_back(length);
  }
  d.audio = std::make_unique<CountingAudio>(length, failing);
  return d;
}

}  // namespace

TEST_CASE("a batch holds the examples' windows and targets, for any thread count", "[cpu][data]") {
  const Dataset data = counting_dataset(10, 3, 500);
  const std::vector<ClipWindow> examples = {{4, 0}, {7, 100}, {2, 450}, {9, 13}, {0, 0}};
  const std::int64_t window = 64;
  for (int threads : {1, 2, 5}) {
    BatchLoader loader(data, window, threads);
    Tensor pcm = Tensor::zeros(Shape{4, window}), targets = Tensor::zeros(Shape{4, 3});
    loader.fill(examples, 1, 3, pcm, targets);  // examples 1..3, then row 3 repeats example 1
    const std::vector<ClipWindow> expected = {examples[1], examples[2], examples[3], examples[1]};
    for (int b = 0; b < 4; ++b) {
      INFO("threads " << threads << ", row " << b);
      const ClipWindow& e = expected[b];
      for (std::int64_t i = 0; i < window; ++i) {
        const float want = e.offset + i < 500 ? float(e.clip * 1000 + e.offset + i) : 0.0f;  // zero past the end
        REQUIRE(pcm.f32()[b * window + i] == want);
      }
      for (int k = 0; k < 3; ++k) CHECK(targets.f32()[b * 3 + k] == (k == e.clip % 3 ? 1.0f : 0.0f));
    }
  }
}

TEST_CASE("a fill runs while the caller works, and wait() returns it complete", "[cpu][data]") {
  const Dataset data = counting_dataset(64, 2, 2000);
  std::vector<ClipWindow> examples;
  for (int c = 0; c < 64; ++c) examples.push_back({c, 7});
  BatchLoader loader(data, 1000, 2);
  Tensor pcm = Tensor::zeros(Shape{64, 1000}), targets = Tensor::zeros(Shape{64, 2});
  for (int round = 0; round < 20; ++round) {  // repeated fills reuse the same threads
    loader.start(examples, 0, 64, pcm, targets);
    loader.wait();
    for (int b = 0; b < 64; ++b) REQUIRE(pcm.f32()[b * 1000 + 999] == float(b * 1000 + 7 + 999));
  }
  CHECK(static_cast<const CountingAudio&>(*data.audio).reads == 20 * 64);
  CHECK_THROWS_AS(loader.start(examples, 60, 8, pcm, targets), Error);  // past the examples
}

TEST_CASE("a failed read is rethrown by wait() and the loader goes on", "[cpu][data]") {
  const Dataset data = counting_dataset(8, 2, 100, /*failing=*/5);
  const std::vector<ClipWindow> examples = {{1, 0}, {5, 0}, {3, 0}, {2, 0}};
  BatchLoader loader(data, 50, 2);
  Tensor pcm = Tensor::zeros(Shape{2, 50}), targets = Tensor::zeros(Shape{2, 2});
  loader.start(examples, 0, 2, pcm, targets);
  CHECK_THROWS_WITH(loader.wait(), Catch::Contains("clip 5 cannot be read"));
  loader.fill(examples, 2, 2, pcm, targets);
  CHECK(pcm.f32()[0] == 3000.0f);
  CHECK(pcm.f32()[50] == 2000.0f);
}
