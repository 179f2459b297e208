// bench_frontend: how fast cadenza's audio front-end turns clips into the model's input
// features (features: of a config), on the CPU backend or a GPU.
//
//   bench_frontend [--config configs/mtat_top10_crnn.yaml] [--seconds 30] [--batch 16]
//                  [--device cpu|cuda|cuda:N] [--threads N] [--repeats 7] [--json FILE]
//
// A batch of synthetic music-like clips (tones and noise) sits on the device; the
// front-end runs on it twice untimed, then --repeats times timed (each waits for the
// device), and the median gives clips/s and seconds of audio per second. PCM upload is
// not timed: in training it overlaps the previous step. tools/bench/frontend.py runs this
// next to torchaudio's MelSpectrogram + AmplitudeToDB on the same shapes and prints both.
// On a GPU it also prints the front-end kernels' achieved memory bandwidth next to the
// device's peak: the bytes its stages must read and write (mel_pipeline_bytes) over the
// median time.
// Nothing here is a test. Exit codes: 0 done, 2 a user error.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "host/cli/arguments.hpp"
#include "host/cli/tool_main.hpp"
#include "host/config/config.hpp"
#include "host/core/context.hpp"
#include "host/core/error.hpp"
#include "host/core/logger.hpp"

namespace {

constexpr const char* kUsage =
    "usage: bench_frontend [options]       time the audio front-end of a config\n"
    "options:\n"
    "  --config CONFIG  whose features: and data.sample_rate (default configs/mtat_top10_crnn.yaml)\n"
    "  --seconds S      clip length (default 30)\n"
    "  --batch B        clips per call (default 16)\n"
    "  --device D       cpu (default), cuda, cuda:N\n"
    "  --threads N      CPU threads (default: all cores)\n"
    "  --repeats R      timed calls (default 7)\n"
    "  --json FILE      also write the figures as JSON\n";

// Bytes the CUDA mel pipeline (cuda/spectrogram.cu) reads and writes for `batch` clips,
// each buffer counted once per stage that reads or writes it: framing (pcm in, frames
// out), the R2C FFT (frames in, complex spectrum out), |X|^p (spectrum in, power out), the
// filterbank GEMM (power in, mel out), dB in place (mel in and out) and, with top_db, the
// per-example maximum (mel in) and the clipping (mel in and out).
double mel_pipeline_bytes(const cadenza::FrontendSpec& spec, int batch, std::int64_t samples, std::int64_t frames) {
  const double f = 4.0, clips = batch;
  const double freqs = spec.n_fft / 2 + 1;
  const double pcm = clips * samples * f, framed = clips * frames * spec.n_fft * f;
  const double spectrum = clips * frames * freqs * 2 * f, power = clips * frames * freqs * f;
  const double mel = clips * frames * spec.n_mels * f;
  double bytes = pcm + framed + framed + spectrum + spectrum + power + power + mel;
  if (spec.log == "db") bytes += 2 * mel + (spec.top_db > 0 ? 3 * mel : 0);
  return bytes;
}

int bench_main(int argc, char** argv) {
  using namespace cadenza;
  using Clock = std::chrono::steady_clock;
  const ArgumentSpec spec{
      .with_value = {"--config", "--seconds", "--batch", "--device", "--threads", "--repeats", "--json"},
      .usage = kUsage};
  const Arguments args = parse_arguments(argc, argv, spec);
  const Config config = load_config(args.value("--config").value_or("configs/mtat_top10_crnn.yaml"));
  const double seconds = args.number("--seconds", 30.0);
  const int batch = args.integer("--batch", 16), repeats = args.integer("--repeats", 7);
  if (seconds <= 0 || batch < 1 || repeats < 1)
    CADENZA_USER_ERROR("--seconds, --batch and --repeats must be positive");
  const int sample_rate = config.data.sample_rate;
  const auto samples = static_cast<int>(std::llround(seconds * sample_rate));

  Logger logger(std::cerr, Logger::Level::warn);
  const auto context = make_context(args.value("--device").value_or("cpu"), args.integer("--threads", 0), logger);
  Backend& backend = context->backend();
  const auto frontend = backend.make_frontend(config.features, sample_rate, samples, batch);

  // Tones with vibrato and a little noise: values like music's, nothing the FFT favours.
  Tensor pcm_host = Tensor::zeros(Shape{batch, samples});
  for (int b = 0; b < batch; ++b)
    for (int i = 0; i < samples; ++i) {
      const double t = double(i) / sample_rate;
      pcm_host.f32()[std::int64_t(b) * samples + i] = static_cast<float>(
          0.3 * std::sin(2 * M_PI * (110.0 * (b + 1)) * t + 2.0 * std::sin(2 * M_PI * 5.0 * t)) +
          0.05 * std::sin(12345.678 * double(i) * (b + 3)));
    }
  auto on_device = [&](const Shape& shape) {
    void* memory = backend.allocate(std::size_t(shape.numel()) * sizeof(float));
    return std::pair<std::shared_ptr<void>, Tensor>{
        std::shared_ptr<void>(memory, [&backend](void* m) { backend.release(m); }),
        Tensor::view(memory, shape, DType::f32, backend.device())};
  };
  auto [pcm_memory, pcm] = on_device(pcm_host.shape());
  auto [features_memory, features] = on_device(frontend->features_shape(batch));
  backend.copy(pcm_host, pcm);

  for (int i = 0; i < 2; ++i) frontend->compute(pcm, features);
  backend.synchronize();
  std::vector<double> timings;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    frontend->compute(pcm, features);
    backend.synchronize();
    timings.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(timings.begin(), timings.end());
  const double median = timings[timings.size() / 2];
  const double clips_per_s = batch / median;
  const std::string device = backend.device().str();
  std::cout << "cadenza front-end (" << config.features.type << ", n_fft " << config.features.n_fft << ", hop "
            << config.features.hop_length << ", " << config.features.n_mels << " mels, log " << config.features.log
            << ") on " << device << ": " << batch << " clips of " << seconds << " s at " << sample_rate
            << " Hz, features " << features.shape().str() << "\n"
            << "  " << clips_per_s << " clips/s, " << clips_per_s * seconds << " s of audio per s (median of "
            << repeats << ", " << median * 1e3 << " ms per batch)\n";
  double achieved = 0, peak = 0;
  if (backend.device().is_cuda() && config.features.type == "mel") {
    const CudaAvailability cuda = probe_cuda();
    const auto index = static_cast<std::size_t>(backend.device().index);
    peak = index < cuda.peak_memory_bandwidth.size() ? cuda.peak_memory_bandwidth[index] : 0;
    achieved = mel_pipeline_bytes(config.features, batch, samples, features.shape()[3]) / median;
    std::cout << "  kernels' memory traffic " << achieved / 1e9 << " GB/s, device peak " << peak / 1e9
              << " GB/s (" << (peak > 0 ? 100 * achieved / peak : 0) << "%)\n";
  }
  if (const auto path = args.value("--json")) {
    const nlohmann::json j = {{"device", device},           {"batch", batch},
                              {"achieved_bytes_per_s", achieved}, {"peak_bytes_per_s", peak},
                              {"seconds", seconds},         {"sample_rate", sample_rate},
                              {"clips_per_s", clips_per_s}, {"median_batch_seconds", median},
                              {"features_shape", std::vector<std::int64_t>(features.shape().data(),
                                                                           features.shape().data() +
                                                                               features.shape().rank())}};
    std::ofstream(*path) << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cadenza::tool_main("bench_frontend", [&] { return bench_main(argc, argv); });
}
