// Tests of GradientReducer's buckets with a recording communicator that stands in for two
// ranks: the partition follows the bucket size (runs of adjacent parameters from the last
// backwards, each as large as fits, a larger parameter alone), every parameter lands in
// exactly one bucket, a bucket's all-reduce starts as soon as its last gradient is ready
// (before finish()), finish() starts the rest and waits, and the averaged gradients equal
// the plain average of the two ranks' gradients, bit for bit.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "host/core/arena.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/dist/communicator.hpp"
#include "host/dist/gradient_reducer.hpp"

namespace cadenza {
namespace {

// Rank 0 of two; the other rank's gradient region is `peer_`. Records every call, and
// wait_all() averages each started tensor with the peer's values at the same offset.
class RecordingCommunicator final : public Communicator {
 public:
  RecordingCommunicator(const Tensor& region, const std::vector<float>& peer) : region_(region), peer_(peer) {}

  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  std::string describe() const override { return "recording, 2 ranks"; }
  void start_all_reduce(Tensor& tensor, Reduction op) override {
    CHECK(op == Reduction::average);
    calls.push_back("start " + std::to_string(offset_of(tensor)) + "+" + std::to_string(tensor.numel()));
    pending_.push_back(tensor);
  }
  void wait_all() override {
    calls.push_back("wait");
    for (Tensor& tensor : pending_) {
      const std::size_t offset = offset_of(tensor);
      for (std::int64_t i = 0; i < tensor.numel(); ++i)
        tensor.f32()[i] = (tensor.f32()[i] + peer_[offset + std::size_t(i)]) / 2.0f;
    }
    pending_.clear();
  }
  void broadcast(Tensor&, int) override { FAIL("GradientReducer broadcasts nothing"); }
  void all_reduce_host(std::vector<double>&) override { FAIL("GradientReducer reduces no host values"); }
  void barrier() override { FAIL("GradientReducer needs no barrier"); }

  std::size_t offset_of(const Tensor& tensor) const {
    return std::size_t(static_cast<const float*>(tensor.raw()) - static_cast<const float*>(region_.raw()));
  }

  std::vector<std::string> calls;

 private:
  Tensor region_;
  const std::vector<float>& peer_;
  std::vector<Tensor> pending_;
};

// Parameters of the given element counts, in order, with their gradients in `plan`.
std::vector<NamedParameter> declare(ArenaPlan& plan, const std::vector<std::int64_t>& sizes) {
  std::vector<NamedParameter> parameters;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const std::string name = std::string("p").append(std::to_string(i));
    parameters.push_back({name, plan.add_parameter(name, Shape{sizes[i]}), TensorInit{}});
  }
  return parameters;
}

// The element range [begin, end) of parameter i's gradient in the gradient region.
std::pair<std::int64_t, std::int64_t> range_of(const Arena& arena, const std::vector<NamedParameter>& parameters,
                                               int i) {
  const ArenaPlan::Entry& entry = arena.plan().entries()[std::size_t(parameters[std::size_t(i)].id.gradient.index)];
  const auto begin = std::int64_t(entry.offset / sizeof(float));
  return {begin, begin + entry.shape.numel()};
}

// The bytes bucket_mb gives, as the trainer computes them.
std::size_t bucket_bytes(double bucket_mb) { return static_cast<std::size_t>(bucket_mb * 1048576.0); }

std::vector<std::pair<int, int>> partition(const GradientReducer& reducer) {
  std::vector<std::pair<int, int>> ranges;
  for (const GradientReducer::Bucket& bucket : reducer.buckets())
    ranges.emplace_back(bucket.first_parameter, bucket.parameter_end);
  return ranges;
}

TEST_CASE("GradientReducer buckets follow bucket_mb, from the last parameter backwards", "[cpu][dist]") {
  CpuBackend cpu(1);
  SECTION("16 floats per parameter (no gaps), 3 parameters' worth per bucket") {
    ArenaPlan plan;
    const std::vector<NamedParameter> parameters = declare(plan, std::vector<std::int64_t>(10, 16));
    const Arena arena(std::move(plan), cpu);
    const Tensor region = arena.region(Region::gradients);
    const std::vector<float> peer(std::size_t(region.numel()), 0.0f);
    RecordingCommunicator comm(region, peer);
    const GradientReducer reducer(arena, parameters, 3 * 16 * sizeof(float), comm);
    CHECK(partition(reducer) == std::vector<std::pair<int, int>>{{7, 10}, {4, 7}, {1, 4}, {0, 1}});
    CHECK(reducer.buckets()[0].gradients.numel() == 48);
    CHECK(reducer.buckets()[3].gradients.numel() == 16);
    CHECK(comm.calls.empty());
  }
  SECTION("a parameter larger than a bucket is a bucket of its own") {
    ArenaPlan plan;
    const std::vector<NamedParameter> parameters = declare(plan, {16, 16, 1000, 16, 16});
    const Arena arena(std::move(plan), cpu);
    const Tensor region = arena.region(Region::gradients);
    const std::vector<float> peer(std::size_t(region.numel()), 0.0f);
    RecordingCommunicator comm(region, peer);
    const GradientReducer reducer(arena, parameters, 64 * sizeof(float), comm);
    CHECK(partition(reducer) == std::vector<std::pair<int, int>>{{3, 5}, {2, 3}, {0, 2}});
  }
  SECTION("uneven sizes with alignment gaps, at several bucket_mb") {
    ArenaPlan plan;
    const std::vector<std::int64_t> sizes{100, 300, 7, 1000, 50, 200, 3, 640, 65, 1};
    const std::vector<NamedParameter> parameters = declare(plan, sizes);
    const Arena arena(std::move(plan), cpu);
    const Tensor region = arena.region(Region::gradients);
    const std::vector<float> peer(std::size_t(region.numel()), 0.0f);
    for (const double bucket_mb : {0.0001, 0.001, 0.002, 0.004, 25.0}) {
      INFO("bucket_mb " << bucket_mb);
      RecordingCommunicator comm(region, peer);
      const GradientReducer reducer(arena, parameters, bucket_bytes(bucket_mb), comm);
      const auto limit = std::int64_t(bucket_bytes(bucket_mb) / sizeof(float));
      std::vector<int> seen(sizes.size(), 0);
      int expected_end = int(sizes.size());
      for (const GradientReducer::Bucket& bucket : reducer.buckets()) {
        // Adjacent runs, going down from the last parameter.
        REQUIRE(bucket.parameter_end == expected_end);
        REQUIRE(bucket.first_parameter < bucket.parameter_end);
        expected_end = bucket.first_parameter;
        for (int i = bucket.first_parameter; i < bucket.parameter_end; ++i) ++seen[std::size_t(i)];
        // The bucket's tensor spans its parameters' gradients, gaps between them included.
        const std::int64_t low = range_of(arena, parameters, bucket.first_parameter).first;
        const std::int64_t high = range_of(arena, parameters, bucket.parameter_end - 1).second;
        CHECK(comm.offset_of(bucket.gradients) == std::size_t(low));
        CHECK(bucket.gradients.numel() == high - low);
        // Within the size unless a single parameter; as large as fits (the next parameter down
        // would have overflowed it).
        if (bucket.parameter_end - bucket.first_parameter > 1) CHECK(high - low <= limit);
        if (bucket.first_parameter > 0)
          CHECK(high - range_of(arena, parameters, bucket.first_parameter - 1).first > limit);
      }
      CHECK(expected_end == 0);
      CHECK(seen == std::vector<int>(sizes.size(), 1));
      if (bucket_mb == 25.0) CHECK(reducer.buckets().size() == 1);
      if (bucket_mb == 0.0001) CHECK(reducer.buckets().size() == sizes.size());
    }
  }
}

TEST_CASE("GradientReducer starts each bucket when its last gradient is ready and averages", "[cpu][dist]") {
  CpuBackend cpu(1);
  ArenaPlan plan;
  const std::vector<std::int64_t> sizes{100, 300, 7, 1000, 50, 200, 3, 640, 65, 1};
  const std::vector<NamedParameter> parameters = declare(plan, sizes);
  const Arena arena(std::move(plan), cpu);
  Tensor region = arena.region(Region::gradients);
  // Both ranks' gradients: distinct values on the parameters, zero in the alignment gaps.
  std::vector<float> mine(std::size_t(region.numel()), 0.0f), peer(mine.size(), 0.0f);
  for (int i = 0; i < int(sizes.size()); ++i) {
    const auto [begin, end] = range_of(arena, parameters, i);
    for (std::int64_t e = begin; e < end; ++e) {
      mine[std::size_t(e)] = 0.25f * float(e % 97) - 3.0f + 0.001f * float(i);
      peer[std::size_t(e)] = 1.0f / float(e + 3) + float(i);
    }
  }
  RecordingCommunicator comm(region, peer);
  GradientReducer reducer(arena, parameters, bucket_bytes(0.002), comm);  // 524 floats
  const auto start_of = [&](const GradientReducer::Bucket& bucket) {
    return "start " + std::to_string(comm.offset_of(bucket.gradients)) + "+" +
           std::to_string(bucket.gradients.numel());
  };

  // Two steps: begin_step() makes every bucket wait again.
  for (int step = 0; step < 2; ++step) {
    INFO("step " << step);
    std::copy(mine.begin(), mine.end(), region.f32());
    comm.calls.clear();
    reducer.begin_step();
    // Backward's layers, last first. With these sizes the buckets are parameters [8, 10),
    // [7, 8), [4, 7), [3, 4) and [0, 3): a layer may complete none, one or two buckets.
    REQUIRE(partition(reducer) == std::vector<std::pair<int, int>>{{8, 10}, {7, 8}, {4, 7}, {3, 4}, {0, 3}});
    const std::vector<std::pair<int, int>> layers{{9, 10}, {7, 9}, {5, 7}, {3, 5}, {0, 3}};
    std::set<int> ready;
    for (const auto& [first, end] : layers) {
      INFO("after the layer of parameters [" << first << ", " << end << ")");
      reducer.gradients_ready(first, end);
      for (int i = first; i < end; ++i) ready.insert(i);
      // Exactly the buckets whose parameters are all ready have started, each once.
      std::multiset<std::string> expected;
      for (const GradientReducer::Bucket& bucket : reducer.buckets()) {
        bool complete = true;
        for (int i = bucket.first_parameter; i < bucket.parameter_end; ++i) complete = complete && ready.count(i) > 0;
        if (complete) expected.insert(start_of(bucket));
      }
      CHECK(std::multiset<std::string>(comm.calls.begin(), comm.calls.end()) == expected);
    }
    CHECK(comm.calls.size() == reducer.buckets().size());  // all started before finish()
    reducer.finish();
    REQUIRE(comm.calls.size() == reducer.buckets().size() + 1);
    CHECK(comm.calls.back() == "wait");
    // The plain average of the two ranks, every element reduced exactly once.
    for (std::size_t e = 0; e < mine.size(); ++e) {
      INFO("element " << e);
      REQUIRE(region.f32()[e] == (mine[e] + peer[e]) / 2.0f);
    }
  }

  SECTION("finish() starts the buckets whose gradients were never reported, then waits") {
    std::copy(mine.begin(), mine.end(), region.f32());
    comm.calls.clear();
    reducer.begin_step();
    reducer.gradients_ready(8, 10);  // the last layer only
    const std::size_t started = comm.calls.size();
    CHECK(started >= 1);
    CHECK(started < reducer.buckets().size());
    reducer.finish();
    REQUIRE(comm.calls.size() == reducer.buckets().size() + 1);
    CHECK(comm.calls.back() == "wait");
    for (std::size_t b = 0; b < reducer.buckets().size(); ++b) CHECK(comm.calls[b] == start_of(reducer.buckets()[b]));
    for (std::size_t e = 0; e < mine.size(); ++e) REQUIRE(region.f32()[e] == (mine[e] + peer[e]) / 2.0f);
  }
}

}  // namespace
}  // namespace cadenza
