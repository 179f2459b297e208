// [slow][train] Training from audio files end to end on the CPU backend: a folder dataset
// of WAV files at 22.05 kHz (music-like clips from the synthetic generator, 4 s each) plus
// one corrupt file goes through the index, the PCM cache (resampled to 16 kHz), random
// 1 s crops with every augmentation on, and multiframe evaluation. The run must learn,
// report the corrupt file, and repeat exactly when stopped and resumed (also from its dataset
// moved, the run having recorded its relative paths absolute).
#include <catch2/catch.hpp>
#include <sndfile.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/wait.h>

#include "host/config/config.hpp"
#include "host/core/logger.hpp"
#include "host/data/synthetic_audio.hpp"
#include "host/train/trainer.hpp"
#include "tests/test_support.hpp"

using namespace cadenza;
namespace fs = std::filesystem;

namespace {

using cadenza::testing::TempDir;

const std::string kDemo = std::string(CADENZA_SOURCE_DIR) + "/configs/demo.yaml";

// root/<label>/clip<i>.wav for 4 classes x 12 clips of 4 s at 22050 Hz, and root/<first
// label>/broken.wav holding no audio.
void make_folder_dataset(const fs::path& root) {
  SyntheticDataConfig synthetic;
  synthetic.num_classes = 4;
  synthetic.clips_per_class = 12;
  const SyntheticClipSet set = generate_synthetic(synthetic, 22050, 4.0);
  for (int i = 0; i < set.num_clips(); ++i) {
    const fs::path folder = root / set.label_names[set.primary_label[i]];
    fs::create_directories(folder);
    const std::vector<float> clip(set.pcm.begin() + std::ptrdiff_t(i) * set.num_samples,
                                  set.pcm.begin() + std::ptrdiff_t(i + 1) * set.num_samples);
    testing::write_audio_file(folder / ("clip" + std::to_string(i) + ".wav"), SF_FORMAT_WAV | SF_FORMAT_PCM_16,
                              22050, 1, clip);
  }
  testing::write_bytes(root / set.label_names[0] / "broken.wav", "RIFF\x04\x00\x00\x00WAVE");
}

std::vector<std::string> overrides_for(const fs::path& data, const fs::path& cache) {
  return {"data.dataset=folder",
          "data.root=" + data.string(),
          "data.cache_dir=" + cache.string(),
          "data.clip_seconds=1.0",
          "data.split_fractions=[0.75, 0.25, 0.0]",
          "augment.shift_probability=0.5",
          "augment.shift_seconds=0.1",
          "augment.gain_probability=0.5",
          "augment.gain_db=[-6, 3]",
          "augment.noise_probability=0.3",
          "augment.noise_snr_db=[20, 40]",
          "augment.time_masks=1",
          "augment.time_mask_frames=8",
          "augment.freq_masks=1",
          "augment.freq_mask_bins=6",
          "train.epochs=10",
          "train.batch_size=6",
          "train.threads=2",
          "train.log_every_steps=1"};
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("a folder of audio files trains with crops, augmentation and multiframe evaluation",
          "[slow][train]") {
  TempDir data, cache, unbroken, resumed;
  make_folder_dataset(data.path());
  std::ostringstream log;
  Logger logger(log);
  const Config config = load_config(kDemo, overrides_for(data.path(), cache.path()));
  const TrainOutcome outcome = run_training(config, TrainRequest{unbroken.path(), false}, logger);
  INFO(log.str());
  CHECK(outcome.status == TrainOutcome::Status::completed);
  CHECK(outcome.last_val_metric.value_or(0.0) >= 0.8);  // 4 classes: chance is 0.25
  // 4 s clips cut into 1 s windows: 4 windows per evaluated clip.
  CHECK_THAT(log.str(), Catch::Contains("4 evaluation windows per clip"));
  CHECK_THAT(log.str(), Catch::Contains("split 36 / 12 / 0"));

  const auto skipped = read_lines(unbroken.path() / "skipped_files.txt");
  REQUIRE(skipped.size() == 1);
  CHECK_THAT(skipped[0], Catch::Contains("broken.wav"));
  CHECK_THAT(log.str(), Catch::Contains("data: 1 file left out"));

  // gpu_eval and gpu_embed list what they left out beside what they write.
  const fs::path eval_out = unbroken / "eval-listed", embedded = unbroken / "features.npy";
  int status = -1;
  const std::string eval_log = testing::capture_output(std::string(CADENZA_GPU_EVAL) + " " + unbroken.path().string() +
                                                           " --split val --out " + eval_out.string() + " 2>&1",
                                                       status);
  CHECK(status == 0);
  CHECK_THAT(eval_log, Catch::Contains("data: 1 file left out") &&
                           Catch::Contains("; all in " + (eval_out / "skipped_files.txt").string()));
  CHECK(read_lines(eval_out / "skipped_files.txt") == skipped);
  testing::capture_output(std::string(CADENZA_GPU_EMBED) + " " + unbroken.path().string() + " --quiet --out " +
                              embedded.string() + " 2>&1",
                          status);
  CHECK(status == 0);
  CHECK(read_lines(unbroken / "features.skipped_files.txt") == skipped);

  SECTION("stopping and resuming takes the same steps") {
    auto stopping = overrides_for(data.path(), cache.path());
    stopping.push_back("train.max_steps=15");  // mid-epoch 3 (6 steps per epoch)
    const Config first = load_config(kDemo, stopping);
    CHECK(run_training(first, TrainRequest{resumed.path(), false}, logger).status ==
          TrainOutcome::Status::reached_max_steps);
    const fs::path stopped_copy = resumed.path().string() + "-copy";
    fs::copy(resumed.path(), stopped_copy, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    CHECK(run_training(config, TrainRequest{resumed.path(), true}, logger).status ==
          TrainOutcome::Status::completed);
    CHECK(read_lines(resumed.path() / "steps.jsonl") == read_lines(unbroken.path() / "steps.jsonl"));
    std::vector<std::string> unbroken_metrics, resumed_metrics;
    for (const auto& line : read_lines(unbroken.path() / "metrics.jsonl")) {
      auto j = nlohmann::json::parse(line);
      for (const char* timing : {"samples_per_s", "seconds"}) j.erase(timing);
      unbroken_metrics.push_back(j.dump());
    }
    for (const auto& line : read_lines(resumed.path() / "metrics.jsonl")) {
      auto j = nlohmann::json::parse(line);
      for (const char* timing : {"samples_per_s", "seconds"}) j.erase(timing);
      resumed_metrics.push_back(j.dump());
    }
    CHECK(resumed_metrics == unbroken_metrics);
    CHECK_THAT(log.str(), Catch::Contains("PCM cache reused"));

    // Training clips gone since, or no longer decodable, are named (not the checkpoint,
    // whose epoch they were part of).
    std::vector<std::string> training;
    for (const std::string& line : read_lines(resumed.path() / "splits.csv"))
      if (line.ends_with(",train")) training.push_back(line.substr(0, line.size() - 6));
    REQUIRE(training.size() >= 2);
    fs::remove(data.path() / training[0]);
    testing::write_bytes(data.path() / training[1], "RIFF\x04\x00\x00\x00WAVE");
    CHECK_THROWS_WITH(run_training(config, TrainRequest{stopped_copy, true}, logger),
                      "--resume " + stopped_copy.string() + ": 2 training clips of the run are gone from the "
                      "dataset or no longer decode ('" + training[0] + "', '" + training[1] + "'); its epochs are "
                      "drawn from every one of them: restore them, or start a new run");
    fs::remove_all(stopped_copy);
  }
  SECTION("a run given relative paths records them absolute, and resumes from its dataset moved") {
    const fs::path started_in = fs::current_path();
    fs::current_path(data.path().parent_path());
    auto stopping = overrides_for(data.path().filename(), cache.path());
    stopping.push_back("train.max_steps=15");
    const Config first = load_config(kDemo, stopping);
    const TrainOutcome stopped = run_training(first, TrainRequest{resumed.path(), false}, logger);
    fs::current_path(started_in);
    REQUIRE(stopped.status == TrainOutcome::Status::reached_max_steps);
    const Config recorded = load_config((resumed.path() / "config.yaml").string());
    CHECK(recorded.data.root == data.path().string());

    const fs::path moved = data.path().string() + "-moved";
    fs::rename(data.path(), moved);
    const Config from_moved =
        load_config((resumed.path() / "config.yaml").string(), {"data.root=" + moved.string(), "train.max_steps=0"});
    const TrainOutcome finished = run_training(from_moved, TrainRequest{resumed.path(), true}, logger);
    fs::rename(moved, data.path());
    CHECK(finished.status == TrainOutcome::Status::completed);
    CHECK(read_lines(resumed.path() / "steps.jsonl") == read_lines(unbroken.path() / "steps.jsonl"));
  }
}

TEST_CASE("gpu_train --prepare-only builds the cache that training then reuses", "[slow][train]") {
  TempDir data, cache, run_dir;
  make_folder_dataset(data.path());
  const std::string out = (run_dir.path() / "out.txt").string();
  std::string command = std::string(CADENZA_GPU_TRAIN) + " " + kDemo;
  for (const std::string& o : overrides_for(data.path(), cache.path())) command += " --set '" + o + "'";
  const auto run = [&](const std::string& extra) {
    const int status = std::system((command + extra + " > " + out + " 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  const auto output = [&] {
    std::ifstream in(out);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  REQUIRE(run(" --prepare-only") == 0);
  INFO(output());
  CHECK_THAT(output(), Catch::Contains("PCM cache built") &&
                           Catch::Contains("prepared folder: 48 clips, 4 classes (") &&  // 36 + 12: the broken file is not one
                           Catch::Contains("), split 36 / 12 / 0, 1 file skipped"));
  CHECK_FALSE(fs::exists(run_dir.path() / "checkpoints"));
  REQUIRE(run(" --set train.epochs=1 --run-dir " + (run_dir.path() / "run").string()) == 0);
  CHECK_THAT(output(), Catch::Contains("PCM cache reused"));
  CHECK_FALSE(output().find("PCM cache built") != std::string::npos);

  // A missing root is named before anything is decoded.
  CHECK(run(" --set data.root=" + (data.path() / "absent").string() + " --prepare-only") == 2);
  CHECK_THAT(output(), Catch::Contains("data.root") && Catch::Contains("absent"));

  // A dataset none of whose files decodes is refused as training would refuse it.
  const fs::path broken = data.path() / "all_broken";
  for (const char* label : {"a", "b"}) {
    fs::create_directories(broken / label);
    testing::write_bytes(broken / label / "x.wav", "RIFF\x04\x00\x00\x00WAVE");
  }
  CHECK(run(" --set data.root=" + broken.string() + " --prepare-only") == 2);
  CHECK_THAT(output(), Catch::Contains("data: no training clip; every training file was left out (2 named above)"));
}

TEST_CASE("a CSV of tagged files trains, and a tag its validation clips cannot score is named", "[slow][train]") {
  TempDir data, cache, run_dir;
  // Eight 1 s tones, every one tagged 'tone' and half of them 'high': 'tone' has no
  // negative validation clip, so val_roc_auc leaves it out, and says so once.
  std::string manifest = "path,labels\n";
  for (int i = 0; i < 8; ++i) {
    const bool high = i % 2 == 1;
    std::vector<float> samples(16000);
    for (std::size_t t = 0; t < samples.size(); ++t)
      samples[t] = 0.5f * std::sin(2.0f * 3.14159265f * (high ? 1760.0f : 220.0f) * float(t) / 16000.0f);
    const std::string name = "clip" + std::to_string(i) + ".wav";
    testing::write_audio_file(data / name, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, samples);
    manifest += name + "," + (high ? "tone;high" : "tone") + "\n";
  }
  testing::write_bytes(data / "tags.csv", manifest);
  std::ostringstream log;
  Logger logger(log);
  const Config config = load_config(
      kDemo, {"data.dataset=csv", "data.manifest=" + (data / "tags.csv").string(), "data.cache_dir=" + cache.path().string(),
              "data.clip_seconds=1.0", "data.split_fractions=[0.5, 0.5, 0.0]", "train.epochs=2", "train.batch_size=2",
              "train.threads=2", "loss.type=sigmoid_bce"});
  const TrainOutcome outcome = run_training(config, TrainRequest{run_dir.path(), false}, logger);
  INFO(log.str());
  CHECK(outcome.status == TrainOutcome::Status::completed);
  const std::string text = log.str();
  const std::string note = "validation: 1 of 2 tags have only positive or only negative validation clips and are "
                           "left out of val_roc_auc and val_pr_auc";
  CHECK_THAT(text, Catch::Contains(note));
  CHECK(text.find(note) == text.rfind(note));  // once, not every epoch
}
