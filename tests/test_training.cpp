// [slow][train] End to end on the CPU backend: the demo reaches its accuracy and the
// headline CRNN its ROC-AUC on synthetic tags; a run is reproducible; stopping (max_steps,
// Ctrl-C, a stop during validation) and resuming gives exactly the losses and weights of an unbroken run; gpu_train
// reports user errors with one line and exit 2.
//
// The resume tests use a small variant of the demo (fewer clips, 3 epochs) so they take
// seconds; the demo itself runs once.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "host/config/config.hpp"
#include "host/core/context.hpp"
#include "host/core/error.hpp"
#include "host/dist/communicator.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/file_lock.hpp"
#include "host/io/jsonl.hpp"
#include "host/io/safetensors.hpp"
#include "host/train/trainer.hpp"
#include "host/train/transfer.hpp"
#include "tests/test_support.hpp"

using namespace cadenza;
namespace fs = std::filesystem;

namespace {

const std::string kDemo = std::string(CADENZA_SOURCE_DIR) + "/configs/demo.yaml";

using cadenza::testing::TempDir;

// The small run: 4 classes x 24 clips, 1.0 s, 2 threads; 4 steps of 16 per epoch.
std::vector<std::string> small_run_overrides() {
  return {"data.synthetic.num_classes=4", "data.synthetic.clips_per_class=24",
          "data.clip_seconds=1.0",        "train.epochs=3",
          "train.threads=2",              "train.log_every_steps=1"};
}

// The figures that must match exactly between runs (not timings).
std::vector<std::vector<double>> epoch_figures(const fs::path& run_dir) {
  std::vector<std::vector<double>> out;
  for (const auto& j : read_jsonl(run_dir / "metrics.jsonl"))
    out.push_back({j["epoch"].get<double>(), j["train_loss"].get<double>(), j["train_accuracy"].get<double>(),
                   j["val_loss"].get<double>(), j["val_accuracy"].get<double>()});
  return out;
}

TrainOutcome train(const Config& config, const fs::path& run_dir, bool resume, Logger& logger) {
  return run_training(config, TrainRequest{run_dir, resume}, logger);
}

int run_command(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("the demo reaches 90% validation accuracy on the CPU backend", "[slow][train]") {
  TempDir dir;
  std::ostringstream log;
  Logger logger(log);
  const Config config = load_config(kDemo);
  const TrainOutcome outcome = train(config, dir.path(), false, logger);
  INFO(log.str());
  CHECK(outcome.status == TrainOutcome::Status::completed);
  CHECK(outcome.metric_name == "val_accuracy");
  CHECK(outcome.last_val_metric.value_or(0.0) >= 0.9);
  CHECK(logger.warnings() == 0);
  const auto epochs = read_jsonl(dir.path() / "metrics.jsonl");
  REQUIRE(epochs.size() == static_cast<std::size_t>(config.train.epochs));
  for (const char* key : {"epoch", "train_loss", "val_loss", "val_accuracy", "samples_per_s", "lr"})
    CHECK(epochs.back().contains(key));
  CHECK(epochs.back()["train_loss"].get<double>() < epochs.front()["train_loss"].get<double>());
  CHECK(fs::exists(dir.path() / "checkpoints" / "best" / "model.safetensors"));
  CHECK(fs::exists(dir.path() / "checkpoints" / "last" / "trainer.safetensors"));
  CHECK(fs::exists(dir.path() / "config.yaml"));
}

TEST_CASE("multi-label data trains with sigmoid BCE and reports ROC-AUC", "[slow][train]") {
  TempDir dir;
  std::ostringstream log;
  Logger logger(log);
  auto overrides = small_run_overrides();
  overrides.push_back("data.synthetic.multi_label=true");
  overrides.push_back("data.synthetic.clips_per_class=40");
  overrides.push_back("train.epochs=4");
  const TrainOutcome outcome = train(load_config(kDemo, overrides), dir.path(), false, logger);
  INFO(log.str());
  CHECK(outcome.metric_name == "val_roc_auc");
  CHECK(outcome.last_val_metric.value_or(0.0) > 0.75);  // chance is 0.5
  const auto last = read_jsonl(dir.path() / "metrics.jsonl").back();
  CHECK(last.contains("val_pr_auc"));
  CHECK(!last.contains("val_accuracy"));
}

// The product's headline config, its model unchanged, on the synthetic multi-label set
// shaped like MagnaTagATune's top 10: ten tags at MTAT's density (1.2 tags a clip: tag
// probability 0.12), 60 clips a tag, 2 s clips (the GRU reads one step).
TEST_CASE("the headline mtat_top10_crnn.yaml reaches validation ROC-AUC 0.9 on synthetic tags",
          "[slow][train]") {
  TempDir dir;
  std::ostringstream log;
  Logger logger(log);
  const std::vector<std::string> overrides = {
      "data.dataset=synthetic",          "data.split=auto",
      "data.synthetic.multi_label=true", "data.synthetic.num_classes=10",
      "data.synthetic.tag_probability=0.12", "data.synthetic.clips_per_class=60",
      "data.clip_seconds=2",             "data.eval_windows=1",
      "train.epochs=9",                  "train.lr=0.003"};
  const Config config = load_config(std::string(CADENZA_SOURCE_DIR) + "/configs/mtat_top10_crnn.yaml", overrides);
  const TrainOutcome outcome = train(config, dir.path(), false, logger);
  INFO(log.str());
  CHECK(outcome.status == TrainOutcome::Status::completed);
  CHECK(outcome.metric_name == "val_roc_auc");
  double best = 0.0;
  for (const auto& epoch : read_jsonl(dir.path() / "metrics.jsonl")) best = std::max(best, epoch["val_roc_auc"].get<double>());
  CHECK(best >= 0.9);
}

TEST_CASE("the same seed gives the same run; stopping and resuming changes nothing",
          "[slow][train]") {
  std::ostringstream log;
  Logger logger(log);
  const Config config = load_config(kDemo, small_run_overrides());
  TempDir unbroken, again, resumed;
  train(config, unbroken.path(), false, logger);
  train(config, again.path(), false, logger);
  const auto reference = epoch_figures(unbroken.path());
  REQUIRE(reference.size() == 3);
  CHECK(epoch_figures(again.path()) == reference);
  CHECK(logged_step_losses(again.path()) == logged_step_losses(unbroken.path()));

  for (int stop_after : {1, 6, 8}) {  // mid-epoch, mid-epoch 2, exactly at an epoch's end
    SECTION("stopped after " + std::to_string(stop_after) + " steps") {
      auto stopping = small_run_overrides();
      stopping.push_back("train.max_steps=" + std::to_string(stop_after));
      const TrainOutcome first = train(load_config(kDemo, stopping), resumed.path(), false, logger);
      CHECK(first.status == TrainOutcome::Status::reached_max_steps);
      CHECK(first.global_step == stop_after);
      if (stop_after == 6) {  // a line edited by hand: dropped on resume as a cut-off line is
        std::ofstream(resumed.path() / "metrics.jsonl", std::ios::app) << "{\"epoch\":\"x\"}\n";
        std::ofstream(resumed.path() / "steps.jsonl", std::ios::app) << "{\"step\":\"12\"}\n";
      }
      const TrainOutcome second = train(config, resumed.path(), true, logger);
      CHECK(second.status == TrainOutcome::Status::completed);
      CHECK(epoch_figures(resumed.path()) == reference);
      CHECK(logged_step_losses(resumed.path()) == logged_step_losses(unbroken.path()));
      CHECK(read_file(resumed.path() / "checkpoints" / "last" / "model.safetensors") ==
            read_file(unbroken.path() / "checkpoints" / "last" / "model.safetensors"));
      CHECK(fs::read_symlink(resumed.path() / "checkpoints" / "best") ==
            fs::read_symlink(unbroken.path() / "checkpoints" / "best"));
    }
  }
  SECTION("stopped during validation") {
    // Asked before each of epoch 1's 4 steps, then after each validation batch: the 5th
    // answer stops the run in epoch 1's validation.
    int asked = 0;
    TrainRequest request{resumed.path(), false};
    request.stop_requested = [&asked] { return ++asked >= 5; };
    const TrainOutcome first = run_training(config, request, logger);
    CHECK(first.status == TrainOutcome::Status::interrupted);
    CHECK(first.global_step == 4);
    CHECK(asked == 5);
    CHECK_THAT(log.str(), Catch::Contains("stopped during validation: checkpoint at step 4 written"));
    CHECK(read_jsonl(resumed.path() / "metrics.jsonl").empty());
    // The resume validates epoch 1 first (no step of it to time), then goes on as unbroken.
    const TrainOutcome second = train(config, resumed.path(), true, logger);
    CHECK(second.status == TrainOutcome::Status::completed);
    CHECK(epoch_figures(resumed.path()) == reference);
    CHECK(logged_step_losses(resumed.path()) == logged_step_losses(unbroken.path()));
    const auto epochs = read_jsonl(resumed.path() / "metrics.jsonl");
    CHECK_FALSE(epochs[0].contains("samples_per_s"));
    CHECK(epochs[0]["lr"] == read_jsonl(unbroken.path() / "metrics.jsonl")[0]["lr"]);
    CHECK(epochs[1].contains("samples_per_s"));
  }
  SECTION("a resume that would take other steps is refused, naming the key") {
    auto stopping = small_run_overrides();
    stopping.push_back("train.max_steps=2");
    train(load_config(kDemo, stopping), resumed.path(), false, logger);
    const std::string config_before = read_file(resumed.path() / "config.yaml");
    auto changed = small_run_overrides();
    changed.push_back("train.batch_size=8");
    CHECK_THROWS_WITH(train(load_config(kDemo, changed), resumed.path(), true, logger),
                      Catch::Contains("train.batch_size") && Catch::Contains("16"));
    CHECK(read_file(resumed.path() / "config.yaml") == config_before);  // a refused resume writes nothing
    // What `best` means too: the best so far was chosen by the run's metric.
    auto selecting = small_run_overrides();
    selecting.push_back("train.select_metric=val_loss");
    CHECK_THROWS_WITH(train(load_config(kDemo, selecting), resumed.path(), true, logger),
                      Catch::Contains("train.select_metric is val_loss now but the run was trained with auto"));
  }
  SECTION("a resume asked for fewer epochs than the run has begun is refused") {
    auto stopping = small_run_overrides();
    stopping.push_back("train.max_steps=6");  // 2 steps into epoch 2
    train(load_config(kDemo, stopping), resumed.path(), false, logger);
    const std::string config_before = read_file(resumed.path() / "config.yaml");
    auto fewer = small_run_overrides();
    fewer.push_back("train.epochs=1");
    CHECK_THROWS_WITH(train(load_config(kDemo, fewer), resumed.path(), true, logger),
                      "train.epochs 1: this run is inside epoch 2; resume it with train.epochs 2 or more, or "
                      "evaluate it as it is with gpu_eval");
    CHECK(read_file(resumed.path() / "config.yaml") == config_before);
    fewer.back() = "train.epochs=2";
    CHECK(train(load_config(kDemo, fewer), resumed.path(), true, logger).epochs_completed == 2);
    fewer.back() = "train.epochs=1";
    CHECK_THROWS_WITH(train(load_config(kDemo, fewer), resumed.path(), true, logger),
                      Catch::StartsWith("train.epochs 1: this run has trained 2 epochs; resume it with train.epochs 2"));
  }
  CHECK(logger.warnings() == 0);
}

TEST_CASE("one gpu_train at a time uses a run directory", "[cpu][train]") {
  std::ostringstream log;
  Logger logger(log);
  TempDir dir;
  const fs::path run_dir = dir / "run";
  fs::create_directories(run_dir);
  {
    const std::optional<FileLock> held = FileLock::try_acquire(run_dir / ".lock");  // as a running gpu_train does
    REQUIRE(held);
    for (const bool resume : {false, true})
      CHECK_THROWS_WITH(train(load_config(kDemo, small_run_overrides()), run_dir, resume, logger),
                        "run directory " + run_dir.string() +
                            " is in use by another gpu_train; wait for it to end or choose another --run-dir");
    CHECK_FALSE(fs::exists(run_dir / "config.yaml"));
  }
  CHECK(FileLock::try_acquire(run_dir / ".lock"));  // released with its holder
  fs::remove_all(run_dir);
  write_file_atomically(run_dir, "a file");
  CHECK_THROWS_WITH(train(load_config(kDemo, small_run_overrides()), run_dir, false, logger),
                    Catch::StartsWith("run directory " + run_dir.string() + ": cannot create it: "));
}

namespace {

// One rank of a job, alone: every collective leaves its values as they are, except that
// barrier() (the wait after a checkpoint) can fail as it does when a peer has died.
class OneRankCommunicator final : public Communicator {
 public:
  explicit OneRankCommunicator(bool barrier_fails) : barrier_fails_(barrier_fails) {}
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string describe() const override { return "one rank"; }
  void start_all_reduce(Tensor&, Reduction) override {}
  void wait_all() override {}
  void broadcast(Tensor&, int) override {}
  void all_reduce_host(std::vector<double>&) override {}
  void barrier() override {
    if (barrier_fails_) throw JobError("rank 1 stopped answering");
  }
  void abandon(const std::string& reason) override { abandoned.push_back(reason); }

  std::vector<std::string> abandoned;

 private:
  bool barrier_fails_;
};

}  // namespace

TEST_CASE("a rank whose run fails abandons its collectives; one that completes does not", "[cpu][train]") {
  std::ostringstream log;
  Logger logger(log);
  TempDir dir;
  std::vector<std::string> overrides = small_run_overrides();
  overrides.push_back("train.max_steps=1");
  const Config config = load_config(kDemo, overrides);
  for (const bool barrier_fails : {false, true}) {
    OneRankCommunicator communicator(barrier_fails);
    TrainRequest request{dir / (barrier_fails ? "failing" : "completing"), false};
    request.communicator = &communicator;
    if (barrier_fails) {
      CHECK_THROWS_WITH(run_training(config, request, logger), "rank 1 stopped answering");
      CHECK(communicator.abandoned == std::vector<std::string>{"rank 1 stopped answering"});
    } else {
      CHECK(run_training(config, request, logger).status == TrainOutcome::Status::reached_max_steps);
      CHECK(communicator.abandoned.empty());
    }
  }
}

TEST_CASE("runs started in the same second get run directories of their own", "[slow][train]") {
  TempDir dir;
  // Taken: the default name of this second and the next few (another run of a sweep).
  const std::time_t now = std::time(nullptr);
  for (int ahead = 0; ahead < 5; ++ahead) {
    const std::time_t then = now + ahead;
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&then));
    fs::create_directories(dir / "runs" / ("demo_cnn2d-" + std::string(stamp)));
  }
  std::string command = "cd " + dir.path().string() + " && " + CADENZA_GPU_TRAIN + " " + kDemo + " --quiet";
  for (const std::string& o : small_run_overrides()) command += " --set " + o;
  command += " --set train.max_steps=1 2>/dev/null";
  int status = 0;
  const std::string out = cadenza::testing::capture_output(command, status);
  CHECK(status == 0);
  CHECK_THAT(out, Catch::Matches("reached train.max_steps at step 1, checkpoint written; continue with --resume "
                                 "runs/demo_cnn2d-[0-9]{8}-[0-9]{6}-2 [^\\n]*\\n"));
}

TEST_CASE("train.precision tf32 and bf16 on the CPU say that it computes fp32", "[cpu][train]") {
  for (const std::string precision : {"tf32", "bf16"}) {
    std::ostringstream log;
    Logger logger(log);
    const std::unique_ptr<Context> context = make_context("cpu", 1, logger);
    apply_precision(*context, precision);
    CHECK_THAT(log.str(), Catch::Contains("train.precision: " + precision + " applies to GPUs; the CPU backend "
                                          "computes in fp32"));
  }
  std::ostringstream log;
  Logger logger(log);
  apply_precision(*make_context("cpu", 1, logger), "fp32");
  CHECK_THAT(log.str(), !Catch::Contains("train.precision"));
}

// train.capture_graph: after two eager steps the step's ops are recorded once per batch
// buffer and replayed. Every value that changes per step (dropout and augmentation keys,
// the warm-up and phase learning rates, Adam's bias corrections, SGD's first step after
// the switch) reaches the ops through the step values, so the replayed run takes exactly
// the eager run's steps: a value frozen at capture would change the losses.
TEST_CASE("the training step replayed as a graph takes exactly the eager steps", "[slow][train]") {
  auto overrides = small_run_overrides();
  for (const char* o : {"augment.shift_probability=0.5", "augment.gain_probability=0.5", "augment.noise_probability=0.5",
                        "augment.time_masks=1", "augment.freq_masks=1", "train.schedule.warmup_epochs=1.5",
                        "train.phases.epochs=[2]", "train.phases.lr=[0.01]", "train.phases.optimizer=sgd",
                        "train.momentum=0.9"})
    overrides.push_back(o);
  auto eager_overrides = overrides;
  eager_overrides.push_back("train.capture_graph=false");
  std::ostringstream graph_log, eager_log;
  Logger graph_logger(graph_log), eager_logger(eager_log);
  TempDir replayed, eager;
  train(load_config(kDemo, overrides), replayed.path(), false, graph_logger);
  train(load_config(kDemo, eager_overrides), eager.path(), false, eager_logger);
  CHECK_THAT(graph_log.str(), Catch::Contains("replayed as one graph"));
  CHECK_THAT(eager_log.str(), !Catch::Contains("replayed as one graph"));
  const std::vector<double> losses = logged_step_losses(eager.path());
  REQUIRE(losses.size() == 12);
  CHECK(logged_step_losses(replayed.path()) == losses);
  CHECK(epoch_figures(replayed.path()) == epoch_figures(eager.path()));
  CHECK(read_file(replayed.path() / "checkpoints" / "last" / "model.safetensors") ==
        read_file(eager.path() / "checkpoints" / "last" / "model.safetensors"));
  CHECK(graph_logger.warnings() == 0);
}

// train.phases as Won et al.'s protocol uses them. Phase 1 trains at lr 1e-12 after
// reloading the best epoch, so epoch 3 ends with (nearly) that epoch's weights; phase 2
// switches lr again. A run stopped at the phase boundary or inside a phase and resumed
// takes exactly the unbroken run's steps.
TEST_CASE("train.phases reload the best weights, switch optimizer and lr, and resume exactly", "[slow][train]") {
  std::ostringstream log;
  Logger logger(log);
  auto overrides = small_run_overrides();
  for (const char* o : {"train.epochs=4", "train.keep_checkpoints=10", "train.phases.epochs=[2, 3]",
                        "train.phases.lr=[1e-12, 0.01]", "train.phases.optimizer=sgd", "train.momentum=0.9",
                        "train.nesterov=true"})
    overrides.push_back(o);
  const Config config = load_config(kDemo, overrides);
  TempDir unbroken, resumed;
  const TrainOutcome outcome = train(config, unbroken.path(), false, logger);
  INFO(log.str());
  REQUIRE(outcome.status == TrainOutcome::Status::completed);
  const auto epochs = read_jsonl(unbroken.path() / "metrics.jsonl");
  REQUIRE(epochs.size() == 4);
  CHECK(epochs[0]["lr"].get<double>() == Approx(0.002));
  CHECK(epochs[1]["lr"].get<double>() == Approx(0.002));
  CHECK(epochs[2]["lr"].get<double>() == Approx(1e-12));
  CHECK(epochs[3]["lr"].get<double>() == Approx(0.01));
  const int best = epochs[1]["val_accuracy"].get<double>() > epochs[0]["val_accuracy"].get<double>() ? 2 : 1;
  CHECK_THAT(log.str(), Catch::Contains("phase 1 from epoch 3: sgd, lr 1e-12, weights of the best epoch (" +
                                        std::to_string(best) + ") reloaded"));
  // 4 steps an epoch: the best epoch's checkpoint is step 4 * best, epoch 3's is step 12.
  auto parameter = [&](int step, const std::string& name, std::int64_t count) {
    char dir[32];
    std::snprintf(dir, sizeof dir, "step-%08d", step);
    const SafetensorsFile file(unbroken.path() / "checkpoints" / dir / "model.safetensors");
    std::vector<float> values(count);
    file.copy_f32(name, file.tensor(name).shape, values.data());
    return values;
  };
  for (const auto& [name, count] : {std::pair<std::string, std::int64_t>{"conv1.weight", 16 * 9},
                                    {"classifier.weight", 4 * 64}}) {
    const auto reloaded = parameter(4 * best, name, count), after = parameter(12, name, count);
    for (std::int64_t i = 0; i < count; ++i) CHECK(after[i] == Approx(reloaded[i]).margin(1e-6));
    CHECK(parameter(16, name, count) != after);  // phase 2 trains again
  }

  for (int stop_after : {8, 13}) {  // at the first phase's boundary; inside the second phase
    SECTION("stopped after " + std::to_string(stop_after) + " steps") {
      auto stopping = overrides;
      stopping.push_back("train.max_steps=" + std::to_string(stop_after));
      CHECK(train(load_config(kDemo, stopping), resumed.path(), false, logger).status ==
            TrainOutcome::Status::reached_max_steps);
      const fs::path best = resumed.path() / "checkpoints" / "best";
      if (stop_after == 8) {
        // As if killed between a save's two links: `best` names the other epoch's
        // checkpoint. The state's best_step is what counts, and the link is mended.
        const std::string right = fs::read_symlink(best).string();
        fs::remove(best);
        fs::create_symlink(right == "step-00000004" ? "step-00000008" : "step-00000004", best);
      }
      CHECK(train(config, resumed.path(), true, logger).status == TrainOutcome::Status::completed);
      CHECK(epoch_figures(resumed.path()) == epoch_figures(unbroken.path()));
      CHECK(read_file(resumed.path() / "checkpoints" / "last" / "model.safetensors") ==
            read_file(unbroken.path() / "checkpoints" / "last" / "model.safetensors"));
      CHECK(fs::read_symlink(best) == fs::read_symlink(unbroken.path() / "checkpoints" / "best"));
    }
  }
}

// The trainer's wiring of train.schedule (plateau) and train.early_stopping_patience: the
// rules are replayed on the run's own metrics.jsonl, so the test holds whatever the
// values are. A learning rate of 1e-5 barely moves the model, so val_accuracy stalls (and
// torch's rule of no reduction below 1e-8 stays out of the way).
TEST_CASE("plateau lowers the lr and early stopping ends the run, also when resumed", "[slow][train]") {
  TempDir dir;
  std::ostringstream log;
  Logger logger(log);
  auto overrides = small_run_overrides();
  for (const char* o : {"train.epochs=8", "train.lr=1e-5", "train.select_metric=val_accuracy",
                        "train.schedule.type=plateau", "train.schedule.patience=0", "train.schedule.factor=0.5",
                        "train.schedule.threshold=0", "train.early_stopping_patience=2"})
    overrides.push_back(o);
  const Config config = load_config(kDemo, overrides);
  const TrainOutcome outcome = train(config, dir.path(), false, logger);
  INFO(log.str());
  REQUIRE(outcome.status == TrainOutcome::Status::stopped_early);
  const auto epochs = read_jsonl(dir.path() / "metrics.jsonl");
  REQUIRE(int(epochs.size()) == outcome.epochs_completed);
  CHECK(outcome.epochs_completed < 8);

  double best = 0.0, scale = 1.0;
  int best_epoch = 0, reductions = 0;
  for (std::size_t e = 0; e < epochs.size(); ++e) {
    INFO("epoch " << e + 1);
    CHECK(epochs[e]["lr"].get<double>() == Approx(1e-5 * scale).epsilon(1e-6));
    const double accuracy = epochs[e]["val_accuracy"].get<double>();
    if (e == 0 || accuracy > best) {
      best = accuracy;
      best_epoch = int(e) + 1;
    } else {
      scale *= 0.5;  // patience 0: every epoch without improvement halves the rate
      ++reductions;
    }
    // Early stopping: the run goes on exactly while fewer than 2 epochs passed since the best.
    CHECK((int(e) + 1 - best_epoch >= 2) == (e + 1 == epochs.size()));
  }
  CHECK(reductions >= 2);
  CHECK_THAT(log.str(), Catch::Contains("early stopping") && Catch::Contains("plateau"));

  const TrainOutcome resumed = train(config, dir.path(), true, logger);
  CHECK(resumed.status == TrainOutcome::Status::stopped_early);
  CHECK(resumed.global_step == outcome.global_step);
  CHECK(read_jsonl(dir.path() / "metrics.jsonl").size() == epochs.size());
}

// Seed 003's transfer learning: a run on 4 classes is the source of one on 3 classes; the
// convolutions load, the head is new, and the frozen layers end exactly as loaded.
TEST_CASE("model.init_from loads matching layers, replaces the head, and train.freeze holds", "[slow][train]") {
  TempDir source_dir, target_dir;
  std::ostringstream log;
  Logger logger(log);
  auto source_overrides = small_run_overrides();
  source_overrides.push_back("train.epochs=1");
  train(load_config(kDemo, source_overrides), source_dir.path(), false, logger);

  auto overrides = small_run_overrides();
  for (const std::string& o : std::vector<std::string>{"data.synthetic.num_classes=3", "train.epochs=2", "train.weight_decay=0.01",
                              "model.init_from=" + source_dir.path().string(), "train.freeze=[input_bn, conv1, bn1]"})
    overrides.push_back(o);
  const TrainOutcome outcome = train(load_config(kDemo, overrides), target_dir.path(), false, logger);
  INFO(log.str());
  REQUIRE(outcome.status == TrainOutcome::Status::completed);
  CHECK_THAT(log.str(), Catch::Contains("skipped (shape differs, initialised): 2 (classifier.weight: file F32 "
                                        "[4, 64], model [3, 64], classifier.bias: file F32 [4], model [3])") &&
                            Catch::Contains("new (not in the file, initialised): 0") &&
                            Catch::Contains("unused (in the file only): 0"));

  const SafetensorsFile before(source_dir.path() / "checkpoints" / "best" / "model.safetensors");
  const SafetensorsFile after(target_dir.path() / "checkpoints" / "last" / "model.safetensors");
  auto values = [](const SafetensorsFile& file, const std::string& name) {
    const SafetensorsFile::View& v = file.tensor(name);
    const float* data = reinterpret_cast<const float*>(v.data);
    return std::vector<float>(data, data + v.nbytes / sizeof(float));
  };
  for (const char* frozen : {"input_bn.weight", "input_bn.bias", "conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias"}) {
    INFO(frozen);
    CHECK(values(before, frozen) == values(after, frozen));  // bit-identical, weight decay included
  }
  for (const char* trained : {"conv2.weight", "conv4.weight"}) {
    INFO(trained);
    CHECK(values(before, trained) != values(after, trained));
  }
  CHECK(after.tensor("classifier.weight").shape == (std::vector<std::int64_t>{3, 64}));

  // The same four labels in another order: the head's shape fits, but its rows are other
  // classes, so it is initialised, and the report says why.
  const fs::path labels_file = source_dir.path() / "labels.json";
  nlohmann::json labels = nlohmann::json::parse(read_file(labels_file));
  std::vector<std::string> names = labels["labels"];
  std::reverse(names.begin(), names.end());
  labels["labels"] = names;
  write_file_atomically(labels_file, labels.dump());
  auto relabelled = small_run_overrides();
  for (const std::string& o : std::vector<std::string>{"train.max_steps=1", "model.init_from=" + source_dir.path().string()})
    relabelled.push_back(o);
  TempDir relabelled_dir;
  std::ostringstream relabelled_log;
  Logger relabelled_logger(relabelled_log);
  train(load_config(kDemo, relabelled), relabelled_dir.path(), false, relabelled_logger);
  CHECK_THAT(relabelled_log.str(), Catch::Contains("head not loaded (initialised): 2 (classifier.weight, "
                                                   "classifier.bias): the source run's labels are '" + names[0]));
  CHECK_THAT(relabelled_log.str(), Catch::Contains("skipped (shape differs, initialised): 0"));

  // A file damaged on disk is refused by name, as a resume refuses it.
  const fs::path source_file = source_dir.path() / "checkpoints" / "best" / "model.safetensors";
  std::string bytes = read_file(source_file);
  bytes[bytes.size() - 2] ^= 0x40;
  write_file_atomically(fs::canonical(source_file), bytes);
  TempDir damaged_dir;
  CHECK_THROWS_WITH(train(load_config(kDemo, overrides), damaged_dir.path(), false, logger),
                    source_file.string() + ": damaged (its contents do not match the checksum written with them); "
                                           "use an earlier checkpoint of the run (checkpoints/step-*)");

  auto nowhere = small_run_overrides();
  nowhere.push_back("model.init_from=" + (source_dir.path() / "absent").string());
  CHECK_THROWS_WITH(train(load_config(kDemo, nowhere), damaged_dir.path(), false, logger),
                    "model.init_from: " + (source_dir.path() / "absent").string() + " does not exist");

  auto wrong = small_run_overrides();
  wrong.push_back("train.freeze=[convolution1]");
  TempDir wrong_dir;
  CHECK_THROWS_WITH(train(load_config(kDemo, wrong), wrong_dir.path(), false, logger),
                    Catch::Contains("train.freeze: 'convolution1' names no layer or parameter") &&
                        Catch::Contains("conv1"));
}

TEST_CASE("train.freeze names layers and parameters by whole parts: layer1 is not layer10", "[cpu][train]") {
  std::vector<NamedParameter> parameters;
  for (const char* name : {"layer1.conv.weight", "layer1.bn.bias", "layer10.conv.weight", "layer11.bn.bias",
                           "dense.weight"})
    parameters.push_back({name, {}, {}});
  CHECK(frozen_parameters(parameters, {"layer1"}) == std::vector<bool>{true, true, false, false, false});
  CHECK(frozen_parameters(parameters, {"layer1."}) == std::vector<bool>{true, true, false, false, false});
  CHECK(frozen_parameters(parameters, {"layer1.conv", "dense.weight"}) ==
        std::vector<bool>{true, false, false, false, true});
  CHECK(frozen_parameters(parameters, {"layer10", "layer11"}) == std::vector<bool>{false, false, true, true, false});
  CHECK_THROWS_WITH(frozen_parameters(parameters, {"layer"}),
                    "train.freeze: 'layer' names no layer or parameter; the model's parameters belong to "
                    "layer1.conv, layer1.bn, layer10.conv, layer11.bn, dense");
  CHECK_THROWS_WITH(frozen_parameters(parameters, {"layer1", "layer10", "layer11", "dense"}),
                    "train.freeze: every parameter of the model is frozen, so training would change nothing but "
                    "batchnorm statistics; leave at least the head (dense) out of train.freeze");
}

TEST_CASE("Ctrl-C checkpoints and exits 130; --resume then finishes the unbroken run",
          "[slow][train]") {
  TempDir unbroken, interrupted;
  std::ostringstream log;
  Logger logger(log);
  auto overrides = small_run_overrides();
  overrides.push_back("train.epochs=6");
  train(load_config(kDemo, overrides), unbroken.path(), false, logger);

  std::vector<std::string> args = {CADENZA_GPU_TRAIN, kDemo, "--run-dir", interrupted.path().string(),
                                   "--quiet"};
  for (const auto& o : overrides) {
    args.push_back("--set");
    args.push_back(o);
  }
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int null_fd = ::open("/dev/null", O_WRONLY);
    ::dup2(null_fd, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  // Interrupt once a few steps are logged.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline &&
         logged_step_losses(interrupted.path()).size() < 3)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(child, SIGINT);
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  REQUIRE(fs::exists(interrupted.path() / "checkpoints" / "last" / "model.safetensors"));

  const std::string done_line = (interrupted.path() / "stdout.txt").string();
  const std::string resume = std::string(CADENZA_GPU_TRAIN) + " --resume " + interrupted.path().string() +
                             " --quiet > " + done_line + " 2>/dev/null";
  CHECK(run_command(resume) == 0);
  // The last line says how the run ended, its metric and which epoch `best` holds.
  CHECK_THAT(read_file(done_line), Catch::StartsWith("done: 6 epochs, 24 steps; ") &&
                                       Catch::Contains("val_accuracy ") && Catch::Contains("(checkpoints/best") &&
                                       Catch::EndsWith("; run directory " + interrupted.path().string() + "\n"));
  CHECK(epoch_figures(interrupted.path()) == epoch_figures(unbroken.path()));
  CHECK(logged_step_losses(interrupted.path()) == logged_step_losses(unbroken.path()));

  // Without `last`, the newest step directory is named (a user's copy beside it is not one).
  const fs::path checkpoints = interrupted.path() / "checkpoints";
  const fs::path last_target = fs::read_symlink(checkpoints / "last");
  fs::remove(checkpoints / "last");
  fs::create_directories(checkpoints / "step-99999999.bak");
  const std::string err = (interrupted.path() / "stderr.txt").string();
  const std::string resume_err =
      std::string(CADENZA_GPU_TRAIN) + " --resume " + interrupted.path().string() + " > /dev/null 2> " + err;
  CHECK(run_command(resume_err) == 2);
  CHECK_THAT(read_file(err), Catch::Contains("checkpoints/last is missing; to resume from the newest checkpoint, "
                                             "link it: ln -sfn " + last_target.string() + " "));
  // A run stopped before its first checkpoint (here: all removed) trains again from step 0
  // with its config.yaml, in its own directory.
  fs::remove_all(checkpoints);
  CHECK(run_command(resume_err) == 0);
  CHECK_THAT(read_file(err), Catch::Contains("stopped before its first checkpoint: training it again from step 0"));
  CHECK(epoch_figures(interrupted.path()) == epoch_figures(unbroken.path()));
  CHECK(logged_step_losses(interrupted.path()) == logged_step_losses(unbroken.path()));
  // A directory that holds no run is refused.
  CHECK(run_command(std::string(CADENZA_GPU_TRAIN) + " --resume " + unbroken.path().string() + "/absent 2> " + err) == 2);
  CHECK_THAT(read_file(err), Catch::Contains("absent: no run there (expected "));
}

TEST_CASE("gpu_train names the problem in one line and exits 2 on bad input", "[slow][train]") {
  TempDir dir;
  const std::string out = (dir.path() / "stderr.txt").string();
  auto run = [&](const std::string& arguments) {
    return run_command(std::string(CADENZA_GPU_TRAIN) + " " + arguments + " 2> " + out + " > /dev/null");
  };
  auto message = [&] { return read_file(out); };
  auto write_config = [&](const std::string& text) {
    const fs::path path = dir.path() / "bad.yaml";
    write_file_atomically(path, text);
    return path.string();
  };

  SECTION("unknown key with a suggestion") {
    const std::string path = write_config("train:\n  learning_rate: 0.1\n");
    CHECK(run(path) == 2);
    CHECK_THAT(message(), Catch::Contains(path) && Catch::Contains("train.learning_rate") &&
                              Catch::Contains("did you mean 'train.lr'"));
  }
  SECTION("wrong type") {
    CHECK(run(write_config("train:\n  epochs: ten\n")) == 2);
    CHECK_THAT(message(), Catch::Contains("train.epochs") && Catch::Contains("integer"));
  }
  SECTION("out of range") {
    CHECK(run(write_config("train:\n  lr: -1\n")) == 2);
    CHECK_THAT(message(), Catch::Contains("train.lr") && Catch::Contains("> 0"));
  }
  SECTION("unknown override") {
    CHECK(run(kDemo + " --set train.epoch=3") == 2);
    CHECK_THAT(message(), Catch::Contains("--set train.epoch=3") && Catch::Contains("train.epochs"));
  }
  SECTION("missing config file") {
    CHECK(run((dir.path() / "absent.yaml").string()) == 2);
    CHECK_THAT(message(), Catch::Contains("absent.yaml") && Catch::Contains("No such file"));
  }
  SECTION("a layer whose output does not fit the labels") {
    CHECK(run(kDemo + " --set model.layers[18].units=3 --summary") == 2);
    CHECK_THAT(message(), Catch::Contains("classifier") && Catch::Contains("[1, 8]"));
  }
  SECTION("a GPU asked for where none works") {
    if (probe_cuda().usable) {
      WARN("a CUDA device is present; the no-GPU message is not exercised here");
    } else {
      CHECK(run(kDemo + " --device cuda --run-dir " + (dir.path() / "r").string()) == 2);
      CHECK_THAT(message(), Catch::Contains("train.device cuda"));
    }
  }
  SECTION("unknown option") {
    CHECK(run(kDemo + " --epochs 3") == 2);
    CHECK_THAT(message(), Catch::Contains("--epochs"));
  }
  // The error is one line, the last one printed.
  const std::string text = message();
  const auto start = text.rfind('\n', text.size() - 2);
  const std::string last_line = text.substr(start == std::string::npos ? 0 : start + 1);
  CHECK_THAT(last_line, Catch::StartsWith("gpu_train: error: "));
  CHECK(last_line.find('\n') == last_line.size() - 1);
}
