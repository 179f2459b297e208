// [cuda] The training step captured as a CUDA graph (train.capture_graph) takes exactly the
// steps of the run that enqueues its ops one by one: same losses, same weights, bit for
// bit (the convolution algorithms are deterministic, the step values carry every per-step
// value). A capture the driver refused would show as a warning and no graph replay.
#include <catch2/catch.hpp>

#include <sstream>

#include "host/config/config.hpp"
#include "host/core/logger.hpp"
#include "host/io/jsonl.hpp"
#include "host/train/trainer.hpp"
#include "tests/test_support.hpp"

using namespace cadenza;

TEST_CASE("the CUDA graph of the training step replays the eager steps bit for bit", "[cuda][train]") {
  const std::vector<std::string> overrides = {
      "data.synthetic.num_classes=4",   "data.synthetic.clips_per_class=24", "data.clip_seconds=1.0",
      "train.epochs=3",                 "train.log_every_steps=1",           "train.device=cuda",
      "augment.shift_probability=0.5",  "augment.noise_probability=0.5",     "augment.time_masks=1",
      "train.schedule.warmup_epochs=1.5", "train.phases.epochs=[2]",         "train.phases.lr=[0.01]",
      "train.phases.optimizer=sgd",     "train.momentum=0.9"};
  auto eager_overrides = overrides;
  eager_overrides.push_back("train.capture_graph=false");
  const std::string demo = std::string(CADENZA_SOURCE_DIR) + "/configs/demo.yaml";
  std::ostringstream graph_log, eager_log;
  Logger graph_logger(graph_log), eager_logger(eager_log);
  testing::TempDir replayed, eager;
  run_training(load_config(demo, overrides), TrainRequest{replayed.path(), false}, graph_logger);
  run_training(load_config(demo, eager_overrides), TrainRequest{eager.path(), false}, eager_logger);
  INFO(graph_log.str());
  CHECK(graph_logger.warnings() == 0);
  CHECK_THAT(graph_log.str(), Catch::Contains("device: cuda:0"));
  CHECK_THAT(eager_log.str(), Catch::Contains("device: cuda:0"));
  CHECK_THAT(graph_log.str(), Catch::Contains("replayed as one graph"));
  const std::vector<double> losses = logged_step_losses(eager.path());
  REQUIRE(losses.size() == 12);
  CHECK(logged_step_losses(replayed.path()) == losses);
  CHECK(read_file(replayed.path() / "checkpoints" / "last" / "model.safetensors") ==
        read_file(eager.path() / "checkpoints" / "last" / "model.safetensors"));
}
