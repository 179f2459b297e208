// [slow][inference] What users do after training, end to end through the tools on small
// runs of the demo: gpu_eval's report agrees with its predictions and with the trainer's
// own validation; gpu_predict scores songs longer than the training clip exactly as the
// mean of their windows, and skips a corrupt file; gpu_embed's features are what the
// classifier reads.
#include <catch2/catch.hpp>

#include <sndfile.h>
#include <sys/wait.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "host/config/config.hpp"
#include "host/core/logger.hpp"
#include "host/data/dataset.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/csv.hpp"
#include "host/io/npy.hpp"
#include "host/io/safetensors.hpp"
#include "host/train/trainer.hpp"
#include "tests/test_support.hpp"

namespace cadenza {
namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using testing::TempDir;

const std::string kDemo = std::string(CADENZA_SOURCE_DIR) + "/configs/demo.yaml";

// A small demo run: 4 classes x 24 clips of 1.0 s (one window each), split 60/20/20.
std::vector<std::string> small_run(bool multi_label) {
  return {"data.synthetic.num_classes=4",  "data.synthetic.clips_per_class=24",
          "data.clip_seconds=1.0",         "data.split_fractions=[0.6, 0.2, 0.2]",
          "train.epochs=3",                "train.threads=2",
          std::string("data.synthetic.multi_label=") + (multi_label ? "true" : "false")};
}

// Trains the small run into `dir` (once per process and kind).
const fs::path& trained_run(bool multi_label) {
  static std::map<bool, std::unique_ptr<TempDir>> runs;
  auto& dir = runs[multi_label];
  if (!dir) {
    dir = std::make_unique<TempDir>();
    std::ostringstream quiet;
    Logger log(quiet, Logger::Level::warn);
    const Config config = load_config(kDemo, small_run(multi_label));
    run_training(config, TrainRequest{dir->path(), false}, log);
  }
  return dir->path();
}

struct CommandResult {
  int status = -1;
  std::string out, err;
};

// Runs a tool with `arguments`, capturing stdout and stderr.
CommandResult run_tool(const char* tool, const std::string& arguments) {
  const TempDir capture;
  const std::string command = std::string(tool) + " " + arguments + " > " + (capture / "out").string() + " 2> " +
                              (capture / "err").string();
  const int status = std::system(command.c_str());
  CommandResult result;
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(capture / "out");
  result.err = read_file(capture / "err");
  return result;
}

std::vector<std::vector<std::string>> read_csv(const fs::path& path) {
  CsvReader reader(path);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> fields;
  while (reader.next(fields)) rows.push_back(fields);
  return rows;
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// The epoch of metrics.jsonl whose checkpoint is `best` (the highest `metric`, first on ties).
nlohmann::json best_epoch(const fs::path& run, const std::string& metric) {
  std::ifstream in(run / "metrics.jsonl");
  std::string line;
  nlohmann::json best;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (best.is_null() || j[metric].get<double>() > best[metric].get<double>()) best = j;
  }
  return best;
}

// The clip scores of predictions.csv, by clip id.
std::map<std::string, std::vector<double>> clip_scores(const fs::path& csv, int labels) {
  const auto rows = read_csv(csv);
  std::map<std::string, std::vector<double>> scores;
  for (std::size_t r = 1; r < rows.size(); ++r)
    for (int j = 0; j < labels; ++j) scores[rows[r][0]].push_back(std::stod(rows[r][1 + labels + j]));
  return scores;
}

// Writes samples [first clip ... last clip] of `clips` back to back as a float WAV.
void write_clips_as_song(const Dataset& data, const std::vector<int>& clips, const fs::path& path) {
  std::vector<float> song;
  for (int clip : clips) {
    std::vector<float> samples(data.lengths[clip]);
    data.audio->read(clip, 0, data.lengths[clip], samples.data());
    song.insert(song.end(), samples.begin(), samples.end());
  }
  testing::write_audio_file(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, data.sample_rate, 1, song);
}

}  // namespace

TEST_CASE("gpu_eval: the report agrees with its predictions, the trainer's validation and the plots",
          "[slow][inference]") {
  const fs::path& run = trained_run(false);
  const TempDir out;
  // The run directory is only read: every file keeps its bytes and time.
  std::map<std::string, fs::file_time_type> run_files;
  for (const auto& entry : fs::recursive_directory_iterator(run))
    run_files[entry.path().string()] = fs::last_write_time(entry.path());
  const CommandResult val = run_tool(CADENZA_GPU_EVAL, run.string() + " --split val --out " + out.path().string());
  INFO(val.err);
  REQUIRE(val.status == 0);
  CHECK_THAT(val.out, Contains("precision    recall  f1-score   support"));
  CHECK_THAT(val.out, Contains("weighted avg"));

  // The best checkpoint evaluated on the validation split gives the epoch's own figures.
  const nlohmann::json report = read_json(out / "report.json");
  const nlohmann::json best = best_epoch(run, "val_accuracy");
  CHECK(report["accuracy"].get<double>() == Approx(best["val_accuracy"].get<double>()).margin(1e-12));
  CHECK(report["loss"].get<double>() == Approx(best["val_loss"].get<double>()).epsilon(1e-5));
  CHECK(report["split"] == "val");

  // predictions.csv: a row per clip; argmax accuracy and supports match the report.
  const auto rows = read_csv(out / "predictions.csv");
  const std::vector<std::string> labels = report["labels"];
  const int k = static_cast<int>(labels.size());
  REQUIRE(k == 4);
  REQUIRE(rows.size() == 1 + std::size_t(report["clips"].get<int>()));
  CHECK(rows[0][0] == "clip");
  CHECK(rows[0][1] == "true_" + labels[0]);
  CHECK(rows[0][1 + k] == "score_" + labels[0]);
  int correct = 0;
  std::vector<int> support(k, 0);
  for (std::size_t r = 1; r < rows.size(); ++r) {
    int truth = 0, predicted = 0;
    double sum = 0.0;
    for (int j = 0; j < k; ++j) {
      if (std::stod(rows[r][1 + j]) > std::stod(rows[r][1 + truth])) truth = j;
      if (std::stod(rows[r][1 + k + j]) > std::stod(rows[r][1 + k + predicted])) predicted = j;
      sum += std::stod(rows[r][1 + k + j]);
    }
    CHECK(sum == Approx(1.0).epsilon(1e-4));  // softmax probabilities
    correct += truth == predicted;
    ++support[truth];
  }
  CHECK(double(correct) / double(rows.size() - 1) == Approx(report["accuracy"].get<double>()));
  for (int j = 0; j < k; ++j) CHECK(report["per_class"][labels[j]]["support"].get<double>() == support[j]);

  // The plots are valid PNGs, and the HTML report shows them all in a browser.
  for (const char* png : {"confusion_matrix.png", "roc_curves.png", "pr_curves.png", "loss.png", "metric.png"})
    testing::check_png(out / png);
  std::map<std::string, fs::file_time_type> run_files_after;
  for (const auto& entry : fs::recursive_directory_iterator(run))
    run_files_after[entry.path().string()] = fs::last_write_time(entry.path());
  CHECK(run_files_after == run_files);
  const std::string dom = testing::chromium_dom(fs::absolute(out / "report.html"), out / "home");
  CHECK_THAT(dom, Contains("data-images-loaded=\"5/5\""));
  CHECK_THAT(dom, Contains("weighted avg"));

  // The test split by default; a split or checkpoint that is not there is a user error.
  const CommandResult test = run_tool(CADENZA_GPU_EVAL, run.string() + " --quiet");
  CHECK(test.status == 0);
  CHECK(fs::exists(run / "eval-test" / "report.json"));
  const CommandResult bad_split = run_tool(CADENZA_GPU_EVAL, run.string() + " --split tset");
  CHECK(bad_split.status == 2);
  CHECK_THAT(bad_split.err, Contains("--split: expected test, val or train, got tset"));
  const CommandResult bad_checkpoint = run_tool(CADENZA_GPU_EVAL, run.string() + " --checkpoint nowhere");
  CHECK(bad_checkpoint.status == 2);
  CHECK_THAT(bad_checkpoint.err, Contains("--checkpoint nowhere"));
  // One of the run's checkpoints, by its name.
  const fs::path step = fs::canonical(run / "checkpoints" / "last");
  const CommandResult by_name = run_tool(CADENZA_GPU_EVAL, run.string() + " --split val --checkpoint " +
                                                               step.filename().string() + " --out " +
                                                               (out / "by-name").string());
  CHECK(by_name.status == 0);
  CHECK_THAT(by_name.err, Contains((run / "checkpoints" / step.filename() / "model.safetensors").string()));
  // A run whose checkpoints folder is gone says so.
  const fs::path no_checkpoints = out / "no-checkpoints";
  fs::create_directories(no_checkpoints);
  for (const char* file : {"config.yaml", "labels.json", "splits.csv"}) fs::copy_file(run / file, no_checkpoints / file);
  const CommandResult gone = run_tool(CADENZA_GPU_EVAL, no_checkpoints.string());
  CHECK(gone.status == 2);
  CHECK_THAT(gone.err, Contains("no-checkpoints: no checkpoints folder"));
  // A failed evaluation leaves no output folder behind.
  const fs::path untested = out / "untested-run";  // the run with no test clips in its record
  fs::copy(run, untested, fs::copy_options::recursive);
  std::string record;
  for (const auto& row : read_csv(run / "splits.csv"))
    if (row[1] != "test") record += row[0] + "," + row[1] + "\n";
  write_file_atomically(untested / "splits.csv", record);
  const CommandResult empty_split =
      run_tool(CADENZA_GPU_EVAL, untested.string() + " --split test --out " + (out / "empty").string());
  CHECK(empty_split.status == 2);
  CHECK_THAT(empty_split.err, Contains("split is empty"));
  CHECK_FALSE(fs::exists(out / "empty"));
  // Not asked for a split, a run without test clips evaluates its validation split.
  const CommandResult fallback = run_tool(CADENZA_GPU_EVAL, untested.string());
  CHECK(fallback.status == 0);
  CHECK_THAT(fallback.err, Contains("the run has no test clips: evaluating its validation split"));
  CHECK(nlohmann::json::parse(read_file(untested / "eval-val" / "report.json"))["split"] == "val");
  // A metrics.jsonl line edited by hand is left out of the curves, as a cut-off line is.
  std::ofstream(untested / "metrics.jsonl", std::ios::app) << "{\"epoch\":\"x\",\"train_loss\":1}\n";
  const CommandResult edited = run_tool(CADENZA_GPU_EVAL, untested.string() + " --split val --out " + (out / "edited").string());
  CHECK(edited.status == 0);
  testing::check_png(out / "edited" / "loss.png");
  const CommandResult file_in_the_way = run_tool(CADENZA_GPU_EVAL, run.string() + " --out " + (out / "report.json").string());
  CHECK(file_in_the_way.status == 2);
  CHECK_THAT(file_in_the_way.err, Contains("report.json is not a folder"));
}

TEST_CASE("gpu_eval: a multi-label run reports ROC-AUC and PR-AUC as its validation did", "[slow][inference]") {
  const fs::path& run = trained_run(true);
  const TempDir out;
  const CommandResult val =
      run_tool(CADENZA_GPU_EVAL, run.string() + " --split val --threshold 0.4 --out " + out.path().string());
  INFO(val.err);
  REQUIRE(val.status == 0);
  CHECK_THAT(val.out, Contains("roc-auc    pr-auc"));
  const nlohmann::json report = read_json(out / "report.json");
  const nlohmann::json best = best_epoch(run, "val_roc_auc");
  CHECK(report["roc_auc_macro"].get<double>() == Approx(best["val_roc_auc"].get<double>()).margin(1e-12));
  CHECK(report["pr_auc_macro"].get<double>() == Approx(best["val_pr_auc"].get<double>()).margin(1e-12));
  CHECK(report["threshold"].get<double>() == Approx(0.4));
  CHECK(report["per_class"].size() == 4);
  CHECK(report.contains("binary_accuracy"));
  for (const char* png : {"roc_curves.png", "pr_curves.png"}) testing::check_png(out / png);
  CHECK_FALSE(fs::exists(out / "confusion_matrix.png"));
}

TEST_CASE("gpu_predict: a song longer than the clip is the mean of its windows; a corrupt file is skipped",
          "[slow][inference]") {
  const fs::path& run = trained_run(false);
  const TempDir eval_out, songs;
  REQUIRE(run_tool(CADENZA_GPU_EVAL, run.string() + " --split val --quiet --out " + eval_out.path().string()).status ==
          0);
  const auto expected = clip_scores(eval_out / "predictions.csv", 4);

  // Three validation clips back to back: a 3 s song, three 1 s windows, each one clip.
  std::ostringstream quiet;
  Logger log(quiet, Logger::Level::warn);
  const Config config = load_config((run / "config.yaml").string());
  const Dataset data = load_dataset(config, config.train.seed, 2, log);
  const std::vector<int>& val = data.indices(Split::val);
  REQUIRE(val.size() >= 3);
  fs::create_directories(songs / "album" / "disc 2");
  write_clips_as_song(data, {val[0], val[1], val[2]}, songs / "album" / "long song.wav");
  write_clips_as_song(data, {val[1]}, songs / "album" / "disc 2" / "one clip.wav");
  testing::write_bytes(songs / "album" / "disc 2" / "broken.wav", "RIFF\x10\x00\x00\x00WAVEjunk that is not audio");
  testing::write_bytes(songs / "album" / "notes.txt", "not searched: not an audio extension");
  // A folder is searched as a folder dataset is: hidden files passed over, formats
  // cadenza cannot read reported.
  fs::copy_file(songs / "album" / "disc 2" / "one clip.wav", songs / "album" / "._one clip.wav");
  testing::write_bytes(songs / "album" / "tune.m4a", "not decodable here");

  const CommandResult json = run_tool(CADENZA_GPU_PREDICT, run.string() + " '" + (songs / "album").string() + "' --json");
  INFO(json.err);
  REQUIRE(json.status == 0);
  CHECK_THAT(json.err, Contains("broken.wav"));
  CHECK_THAT(json.err, Contains("tune.m4a: .m4a is not a format cadenza reads"));
  CHECK_THAT(json.err, Contains("skipped 2"));
  const nlohmann::json songs_json = nlohmann::json::parse(json.out);
  REQUIRE(songs_json.size() == 2);  // sorted by path: "disc 2/one clip.wav" < "long song.wav"
  const nlohmann::json& one = songs_json[0];
  const nlohmann::json& long_song = songs_json[1];
  CHECK_THAT(one["file"].get<std::string>(), Contains("one clip.wav"));
  CHECK(one["windows"] == 1);
  CHECK(long_song["windows"] == 3);
  CHECK(long_song["seconds"].get<double>() == Approx(3.0));
  for (std::size_t j = 0; j < 4; ++j) {
    const std::string label = data.label_names[j];
    CHECK(one["scores"][label].get<double>() == Approx(expected.at(data.clip_ids[val[1]])[j]).margin(2e-6));
    const double mean = (expected.at(data.clip_ids[val[0]])[j] + expected.at(data.clip_ids[val[1]])[j] +
                         expected.at(data.clip_ids[val[2]])[j]) / 3.0;
    CHECK(long_song["scores"][label].get<double>() == Approx(mean).margin(2e-6));
  }
  CHECK(long_song["top"].size() == 4);  // --json lists every label unless --top-k says otherwise

  // The text listing: the top K labels, best first.
  const CommandResult text =
      run_tool(CADENZA_GPU_PREDICT, run.string() + " '" + (songs / "album" / "long song.wav").string() + "' --top-k 2");
  REQUIRE(text.status == 0);
  CHECK_THAT(text.out, Contains("long song.wav  (0:03, 3 windows)"));
  CHECK(std::count(text.out.begin(), text.out.end(), '\n') == 3);

  // --set changes what is not the model: one second dropped at each end leaves the middle clip.
  const CommandResult dropped =
      run_tool(CADENZA_GPU_PREDICT, run.string() + " '" + (songs / "album" / "long song.wav").string() +
                                        "' --json --set data.eval_drop_seconds=1");
  REQUIRE(dropped.status == 0);
  const nlohmann::json middle = nlohmann::json::parse(dropped.out).at(0);
  CHECK(middle["windows"] == 1);
  for (std::size_t j = 0; j < 4; ++j)
    CHECK(middle["scores"][data.label_names[j]].get<double>() ==
          Approx(expected.at(data.clip_ids[val[1]])[j]).margin(2e-6));

  // Weights saved by PyTorch (safetensors.torch.save_file: format "pt", BatchNorm's
  // int64 num_batches_tracked beside them) score as the checkpoint they came from.
  const SafetensorsFile best(run / "checkpoints" / "best" / "model.safetensors");
  const std::int64_t batches_tracked = 40;
  std::vector<SafetensorsEntry> entries;
  for (const std::string& name : best.names()) {
    const SafetensorsFile::View& view = best.tensor(name);
    entries.push_back({name, view.dtype, view.shape, view.data, view.nbytes});
  }
  entries.push_back({"input_bn.num_batches_tracked", "I64", {}, &batches_tracked, sizeof batches_tracked});
  write_safetensors(songs / "from_torch.safetensors", entries, {{"format", "pt"}});
  const std::string song = " '" + (songs / "album" / "long song.wav").string() + "' --json --checkpoint ";
  const CommandResult from_torch = run_tool(CADENZA_GPU_PREDICT, run.string() + song + (songs / "from_torch.safetensors").string());
  INFO(from_torch.err);
  REQUIRE(from_torch.status == 0);
  CHECK_THAT(from_torch.err, Contains("from_torch.safetensors: not a cadenza checkpoint; its weights were matched to "
                                      "the run's model by name and shape"));
  CHECK(nlohmann::json::parse(from_torch.out)[0]["scores"] == long_song["scores"]);
  entries.erase(entries.begin());  // a weight missing: named
  write_safetensors(songs / "short.safetensors", entries, {{"format", "pt"}});
  const CommandResult short_file = run_tool(CADENZA_GPU_PREDICT, run.string() + song + (songs / "short.safetensors").string());
  CHECK(short_file.status == 2);
  CHECK_THAT(short_file.err, Contains("short.safetensors: no tensor '" + best.names().front() + "'"));

  // CSV: a header and a row per song; only unreadable input is fatal.
  const CommandResult csv = run_tool(CADENZA_GPU_PREDICT, run.string() + " '" + songs.path().string() + "' --csv");
  REQUIRE(csv.status == 0);
  const auto rows = read_csv([&] {
    const fs::path file = songs / "out.csv";
    std::ofstream(file) << csv.out;
    return file;
  }());
  CHECK(rows.size() == 3);
  CHECK(rows[0][3] == "score_" + data.label_names[0]);
  const CommandResult only_broken = run_tool(
      CADENZA_GPU_PREDICT, run.string() + " '" + (songs / "album" / "disc 2" / "broken.wav").string() + "'");
  CHECK(only_broken.status == 2);
  CHECK_THAT(only_broken.err, Contains("none of the files could be scored"));
  // A song shorter than one window is scored, and said to be padded.
  testing::write_audio_file(songs / "short.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1,
                            std::vector<float>(6400, 0.25f));
  const CommandResult short_song = run_tool(CADENZA_GPU_PREDICT, run.string() + " '" + (songs / "short.wav").string() + "'");
  CHECK(short_song.status == 0);
  CHECK_THAT(short_song.err, Contains("short.wav is 0.4 s long, shorter than the model's window of 1 s: its scores "
                                      "come from a window padded with silence"));
  // A model that cannot be loaded (a damaged byte in its weights) leaves stdout empty, not
  // half a JSON document.
  const fs::path damaged = songs / "damaged.safetensors";
  std::string weights = read_file(run / "checkpoints" / "best" / "model.safetensors");
  weights[weights.size() - 5] ^= 0x40;
  testing::write_bytes(damaged, weights);
  const CommandResult no_model = run_tool(CADENZA_GPU_PREDICT, run.string() + " --checkpoint '" + damaged.string() +
                                                                   "' --json '" + (songs / "album").string() + "'");
  CHECK(no_model.status == 2);
  CHECK_THAT(no_model.err, Contains("damaged.safetensors"));
  CHECK(no_model.out.empty());
}

TEST_CASE("gpu_embed: the exported features are what the classifier reads", "[slow][inference]") {
  const fs::path& run = trained_run(false);
  const TempDir out;
  REQUIRE(run_tool(CADENZA_GPU_EVAL, run.string() + " --split val --quiet --out " + out.path().string()).status == 0);
  const auto expected = clip_scores(out / "predictions.csv", 4);

  const CommandResult embed =
      run_tool(CADENZA_GPU_EMBED, run.string() + " --split val --out " + (out / "val.safetensors").string());
  INFO(embed.err);
  REQUIRE(embed.status == 0);
  const SafetensorsFile file(out / "val.safetensors");
  const auto clips = nlohmann::json::parse(file.metadata().at("clips")).get<std::vector<std::string>>();
  REQUIRE(clips.size() == expected.size());
  const std::int64_t c = std::int64_t(clips.size()), d = 64, k = 4;  // the demo's conv4 has 64 filters
  std::vector<float> embeddings(c * d), targets(c * k);
  file.copy_f32("embeddings", {c, d}, embeddings.data());
  file.copy_f32("targets", {c, k}, targets.data());
  CHECK(file.tensor("split").dtype == "I32");

  // softmax(classifier(embedding)) is the clip's score (one window per clip).
  const SafetensorsFile model(run / "checkpoints" / "best" / "model.safetensors");
  std::vector<float> weight(k * d), bias(k);
  model.copy_f32("classifier.weight", {k, d}, weight.data());
  model.copy_f32("classifier.bias", {k}, bias.data());
  for (std::int64_t i = 0; i < c; ++i) {
    std::vector<double> logits(k);
    double max_logit = -1e30, total = 0.0;
    for (std::int64_t j = 0; j < k; ++j) {
      logits[j] = bias[j];
      for (std::int64_t f = 0; f < d; ++f) logits[j] += double(weight[j * d + f]) * embeddings[i * d + f];
      max_logit = std::max(max_logit, logits[j]);
    }
    for (double& l : logits) total += std::exp(l - max_logit);
    for (std::int64_t j = 0; j < k; ++j)
      CHECK(std::exp(logits[j] - max_logit) / total == Approx(expected.at(clips[i])[j]).margin(1e-5));
  }

  // .npy: the same matrix, with the clips' ids, splits and labels beside it.
  REQUIRE(run_tool(CADENZA_GPU_EMBED, run.string() + " --split val --quiet --out " + (out / "val.npy").string()).status ==
          0);
  const std::string npy = read_file(out / "val.npy");
  const std::string header = npy_header_f32({c, d});
  REQUIRE(npy.size() == header.size() + std::size_t(c * d) * 4);
  CHECK(npy.compare(0, header.size(), header) == 0);
  CHECK(std::memcmp(npy.data() + header.size(), embeddings.data(), std::size_t(c * d) * 4) == 0);
  const auto sidecar = read_csv(out / "val.clips.csv");
  REQUIRE(sidecar.size() == std::size_t(c) + 1);
  CHECK(sidecar[1][0] == clips[0]);
  CHECK(sidecar[1][1] == "val");
  const CommandResult bad = run_tool(CADENZA_GPU_EMBED, run.string() + " --out features.txt");
  CHECK(bad.status == 2);
  CHECK_THAT(bad.err, Contains("expected a .safetensors or .npy file name"));
  // Missing folders of --out are made (as gpu_eval's are); the extension in any case.
  const fs::path deeper = out / "new" / "deeper" / "val.NPY";
  REQUIRE(run_tool(CADENZA_GPU_EMBED, run.string() + " --split val --quiet --out " + deeper.string()).status == 0);
  CHECK(read_file(deeper) == npy);
}

TEST_CASE("gpu_embed --split all adds the clips the dataset gained since training, never augmentation copies",
          "[slow][inference]") {
  const TempDir dir;
  const fs::path run = dir / "run";
  fs::copy(trained_run(false), run, fs::copy_options::recursive);
  // Two clips the record does not list: as if added to the dataset after training.
  const auto rows = read_csv(run / "splits.csv");
  REQUIRE(rows.size() == 97);  // the header and 96 clips
  std::string record;
  for (std::size_t r = 0; r + 2 < rows.size(); ++r) record += rows[r][0] + "," + rows[r][1] + "\n";
  write_file_atomically(run / "splits.csv", record);

  // The run's own clips first, by split, then the new ones; the copies an offline
  // augmentation would add are not the dataset's clips.
  const CommandResult embed = run_tool(CADENZA_GPU_EMBED, run.string() + " --set augment.offline_copies=1 --out " +
                                                              (dir / "all.npy").string());
  INFO(embed.err);
  REQUIRE(embed.status == 0);
  CHECK_THAT(embed.err, Contains("2 clips are new (in none of its splits)"));
  const auto sidecar = read_csv(dir / "all.clips.csv");
  REQUIRE(sidecar.size() == 97);
  std::map<std::string, int> per_split;
  for (std::size_t r = 1; r < sidecar.size(); ++r) {
    ++per_split[sidecar[r][1]];
    CHECK(sidecar[r][0].find("+copy") == std::string::npos);
  }
  std::map<std::string, int> expected = {{"new", 2}};
  for (std::size_t r = 1; r + 2 < rows.size(); ++r) ++expected[rows[r][1]];
  CHECK(per_split == expected);
  CHECK(expected.size() == 4);
  CHECK(sidecar[95][0] == rows[95][0]);
  CHECK(sidecar[95][1] == "new");
  CHECK(sidecar[96][0] == rows[96][0]);
}

}  // namespace cadenza
