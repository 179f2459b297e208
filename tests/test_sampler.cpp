// [cpu][data] The samplers: epochs visit every clip once (or balanced), windows stay in
// their clip, shards of ranks are disjoint and equal, evaluation windows follow Won et
// al.'s multiframe rule, and every choice repeats for the same seed and epoch.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include "host/data/sampler.hpp"

using namespace cadenza;

namespace {

struct Fixture {
  std::vector<int> clips;
  std::vector<std::int64_t> lengths;
  std::vector<int> labels;
};

// 30 clips: class 0 has 20, class 1 has 7, class 2 has 3; lengths 50..340 samples.
Fixture make() {
  Fixture f;
  for (int i = 0; i < 30; ++i) {
    f.clips.push_back(i);
    f.lengths.push_back(50 + 10 * i);
    f.labels.push_back(i < 20 ? 0 : i < 27 ? 1 : 2);
  }
  return f;
}

}  // namespace

TEST_CASE("a training epoch visits every clip once with windows inside the clip", "[cpu][data]") {
  const Fixture f = make();
  const TrainingSamplerOptions options{7};
  const auto epoch = training_epoch(f.clips, f.lengths, f.labels, 60, options, 0);
  REQUIRE(epoch.size() == 30);
  std::set<int> seen;
  for (const ClipWindow& w : epoch) {
    seen.insert(w.clip);
    CHECK(w.offset >= 0);
    CHECK(w.offset <= std::max<std::int64_t>(0, f.lengths[w.clip] - 60));
    if (f.lengths[w.clip] <= 60) CHECK(w.offset == 0);
  }
  CHECK(seen.size() == 30);
  const auto again = training_epoch(f.clips, f.lengths, f.labels, 60, options, 0);
  CHECK(std::equal(epoch.begin(), epoch.end(), again.begin(),
                   [](const ClipWindow& a, const ClipWindow& b) { return a.clip == b.clip && a.offset == b.offset; }));
  const auto next = training_epoch(f.clips, f.lengths, f.labels, 60, options, 1);
  CHECK_FALSE(std::equal(epoch.begin(), epoch.end(), next.begin(),
                         [](const ClipWindow& a, const ClipWindow& b) { return a.clip == b.clip; }));
}

TEST_CASE("ranks get disjoint, equal shards of the same epoch order", "[cpu][data]") {
  const Fixture f = make();
  for (int world : {2, 4, 7}) {
    std::set<int> all;
    std::size_t total = 0;
    for (int rank = 0; rank < world; ++rank) {
      const auto shard = training_epoch(f.clips, f.lengths, f.labels, 60, TrainingSamplerOptions{7, "none", rank, world}, 3);
      CHECK(shard.size() == static_cast<std::size_t>(30 / world));
      for (const ClipWindow& w : shard) CHECK(all.insert(w.clip).second);  // never seen by another rank
      total += shard.size();
    }
    CHECK(total == std::size_t(30 / world * world));
  }
}

TEST_CASE("a step of W ranks reads the rows of one process's step with a W times larger batch", "[cpu][data]") {
  const Fixture f = make();
  for (auto [world, batch] : {std::pair{2, 4}, std::pair{3, 2}, std::pair{4, 1}}) {
    INFO(world << " ranks of batch " << batch);
    TrainingSamplerOptions one{7, "none", 0, 1, batch * world};
    const auto single = training_epoch(f.clips, f.lengths, f.labels, 60, one, 5);
    CHECK(single.size() == std::size_t(30 / (batch * world) * batch * world));
    for (int rank = 0; rank < world; ++rank) {
      const auto shard =
          training_epoch(f.clips, f.lengths, f.labels, 60, TrainingSamplerOptions{7, "none", rank, world, batch}, 5);
      REQUIRE(shard.size() * world == single.size());
      for (std::size_t k = 0; k < shard.size(); ++k) {
        const std::size_t step = k / batch, row = rank * batch + k % batch;  // row of the large batch
        const ClipWindow& expected = single[step * batch * world + row];
        CHECK(shard[k].clip == expected.clip);
        CHECK(shard[k].offset == expected.offset);  // the same crop
      }
    }
  }
}

TEST_CASE("balanced sampling over- or under-samples every class to the same count", "[cpu][data]") {
  const Fixture f = make();
  for (auto [mode, per_class] : {std::pair<std::string, int>{"oversample", 20}, {"undersample", 3}}) {
    const auto epoch = training_epoch(f.clips, f.lengths, f.labels, 60, TrainingSamplerOptions{7, mode}, 0);
    std::map<int, int> counts;
    for (const ClipWindow& w : epoch) ++counts[f.labels[w.clip]];
    CHECK(counts.size() == 3);
    for (const auto& [label, count] : counts) CHECK(count == per_class);
    if (mode == "oversample") {  // class 2's 3 clips appear 6 or 7 times each
      std::map<int, int> uses;
      for (const ClipWindow& w : epoch) uses[w.clip] += f.labels[w.clip] == 2;
      for (int clip = 27; clip < 30; ++clip) CHECK((uses[clip] == 6 || uses[clip] == 7));
    }
  }
  CHECK_THROWS_WITH(training_epoch(f.clips, f.lengths, f.labels, 60, TrainingSamplerOptions{7, "smote"}, 0),
                    Catch::Contains("data.balance"));
}

TEST_CASE("evaluation windows follow the multiframe rule", "[cpu][data]") {
  const std::vector<int> clips = {0, 1, 2};
  const std::vector<std::int64_t> lengths = {100, 25, 10};
  SECTION("16 windows, Won et al.'s hop (length - window) / 16") {
    const auto w = evaluation_windows({0}, lengths, 10, 16, 0);
    REQUIRE(w.size() == 16);
    for (int i = 0; i < 16; ++i) CHECK(w[i].offset == i * 5);  // (100 - 10) / 16 = 5
  }
  SECTION("dropping the ends") {
    const auto w = evaluation_windows({0}, lengths, 10, 4, 20);
    REQUIRE(w.size() == 4);
    CHECK(w.front().offset == 20);
    CHECK(w.back().offset + 10 <= 80);
  }
  SECTION("every whole window, back to back") {
    const auto w = evaluation_windows(clips, lengths, 10, 0, 0);
    std::vector<std::int64_t> offsets_of_0;
    for (const ClipWindow& x : w)
      if (x.clip == 0) offsets_of_0.push_back(x.offset);
    CHECK(offsets_of_0 == std::vector<std::int64_t>{0, 10, 20, 30, 40, 50, 60, 70, 80, 90});
    CHECK(std::count_if(w.begin(), w.end(), [](const ClipWindow& x) { return x.clip == 1; }) == 2);
    CHECK(std::count_if(w.begin(), w.end(), [](const ClipWindow& x) { return x.clip == 2; }) == 1);
  }
  SECTION("a clip shorter than the window, or than the dropped ends") {
    const auto w = evaluation_windows({2}, lengths, 16, 3, 4);
    REQUIRE(w.size() == 3);
    for (const ClipWindow& x : w) CHECK(x.offset == 0);
  }
}
