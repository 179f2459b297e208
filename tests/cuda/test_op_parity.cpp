// [cuda] Every op of the CUDA backend against the CPU backend on fresh random inputs.
//
// For each case both backends get the same inputs and the same initial outputs (random,
// so an op that should overwrite but accumulates, or the reverse, is caught). Device
// outputs sit between guard bytes of a sentinel pattern that must be intact afterwards
// (out-of-bounds writes), and every device result must be finite before it is compared.
// Tolerances are relative to max(1, |cpu value|), one per op family, each with its reason.
// The last test fails when an op of kBackendOps has no case here.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "cuda/cuda_backend.cuh"
#include "host/cpu/cpu_backend.hpp"
#include "host/math/random_math.hpp"

using namespace cadenza;

namespace {

// Tolerances. Elementwise math with the shared functions: a few ulps of expf/logf.
constexpr double kElementwise = 1e-5;
// Sums over many terms in another order (GEMMs, convolutions, reductions): float
// rounding grows with the square root of the terms; 2e-4 covers ~10^4-term sums of O(1).
constexpr double kReduction = 2e-4;
// The front-end: FFT algorithms differ (FFTW vs cuFFT) before a log; in dB, 1e-3 relative
// is about 0.01 dB at 10 dB.
constexpr double kFrontend = 1e-3;

std::set<std::string>& covered() {
  static std::set<std::string> names;
  return names;
}

constexpr std::size_t kGuardBytes = 256;
constexpr unsigned char kSentinel = 0xA5;

class Parity {
 public:
  Parity() : cpu_(2), gpu_(0) {}

  struct Pair {
    Tensor cpu, gpu;
    std::shared_ptr<void> memory;  // the guarded device allocation
  };

  // The same random values on both sides (uniform in [-scale, scale)).
  Pair make(const Shape& shape, std::uint64_t seed, float scale = 1.0f) {
    Tensor host = Tensor::zeros(shape);
    for (std::int64_t i = 0; i < host.numel(); ++i)
      host.f32()[i] = scale * (2.0f * uniform01(seed, 17, std::uint64_t(i)) - 1.0f);
    return upload(host);
  }

  Pair upload(const Tensor& host) {
    Pair p;
    p.cpu = Tensor::zeros(host.shape());
    std::memcpy(p.cpu.raw(), host.raw(), host.bytes());
    const std::size_t bytes = host.bytes() + 2 * kGuardBytes;
    char* raw = static_cast<char*>(gpu_.allocate(bytes));
    p.memory = std::shared_ptr<void>(raw, [this](void* m) { gpu_.release(m); });
    std::vector<unsigned char> guard(kGuardBytes, kSentinel);
    Tensor guard_host = Tensor::view(guard.data(), Shape{std::int64_t(kGuardBytes)}, DType::u8, Device::cpu());
    Tensor front = Tensor::view(raw, guard_host.shape(), DType::u8, gpu_.device());
    Tensor back = Tensor::view(raw + kGuardBytes + host.bytes(), guard_host.shape(), DType::u8, gpu_.device());
    gpu_.copy(guard_host, front);
    gpu_.copy(guard_host, back);
    p.gpu = Tensor::view(raw + kGuardBytes, host.shape(), DType::f32, gpu_.device());
    gpu_.copy(host, p.gpu);
    return p;
  }

  // Device result vs CPU result: guards intact, finite, within tolerance.
  void compare(const char* what, const Pair& p, double tolerance) {
    INFO(what);
    Tensor result = Tensor::zeros(p.cpu.shape());
    gpu_.copy(p.gpu, result);
    std::vector<unsigned char> guard(kGuardBytes);
    Tensor guard_host = Tensor::view(guard.data(), Shape{std::int64_t(kGuardBytes)}, DType::u8, Device::cpu());
    const char* raw = static_cast<const char*>(p.gpu.raw());
    for (const char* at : {raw - kGuardBytes, raw + p.cpu.bytes()}) {
      gpu_.copy(Tensor::view(const_cast<char*>(at), guard_host.shape(), DType::u8, gpu_.device()), guard_host);
      for (unsigned char b : guard) REQUIRE(b == kSentinel);
    }
    double worst = 0.0;
    for (std::int64_t i = 0; i < result.numel(); ++i) {
      const double g = result.f32()[i], c = p.cpu.f32()[i];
      REQUIRE(std::isfinite(g));
      const double error = std::fabs(g - c) / std::max(1.0, std::fabs(c));
      worst = std::max(worst, error);
      if (error > tolerance) {
        INFO("element " << i << " of " << p.cpu.shape().str() << ": cuda " << g << ", cpu " << c);
        REQUIRE(error <= tolerance);
      }
    }
    CHECK(worst <= tolerance);
  }

  Tensor workspace_cpu(std::size_t bytes) { return Tensor::zeros(Shape{std::int64_t(bytes) + 1}, DType::u8); }
  Pair workspace_gpu(std::size_t bytes) {
    Pair p;
    char* raw = static_cast<char*>(gpu_.allocate(bytes + 1));
    p.memory = std::shared_ptr<void>(raw, [this](void* m) { gpu_.release(m); });
    p.gpu = Tensor::view(raw, Shape{std::int64_t(bytes) + 1}, DType::u8, gpu_.device());
    return p;
  }

  CpuBackend cpu_;
  cuda::CudaBackend gpu_;
};

}  // namespace

TEST_CASE("conv2d on cuDNN equals the CPU backend", "[cuda][op]") {
  Parity t;
  const Conv2dGeometry cases[] = {
      Conv2dGeometry::make(2, 3, 6, 7, 4, 3, 3, 1, 1, 1, 1, true),
      Conv2dGeometry::make(1, 1, 96, 31, 8, 3, 3, 1, 1, 1, 1, true),    // batch 1, odd width
      Conv2dGeometry::make(3, 5, 9, 11, 6, 3, 5, 2, 1, 1, 1, false),   // stride, rectangular
      Conv2dGeometry::make(2, 4, 13, 13, 3, 3, 3, 1, 1, 2, 2, true),   // dilation
      Conv2dGeometry::make(2, 16, 17, 9, 32, 1, 1, 1, 1, 1, 1, false), // 1x1
  };
  for (const Conv2dGeometry& g : cases) {
    auto x = t.make(Shape{g.batch, g.in_channels, g.in_h, g.in_w}, 1);
    auto w = t.make(Shape{g.out_channels, g.in_channels, g.kernel_h, g.kernel_w}, 2, 0.3f);
    auto b = t.make(Shape{g.out_channels}, 3);
    auto y = t.make(Shape{g.batch, g.out_channels, g.out_h, g.out_w}, 4);
    Tensor ws_cpu = t.workspace_cpu(t.cpu_.conv2d_workspace_bytes(g));
    auto ws_gpu = t.workspace_gpu(t.gpu_.conv2d_workspace_bytes(g));
    t.cpu_.conv2d_forward(g, x.cpu, w.cpu, b.cpu, y.cpu, ws_cpu);
    t.gpu_.conv2d_forward(g, x.gpu, w.gpu, b.gpu, y.gpu, ws_gpu.gpu);
    t.compare("conv2d_forward y", y, kReduction);
    auto dy = t.make(y.cpu.shape(), 5);
    auto dx = t.make(x.cpu.shape(), 6), dw = t.make(w.cpu.shape(), 7), db = t.make(b.cpu.shape(), 8);
    t.cpu_.conv2d_backward(g, x.cpu, w.cpu, dy.cpu, dx.cpu, dw.cpu, db.cpu, ws_cpu);
    t.gpu_.conv2d_backward(g, x.gpu, w.gpu, dy.gpu, dx.gpu, dw.gpu, db.gpu, ws_gpu.gpu);
    t.compare("conv2d_backward dx", dx, kReduction);
    t.compare("conv2d_backward dw", dw, kReduction);
    t.compare("conv2d_backward dbias", db, kReduction);
  }
  covered().insert({"conv2d_forward", "conv2d_backward"});
}

TEST_CASE("batchnorm kernels equal the CPU backend", "[cuda][op]") {
  Parity t;
  for (const BatchNormGeometry g : {BatchNormGeometry{4, 3, 35, 1e-5f, 0.1f}, BatchNormGeometry{1, 7, 1000, 1e-3f, 0.01f},
                                    BatchNormGeometry{16, 96, 5, 1e-5f, 0.1f}}) {
    const Shape shape{g.outer, g.channels, g.inner}, channel{g.channels};
    auto x = t.make(shape, 10, 3.0f), gamma = t.make(channel, 11), beta = t.make(channel, 12);
    auto y = t.make(shape, 13), rm = t.make(channel, 14), rv = t.make(channel, 15, 0.5f);
    auto sm = t.make(channel, 16), si = t.make(channel, 17);
    t.cpu_.batchnorm_forward_train(g, x.cpu, gamma.cpu, beta.cpu, y.cpu, rm.cpu, rv.cpu, sm.cpu, si.cpu);
    t.gpu_.batchnorm_forward_train(g, x.gpu, gamma.gpu, beta.gpu, y.gpu, rm.gpu, rv.gpu, sm.gpu, si.gpu);
    t.compare("batchnorm_forward_train y", y, kReduction);
    t.compare("running_mean", rm, kReduction);
    t.compare("running_var", rv, kReduction);
    t.compare("saved_mean", sm, kReduction);
    t.compare("saved_invstd", si, kReduction);
    auto yi = t.make(shape, 18);
    t.cpu_.batchnorm_forward_inference(g, x.cpu, gamma.cpu, beta.cpu, rm.cpu, rv.cpu, yi.cpu);
    t.gpu_.batchnorm_forward_inference(g, x.gpu, gamma.gpu, beta.gpu, rm.gpu, rv.gpu, yi.gpu);
    t.compare("batchnorm_forward_inference y", yi, kReduction);
    auto dy = t.make(shape, 19), dx = t.make(shape, 20), dg = t.make(channel, 21), dbeta = t.make(channel, 22);
    t.cpu_.batchnorm_backward(g, x.cpu, dy.cpu, gamma.cpu, sm.cpu, si.cpu, dx.cpu, dg.cpu, dbeta.cpu);
    t.gpu_.batchnorm_backward(g, x.gpu, dy.gpu, gamma.gpu, sm.gpu, si.gpu, dx.gpu, dg.gpu, dbeta.gpu);
    t.compare("batchnorm_backward dx", dx, kReduction);
    t.compare("batchnorm_backward dgamma", dg, kReduction);
    t.compare("batchnorm_backward dbeta", dbeta, kReduction);
  }
  covered().insert({"batchnorm_forward_train", "batchnorm_forward_inference", "batchnorm_backward"});
}

TEST_CASE("elementwise kernels equal the CPU backend", "[cuda][op]") {
  Parity t;
  const Shape shape{3, 5, 7, 11};
  for (Activation kind : {Activation::relu, Activation::elu}) {
    auto x = t.make(shape, 30, 4.0f), y = t.make(shape, 31), dy = t.make(shape, 32), dx = t.make(shape, 33);
    t.cpu_.activation_forward(kind, 0.8f, x.cpu, y.cpu);
    t.gpu_.activation_forward(kind, 0.8f, x.gpu, y.gpu);
    t.compare("activation_forward", y, kElementwise);
    t.cpu_.activation_backward(kind, 0.8f, x.cpu, y.cpu, dy.cpu, dx.cpu);
    t.gpu_.activation_backward(kind, 0.8f, x.gpu, y.gpu, dy.gpu, dx.gpu);
    t.compare("activation_backward", dx, kElementwise);
  }
  auto x = t.make(shape, 34), y = t.make(shape, 35), dx = t.make(shape, 36);
  t.cpu_.dropout_forward(0.3f, 99, x.cpu, y.cpu);
  t.gpu_.dropout_forward(0.3f, 99, x.gpu, y.gpu);
  t.compare("dropout_forward", y, 0.0);  // the same hash, the same mask: exact
  t.cpu_.dropout_backward(0.3f, 99, x.cpu, dx.cpu);
  t.gpu_.dropout_backward(0.3f, 99, x.gpu, dx.gpu);
  t.compare("dropout_backward", dx, 0.0);

  for (auto [outer, inner] : {std::pair{15, 77}, std::pair{1, 5000}, std::pair{64, 1}}) {
    auto px = t.make(Shape{outer, inner}, 37), py = t.make(Shape{outer}, 38);
    t.cpu_.mean_pool_forward(outer, inner, px.cpu, py.cpu);
    t.gpu_.mean_pool_forward(outer, inner, px.gpu, py.gpu);
    t.compare("mean_pool_forward", py, kReduction);
    auto pdx = t.make(Shape{outer, inner}, 39);
    t.cpu_.mean_pool_backward(outer, inner, py.cpu, pdx.cpu);
    t.gpu_.mean_pool_backward(outer, inner, py.gpu, pdx.gpu);
    t.compare("mean_pool_backward", pdx, kElementwise);
  }
  covered().insert({"activation_forward", "activation_backward", "dropout_forward",
                    "dropout_backward", "mean_pool_forward", "mean_pool_backward"});
}

TEST_CASE("max pooling kernels equal the CPU backend", "[cuda][op]") {
  Parity t;
  for (auto [wh, ww, sh, sw] : {std::array<int, 4>{2, 2, 2, 2}, {3, 3, 2, 2}, {4, 1, 4, 1}, {3, 2, 1, 1}}) {
    const auto g = Pool2dGeometry::make(2, 3, 13, 10, wh, ww, sh, sw);
    // Distinct values, so that "the first maximum" is the same element on both sides.
    Tensor host = Tensor::zeros(Shape{2, 3, 13, 10});
    std::vector<int> order(host.numel());
    std::iota(order.begin(), order.end(), 0);
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[uniform_index(3, 0, i, i)]);
    for (std::int64_t i = 0; i < host.numel(); ++i) host.f32()[i] = 0.01f * order[i];
    auto x = t.upload(host);
    auto y = t.make(Shape{2, 3, g.out_h, g.out_w}, 40), dx = t.make(host.shape(), 41);
    t.cpu_.maxpool2d_forward(g, x.cpu, y.cpu);
    t.gpu_.maxpool2d_forward(g, x.gpu, y.gpu);
    t.compare("maxpool2d_forward", y, 0.0);
    auto dy = t.make(y.cpu.shape(), 42);
    t.cpu_.maxpool2d_backward(g, x.cpu, dy.cpu, dx.cpu);
    t.gpu_.maxpool2d_backward(g, x.gpu, dy.gpu, dx.gpu);
    t.compare("maxpool2d_backward", dx, kElementwise);
  }
  covered().insert({"maxpool2d_forward", "maxpool2d_backward"});
}

TEST_CASE("dense on cuBLAS equals the CPU backend", "[cuda][op]") {
  Parity t;
  for (const DenseGeometry g : {DenseGeometry{16, 64, 10}, DenseGeometry{1, 7, 3}, DenseGeometry{5, 1000, 50}}) {
    auto x = t.make(Shape{g.batch, g.in_features}, 50), w = t.make(Shape{g.out_features, g.in_features}, 51, 0.2f);
    auto b = t.make(Shape{g.out_features}, 52), y = t.make(Shape{g.batch, g.out_features}, 53);
    t.cpu_.dense_forward(g, x.cpu, w.cpu, b.cpu, y.cpu);
    t.gpu_.dense_forward(g, x.gpu, w.gpu, b.gpu, y.gpu);
    t.compare("dense_forward", y, kReduction);
    auto dy = t.make(y.cpu.shape(), 54), dx = t.make(x.cpu.shape(), 55);
    auto dw = t.make(w.cpu.shape(), 56), db = t.make(b.cpu.shape(), 57);
    t.cpu_.dense_backward(g, x.cpu, w.cpu, dy.cpu, dx.cpu, dw.cpu, db.cpu);
    t.gpu_.dense_backward(g, x.gpu, w.gpu, dy.gpu, dx.gpu, dw.gpu, db.gpu);
    t.compare("dense_backward dx", dx, kReduction);
    t.compare("dense_backward dw", dw, kReduction);
    t.compare("dense_backward dbias", db, kReduction);
  }
  covered().insert({"dense_forward", "dense_backward"});
}

TEST_CASE("losses and optimizers equal the CPU backend", "[cuda][op]") {
  Parity t;
  for (auto [rows, k] : {std::pair{16, 10}, std::pair{1, 2}, std::pair{33, 50}}) {
    auto logits = t.make(Shape{rows, k}, 60, 8.0f);
    Tensor one_hot = Tensor::zeros(Shape{rows, k});
    for (int r = 0; r < rows; ++r) one_hot.f32()[r * k + (r * 7) % k] = 1.0f;
    auto targets = t.upload(one_hot);
    auto loss = t.make(Shape{rows}, 61), grad = t.make(Shape{rows, k}, 62);
    t.cpu_.softmax_cross_entropy(logits.cpu, targets.cpu, 0.1f, loss.cpu, grad.cpu, 0.25f);
    t.gpu_.softmax_cross_entropy(logits.gpu, targets.gpu, 0.1f, loss.gpu, grad.gpu, 0.25f);
    t.compare("softmax_cross_entropy loss", loss, kElementwise);
    t.compare("softmax_cross_entropy dlogits", grad, kElementwise);
    t.cpu_.sigmoid_bce(logits.cpu, targets.cpu, loss.cpu, grad.cpu, 0.25f);
    t.gpu_.sigmoid_bce(logits.gpu, targets.gpu, loss.gpu, grad.gpu, 0.25f);
    t.compare("sigmoid_bce loss", loss, kElementwise);
    t.compare("sigmoid_bce dlogits", grad, kElementwise);
  }
  const Shape flat{100003};  // not a multiple of any block size
  auto p = t.make(flat, 70), g = t.make(flat, 71), m = t.make(flat, 72, 0.1f), v = t.make(flat, 73, 0.01f);
  Tensor v_host = Tensor::zeros(flat);  // second moments are non-negative
  for (std::int64_t i = 0; i < flat.numel(); ++i) v_host.f32()[i] = std::fabs(v.cpu.f32()[i]);
  v = t.upload(v_host);
  AdamHyper adam;
  adam.weight_decay = 0.01f;
  adam.decoupled_weight_decay = true;
  for (std::int64_t step = 1; step <= 3; ++step) {
    t.cpu_.adam_step(adam, step, p.cpu, g.cpu, m.cpu, v.cpu);
    t.gpu_.adam_step(adam, step, p.gpu, g.gpu, m.gpu, v.gpu);
  }
  t.compare("adam params", p, kElementwise);
  t.compare("adam m", m, kElementwise);
  t.compare("adam v", v, kElementwise);
  SgdHyper sgd;
  sgd.momentum = 0.9f;
  sgd.nesterov = true;
  sgd.weight_decay = 1e-4f;
  for (std::int64_t step = 1; step <= 3; ++step) {
    t.cpu_.sgd_step(sgd, step, p.cpu, g.cpu, m.cpu);
    t.gpu_.sgd_step(sgd, step, p.gpu, g.gpu, m.gpu);
  }
  t.compare("sgd params", p, kElementwise);
  t.compare("sgd momentum", m, kElementwise);
  covered().insert({"softmax_cross_entropy", "sigmoid_bce", "adam_step", "sgd_step"});
}

TEST_CASE("the front-end on cuFFT equals the CPU front-end", "[cuda][op]") {
  Parity t;
  struct Case {
    const char* name;
    FrontendSpec spec;
    int sample_rate, samples, batch;
  };
  FrontendSpec won;  // torchaudio defaults, Won et al.
  FrontendSpec librosa;
  librosa.n_fft = 1024;
  librosa.hop_length = 512;
  librosa.n_mels = 128;
  librosa.mel_scale = "slaney";
  librosa.mel_norm = "slaney";
  librosa.mel_filterbank = "librosa";
  librosa.pad_mode = "constant";
  librosa.top_db = 80;
  FrontendSpec stft;
  stft.type = "stft";
  stft.power = 1.0;
  stft.win_length = 400;
  stft.center = false;
  FrontendSpec log1p = won;
  log1p.log = "log1p";
  for (const Case& c : {Case{"won", won, 16000, 16000, 3}, Case{"librosa", librosa, 22050, 22050, 2},
                        Case{"stft", stft, 16000, 8000, 1}, Case{"log1p", log1p, 16000, 12345, 2}}) {
    INFO(c.name);
    auto cpu_frontend = t.cpu_.make_frontend(c.spec, c.sample_rate, c.samples, c.batch);
    auto gpu_frontend = t.gpu_.make_frontend(c.spec, c.sample_rate, c.samples, c.batch);
    REQUIRE(gpu_frontend->num_bins() == cpu_frontend->num_bins());
    REQUIRE(gpu_frontend->num_frames() == cpu_frontend->num_frames());
    Tensor pcm_host = Tensor::zeros(Shape{c.batch, c.samples});
    for (std::int64_t i = 0; i < pcm_host.numel(); ++i)  // tones plus noise, with silence at the start
      pcm_host.f32()[i] = (i % c.samples) < 500 ? 0.0f
                          : 0.5f * std::sin(0.05f * float(i % c.samples)) +
                                0.1f * (uniform01(8, 0, std::uint64_t(i)) - 0.5f);
    auto pcm = t.upload(pcm_host);
    auto features = t.make(Shape{c.batch, 1, cpu_frontend->num_bins(), cpu_frontend->num_frames()}, 80);
    cpu_frontend->compute(pcm.cpu, features.cpu);
    gpu_frontend->compute(pcm.gpu, features.gpu);
    t.compare("frontend", features, kFrontend);
  }
  covered().insert("frontend");
}

TEST_CASE("every backend op has a parity case", "[cuda][op]") {
  for (const char* op : kBackendOps) {
    INFO(op);
    CHECK(covered().count(op) == 1);
  }
}
