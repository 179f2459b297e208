// Sample-rate conversion with libsoxr's streaming interface, fed in bounded chunks.
//
// Invariants:
// - The input goes in chunks and soxr buffers whatever output does not fit yet; a final
//   flush drains it. Chunking does not change soxr's arithmetic, so the result equals a
//   single soxr_oneshot() call; it only keeps every count that soxr stores in an int
//   (per call) small, so clips of any length are safe.
// - The output buffer is sized by resampled_length() up front, and the number of samples
//   soxr delivers is checked against it.
#include "host/audio/resampler.hpp"

#include <soxr.h>

#include <algorithm>
#include <memory>
#include <string>

#include "host/core/error.hpp"

namespace cadenza {
namespace {

// Samples per soxr_process() call, in and out.
constexpr std::size_t kChunkSamples = std::size_t{1} << 16;

struct SoxrDeleter {
  void operator()(soxr_t resampler) const { soxr_delete(resampler); }
};
using SoxrHandle = std::unique_ptr<std::remove_pointer_t<soxr_t>, SoxrDeleter>;

void throw_if_soxr_failed(soxr_error_t error, const char* what, int in_rate, int out_rate) {
  if (error != nullptr) {
    throw Error("resampling " + std::to_string(in_rate) + " Hz -> " +
                std::to_string(out_rate) + " Hz: " + what + ": " + error);
  }
}

}  // namespace

std::size_t resampled_length(std::size_t num_samples, int in_rate, int out_rate) {
  CADENZA_CHECK(in_rate > 0 && out_rate > 0,
                "sample rates must be positive, got " << in_rate << " -> " << out_rate);
  if (in_rate == out_rate) return num_samples;
  // The expression soxr evaluates when it is flushed (samples_in / io_ratio + .5).
  const double io_ratio = static_cast<double>(in_rate) / out_rate;
  return static_cast<std::size_t>(static_cast<double>(num_samples) / io_ratio + 0.5);
}

std::vector<float> resample(const std::vector<float>& samples, int in_rate, int out_rate) {
  const std::size_t output_length = resampled_length(samples.size(), in_rate, out_rate);
  if (in_rate == out_rate) return samples;
  std::vector<float> output(output_length);
  // soxr would produce nothing, and its soxr_process() crashes on the null output pointer
  // of an empty vector.
  if (output_length == 0) return output;

  const soxr_io_spec_t io_spec = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality_spec = soxr_quality_spec(SOXR_HQ, 0);
  const soxr_runtime_spec_t runtime_spec = soxr_runtime_spec(1);
  soxr_error_t error = nullptr;
  SoxrHandle resampler(soxr_create(in_rate, out_rate, 1, &error, &io_spec, &quality_spec,
                                   &runtime_spec));
  throw_if_soxr_failed(error, "soxr_create", in_rate, out_rate);
  CADENZA_CHECK(resampler != nullptr, "soxr_create returned no resampler and no error");

  std::size_t written = 0;
  const auto output_room = [&] { return std::min(kChunkSamples, output_length - written); };
  for (std::size_t read = 0; read < samples.size(); read += kChunkSamples) {
    const std::size_t chunk = std::min(kChunkSamples, samples.size() - read);
    std::size_t produced = 0;
    // A null idone asks soxr to take the whole chunk, buffering what does not fit out.
    error = soxr_process(resampler.get(), samples.data() + read, chunk, nullptr,
                         output.data() + written, output_room(), &produced);
    throw_if_soxr_failed(error, "soxr_process", in_rate, out_rate);
    written += produced;
  }
  // No input means end of stream: soxr pads with silence and stops at output_length.
  for (;;) {
    std::size_t produced = 0;
    error = soxr_process(resampler.get(), nullptr, 0, nullptr, output.data() + written,
                         output_room(), &produced);
    throw_if_soxr_failed(error, "soxr_process (flush)", in_rate, out_rate);
    if (produced == 0) break;
    written += produced;
  }
  CADENZA_CHECK(written == output_length, "soxr produced " << written << " samples from "
                                              << samples.size() << ", expected "
                                              << output_length);
  return output;
}

}  // namespace cadenza
