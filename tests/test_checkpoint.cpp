// Checkpoints round-trip their tensors and trainer state, keep the newest `keep` step
// directories plus best (leaving other names alone), point `best` where the state says,
// refuse a file damaged on disk by its checksum (naming it), and are never written with a
// non-finite tensor: the last good one stays `last`.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "host/core/error.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/safetensors.hpp"
#include "host/train/checkpoint.hpp"
#include "tests/test_support.hpp"

namespace cadenza {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr std::uint64_t kModelHash = 0x1234;

struct Tensors {
  Tensor weight = Tensor::zeros(Shape{2, 3});
  Tensor moment = Tensor::zeros(Shape{4});
  CheckpointContents contents() { return {{{"layer.weight", weight}}, {{"optimizer.exp_avg", moment}}}; }
};

// The state at `step`, whose best checkpoint is step 1's.
TrainerState state_at(std::int64_t step) {
  TrainerState state;
  state.global_step = step;
  state.best_step = 1;
  state.config_values = {{"train.lr", "0.001"}};
  return state;
}

// Flips one byte of `file` at `offset` from its end.
void damage(const fs::path& file, std::size_t offset_from_end) {
  std::string bytes = read_file(file);
  bytes[bytes.size() - offset_from_end] ^= 0x40;
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace

TEST_CASE("checkpoints round-trip, and a damaged or non-finite one is refused by name", "[cpu][checkpoint]") {
  CpuBackend backend(1);
  TempDir dir;
  const fs::path checkpoints = dir / "checkpoints";
  Tensors saved;
  for (int i = 0; i < 6; ++i) saved.weight.f32()[i] = 0.5f * float(i);
  for (int i = 0; i < 4; ++i) saved.moment.f32()[i] = -1.0f * float(i);
  const auto entries = [&] {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(checkpoints)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  };
  save_checkpoint(checkpoints, saved.contents(), state_at(1), kModelHash, 2, backend);
  // A user's copies are not checkpoints of the run: neither pruned nor counted. A link
  // left by a save killed between making and renaming it is removed.
  fs::create_directories(checkpoints / "step-00000001.bak");
  fs::create_directories(checkpoints / "step-zzz");
  fs::create_symlink("step-00000001", checkpoints / "last.tmp.12345");
  for (std::int64_t step : {2, 3, 4}) save_checkpoint(checkpoints, saved.contents(), state_at(step), kModelHash, 2, backend);
  // keep 2: steps 3 and 4, and best (1); step 2 is pruned, leaving nothing behind.
  CHECK(entries() == std::vector<std::string>{"best", "last", "step-00000001", "step-00000001.bak", "step-00000003",
                                              "step-00000004", "step-zzz"});
  CHECK(fs::read_symlink(checkpoints / "last") == "step-00000004");
  CHECK(fs::read_symlink(checkpoints / "best") == "step-00000001");
  fs::create_directories(checkpoints / "step-100000000");  // after step-99999999, by step
  fs::create_directories(checkpoints / "step-0000005");    // seven digits: not a step directory
  CHECK(step_directory_names(checkpoints) ==
        std::vector<std::string>{"step-00000001", "step-00000003", "step-00000004", "step-100000000"});
  fs::remove(checkpoints / "step-100000000");
  fs::remove(checkpoints / "step-0000005");

  // A save killed between its two links leaves `best` ahead of the `last` a resume reads;
  // the state's best_step points it back, and names the best directory either way.
  fs::remove(checkpoints / "best");
  fs::create_symlink("step-00000004", checkpoints / "best");
  TrainerState resumed = state_at(3);
  CHECK(best_checkpoint_dir(checkpoints, resumed) == checkpoints / "step-00000001");
  align_best_link(checkpoints, resumed);
  CHECK(fs::read_symlink(checkpoints / "best") == "step-00000001");
  resumed.best_step = -1;  // a checkpoint written before best_step: the link is taken as it is
  CHECK(best_checkpoint_dir(checkpoints, resumed) == checkpoints / "best");
  align_best_link(checkpoints, resumed);
  CHECK(fs::read_symlink(checkpoints / "best") == "step-00000001");

  Tensors loaded;
  const TrainerState state = load_checkpoint(checkpoints / "last", loaded.contents(), kModelHash, backend);
  CHECK(state.global_step == 4);
  CHECK(state.best_step == 1);
  CHECK(std::vector<float>(loaded.weight.f32(), loaded.weight.f32() + 6) ==
        std::vector<float>(saved.weight.f32(), saved.weight.f32() + 6));
  CHECK(std::vector<float>(loaded.moment.f32(), loaded.moment.f32() + 4) ==
        std::vector<float>(saved.moment.f32(), saved.moment.f32() + 4));

  // One flipped bit in a tensor's bytes, of either file, is found.
  for (const char* file : {"model.safetensors", "trainer.safetensors"}) {
    INFO(file);
    const fs::path path = checkpoints / "step-00000003" / file;
    damage(path, 2);  // inside the last tensor's data
    CHECK_THROWS_WITH(load_checkpoint(checkpoints / "step-00000003", loaded.contents(), kModelHash, backend),
                      path.string() + ": damaged (its contents do not match the checksum written with them); "
                                      "use an earlier checkpoint of the run (checkpoints/step-*)");
    damage(path, 2);  // restored
  }
  CHECK_NOTHROW(load_checkpoint(checkpoints / "step-00000003", loaded.contents(), kModelHash, backend));
  const fs::path model_file = checkpoints / "step-00000003" / "model.safetensors";
  damage(model_file, 2);
  CHECK_THROWS_WITH(load_weights(model_file, loaded.contents().weights, kModelHash, backend),
                    Catch::StartsWith(model_file.string() + ": damaged"));

  // A file written before checkpoints carried a checksum loads unchecked.
  const fs::path unchecked = dir / "unchecked.safetensors";
  write_safetensors(unchecked, {{"layer.weight", "F32", {2, 3}, saved.weight.raw(), saved.weight.bytes()}},
                    {{"format", "cadenza-checkpoint-1"}, {"model_hash", "0000000000001234"}});
  CHECK_NOTHROW(load_weights(unchecked, loaded.contents().weights, kModelHash, backend));

  // A NaN weight stops the save (and the same check on a rank that writes nothing): step 5
  // is not written and `last` stays at step 4.
  saved.weight.f32()[4] = std::nanf("");
  const std::string diverged =
      "training diverged: 'layer.weight' holds NaN or infinity at step 5; the last checkpoint is kept; try a lower "
      "train.lr";
  CHECK_THROWS_WITH(save_checkpoint(checkpoints, saved.contents(), state_at(5), kModelHash, 2, backend), diverged);
  CHECK_THROWS_WITH(require_finite_checkpoint(saved.contents(), 5, backend), diverged);
  CHECK_FALSE(fs::exists(checkpoints / "step-00000005"));
  CHECK(fs::read_symlink(checkpoints / "last") == "step-00000004");
}

}  // namespace cadenza
