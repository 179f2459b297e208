// Tests of device_for_rank: which device each rank of a data-parallel job takes for each
// train.device, given the CUDA devices the rank sees (one per rank under per-rank
// CUDA_VISIBLE_DEVICES or srun --gpus-per-task=1, else all of the node's), and its errors.
#include <catch2/catch.hpp>

#include <string>

#include "host/dist/launch.hpp"
#include "host/dist/process_group.hpp"
#include "test_support.hpp"

namespace cadenza {
namespace {

using cadenza::testing::user_error_message;

LaunchInfo rank_of_node(int local_rank, int local_world_size, int world_size) {
  LaunchInfo launch;
  launch.launcher = "slurm";
  launch.rank = local_rank;
  launch.world_size = world_size;
  launch.local_rank = local_rank;
  launch.local_world_size = local_world_size;
  return launch;
}

TEST_CASE("device_for_rank: a rank that sees one GPU takes it, else the GPU of its local rank", "[cpu][dist]") {
  SECTION("one device visible per rank: every local rank takes cuda:0 and says why") {
    for (int local_rank = 0; local_rank < 4; ++local_rank) {
      const RankDevice chosen = device_for_rank("cuda", rank_of_node(local_rank, 4, 8), 1, "3");
      CHECK(chosen.device == "cuda:0");
      CHECK(chosen.note == "local rank " + std::to_string(local_rank) +
                               " sees one CUDA device (CUDA_VISIBLE_DEVICES '3'): using cuda:0");
    }
  }
  SECTION("all of the node's devices visible: the GPU of the local rank") {
    for (int local_rank = 0; local_rank < 4; ++local_rank) {
      const RankDevice chosen = device_for_rank("cuda", rank_of_node(local_rank, 4, 8), 4, nullptr);
      CHECK(chosen.device == "cuda:" + std::to_string(local_rank));
      CHECK(chosen.note.empty());
    }
  }
  SECTION("no device seen: left to make_context, which says what CUDA reported") {
    CHECK(device_for_rank("cuda", rank_of_node(1, 2, 2), 0, nullptr).device == "cuda:1");
  }
  SECTION("a local rank beyond several visible devices is refused") {
    CHECK(user_error_message([] { device_for_rank("cuda", rank_of_node(2, 4, 4), 2, "0,1"); }) ==
          "train.device cuda: local rank 2 would take cuda:2, but this process sees 2 CUDA devices "
          "(CUDA_VISIBLE_DEVICES '0,1'); make one GPU visible to each rank, or as many as there are ranks on "
          "the node");
    CHECK(user_error_message([] { device_for_rank("cuda", rank_of_node(3, 4, 4), 3, nullptr); }) ==
          "train.device cuda: local rank 3 would take cuda:3, but this process sees 3 CUDA devices "
          "(CUDA_VISIBLE_DEVICES unset); make one GPU visible to each rank, or as many as there are ranks on "
          "the node");
  }
  SECTION("one process, the CPU or auto: the configured device as it is") {
    CHECK(device_for_rank("cuda", rank_of_node(0, 1, 1), 4, nullptr).device == "cuda");
    CHECK(device_for_rank("cuda:2", rank_of_node(0, 1, 1), 4, nullptr).device == "cuda:2");
    CHECK(device_for_rank("cpu", rank_of_node(1, 2, 2), 0, nullptr).device == "cpu");
    CHECK(device_for_rank("auto", rank_of_node(1, 2, 2), 0, nullptr).device == "auto");
  }
  SECTION("one named GPU: one rank per node may use it, several may not") {
    CHECK(device_for_rank("cuda:1", rank_of_node(0, 1, 2), 2, nullptr).device == "cuda:1");
    CHECK(user_error_message([] { device_for_rank("cuda:1", rank_of_node(0, 2, 2), 2, nullptr); }) ==
          "train.device: cuda:1 names one GPU, but 2 ranks run on this node; use cuda (each rank takes the GPU "
          "of its local rank)");
  }
}

}  // namespace
}  // namespace cadenza
