// [cpu][arena] The arena plan's lifetime packing: buffers live at the same time never share
// bytes, and buffers that are not may (a chain of gradients needs two at a time).
#include <catch2/catch.hpp>

#include <algorithm>

#include "host/core/arena.hpp"
#include "host/math/random_math.hpp"

using namespace cadenza;

namespace {

struct Placed {
  std::size_t start, end;
  int first, last;
};

std::vector<Placed> placed(const ArenaPlan& plan, const std::vector<BufferId>& ids,
                           const std::vector<ArenaPlan::LifetimeRequest>& requests) {
  std::vector<Placed> out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const ArenaPlan::Entry& e = plan.entries()[ids[i].index];
    out.push_back({e.offset, e.offset + static_cast<std::size_t>(e.shape.numel()) * 4, requests[i].first,
                   requests[i].last});
  }
  return out;
}

}  // namespace

TEST_CASE("buffers live at the same time never share bytes", "[cpu][arena]") {
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    ArenaPlan plan;
    plan.add(Region::activations, "before", Shape{100});  // the block starts after it
    std::vector<ArenaPlan::LifetimeRequest> requests;
    for (int i = 0; i < 40; ++i) {
      const int first = static_cast<int>(uniform_index(seed, 1, i, 30));
      const int length = static_cast<int>(uniform_index(seed, 2, i, 6));
      requests.push_back({std::string("b").append(std::to_string(i)), Shape{1 + std::int64_t(uniform_index(seed, 3, i, 5000))}, first,
                          first + length});
    }
    const std::vector<BufferId> ids = plan.add_by_lifetime(Region::activations, requests);
    const std::vector<Placed> p = placed(plan, ids, requests);
    std::size_t sum = 0;
    for (const Placed& a : p) {
      CHECK(a.start >= 400);  // after "before"
      CHECK(a.start % 64 == 0);
      CHECK(a.end <= plan.region_bytes(Region::activations));
      sum += a.end - a.start;
    }
    for (std::size_t i = 0; i < p.size(); ++i)
      for (std::size_t j = i + 1; j < p.size(); ++j) {
        const bool live_together = p[i].first <= p[j].last && p[j].first <= p[i].last;
        const bool share_bytes = p[i].start < p[j].end && p[j].start < p[i].end;
        INFO("seed " << seed << ", buffers " << i << " and " << j);
        CHECK(!(live_together && share_bytes));
      }
    CHECK(plan.region_bytes(Region::activations) < 448 + sum);  // some bytes were shared
  }
}

TEST_CASE("a chain of gradients takes two buffers' room; buffers all live take their sum", "[cpu][arena]") {
  ArenaPlan chain;
  std::vector<ArenaPlan::LifetimeRequest> requests;
  for (int k = 0; k < 10; ++k) requests.push_back({std::string("g").append(std::to_string(k)), Shape{1024}, -k - 1, -k});
  chain.add_by_lifetime(Region::activations, requests);
  CHECK(chain.region_bytes(Region::activations) == 2 * 4096);

  ArenaPlan all_live;
  for (auto& r : requests) r.first = -10, r.last = 0;
  const std::vector<BufferId> ids = all_live.add_by_lifetime(Region::activations, requests);
  CHECK(all_live.region_bytes(Region::activations) == 10 * 4096);
  CHECK(ids.size() == 10);
  CHECK(all_live.entries()[ids[3].index].name == "g3");
}
