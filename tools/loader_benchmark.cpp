// loader_benchmark: how fast the data path is on this machine, next to the rate at which a
// GPU consumes training clips — the loader must never be what a GPU waits on.
//
//   loader_benchmark [--clips 200] [--seconds 30] [--rate 22050] [--format wav|flac|mp3]
//                    [--sample-rate 16000] [--batch 16] [--crop-seconds 29.1] [--threads T]
//                    [--dir DIR] [--keep] [--gpu-clips-per-second X] [--json FILE]
//
// 1. Writes a folder dataset (DIR/audio/<label>/clipNNNN.<format>) of synthetic music, 10
//    classes, with libsndfile. Not timed.
// 2. Times load_dataset on it with a fresh cache (DIR/cache): the cold build decodes,
//    resamples and writes (and fsyncs) every file, on 1 thread and on --threads; then again
//    with the cache in place (warm open). Each is the median of a few runs after a warm-up.
// 3. Times serving: a BatchLoader with 1, 2 and 4 threads (and 3 where gpu_train would use
//    3) filling (batch, window) PCM and targets from random crops of training_epoch over all
//    clips, as gpu_train does.
// 4. Prints the GPU's consumption next to it, an estimate from FLOPs unless measured and
//    given with --gpu-clips-per-second, and the headroom = served clips/s / GPU clips/s.
//
// Measured vs estimated: every rate but the GPU row is measured here. The audio files and
// the cache shards were just written, so they are in the page cache: the figures are for
// a dataset that fits in memory, not for reads from a cold disk. tools/bench/loader_peer.py
// measures the usual PyTorch/librosa pipeline on the same folder (run this with --keep).
// Exit codes: 0 done (whether or not the loader keeps up), 2 a user error.
#include <sndfile.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "host/cli/arguments.hpp"
#include "host/cli/tool_main.hpp"
#include "host/config/config.hpp"
#include "host/core/error.hpp"
#include "host/core/logger.hpp"
#include "host/core/tensor.hpp"
#include "host/data/batch_loader.hpp"
#include "host/data/dataset.hpp"
#include "host/data/sampler.hpp"
#include "host/data/synthetic_audio.hpp"

namespace {

using namespace cadenza;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kClasses = 10;  // GTZAN-like

// The CRNN of Choi et al. 2017 ("Convolutional recurrent neural networks for music
// classification", the 64-128-128-128 filter variant on 96 mel bands x 1366 frames, i.e.
// 29.1 s at 12 kHz with hop 256): its convolutions take ~3.2 GMAC, ~6.5 GFLOP forward per
// clip; a training step (forward, backward for inputs and weights) ~3x that. Scaled
// linearly with the crop length. At 16 kHz with hop 256 the same crop has 4/3 the frames,
// so the GPU would consume fewer clips/s than this: the estimate errs against the loader.
constexpr double kCrnnForwardFlopPerClip = 6.5e9;
constexpr double kCrnnClipSeconds = 29.1;
constexpr double kTrainFlopFactor = 3.0;
// Sustained FP32 throughput assumed for an H100-class GPU on these convolutions (TF32 tensor
// cores would go faster; this is a round, plausible figure, not a measurement).
constexpr double kAssumedGpuFlops = 25e12;

// Serving is timed in kServeRepeats runs of at least kServeRunSeconds each, after a
// warm-up, and reported as the median run.
constexpr int kServeRepeats = 5;
constexpr double kServeRunSeconds = 0.4;
constexpr double kServeWarmupSeconds = 0.3;
constexpr int kWarmOpenRepeats = 5;
constexpr int kColdBuildRepeats = 3;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

int positive_int(const Arguments& args, const std::string& flag, int fallback) {
  const auto text = args.value(flag);
  if (!text) return fallback;
  std::size_t used = 0;
  int value = 0;
  try {
    value = std::stoi(*text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text->size() || value <= 0)
    CADENZA_USER_ERROR(flag << " expects a positive integer, got '" << *text << "'");
  return value;
}

double positive_double(const Arguments& args, const std::string& flag, double fallback) {
  const auto text = args.value(flag);
  if (!text) return fallback;
  std::size_t used = 0;
  double value = 0.0;
  try {
    value = std::stod(*text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text->size() || !(value > 0.0) || !std::isfinite(value))
    CADENZA_USER_ERROR(flag << " expects a positive number, got '" << *text << "'");
  return value;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown CPU";
}

// The libsndfile format of a --format name.
int sndfile_format(const std::string& name) {
  if (name == "wav") return SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  if (name == "flac") return SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
  if (name == "mp3") return SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
  CADENZA_USER_ERROR("--format expects wav, flac or mp3, got '" << name << "'");
}

// Writes mono float samples as an audio file of libsndfile `format`.
void write_audio(const fs::path& path, int format, int rate, const float* samples, sf_count_t frames) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  info.format = format;
  if (sf_format_check(&info) != SF_TRUE)
    CADENZA_USER_ERROR("this libsndfile cannot write format 0x" << std::hex << format << std::dec << " at "
                                                                 << rate << " Hz; try another --format or --rate");
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  if (!file) CADENZA_USER_ERROR("cannot write " << path.string() << ": " << sf_strerror(nullptr));
  const sf_count_t written = sf_writef_float(file, samples, frames);
  const int closed = sf_close(file);
  if (written != frames || closed != 0)
    CADENZA_USER_ERROR("cannot write " << path.string() << ": wrote " << written << " of " << frames << " frames");
}

// N clips of synthetic music at `rate`, clip i of class i % 10, as root/<label>/clipNNNN.<ext>.
// generate_synthetic makes all clips of a set at once, so the set is made 10 clips at a
// time, each group from its own seed, to keep memory small.
void write_dataset(const fs::path& root, int clips, double seconds, int rate, const std::string& format) {
  const int sf_format = sndfile_format(format);
  SyntheticDataConfig synthetic;
  synthetic.num_classes = kClasses;
  synthetic.clips_per_class = 1;
  for (int first = 0; first < clips; first += kClasses) {
    synthetic.seed = 1234 + std::uint64_t(first / kClasses);
    const SyntheticClipSet set = generate_synthetic(synthetic, rate, seconds);
    for (int j = 0; j < set.num_clips() && first + j < clips; ++j) {
      const fs::path folder = root / set.label_names[set.primary_label[j]];
      fs::create_directories(folder);
      char name[32];
      std::snprintf(name, sizeof(name), "clip%04d.%s", first + j, format.c_str());
      write_audio(folder / name, sf_format, rate, set.pcm.data() + std::ptrdiff_t(j) * set.num_samples,
                  set.num_samples);
    }
  }
}

// One line of the table (and of the JSON); negative values print as "-".
struct Row {
  std::string stage;
  int threads = -1;
  double seconds = -1, clips_per_s = -1, audio_s_per_s = -1, batches_per_s = -1, headroom = -1;
};

std::string cell(double value, int precision) {
  if (value < 0) return "-";
  std::ostringstream os;
  os << std::fixed << std::setprecision(precision) << value;
  return os.str();
}

void print_table(const std::vector<Row>& rows) {
  std::cout << std::left << std::setw(44) << "stage" << std::right << std::setw(8) << "threads" << std::setw(10)
            << "seconds" << std::setw(11) << "clips/s" << std::setw(12) << "audio s/s" << std::setw(11)
            << "batches/s" << std::setw(10) << "headroom" << "\n";
  for (const Row& r : rows) {
    std::cout << std::left << std::setw(44) << r.stage << std::right << std::setw(8)
              << (r.threads > 0 ? std::to_string(r.threads) : "-") << std::setw(10) << cell(r.seconds, 4)
              << std::setw(11) << cell(r.clips_per_s, 1) << std::setw(12) << cell(r.audio_s_per_s, 0)
              << std::setw(11) << cell(r.batches_per_s, 1) << std::setw(10)
              << (r.headroom < 0 ? "-" : cell(r.headroom, 2) + "x") << "\n";
  }
}

nlohmann::json row_json(const Row& r) {
  const auto value = [](double v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(v); };
  return {{"stage", r.stage},
          {"threads", r.threads > 0 ? nlohmann::json(r.threads) : nlohmann::json(nullptr)},
          {"seconds", value(r.seconds)},
          {"clips_per_s", value(r.clips_per_s)},
          {"audio_s_per_s", value(r.audio_s_per_s)},
          {"batches_per_s", value(r.batches_per_s)},
          {"headroom", value(r.headroom)}};
}

struct ServeTiming {
  double batches_per_s = 0;  // the median of the timed runs
  double seconds = 0;        // all timed runs together
};

// Batches per second of a BatchLoader with `threads` threads over epochs of random crops
// (kServeRepeats timed runs after a warm-up).
ServeTiming time_serving(const Dataset& data, const std::vector<int>& clips, std::int64_t window,
                                int batch, int threads) {
  BatchLoader loader(data, window, threads);
  Tensor pcm = Tensor::zeros(Shape{batch, window});
  Tensor targets = Tensor::zeros(Shape{batch, data.num_labels()});
  TrainingSamplerOptions sampler;
  sampler.seed = 7;
  int epoch = 0;
  std::vector<ClipWindow> examples;
  std::size_t next = 0;
  const auto fill_one = [&] {
    if (next + std::size_t(batch) > examples.size()) {
      examples = training_epoch(clips, data.lengths, data.primary_label, window, sampler, epoch++);
      next = 0;
      // An epoch smaller than a batch is refilled by repeating it.
      while (examples.size() < std::size_t(batch)) {
        const auto more = training_epoch(clips, data.lengths, data.primary_label, window, sampler, epoch++);
        examples.insert(examples.end(), more.begin(), more.end());
      }
    }
    loader.fill(examples, next, batch, pcm, targets);
    next += std::size_t(batch);
  };
  const auto warmup = Clock::now();
  while (seconds_since(warmup) < kServeWarmupSeconds) fill_one();
  std::vector<double> rates;
  double total = 0;
  for (int r = 0; r < kServeRepeats; ++r) {
    const auto start = Clock::now();
    int batches = 0;
    double elapsed = 0;
    do {
      fill_one();
      ++batches;
      elapsed = seconds_since(start);
    } while (elapsed < kServeRunSeconds);
    rates.push_back(batches / elapsed);
    total += elapsed;
  }
  return {median(rates), total};
}

int benchmark_main(int argc, char** argv) {
  const ArgumentSpec spec{.with_value = {"--clips", "--seconds", "--rate", "--format", "--sample-rate", "--batch",
                                         "--crop-seconds", "--threads", "--dir", "--gpu-clips-per-second", "--json"},
                          .switches = {"--keep"},
                          .usage = "usage: loader_benchmark [--clips 200] [--seconds 30] [--rate 22050] [--format wav|flac|mp3]\n"
                          "                        [--sample-rate 16000] [--batch 16] [--crop-seconds 29.1] [--threads T]\n"
                          "                        [--dir DIR] [--keep] [--gpu-clips-per-second X] [--json FILE]\n"};
  const Arguments args = parse_arguments(argc, argv, spec);
  const int clips = positive_int(args, "--clips", 200);
  const double seconds = positive_double(args, "--seconds", 30.0);
  const int rate = positive_int(args, "--rate", 22050);
  const std::string format = args.value("--format").value_or("wav");
  const int sample_rate = positive_int(args, "--sample-rate", 16000);
  const int batch = positive_int(args, "--batch", 16);
  const double crop_seconds = positive_double(args, "--crop-seconds", 29.1);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const int threads = positive_int(args, "--threads", int(cores));
  const bool keep = args.has("--keep");
  sndfile_format(format);  // a bad --format fails before anything is written
  if (clips < kClasses) CADENZA_USER_ERROR("--clips expects at least " << kClasses << " (one per class), got " << clips);

  const double train_flop_per_clip = kTrainFlopFactor * kCrnnForwardFlopPerClip * crop_seconds / kCrnnClipSeconds;
  const bool gpu_measured = args.value("--gpu-clips-per-second").has_value();
  const double gpu_clips_per_s =
      positive_double(args, "--gpu-clips-per-second", kAssumedGpuFlops / train_flop_per_clip);

  // The working folder: missing or empty; what is written in it (and the folder, when it
  // was created here) is removed at the end unless --keep.
  const fs::path dir = args.value("--dir") ? absolute_path(*args.value("--dir"))
                                           : fs::temp_directory_path() /
                                                 ("cadenza-loader-bench-" + std::to_string(::getpid()));
  std::error_code error;
  if (fs::exists(dir, error) && !fs::is_empty(dir, error))
    CADENZA_USER_ERROR("--dir " << dir.string() << " is not empty; name a new or empty folder");
  const bool created_dir = fs::create_directories(dir, error);
  if (error) CADENZA_USER_ERROR("cannot create " << dir.string() << ": " << error.message());
  const fs::path audio_root = dir / "audio", cache_root = dir / "cache";

  std::cout << "loader_benchmark: " << clips << " clips x " << seconds << " s, " << format << " " << rate
            << " Hz mono -> " << sample_rate << " Hz; batches of " << batch << " x " << crop_seconds
            << " s crops\n"
            << "machine: " << cpu_model() << ", " << cores << " hardware threads; " << threads
            << " decode threads\n"
            << "folder: " << dir.string() << "\n";
  if (crop_seconds > seconds)
    std::cout << "note: crops (" << crop_seconds << " s) are longer than the clips (" << seconds
              << " s); their tails are zeros, which makes serving look faster than it is\n";
  std::cout << std::flush;

  const auto generating = Clock::now();
  write_dataset(audio_root, clips, seconds, rate, format);
  ::sync();  // the files' write-back is not charged to the cache build's fsync()
  std::cout << "wrote " << clips << " files in " << std::fixed << std::setprecision(1) << seconds_since(generating)
            << " s (not timed below)\n\n";

  Config config;
  config.data.dataset = "folder";
  config.data.root = audio_root.string();
  config.data.cache_dir = cache_root.string();
  config.data.sample_rate = sample_rate;
  config.data.clip_seconds = crop_seconds;
  Logger log(std::cerr, Logger::Level::warn);

  std::vector<Row> rows;
  const double audio_seconds = clips * seconds;
  // Cold builds, on one thread and on --threads: each into an empty cache folder, the
  // median of kColdBuildRepeats, after one untimed build (the first is markedly slower:
  // allocator and page-table warm-up), as the peer warms up too.
  std::optional<Dataset> data = load_dataset(config, 1, threads, log);
  std::vector<int> build_threads = {1};
  if (std::min(threads, clips) > 1) build_threads.push_back(std::min(threads, clips));
  for (int build_thread_count : build_threads) {
    std::vector<double> build_times;
    for (int r = 0; r < kColdBuildRepeats; ++r) {
      data.reset();
      fs::remove_all(cache_root, error);
      const auto building = Clock::now();
      data = load_dataset(config, 1, build_thread_count, log);
      build_times.push_back(seconds_since(building));
    }
    const double build_s = median(build_times);
    rows.push_back({"cache build, cold (decode+resample+write)", build_thread_count, build_s, clips / build_s,
                    audio_seconds / build_s, -1, -1});
  }

  std::vector<double> open_times;
  for (int r = 0; r < kWarmOpenRepeats; ++r) {
    data.reset();  // unmaps the cache before opening it again
    const auto opening = Clock::now();
    data = load_dataset(config, 1, threads, log);
    open_times.push_back(seconds_since(opening));
  }
  rows.push_back({"cache open, warm (index + manifest + mmap)", -1, median(open_times), -1, -1, -1, -1});

  std::vector<int> all_clips;
  for (int c = 0; c < data->num_clips(); ++c)
    if (data->lengths[c] > 0) all_clips.push_back(c);
  if (int(all_clips.size()) != clips)
    CADENZA_USER_ERROR(clips - int(all_clips.size()) << " of the generated files could not be decoded: "
                                                      << (data->skipped.empty() ? "" : data->skipped.front()));
  const std::int64_t window = std::llround(crop_seconds * sample_rate);
  const int train_threads = default_loader_threads();  // what gpu_train uses
  std::vector<int> serve_threads = {1, 2, 4};
  if (train_threads == 3) serve_threads.insert(serve_threads.begin() + 2, 3);
  double best_headroom = 0, train_headroom = 0;
  for (int loader_threads : serve_threads) {
    const ServeTiming timing = time_serving(*data, all_clips, window, batch, loader_threads);
    const double served = timing.batches_per_s * batch;
    const double headroom = served / gpu_clips_per_s;
    if (loader_threads == train_threads) train_headroom = headroom;
    best_headroom = std::max(best_headroom, headroom);
    rows.push_back({"serve crops from cache (BatchLoader)", loader_threads, timing.seconds, served,
                    served * crop_seconds, timing.batches_per_s, headroom});
  }
  rows.push_back({std::string("GPU consumption, CRNN training (") + (gpu_measured ? "given)" : "ESTIMATED)"), -1, -1,
                  gpu_clips_per_s, gpu_clips_per_s * crop_seconds, gpu_clips_per_s / batch, -1});
  print_table(rows);

  std::cout << "\nGPU: " << std::setprecision(0) << gpu_clips_per_s << " clips/s = "
            << (gpu_measured ? "given with --gpu-clips-per-second"
                             : "ESTIMATED: " + cell(kAssumedGpuFlops / 1e12, 0) + " TFLOP/s sustained FP32 / " +
                                   cell(train_flop_per_clip / 1e9, 1) +
                                   " GFLOP per training clip (CRNN, Choi et al. 2017: ~6.5 GFLOP forward per " +
                                   cell(kCrnnClipSeconds, 1) + " s, x3 for training); not measured")
            << "\nloader headroom = served clips/s / GPU clips/s; gpu_train uses " << train_threads
            << " loader thread(s) on this machine: headroom " << std::setprecision(2) << train_headroom << "x\n";
  if (train_headroom >= 1.0) {
    std::cout << "verdict: the loader keeps up: with " << train_threads << " thread(s) it serves "
              << train_headroom << "x what the GPU consumes\n";
  } else if (best_headroom >= 1.0) {
    std::cout << "verdict: the loader keeps up only with more threads than gpu_train gives it here ("
              << train_threads << "); with " << train_threads << " the GPU would wait "
              << std::setprecision(0) << 100.0 * (1.0 - train_headroom) << "% of each step\n";
  } else {
    std::cout << "verdict: the loader does NOT keep up: at best it serves " << best_headroom
              << "x what the GPU consumes, so the GPU would wait " << std::setprecision(0)
              << 100.0 * (1.0 - best_headroom) << "% of each step\n";
  }

  if (const auto json_path = args.value("--json")) {
    nlohmann::json out = {{"tool", "loader_benchmark"},
                          {"machine", {{"cpu", cpu_model()}, {"hardware_threads", cores}}},
                          {"settings",
                           {{"clips", clips}, {"seconds", seconds}, {"rate", rate}, {"format", format},
                            {"sample_rate", sample_rate}, {"batch", batch}, {"crop_seconds", crop_seconds},
                            {"decode_threads", threads}}},
                          {"gpu_clips_per_s", gpu_clips_per_s},
                          {"gpu_train_loader_threads", train_threads},
                          {"gpu_estimated", !gpu_measured},
                          {"rows", nlohmann::json::array()}};
    for (const Row& r : rows) out["rows"].push_back(row_json(r));
    std::ofstream file(*json_path);
    file << out.dump(2) << "\n";
    if (!file) CADENZA_USER_ERROR("cannot write --json " << *json_path);
  }

  data.reset();
  if (keep) {
    std::cout << std::defaultfloat << std::setprecision(6) << "\nkept " << dir.string() << "; the peer on the same files:\n  python3 tools/bench/loader_peer.py --dir "
              << dir.string() << " --batch " << batch << " --crop-seconds " << crop_seconds << " --sample-rate "
              << sample_rate << "\n";
  } else {
    fs::remove_all(audio_root, error);
    fs::remove_all(cache_root, error);
    if (created_dir) fs::remove(dir, error);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cadenza::tool_main("loader_benchmark", [&] { return benchmark_main(argc, argv); });
}
