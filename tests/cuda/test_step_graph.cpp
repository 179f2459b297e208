// [cuda] The training step captured as a CUDA graph (train.capture_graph) takes exactly the
// steps of the run that enqueues its ops one by one: same losses, same weights, bit for
// bit (the convolution algorithms are deterministic, the step values carry every per-step
// value). A capture the driver refused would show as a warning and no graph replay. The
// demo covers convolutions, batchnorm, pooling, dropout, augmentation and a phase change;
// the CRNN (bf16 convolutions and cuDNN's GRU) and the harmonic CNN (its filterbank) cover
// the other op families a captured step replays.
#include <catch2/catch.hpp>

#include <sstream>

#include "host/config/config.hpp"
#include "host/core/logger.hpp"
#include "host/io/jsonl.hpp"
#include "host/train/trainer.hpp"
#include "tests/test_support.hpp"

using namespace cadenza;

namespace {

// Trains `config` (in configs/) with `overrides` twice, captured and eager, and checks
// that both take the same steps bit for bit; returns the number of logged steps.
std::size_t check_graph_replays_eager_steps(const std::string& config, const std::vector<std::string>& overrides) {
  std::vector<std::string> graph_overrides = overrides, eager_overrides = overrides;
  for (auto* list : {&graph_overrides, &eager_overrides})
    list->insert(list->end(), {"train.device=cuda", "train.log_every_steps=1"});
  eager_overrides.push_back("train.capture_graph=false");
  const std::string path = std::string(CADENZA_SOURCE_DIR) + "/configs/" + config;
  std::ostringstream graph_log, eager_log;
  Logger graph_logger(graph_log), eager_logger(eager_log);
  testing::TempDir replayed, eager;
  run_training(load_config(path, graph_overrides), TrainRequest{replayed.path(), false}, graph_logger);
  run_training(load_config(path, eager_overrides), TrainRequest{eager.path(), false}, eager_logger);
  INFO(config << "\n" << graph_log.str());
  CHECK(graph_logger.warnings() == 0);
  CHECK_THAT(graph_log.str(), Catch::Contains("device: cuda:0"));
  CHECK_THAT(eager_log.str(), Catch::Contains("device: cuda:0"));
  CHECK_THAT(graph_log.str(), Catch::Contains("replayed as one graph"));
  const std::vector<double> losses = logged_step_losses(eager.path());
  CHECK(logged_step_losses(replayed.path()) == losses);
  CHECK(read_file(replayed.path() / "checkpoints" / "last" / "model.safetensors") ==
        read_file(eager.path() / "checkpoints" / "last" / "model.safetensors"));
  return losses.size();
}

// A few steps of a zoo model on short synthetic tags.
std::vector<std::string> synthetic_tags(const std::string& clip_seconds) {
  return {"data.dataset=synthetic",           "data.split=auto",
          "data.synthetic.multi_label=true",  "data.synthetic.num_classes=4",
          "data.synthetic.clips_per_class=8", "data.clip_seconds=" + clip_seconds,
          "data.eval_windows=1",              "train.epochs=2",
          "train.batch_size=4"};
}

}  // namespace

TEST_CASE("the CUDA graph of the training step replays the eager steps bit for bit", "[cuda][train]") {
  CHECK(check_graph_replays_eager_steps(
            "demo.yaml", {"data.synthetic.num_classes=4", "data.synthetic.clips_per_class=24", "data.clip_seconds=1.0",
                          "train.epochs=3", "augment.shift_probability=0.5", "augment.noise_probability=0.5",
                          "augment.time_masks=1", "train.schedule.warmup_epochs=1.5", "train.phases.epochs=[2]",
                          "train.phases.lr=[0.01]", "train.phases.optimizer=sgd", "train.momentum=0.9"}) == 12);
}

TEST_CASE("the CUDA graph replays a CRNN under bf16 and a harmonic CNN bit for bit", "[cuda][train]") {
  // 6 s clips: three GRU steps after the CRNN's pooling (96 frames a step at 16 kHz, hop 256).
  std::vector<std::string> crnn = synthetic_tags("6");
  crnn.push_back("train.precision=bf16");
  CHECK(check_graph_replays_eager_steps("mtat_top10_crnn.yaml", crnn) > 0);
  CHECK(check_graph_replays_eager_steps("mtat_top50_hcnn.yaml", synthetic_tags("5")) > 0);
}
