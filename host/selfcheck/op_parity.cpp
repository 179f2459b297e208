// run_op_parity: the table of op cases; see op_parity.hpp.
#include "host/selfcheck/op_parity.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>
#include <vector>

#include "host/core/error.hpp"
#include "host/math/metric_math.hpp"
#include "host/math/random_math.hpp"

namespace cadenza {
namespace {

// Tolerances, relative to max(1, |reference|).
// Elementwise math through the shared functions: a few ulps of expf/logf, and nvcc's
// fused multiply-adds where the host rounds twice.
constexpr double kElementwise = 1e-5;
// Sums of many terms in another order (GEMMs, convolutions, reductions): float rounding
// grows with the square root of the terms; 2e-4 covers ~10^4-term sums of O(1) values.
constexpr double kReduction = 2e-4;
// Recurrent layers: each step's projections are kReduction-like sums, and a step's
// difference reaches the next through the recurrence; with weights in +-1/sqrt(H) the cells
// contract it (sigmoid' <= 1/4, tanh' <= 1), so over T steps differences add up rather than
// grow, and backward sums T steps' terms into each weight gradient. Estimated, not yet
// measured on a GPU (cuDNN's RNN path has not run here).
constexpr double kRecurrent = 5e-4;
// The front-end: two FFT libraries (FFTW, cuFFT) round differently before a logarithm;
// in dB, 1e-3 relative is 0.01 dB at 10 dB.
constexpr double kFrontend = 1e-3;
// Exact: the same integer hash decides dropout masks; max pooling selects, never sums.
constexpr double kExact = 0.0;
// Augmentation: decisions, shifts and mask spans come from the same integer hashes (exact),
// but the noise is normal()'s float logf/cosf/sqrtf (host libm and CUDA differ in the last
// bits), the gain 10^(g/20) and sigma are double pow() rounded once to float, the row RMS
// and the mask mean are double sums in another order (at most one float ulp after
// rounding), and nvcc may fuse value + sigma * noise into an FMA: a few float ulps, as
// kElementwise. Cases without noise (no normal(), no RMS) are held to kExact or to one
// ulp of the gain.
constexpr double kAugment = kElementwise;

// Per-tag metrics: counts and ROC-AUC are exact (integer and half-integer sums in double);
// average precision is a double sum of ratios, added per tie group on the CPU and per
// example on the GPU, then rounded to float: at most a float ulp or two.
constexpr double kTagMetrics = 1e-6;

// train.precision bf16 convolutions against the CPU's fp32, relative to the tensor's
// largest value (ErrorScale::tensor): inputs, weights and output gradients rounded to bf16
// (8 significant bits: unit roundoff 2^-8), fp32 sums, and results (the weight gradient
// too) rounded to bf16 before widening. tools/tolerances/conv_rounding.py emulates that
// rounding on these cases' geometries (sums of up to ~3000 terms): at most 5.9e-3 over 100
// trials of each; 2e-2 leaves over 3x, near PyTorch's own bf16 convolution tests (rtol
// 1.6e-2).
constexpr double kBf16Convolution = 2e-2;

// train.precision tf32 (and the GEMMs of bf16, which run as tf32), relative to the tensor's
// largest value: convolution, dense and filterbank inputs rounded to tf32 (11 significant
// bits: unit roundoff 2^-11, an eighth of bf16's), fp32 sums. The same emulation gives at
// most 5.7e-4 for the convolutions; 5e-3 is the tolerance of PyTorch's own tf32 tests
// (tf32_on_and_off(0.005)).
constexpr double kTf32 = 5e-3;
// Recurrent layers at tf32: kTf32-sized differences in each step's projections, carried
// through the recurrence as kRecurrent explains. Estimated, not yet measured on a GPU.
constexpr double kTf32Recurrent = 1e-2;

constexpr std::size_t kGuardBytes = 256;
constexpr unsigned char kSentinel = 0xA5;

// One backend's copy of an argument, with guard bytes on both sides.
struct Guarded {
  Tensor tensor;
  std::shared_ptr<void> memory;
};

// An argument on both backends.
struct Pair {
  Guarded ref, cand;
};

class ParityRun {
 public:
  ParityRun(Backend& reference, Backend& candidate) : ref_(reference), cand_(candidate) {}

  Pair make(const Shape& shape, std::uint64_t seed, float scale = 1.0f) {
    Tensor host = Tensor::zeros(shape);
    for (std::int64_t i = 0; i < host.numel(); ++i)
      host.f32()[i] = scale * (2.0f * uniform01(seed, 17, std::uint64_t(i)) - 1.0f);
    return upload(host);
  }

  // Uniform in [low, high): for arguments that must be positive (variances).
  Pair make_in(const Shape& shape, std::uint64_t seed, float low, float high) {
    Tensor host = Tensor::zeros(shape);
    for (std::int64_t i = 0; i < host.numel(); ++i)
      host.f32()[i] = low + (high - low) * uniform01(seed, 18, std::uint64_t(i));
    return upload(host);
  }

  Pair upload(const Tensor& host) { return {guarded(ref_, host), guarded(cand_, host)}; }

  // `values` as a StepValues tensor on each backend: (reference, candidate).
  std::pair<Tensor, Tensor> step_values(const StepValues& values) {
    const Tensor host = step_values_tensor(values);
    auto make_one = [&](Backend& b) {
      void* raw = b.allocate(host.bytes());
      keep_.push_back(std::shared_ptr<void>(raw, [&b](void* m) { b.release(m); }));
      Tensor t = Tensor::view(raw, host.shape(), DType::u8, b.device());
      b.copy(host, t);
      return t;
    };
    return {make_one(ref_), make_one(cand_)};
  }

  // A workspace (or reserve) of the bytes each backend asks for, between guard bytes, its
  // inside filled with 0xFF (NaN as floats), so that an op reading its scratch before
  // writing it shows in its results; check_workspaces() reports the guards.
  std::pair<Tensor, Tensor> workspaces(std::size_t ref_bytes, std::size_t cand_bytes, const std::string& op,
                                       const std::string& shape_case) {
    auto make_one = [&](Backend& b, std::size_t bytes) {
      std::vector<unsigned char> nan_bytes(std::max<std::size_t>(bytes, 1), 0xFF);
      const Guarded g = guarded(b, Tensor::view(nan_bytes.data(), Shape{std::int64_t(nan_bytes.size())}, DType::u8,
                                                Device::cpu()));
      workspaces_.push_back({op, shape_case, &b, g});
      return g.tensor;
    };
    return {make_one(ref_, ref_bytes), make_one(cand_, cand_bytes)};
  }

  // One result per workspace: whether its guard bytes survived every op that used it.
  void check_workspaces() {
    for (const Workspace& w : workspaces_) {
      ParityResult r{w.op, "workspace guards", w.shape_case, 0.0, 0.0, true, true};
      download(*w.backend, w.guarded, r.guards_intact);
      results_.push_back(r);
    }
    workspaces_.clear();
  }

  // The reference's values of `p`, on both backends: for a backward that must see the
  // same forward output on both sides (a fused ReLU's mask, where values near 0 may differ
  // in sign by rounding).
  Pair reference_values(const Pair& p) { return upload(host_copy(p, 1.0f)); }

  // The reference's values of `p` times `factor`, on the host.
  Tensor host_copy(const Pair& p, float factor) {
    Tensor host = Tensor::zeros(p.ref.tensor.shape());
    ref_.copy(p.ref.tensor, host);
    if (factor != 1.0f)
      for (std::int64_t i = 0; i < host.numel(); ++i) host.f32()[i] *= factor;
    return host;
  }

  void compare(const std::string& op, const std::string& output, const std::string& shape_case,
               const Pair& p, double tolerance, ErrorScale scale = ErrorScale::element,
               NanRule nan = NanRule::never) {
    ParityResult r{op, output, shape_case, 0.0, tolerance, true, true};
    const Tensor reference = download(ref_, p.ref, r.guards_intact);
    const Tensor candidate = download(cand_, p.cand, r.guards_intact);
    const ValueComparison values = compare_values(reference.f32(), candidate.f32(), reference.numel(), scale, nan);
    r.max_error = values.max_error;
    r.finite = values.finite;
    results_.push_back(r);
  }

  Backend& ref() { return ref_; }
  Backend& cand() { return cand_; }
  std::vector<ParityResult>& results() { return results_; }

 private:
  struct Workspace {
    std::string op, shape_case;
    Backend* backend;
    Guarded guarded;
  };

  // `host`'s bytes on `b` between guards, viewed with `host`'s shape and dtype.
  Guarded guarded(Backend& b, const Tensor& host) {
    const std::size_t bytes = host.bytes() + 2 * kGuardBytes;
    char* raw = static_cast<char*>(b.allocate(bytes));
    Guarded g;
    g.memory = std::shared_ptr<void>(raw, [&b](void* m) { b.release(m); });
    std::vector<unsigned char> sentinel(kGuardBytes, kSentinel);
    Tensor sentinel_host = Tensor::view(sentinel.data(), Shape{std::int64_t(kGuardBytes)}, DType::u8, Device::cpu());
    for (char* at : {raw, raw + kGuardBytes + host.bytes()}) {
      Tensor guard = Tensor::view(at, sentinel_host.shape(), DType::u8, b.device());
      b.copy(sentinel_host, guard);
    }
    g.tensor = Tensor::view(raw + kGuardBytes, host.shape(), host.dtype(), b.device());
    b.copy(host, g.tensor);
    return g;
  }

  // The values on the host (f32 tensors; others are not read back); clears `guards_intact`
  // when a guard byte changed.
  Tensor download(Backend& b, const Guarded& g, bool& guards_intact) {
    Tensor host = Tensor::zeros(g.tensor.dtype() == DType::f32 ? g.tensor.shape() : Shape{0});
    if (g.tensor.dtype() == DType::f32) b.copy(g.tensor, host);
    std::vector<unsigned char> bytes(kGuardBytes);
    Tensor bytes_host = Tensor::view(bytes.data(), Shape{std::int64_t(kGuardBytes)}, DType::u8, Device::cpu());
    char* raw = static_cast<char*>(g.tensor.raw());
    for (char* at : {raw - kGuardBytes, raw + g.tensor.bytes()}) {
      b.copy(Tensor::view(at, bytes_host.shape(), DType::u8, b.device()), bytes_host);
      guards_intact &= std::all_of(bytes.begin(), bytes.end(), [](unsigned char v) { return v == kSentinel; });
    }
    return host;
  }

  Backend& ref_;
  Backend& cand_;
  std::vector<std::shared_ptr<void>> keep_;
  std::vector<Workspace> workspaces_;
  std::vector<ParityResult> results_;
};

// fp32 results are judged element by element; tf32 and bf16 ones against the tensor's
// largest value (ErrorScale in op_parity.hpp).
ErrorScale scale_for(Precision precision) {
  return precision == Precision::fp32 ? ErrorScale::element : ErrorScale::tensor;
}

// How a case's name says the candidate's precision ("" at fp32).
const char* precision_suffix(Precision precision) {
  return precision == Precision::tf32 ? ", tf32" : precision == Precision::bf16 ? ", bf16" : "";
}

// The convolution cases at the candidate's `precision` (the reference computes fp32).
void conv2d_cases(ParityRun& t, Precision precision, double tolerance) {
  struct Case {
    Conv2dGeometry g;
    bool bias = true, dx = true;  // false: the op gets an undefined tensor (a layer without bias; a first layer)
  };
  auto with_relu = [](Conv2dGeometry g) {
    g.relu = true;
    return g;
  };
  const Case cases[] = {
      {Conv2dGeometry::make(2, 3, 6, 7, 4, 3, 3, 1, 1, 1, 1, true)},
      {Conv2dGeometry::make(1, 1, 96, 31, 8, 3, 3, 1, 1, 1, 1, true)},    // batch 1, odd width
      {Conv2dGeometry::make(3, 5, 9, 11, 6, 3, 5, 2, 1, 1, 1, false)},   // stride, rectangular
      {Conv2dGeometry::make(2, 4, 13, 13, 3, 3, 3, 1, 1, 2, 2, true)},   // dilation
      {Conv2dGeometry::make(2, 16, 17, 9, 32, 1, 1, 1, 1, 1, 1, false)}, // 1x1
      {Conv2dGeometry::make(2, 2, 10, 9, 3, 4, 4, 1, 1, 1, 1, true)},    // even kernel: uneven padding
      {Conv2dGeometry::make(1, 3, 11, 8, 2, 2, 4, 2, 3, 1, 1, true)},    // uneven padding, strided
      // Pairs that differ only in their bottom/right padding, one after the other: the
      // second must not run the first's cached plan.
      {Conv2dGeometry::make(2, 3, 8, 8, 4, 2, 2, 1, 1, 1, 1, false)},
      {Conv2dGeometry::make(2, 3, 8, 8, 4, 2, 2, 1, 1, 1, 1, true)},
      {Conv2dGeometry::make(2, 3, 8, 8, 4, 3, 3, 2, 2, 1, 1, false)},
      {Conv2dGeometry::make(2, 3, 8, 8, 4, 3, 3, 2, 2, 1, 1, true)},
      {with_relu(Conv2dGeometry::make(1, 1, 96, 31, 8, 3, 3, 1, 1, 1, 1, true))},
      // A first layer: no input gradient; and no bias, with and without a fused ReLU.
      {Conv2dGeometry::make(2, 1, 12, 10, 4, 3, 3, 1, 1, 1, 1, true), false, false},
      {with_relu(Conv2dGeometry::make(2, 1, 12, 10, 4, 3, 3, 1, 1, 1, 1, true)), false, false},
      {Conv2dGeometry::make(2, 2, 10, 9, 3, 4, 4, 1, 1, 1, 1, true), true, false},
  };
  for (const Case& c : cases) {
    const Conv2dGeometry& g = c.g;
    std::ostringstream name;
    name << g.str() << (g.relu ? ", fused relu" : "") << (c.bias ? "" : ", no bias") << (c.dx ? "" : ", no dx")
         << precision_suffix(precision);
    auto x = t.make(Shape{g.batch, g.in_channels, g.in_h, g.in_w}, 1);
    auto w = t.make(Shape{g.out_channels, g.in_channels, g.kernel_h, g.kernel_w}, 2, 0.3f);
    auto b = t.make(Shape{g.out_channels}, 3);
    auto y = t.make(Shape{g.batch, g.out_channels, g.out_h, g.out_w}, 4);
    Tensor absent;  // an argument the case leaves out
    auto [ws_ref, ws_cand] = t.workspaces(t.ref().conv2d_workspace_bytes(g), t.cand().conv2d_workspace_bytes(g),
                                          "conv2d_backward", name.str());
    t.ref().conv2d_forward(g, x.ref.tensor, w.ref.tensor, c.bias ? b.ref.tensor : absent, y.ref.tensor, ws_ref);
    t.cand().conv2d_forward(g, x.cand.tensor, w.cand.tensor, c.bias ? b.cand.tensor : absent, y.cand.tensor,
                            ws_cand);
    t.compare("conv2d_forward", "y", name.str(), y, tolerance, scale_for(precision));
    // Backward at the reference's y on both sides, so that a fused ReLU masks the same
    // elements (y near 0 may differ in sign by rounding).
    const Pair y_ref = t.reference_values(y);
    auto dy = t.make(y.ref.tensor.shape(), 5), dx = t.make(x.ref.tensor.shape(), 6);
    auto dw = t.make(w.ref.tensor.shape(), 7), db = t.make(b.ref.tensor.shape(), 8);
    t.ref().conv2d_backward(g, x.ref.tensor, w.ref.tensor, y_ref.ref.tensor, dy.ref.tensor,
                            c.dx ? dx.ref.tensor : absent, dw.ref.tensor, c.bias ? db.ref.tensor : absent, ws_ref);
    t.cand().conv2d_backward(g, x.cand.tensor, w.cand.tensor, y_ref.cand.tensor, dy.cand.tensor,
                             c.dx ? dx.cand.tensor : absent, dw.cand.tensor, c.bias ? db.cand.tensor : absent,
                             ws_cand);
    t.compare("conv2d_backward", "dx", name.str(), dx, tolerance, scale_for(precision));  // untouched when absent: equal
    t.compare("conv2d_backward", "dw", name.str(), dw, tolerance, scale_for(precision));
    t.compare("conv2d_backward", "dbias", name.str(), db, kReduction);  // summed from the fp32 dy
  }
}

void batchnorm_cases(ParityRun& t) {
  struct Case {
    BatchNormGeometry g;
    bool dx = true;  // false: batchnorm_backward gets no dx (the model's input normalisation)
  };
  for (const Case& c : {Case{{4, 3, 35, 1e-5f, 0.1f}},
                        Case{{1, 7, 1000, 1e-3f, 0.01f}},
                        Case{{16, 96, 5, 1e-5f, 0.1f}},
                        Case{{4, 3, 35, 1e-5f, 0.1f, true}},
                        // channels of 32768 values: the CUDA kernels split each over 32 blocks
                        Case{{8, 2, 4096, 1e-5f, 0.1f, true}},
                        // more channels than the CUDA grid's ~1024 blocks: one block per channel
                        Case{{2, 1100, 3, 1e-5f, 0.1f}},
                        // one channel of 1.2M values: the CUDA split is capped at 1024 slices
                        Case{{2, 1, 600000, 1e-5f, 0.1f}},
                        Case{{4, 3, 35, 1e-5f, 0.1f}, false}}) {
    const BatchNormGeometry& g = c.g;
    const Shape shape{g.outer, g.channels, g.inner}, channel{g.channels};
    const std::string name = "x " + shape.str() + (g.relu ? ", fused relu" : "") + (c.dx ? "" : ", no dx");
    auto x = t.make(shape, 10, 3.0f), gamma = t.make(channel, 11), beta = t.make(channel, 12);
    auto y = t.make(shape, 13), rm = t.make(channel, 14), rv = t.make_in(channel, 15, 0.5f, 2.0f);
    auto sm = t.make(channel, 16), si = t.make(channel, 17);
    auto run_train = [&](Backend& b, bool ref) {
      auto pick = [ref](Pair& p) -> Tensor& { return ref ? p.ref.tensor : p.cand.tensor; };
      b.batchnorm_forward_train(g, pick(x), pick(gamma), pick(beta), pick(y), pick(rm), pick(rv), pick(sm),
                                pick(si));
    };
    run_train(t.ref(), true);
    run_train(t.cand(), false);
    for (auto [output, pair] : {std::pair<const char*, Pair*>{"y", &y}, {"running_mean", &rm},
                                {"running_var", &rv}, {"saved_mean", &sm}, {"saved_invstd", &si}})
      t.compare("batchnorm_forward_train", output, name, *pair, kReduction);
    auto yi = t.make(shape, 18);
    t.ref().batchnorm_forward_inference(g, x.ref.tensor, gamma.ref.tensor, beta.ref.tensor, rm.ref.tensor,
                                        rv.ref.tensor, yi.ref.tensor);
    t.cand().batchnorm_forward_inference(g, x.cand.tensor, gamma.cand.tensor, beta.cand.tensor,
                                         rm.cand.tensor, rv.cand.tensor, yi.cand.tensor);
    t.compare("batchnorm_forward_inference", "y", name, yi, kReduction);
    auto dy = t.make(shape, 19), dx = t.make(shape, 20), dg = t.make(channel, 21), dbeta = t.make(channel, 22);
    Tensor no_dx;
    const Pair y_both = t.reference_values(y);  // one fused ReLU mask on both sides
    t.ref().batchnorm_backward(g, x.ref.tensor, y_both.ref.tensor, dy.ref.tensor, gamma.ref.tensor, sm.ref.tensor,
                               si.ref.tensor, c.dx ? dx.ref.tensor : no_dx, dg.ref.tensor, dbeta.ref.tensor);
    t.cand().batchnorm_backward(g, x.cand.tensor, y_both.cand.tensor, dy.cand.tensor, gamma.cand.tensor,
                                sm.cand.tensor, si.cand.tensor, c.dx ? dx.cand.tensor : no_dx, dg.cand.tensor,
                                dbeta.cand.tensor);
    t.compare("batchnorm_backward", "dx", name, dx, kReduction);
    t.compare("batchnorm_backward", "dgamma", name, dg, kReduction);
    t.compare("batchnorm_backward", "dbeta", name, dbeta, kReduction);

    // The split ops of synchronised batchnorm, as one of two ranks sees them: its own sums,
    // then statistics and gradients from sums over a count twice its own (the sums passed
    // on are the reference's own sums doubled, as an all-reduce of two equal ranks gives).
    const double count = 2.0 * double(g.outer) * g.inner;
    auto doubled = [&](const Pair& p) { return t.upload(t.host_copy(p, 2.0f)); };
    auto sums = t.make(channel, 23), squares = t.make(channel, 24);
    Tensor undefined;
    t.ref().batchnorm_sums(g, x.ref.tensor, undefined, count, sums.ref.tensor);
    t.cand().batchnorm_sums(g, x.cand.tensor, undefined, count, sums.cand.tensor);
    t.compare("batchnorm_sums", "sum x", name, sums, kReduction);
    const Pair global_sums = doubled(sums);
    t.ref().batchnorm_sums(g, x.ref.tensor, global_sums.ref.tensor, count, squares.ref.tensor);
    t.cand().batchnorm_sums(g, x.cand.tensor, global_sums.cand.tensor, count, squares.cand.tensor);
    t.compare("batchnorm_sums", "sum (x - mean)^2", name, squares, kReduction);
    const Pair global_squares = doubled(squares);
    auto ys = t.make(shape, 25), rms = t.make(channel, 26), rvs = t.make_in(channel, 27, 0.5f, 2.0f);
    auto sms = t.make(channel, 28), sis = t.make(channel, 29);
    auto run_from_sums = [&](Backend& b, bool ref) {
      auto pick = [ref](const Pair& p) -> Tensor { return ref ? p.ref.tensor : p.cand.tensor; };
      Tensor y_out = pick(ys), rm_out = pick(rms), rv_out = pick(rvs), sm_out = pick(sms), si_out = pick(sis);
      b.batchnorm_forward_from_sums(g, pick(x), pick(gamma), pick(beta), pick(global_sums), pick(global_squares),
                                    count, y_out, rm_out, rv_out, sm_out, si_out);
    };
    run_from_sums(t.ref(), true);
    run_from_sums(t.cand(), false);
    for (auto [output, pair] : {std::pair<const char*, Pair*>{"y", &ys}, {"running_mean", &rms},
                                {"running_var", &rvs}, {"saved_mean", &sms}, {"saved_invstd", &sis}})
      t.compare("batchnorm_forward_from_sums", output, name, *pair, kReduction);
    auto grad_sums = t.make(Shape{2, g.channels}, 30), dgs = t.make(channel, 31), dbs = t.make(channel, 32);
    const Pair ys_both = t.reference_values(ys);
    t.ref().batchnorm_backward_sums(g, x.ref.tensor, ys_both.ref.tensor, dy.ref.tensor, sms.ref.tensor, sis.ref.tensor,
                                    grad_sums.ref.tensor, dgs.ref.tensor, dbs.ref.tensor);
    t.cand().batchnorm_backward_sums(g, x.cand.tensor, ys_both.cand.tensor, dy.cand.tensor, sms.cand.tensor, sis.cand.tensor,
                                     grad_sums.cand.tensor, dgs.cand.tensor, dbs.cand.tensor);
    t.compare("batchnorm_backward_sums", "sums", name, grad_sums, kReduction);
    t.compare("batchnorm_backward_sums", "dgamma", name, dgs, kReduction);
    t.compare("batchnorm_backward_sums", "dbeta", name, dbs, kReduction);
    const Pair global_grad_sums = doubled(grad_sums);
    auto dxs = t.make(shape, 33);
    t.ref().batchnorm_backward_from_sums(g, x.ref.tensor, ys_both.ref.tensor, dy.ref.tensor, gamma.ref.tensor, sms.ref.tensor,
                                         sis.ref.tensor, global_grad_sums.ref.tensor, count, dxs.ref.tensor);
    t.cand().batchnorm_backward_from_sums(g, x.cand.tensor, ys_both.cand.tensor, dy.cand.tensor, gamma.cand.tensor, sms.cand.tensor,
                                          sis.cand.tensor, global_grad_sums.cand.tensor, count, dxs.cand.tensor);
    t.compare("batchnorm_backward_from_sums", "dx", name, dxs, kReduction);
  }
}

// Per activation: relu and leaky_relu are a comparison and at most one multiply, correctly
// rounded on both sides and with nothing for nvcc to fuse, so they match exactly. elu
// (expm1f), sigmoid (expf) and tanh (tanhf) go through functions whose CUDA and glibc
// versions differ in the last ulps, and nvcc may fuse tanh's 1 - y*y into an FMA: a few
// ulps of values of magnitude at most max(1, |x|, |dy|), so kElementwise.
double activation_tolerance(Activation kind) {
  return kind == Activation::relu || kind == Activation::leaky_relu ? kExact : kElementwise;
}

void elementwise_cases(ParityRun& t) {
  const Shape shape{3, 5, 7, 11};
  // Inputs uniform in (-4, 4) on a batch of 3, then in (-30, 30) on batch 1 with an odd
  // element count (a partial last block): the wide range reaches sigmoid's and tanh's
  // saturation, where both sides must give exactly 0 or 1 and no NaN.
  for (auto [activation_shape, scale] : {std::pair{shape, 4.0f}, std::pair{Shape{1, 3, 17, 61}, 30.0f}}) {
    for (Activation kind : {Activation::relu, Activation::elu, Activation::leaky_relu,
                            Activation::sigmoid, Activation::tanh}) {
      const std::string name = std::string(activation_name(kind)) + " x " + activation_shape.str();
      const double tolerance = activation_tolerance(kind);
      auto x = t.make(activation_shape, 30, scale), y = t.make(activation_shape, 31);
      auto dy = t.make(activation_shape, 32), dx = t.make(activation_shape, 33);
      t.ref().activation_forward(kind, 0.8f, x.ref.tensor, y.ref.tensor);
      t.cand().activation_forward(kind, 0.8f, x.cand.tensor, y.cand.tensor);
      t.compare("activation_forward", "y", name, y, tolerance);
      t.ref().activation_backward(kind, 0.8f, x.ref.tensor, y.ref.tensor, dy.ref.tensor, dx.ref.tensor);
      t.cand().activation_backward(kind, 0.8f, x.cand.tensor, y.cand.tensor, dy.cand.tensor, dx.cand.tensor);
      t.compare("activation_backward", "dx", name, dx, tolerance);
    }
  }
  {
    // power_to_db reads powers: log-uniform over 1e-12 .. 1e3, so some lie below amin (1e-10:
    // clamped, gradient 0) and the gradient 10 / (x ln 10) spans 4e-3 .. 4e12. log10f and the
    // division may differ by a few ulps on the device: kElementwise, relative to |reference|.
    const Shape powers_shape{2, 3, 17, 29};
    Tensor powers = Tensor::zeros(powers_shape);
    for (std::int64_t i = 0; i < powers.numel(); ++i)
      powers.f32()[i] = std::pow(10.0f, -12.0f + 15.0f * uniform01(120, 19, std::uint64_t(i)));
    const std::string name = "power_to_db x " + powers_shape.str() + ", 1e-12 .. 1e3";
    auto x = t.upload(powers), y = t.make(powers_shape, 31);
    auto dy = t.make(powers_shape, 32), dx = t.make(powers_shape, 33);
    const Activation kind = Activation::power_to_db;
    t.ref().activation_forward(kind, 0.0f, x.ref.tensor, y.ref.tensor);
    t.cand().activation_forward(kind, 0.0f, x.cand.tensor, y.cand.tensor);
    t.compare("activation_forward", "y", name, y, kElementwise);
    t.ref().activation_backward(kind, 0.0f, x.ref.tensor, Tensor(), dy.ref.tensor, dx.ref.tensor);
    t.cand().activation_backward(kind, 0.0f, x.cand.tensor, Tensor(), dy.cand.tensor, dx.cand.tensor);
    t.compare("activation_backward", "dx", name, dx, kElementwise);
  }
  const std::string name = "rate 0.3 x " + shape.str();
  auto x = t.make(shape, 34), y = t.make(shape, 35), dx = t.make(shape, 36);
  const auto [ref_values, cand_values] = t.step_values(StepValues{.dropout_seed = 99});
  for (const std::uint64_t first_index : {std::uint64_t(0), std::uint64_t(3) * std::uint64_t(shape.numel())}) {
    const std::string indexed = name + ", first index " + std::to_string(first_index);
    t.ref().dropout_forward(0.3f, ref_values, 5, first_index, x.ref.tensor, y.ref.tensor);
    t.cand().dropout_forward(0.3f, cand_values, 5, first_index, x.cand.tensor, y.cand.tensor);
    t.compare("dropout_forward", "y", indexed, y, kExact);
    t.ref().dropout_backward(0.3f, ref_values, 5, first_index, x.ref.tensor, dx.ref.tensor);
    t.cand().dropout_backward(0.3f, cand_values, 5, first_index, x.cand.tensor, dx.cand.tensor);
    t.compare("dropout_backward", "dx", indexed, dx, kExact);
  }

  for (auto [outer, inner] : {std::pair{15, 77}, std::pair{1, 5000}, std::pair{64, 1}}) {
    const std::string pool_name = "x " + Shape{outer, inner}.str();
    auto px = t.make(Shape{outer, inner}, 37), py = t.make(Shape{outer}, 38), pdx = t.make(Shape{outer, inner}, 39);
    t.ref().mean_pool_forward(outer, inner, px.ref.tensor, py.ref.tensor);
    t.cand().mean_pool_forward(outer, inner, px.cand.tensor, py.cand.tensor);
    t.compare("mean_pool_forward", "y", pool_name, py, kReduction);
    t.ref().mean_pool_backward(outer, inner, py.ref.tensor, pdx.ref.tensor);
    t.cand().mean_pool_backward(outer, inner, py.cand.tensor, pdx.cand.tensor);
    t.compare("mean_pool_backward", "dx", pool_name, pdx, kElementwise);
  }
}

void maxpool_cases(ParityRun& t) {
  for (auto [wh, ww, sh, sw] : {std::array<int, 4>{2, 2, 2, 2}, {3, 3, 2, 2}, {4, 1, 4, 1}, {3, 2, 1, 1}}) {
    const auto g = Pool2dGeometry::make(2, 3, 13, 10, wh, ww, sh, sw);
    std::ostringstream name;
    name << "x [2, 3, 13, 10], window " << wh << "x" << ww << " stride " << sh << "x" << sw;
    // Distinct values, so that "the first maximum" is the same element on both sides.
    Tensor host = Tensor::zeros(Shape{2, 3, 13, 10});
    std::vector<int> order(host.numel());
    std::iota(order.begin(), order.end(), 0);
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[uniform_index(3, 0, i, i)]);
    for (std::int64_t i = 0; i < host.numel(); ++i) host.f32()[i] = 0.01f * order[i];
    auto x = t.upload(host);
    auto y = t.make(Shape{2, 3, g.out_h, g.out_w}, 40), dx = t.make(host.shape(), 41), dy = t.make(y.ref.tensor.shape(), 42);
    t.ref().maxpool2d_forward(g, x.ref.tensor, y.ref.tensor);
    t.cand().maxpool2d_forward(g, x.cand.tensor, y.cand.tensor);
    t.compare("maxpool2d_forward", "y", name.str(), y, kExact);
    t.ref().maxpool2d_backward(g, x.ref.tensor, dy.ref.tensor, dx.ref.tensor);
    t.cand().maxpool2d_backward(g, x.cand.tensor, dy.cand.tensor, dx.cand.tensor);
    t.compare("maxpool2d_backward", "dx", name.str(), dx, kElementwise);  // overlapping windows sum
  }
}

void avgpool_cases(ParityRun& t) {
  for (auto [wh, ww, sh, sw] : {std::array<int, 4>{2, 2, 2, 2}, {3, 3, 2, 2}, {13, 1, 1, 1}, {3, 2, 1, 3}}) {
    const auto g = Pool2dGeometry::make(2, 3, 13, 10, wh, ww, sh, sw);
    std::ostringstream name;
    name << "x [2, 3, 13, 10], window " << wh << "x" << ww << " stride " << sh << "x" << sw;
    auto x = t.make(Shape{2, 3, 13, 10}, 43), y = t.make(Shape{2, 3, g.out_h, g.out_w}, 44);
    auto dy = t.make(y.ref.tensor.shape(), 45), dx = t.make(x.ref.tensor.shape(), 46);
    t.ref().avgpool2d_forward(g, x.ref.tensor, y.ref.tensor);
    t.cand().avgpool2d_forward(g, x.cand.tensor, y.cand.tensor);
    t.compare("avgpool2d_forward", "y", name.str(), y, kElementwise);  // same double sum, one rounding
    t.ref().avgpool2d_backward(g, dy.ref.tensor, dx.ref.tensor);
    t.cand().avgpool2d_backward(g, dy.cand.tensor, dx.cand.tensor);
    t.compare("avgpool2d_backward", "dx", name.str(), dx, kElementwise);
  }
}

// Data movement and the squeeze-excitation gate.
void layout_cases(ParityRun& t) {
  // Concatenation into the middle of rows, then summing onto it (accumulate).
  for (bool accumulate : {false, true}) {
    StridedCopy c;
    c.rows = 5, c.width = 7, c.src_stride = 9, c.src_offset = 2, c.dst_stride = 20, c.dst_offset = 11;
    c.accumulate = accumulate;
    auto src = t.make(Shape{5, 9}, 47), dst = t.make(Shape{5, 20}, 48);
    t.ref().strided_copy(c, src.ref.tensor, dst.ref.tensor);
    t.cand().strided_copy(c, src.cand.tensor, dst.cand.tensor);
    t.compare("strided_copy", "dst", accumulate ? "5 rows of 7, accumulate" : "5 rows of 7", dst,
              accumulate ? kElementwise : kExact);
  }
  const std::pair<Shape, std::vector<int>> permutes[] = {
      {Shape{2, 3, 4, 5}, {0, 3, 1, 2}}, {Shape{1, 7, 9}, {0, 2, 1}}, {Shape{3, 1, 2, 5, 2}, {4, 2, 0, 3, 1}}};
  for (const auto& [shape, order] : permutes) {
    const auto g = PermuteGeometry::make(shape, order);
    auto x = t.make(shape, 49), y = t.make(shape, 58);
    t.ref().permute(g, x.ref.tensor, y.ref.tensor);
    t.cand().permute(g, x.cand.tensor, y.cand.tensor);
    t.compare("permute", "y", "x " + shape.str(), y, kExact);
  }
  for (auto [rows, inner] : {std::pair{6, 33}, std::pair{1, 1}, std::pair{64, 700}}) {
    const std::string name = "x " + Shape{rows, inner}.str();
    auto x = t.make(Shape{rows, inner}, 59), s = t.make(Shape{rows}, 68), y = t.make(Shape{rows, inner}, 69);
    t.ref().scale_rows_forward(rows, inner, x.ref.tensor, s.ref.tensor, y.ref.tensor);
    t.cand().scale_rows_forward(rows, inner, x.cand.tensor, s.cand.tensor, y.cand.tensor);
    t.compare("scale_rows_forward", "y", name, y, kExact);  // one float product
    auto dy = t.make(Shape{rows, inner}, 70), dx = t.make(Shape{rows, inner}, 71), ds = t.make(Shape{rows}, 72);
    t.ref().scale_rows_backward(rows, inner, x.ref.tensor, s.ref.tensor, dy.ref.tensor, dx.ref.tensor, ds.ref.tensor);
    t.cand().scale_rows_backward(rows, inner, x.cand.tensor, s.cand.tensor, dy.cand.tensor, dx.cand.tensor,
                                 ds.cand.tensor);
    t.compare("scale_rows_backward", "dx", name, dx, kExact);
    t.compare("scale_rows_backward", "dscale", name, ds, kElementwise);  // double sums in another order
  }
}

// Dense layers at the candidate's `precision`; the last case has neither bias nor dx.
void dense_cases(ParityRun& t, Precision precision, double tolerance) {
  struct Case {
    DenseGeometry g;
    bool bias_and_dx = true;
  };
  for (const Case& c : {Case{{16, 64, 10}}, Case{{1, 7, 3}}, Case{{5, 1000, 50}}, Case{{4, 33, 6}, false}}) {
    const DenseGeometry& g = c.g;
    const std::string name = "x " + Shape{g.batch, g.in_features}.str() + " -> " + std::to_string(g.out_features) +
                             (c.bias_and_dx ? "" : ", no bias, no dx") + precision_suffix(precision);
    auto x = t.make(Shape{g.batch, g.in_features}, 50), w = t.make(Shape{g.out_features, g.in_features}, 51, 0.2f);
    auto b = t.make(Shape{g.out_features}, 52), y = t.make(Shape{g.batch, g.out_features}, 53);
    Tensor absent;
    Tensor& ref_bias = c.bias_and_dx ? b.ref.tensor : absent;
    Tensor& cand_bias = c.bias_and_dx ? b.cand.tensor : absent;
    t.ref().dense_forward(g, x.ref.tensor, w.ref.tensor, ref_bias, y.ref.tensor);
    t.cand().dense_forward(g, x.cand.tensor, w.cand.tensor, cand_bias, y.cand.tensor);
    t.compare("dense_forward", "y", name, y, tolerance, scale_for(precision));
    auto dy = t.make(y.ref.tensor.shape(), 54), dx = t.make(x.ref.tensor.shape(), 55);
    auto dw = t.make(w.ref.tensor.shape(), 56), db = t.make(b.ref.tensor.shape(), 57);
    t.ref().dense_backward(g, x.ref.tensor, w.ref.tensor, dy.ref.tensor, c.bias_and_dx ? dx.ref.tensor : absent,
                           dw.ref.tensor, c.bias_and_dx ? db.ref.tensor : absent);
    t.cand().dense_backward(g, x.cand.tensor, w.cand.tensor, dy.cand.tensor, c.bias_and_dx ? dx.cand.tensor : absent,
                            dw.cand.tensor, c.bias_and_dx ? db.cand.tensor : absent);
    t.compare("dense_backward", "dx", name, dx, tolerance, scale_for(precision));
    t.compare("dense_backward", "dw", name, dw, tolerance, scale_for(precision));
    t.compare("dense_backward", "dbias", name, db, kReduction);  // column sums of dy, no GEMM
  }
}

// The harmonic filterbank: filter values through the shared math (a few ulps: the centres'
// pow and nvcc's fused multiply-adds), products and dq as GEMMs and sums in another order.
// At the candidate's `precision` (its GEMMs follow it); the last two cases leave out dx
// (a first layer) and dq (a fixed Q).
void harmonic_filterbank_cases(ParityRun& t, Precision precision, double tolerance) {
  struct Case {
    HarmonicFilterbankGeometry g;
    float q;
    bool dx = true, dq = true;
  };
  for (const Case& c : {Case{HarmonicFilterbankGeometry::make(2, 257, 13, 16000, 6, 2), 1.0f},  // Won's
                        Case{HarmonicFilterbankGeometry::make(1, 33, 5, 2000, 2, 1), 0.8f},     // batch 1
                        Case{HarmonicFilterbankGeometry::make(3, 129, 7, 8000, 3, 3), -1.2f},   // Q < 0
                        Case{HarmonicFilterbankGeometry::make(2, 65, 9, 8000, 3, 2), 1.0f, false, true},
                        Case{HarmonicFilterbankGeometry::make(2, 65, 9, 8000, 3, 2), 1.0f, true, false}}) {
    const HarmonicFilterbankGeometry& g = c.g;
    std::ostringstream name;
    name << "spectrogram " << Shape{g.batch, g.bins, g.frames}.str() << ", " << g.sample_rate << " Hz, "
         << g.harmonics << " harmonics x " << g.bands << " bands, Q " << c.q << (c.dx ? "" : ", no dx")
         << (c.dq ? "" : ", no dq") << precision_suffix(precision);
    const Shape spectrogram_shape{g.batch, g.bins, g.frames}, output_shape{g.batch, g.filters(), g.frames};
    auto spectrogram = t.make_in(spectrogram_shape, 130, 0.0f, 4.0f);  // powers: non-negative
    Tensor q_host = Tensor::zeros(Shape{1});
    q_host.f32()[0] = c.q;
    auto q = t.upload(q_host);
    auto filterbank = t.make(Shape{g.bins, g.filters()}, 131), y = t.make(output_shape, 132);
    t.ref().harmonic_filterbank_forward(g, spectrogram.ref.tensor, q.ref.tensor, filterbank.ref.tensor,
                                        y.ref.tensor);
    t.cand().harmonic_filterbank_forward(g, spectrogram.cand.tensor, q.cand.tensor, filterbank.cand.tensor,
                                         y.cand.tensor);
    t.compare("harmonic_filterbank_forward", "filterbank", name.str(), filterbank, kElementwise);
    t.compare("harmonic_filterbank_forward", "y", name.str(), y, tolerance, scale_for(precision));
    auto dy = t.make(output_shape, 133), dx = t.make(spectrogram_shape, 134), dq = t.make(Shape{1}, 135);
    auto [ws_ref, ws_cand] = t.workspaces(t.ref().harmonic_filterbank_workspace_bytes(g),
                                          t.cand().harmonic_filterbank_workspace_bytes(g),
                                          "harmonic_filterbank_backward", name.str());
    Tensor absent;
    t.ref().harmonic_filterbank_backward(g, spectrogram.ref.tensor, q.ref.tensor, filterbank.ref.tensor,
                                         dy.ref.tensor, c.dx ? dx.ref.tensor : absent, c.dq ? dq.ref.tensor : absent,
                                         ws_ref);
    t.cand().harmonic_filterbank_backward(g, spectrogram.cand.tensor, q.cand.tensor, filterbank.cand.tensor,
                                          dy.cand.tensor, c.dx ? dx.cand.tensor : absent,
                                          c.dq ? dq.cand.tensor : absent, ws_cand);
    t.compare("harmonic_filterbank_backward", "dx", name.str(), dx, tolerance, scale_for(precision));
    t.compare("harmonic_filterbank_backward", "dq", name.str(), dq, tolerance, scale_for(precision));  // dq starts random: +=
  }
}

// At the candidate's `precision`; the last case is a first layer (no dx).
void recurrent_cases(ParityRun& t, Precision precision, double tolerance) {
  struct Case {
    RecurrentGeometry g;
    bool dx = true;
  };
  const Case cases[] = {
      {{RecurrentCell::gru, 3, 7, 5, 6, true}},
      {{RecurrentCell::lstm, 1, 9, 4, 7, false}},       // batch 1
      {{RecurrentCell::rnn_tanh, 2, 5, 3, 33, true}},   // odd hidden size
      {{RecurrentCell::rnn_relu, 4, 6, 8, 5, false}},
      {{RecurrentCell::lstm, 2, 4, 1, 3, true}},        // one input feature
      {{RecurrentCell::gru, 1, 1, 2, 3, false}},        // one step
      {{RecurrentCell::gru, 8, 20, 48, 32, true}},      // a CRNN-sized layer
      {{RecurrentCell::lstm, 2, 3, 16, 300, true}},     // a hidden size above 256
      {{RecurrentCell::gru, 2, 5, 6, 8, true}, false},  // no dx
  };
  for (const Case& c : cases) {
    const RecurrentGeometry& g = c.g;
    const bool want_dx = c.dx;
    const std::string name = std::string(recurrent_cell_name(g.cell)) + (g.bidirectional ? " bidirectional" : "") +
                             ", x " + Shape{g.batch, g.steps, g.input_size}.str() + ", hidden " +
                             std::to_string(g.hidden_size) + (want_dx ? "" : ", no dx") +
                             precision_suffix(precision);
    const std::int64_t gate_rows = std::int64_t(g.gates()) * g.hidden_size;
    const float bound = 1.0f / std::sqrt(float(g.hidden_size));  // PyTorch's initialisation
    auto x = t.make(Shape{g.batch, g.steps, g.input_size}, 110);
    auto y = t.make(Shape{g.batch, g.steps, g.output_size()}, 111);
    std::vector<Pair> weights, gradients;  // per direction: weight_ih, weight_hh, bias_ih, bias_hh
    for (int d = 0; d < g.directions(); ++d) {
      const std::uint64_t seed = 120 + 10 * std::uint64_t(d);
      for (const Shape& shape : {Shape{gate_rows, g.input_size}, Shape{gate_rows, g.hidden_size}, Shape{gate_rows},
                                 Shape{gate_rows}}) {
        weights.push_back(t.make(shape, seed + weights.size() % 4, bound));
        gradients.push_back(t.make(shape, seed + 4 + gradients.size() % 4));
      }
    }
    auto gather = [&](std::vector<Pair>& pairs, bool ref) {
      RecurrentWeights out;
      for (int d = 0; d < g.directions(); ++d) {
        auto pick = [&](int k) { return ref ? pairs[std::size_t(4 * d + k)].ref.tensor : pairs[std::size_t(4 * d + k)].cand.tensor; };
        out[std::size_t(d)] = {pick(0), pick(1), pick(2), pick(3)};
      }
      return out;
    };
    const RecurrentWeights ref_weights = gather(weights, true), cand_weights = gather(weights, false);
    RecurrentWeights ref_gradients = gather(gradients, true), cand_gradients = gather(gradients, false);
    auto [reserve_ref, reserve_cand] =
        t.workspaces(t.ref().recurrent_reserve_bytes(g), t.cand().recurrent_reserve_bytes(g), "recurrent_backward",
                     name + " (reserve)");
    auto [ws_ref, ws_cand] = t.workspaces(t.ref().recurrent_workspace_bytes(g), t.cand().recurrent_workspace_bytes(g),
                                          "recurrent_backward", name);
    t.ref().recurrent_forward(g, ref_weights, x.ref.tensor, y.ref.tensor, reserve_ref, ws_ref);
    t.cand().recurrent_forward(g, cand_weights, x.cand.tensor, y.cand.tensor, reserve_cand, ws_cand);
    t.compare("recurrent_forward", "y", name, y, tolerance, scale_for(precision));
    auto dy = t.make(y.ref.tensor.shape(), 112), dx = t.make(x.ref.tensor.shape(), 113);
    Tensor no_dx;
    t.ref().recurrent_backward(g, ref_weights, x.ref.tensor, y.ref.tensor, dy.ref.tensor, reserve_ref,
                               want_dx ? dx.ref.tensor : no_dx, ref_gradients, ws_ref);
    t.cand().recurrent_backward(g, cand_weights, x.cand.tensor, y.cand.tensor, dy.cand.tensor, reserve_cand,
                                want_dx ? dx.cand.tensor : no_dx, cand_gradients, ws_cand);
    t.compare("recurrent_backward", "dx", name, dx, tolerance, scale_for(precision));
    const char* tensor_names[] = {"dweight_ih", "dweight_hh", "dbias_ih", "dbias_hh"};
    for (std::size_t k = 0; k < gradients.size(); ++k)
      t.compare("recurrent_backward", std::string(tensor_names[k % 4]) + (k >= 4 ? "_reverse" : ""), name,
                gradients[k], tolerance, scale_for(precision));
  }
}

void loss_and_optimizer_cases(ParityRun& t) {
  for (auto [rows, k] : {std::pair{16, 10}, std::pair{1, 2}, std::pair{33, 50}}) {
    const std::string name = "logits " + Shape{rows, k}.str();
    auto logits = t.make(Shape{rows, k}, 60, 8.0f);
    Tensor one_hot = Tensor::zeros(Shape{rows, k});
    for (int r = 0; r < rows; ++r) one_hot.f32()[r * k + (r * 7) % k] = 1.0f;
    auto targets = t.upload(one_hot);
    auto loss = t.make(Shape{rows}, 61), grad = t.make(Shape{rows, k}, 62);
    t.ref().softmax_cross_entropy(logits.ref.tensor, targets.ref.tensor, 0.1f, loss.ref.tensor, grad.ref.tensor, 0.25f);
    t.cand().softmax_cross_entropy(logits.cand.tensor, targets.cand.tensor, 0.1f, loss.cand.tensor,
                                   grad.cand.tensor, 0.25f);
    t.compare("softmax_cross_entropy", "loss", name, loss, kElementwise);
    t.compare("softmax_cross_entropy", "dlogits", name, grad, kElementwise);
    t.ref().sigmoid_bce(logits.ref.tensor, targets.ref.tensor, loss.ref.tensor, grad.ref.tensor, 0.25f);
    t.cand().sigmoid_bce(logits.cand.tensor, targets.cand.tensor, loss.cand.tensor, grad.cand.tensor, 0.25f);
    t.compare("sigmoid_bce", "loss", name, loss, kElementwise);
    t.compare("sigmoid_bce", "dlogits", name, grad, kElementwise);
    // Evaluation computes the losses alone; dlogits (the last values) stays untouched.
    Tensor no_dlogits;
    t.ref().softmax_cross_entropy(logits.ref.tensor, targets.ref.tensor, 0.0f, loss.ref.tensor, no_dlogits, 1.0f);
    t.cand().softmax_cross_entropy(logits.cand.tensor, targets.cand.tensor, 0.0f, loss.cand.tensor, no_dlogits,
                                   1.0f);
    t.compare("softmax_cross_entropy", "loss, no dlogits", name, loss, kElementwise);
    t.ref().sigmoid_bce(logits.ref.tensor, targets.ref.tensor, loss.ref.tensor, no_dlogits, 1.0f);
    t.cand().sigmoid_bce(logits.cand.tensor, targets.cand.tensor, loss.cand.tensor, no_dlogits, 1.0f);
    t.compare("sigmoid_bce", "loss, no dlogits", name, loss, kElementwise);
    t.compare("sigmoid_bce", "dlogits (untouched)", name, grad, kExact);
  }
  const Shape flat{100003};  // not a multiple of any block size
  // Three steps of each variant from the same random state; v is a second moment: non-negative.
  for (bool decoupled : {true, false}) {
    const std::string name = "flat " + flat.str() + (decoupled ? ", AdamW" : ", Adam, L2 weight decay");
    auto p = t.make(flat, 70), g = t.make(flat, 71), m = t.make(flat, 72, 0.1f), v = t.make_in(flat, 74, 0.0f, 0.01f);
    AdamHyper adam;
    adam.weight_decay = 0.01f;
    adam.decoupled_weight_decay = decoupled;
    for (std::int64_t step = 1; step <= 3; ++step) {
      StepValues values;
      set_optimizer_step_values(values, 1e-3f, adam.beta1, adam.beta2, step);
      const auto [ref_values, cand_values] = t.step_values(values);
      t.ref().adam_step(adam, ref_values, p.ref.tensor, g.ref.tensor, m.ref.tensor, v.ref.tensor);
      t.cand().adam_step(adam, cand_values, p.cand.tensor, g.cand.tensor, m.cand.tensor, v.cand.tensor);
    }
    t.compare("adam_step", "params", name, p, kElementwise);
    t.compare("adam_step", "exp_avg", name, m, kElementwise);
    t.compare("adam_step", "exp_avg_sq", name, v, kElementwise);
  }
  for (const auto& [momentum, nesterov, what] : {std::tuple{0.9f, true, ", nesterov"},
                                                 std::tuple{0.9f, false, ", momentum"},
                                                 std::tuple{0.0f, false, ", plain"}}) {
    const std::string name = "flat " + flat.str() + what;
    auto p = t.make(flat, 70), g = t.make(flat, 71), m = t.make(flat, 72, 0.1f);
    SgdHyper sgd;
    sgd.momentum = momentum;
    sgd.nesterov = nesterov;
    sgd.weight_decay = 1e-4f;
    for (std::int64_t step = 1; step <= 3; ++step) {
      StepValues values;
      set_optimizer_step_values(values, 1e-2f, 0.9f, 0.999f, step);
      const auto [ref_values, cand_values] = t.step_values(values);
      t.ref().sgd_step(sgd, ref_values, p.ref.tensor, g.ref.tensor, m.ref.tensor);
      t.cand().sgd_step(sgd, cand_values, p.cand.tensor, g.cand.tensor, m.cand.tensor);
    }
    t.compare("sgd_step", "params", name, p, kElementwise);
    t.compare("sgd_step", "momentum_buffer", name, m, kElementwise);
  }
  const std::string name = "flat " + flat.str();

  // A max_norm below the norm (clips) and above it (multiplies by exactly 1).
  for (float max_norm : {1.0f, 1e6f}) {
    const std::string clip_name = name + ", max_norm " + std::to_string(max_norm);
    auto grads = t.make(flat, 75), norm = t.make(Shape{1}, 76);
    t.ref().clip_gradient_norm(max_norm, grads.ref.tensor, norm.ref.tensor);
    t.cand().clip_gradient_norm(max_norm, grads.cand.tensor, norm.cand.tensor);
    t.compare("clip_gradient_norm", "grads", clip_name, grads, kElementwise);
    t.compare("clip_gradient_norm", "total_norm", clip_name, norm, kElementwise);
  }
}

void frontend_cases(ParityRun& t) {
  struct Case {
    const char* name;
    FrontendSpec spec;
    int sample_rate, samples, batch;
    int built_for = 0;  // the front-end's max_batch when larger than the batch computed
  };
  FrontendSpec won;  // torchaudio's defaults, as Won et al. use them
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
  FrontendSpec mfcc = won;  // torchaudio's MFCC with Won et al.'s mel spectrogram
  mfcc.type = "mfcc";
  mfcc.f_max = 8000;
  mfcc.top_db = 80;
  FrontendSpec waveform;
  waveform.type = "waveform";
  FrontendSpec stft_centred = stft;  // 63 frames: more than one tile of the CUDA transpose
  stft_centred.center = true;
  stft_centred.power = 1.5;
  stft_centred.log = "none";
  FrontendSpec mfcc_librosa = librosa;  // the float64 DCT of librosa, and an odd n_fft
  mfcc_librosa.type = "mfcc";
  mfcc_librosa.n_fft = 1023;
  for (const Case& c : {Case{"mel, torchaudio defaults", won, 16000, 16000, 3},
                        Case{"mel, a batch of 1 on a front-end built for 3", won, 16000, 16000, 1, 3},
                        Case{"stft power 1.5, centred, no log", stft_centred, 16000, 16000, 2},
                        Case{"mfcc, librosa defaults, n_fft 1023", mfcc_librosa, 22050, 22050, 2},
                        Case{"mel, librosa defaults", librosa, 22050, 22050, 2},
                        Case{"stft magnitude, win 400, no centre", stft, 16000, 8000, 1},
                        Case{"mel log1p", log1p, 16000, 12345, 2},
                        Case{"mfcc, top_db 80", mfcc, 16000, 16000, 2},
                        Case{"waveform", waveform, 16000, 1001, 2}}) {
    const int max_batch = std::max(c.batch, c.built_for);
    auto ref_frontend = t.ref().make_frontend(c.spec, c.sample_rate, c.samples, max_batch);
    auto cand_frontend = t.cand().make_frontend(c.spec, c.sample_rate, c.samples, max_batch);
    CADENZA_CHECK(ref_frontend->features_shape(c.batch) == cand_frontend->features_shape(c.batch),
                  "front-ends disagree on the output shape");
    Tensor pcm_host = Tensor::zeros(Shape{c.batch, c.samples});
    for (std::int64_t i = 0; i < pcm_host.numel(); ++i) {  // silence, then a tone with noise
      const std::int64_t n = i % c.samples;
      pcm_host.f32()[i] = n < 500 ? 0.0f
                                  : 0.5f * std::sin(0.05f * float(n)) +
                                        0.1f * (uniform01(8, 0, std::uint64_t(i)) - 0.5f);
    }
    auto pcm = t.upload(pcm_host);
    auto features = t.make(ref_frontend->features_shape(c.batch), 80);
    ref_frontend->compute(pcm.ref.tensor, features.ref.tensor);
    cand_frontend->compute(pcm.cand.tensor, features.cand.tensor);
    t.compare("frontend", "features", c.name, features, kFrontend);
  }
}

void evaluation_cases(ParityRun& t) {
  for (auto [rows, k] : {std::pair{16, 10}, std::pair{1, 3}, std::pair{37, 50}}) {
    const std::string name = "logits " + Shape{rows, k}.str();
    auto logits = t.make(Shape{rows, k}, 90, 6.0f);
    Tensor one_hot = Tensor::zeros(Shape{rows, k});
    for (int r = 0; r < rows; ++r) one_hot.f32()[r * k + (r * 5) % k] = 1.0f;
    auto targets = t.upload(one_hot);
    for (bool multi_label : {false, true}) {
      auto scores = t.make(Shape{rows, k}, 91);
      t.ref().output_scores(multi_label, logits.ref.tensor, scores.ref.tensor);
      t.cand().output_scores(multi_label, logits.cand.tensor, scores.cand.tensor);
      t.compare("output_scores", multi_label ? "sigmoid" : "softmax", name, scores, kElementwise);
      if (multi_label) continue;
      Tensor zeros = Tensor::zeros(Shape{k, k});
      auto confusion = t.upload(zeros);
      for (int pass = 0; pass < 2; ++pass) {  // accumulates, over a partial batch too
        t.ref().accumulate_confusion(scores.ref.tensor, targets.ref.tensor, rows - pass, confusion.ref.tensor);
        t.cand().accumulate_confusion(scores.cand.tensor, targets.cand.tensor, rows - pass,
                                      confusion.cand.tensor);
      }
      t.compare("accumulate_confusion", "confusion", name, confusion, kExact);
    }
    auto values = t.make(Shape{rows}, 92, 3.0f), sum = t.make(Shape{1}, 93);
    for (int pass = 0; pass < 3; ++pass) {
      t.ref().accumulate_sum(values.ref.tensor, rows - pass % 2, sum.ref.tensor);
      t.cand().accumulate_sum(values.cand.tensor, rows - pass % 2, sum.cand.tensor);
    }
    t.compare("accumulate_sum", "sum", name, sum, kExact);  // the same order of float additions
  }

  // Multiframe clip scores over batches that split clips; clip_scores starts random (+=).
  struct WindowCase {
    int batch, k, windows_per_clip;
    std::vector<std::pair<std::int64_t, int>> batches;  // (first_window, count) per call
  };
  for (const WindowCase& c : {WindowCase{5, 7, 3, {{0, 5}, {5, 4}}},  // last batch partial
                              WindowCase{1, 3, 1, {{0, 1}, {1, 1}, {2, 1}}},  // batch 1
                              WindowCase{16, 50, 7, {{3, 16}, {19, 16}, {35, 13}}},
                              WindowCase{4, 5, 10, {{0, 4}, {4, 4}, {8, 4}}}}) {  // a clip over 3 batches
    std::int64_t windows = 0;
    for (auto [first, count] : c.batches) windows = std::max(windows, first + count);
    const std::int64_t clips = (windows + c.windows_per_clip - 1) / c.windows_per_clip;
    const std::string name = "scores " + Shape{c.batch, c.k}.str() + ", " + std::to_string(c.windows_per_clip) +
                             " windows per clip, " + std::to_string(c.batches.size()) + " batches";
    auto clip_scores = t.make(Shape{clips, c.k}, 94);
    std::uint64_t seed = 95;
    for (auto [first, count] : c.batches) {
      auto scores = t.make(Shape{c.batch, c.k}, seed++);
      t.ref().accumulate_window_scores(scores.ref.tensor, first, count, c.windows_per_clip, clip_scores.ref.tensor);
      t.cand().accumulate_window_scores(scores.cand.tensor, first, count, c.windows_per_clip,
                                        clip_scores.cand.tensor);
    }
    // The same float divisions and additions, in window order, on both sides.
    t.compare("accumulate_window_scores", "clip_scores", name, clip_scores, kExact);
  }

  // Per-tag metrics of scores on a grid of 9 values (many ties), with a tag that has no
  // positives (ROC-AUC and AP NaN), one with only positives (ROC-AUC NaN), a NaN score in
  // the last tag, and a partial count; thresholds on and off the grid.
  struct TagCase {
    int rows, k, count;
    float threshold;
  };
  for (const TagCase& c : {TagCase{16, 10, 16, 0.5f}, TagCase{1, 3, 1, 0.5f}, TagCase{37, 50, 30, 0.3f},
                           TagCase{2000, 5, 1999, 0.45f}}) {
    const std::string name = "scores " + Shape{c.rows, c.k}.str() + ", count " + std::to_string(c.count) +
                             ", threshold " + std::to_string(c.threshold);
    Tensor scores_host = Tensor::zeros(Shape{c.rows, c.k}), targets_host = Tensor::zeros(Shape{c.rows, c.k});
    for (int r = 0; r < c.rows; ++r) {
      for (int j = 0; j < c.k; ++j) {
        const std::int64_t at = std::int64_t(r) * c.k + j;
        scores_host.f32()[at] = std::floor(9.0f * uniform01(96, 0, std::uint64_t(at))) / 8.0f;
        const float prevalence = 0.1f + 0.8f * float(j) / float(c.k);
        targets_host.f32()[at] = j == 0 ? 0.0f : j == 1 ? 1.0f : float(uniform01(97, 0, std::uint64_t(at)) < prevalence);
      }
    }
    if (c.rows > 1) scores_host.f32()[std::int64_t(c.rows / 2) * c.k + c.k - 1] = std::nanf("");
    auto scores = t.upload(scores_host), targets = t.upload(targets_host);
    auto metrics = t.make(Shape{kTagMetricRows, c.k}, 98);
    t.ref().tag_metrics(scores.ref.tensor, targets.ref.tensor, c.count, c.threshold, metrics.ref.tensor);
    t.cand().tag_metrics(scores.cand.tensor, targets.cand.tensor, c.count, c.threshold, metrics.cand.tensor);
    t.compare("tag_metrics", "metrics", name, metrics, kTagMetrics, ErrorScale::element, NanRule::defined);
  }
}

void augmentation_cases(ParityRun& t) {
  struct WaveCase {
    const char* what;
    std::int64_t rows, samples;
    WaveformAugment a;
    double tolerance;
  };
  auto from_row = [](WaveformAugment a, std::int64_t first_row) {
    a.first_row = first_row;
    return a;
  };
  auto all_kinds = [](float p, int max_shift) {
    WaveformAugment a;
    a.shift_probability = a.gain_probability = a.noise_probability = p;
    a.max_shift = max_shift;
    a.gain_db_min = -6.0f;
    a.gain_db_max = 6.0f;
    a.snr_db_min = 5.0f;
    a.snr_db_max = 30.0f;
    return a;
  };
  WaveformAugment shift_only;
  shift_only.shift_probability = 0.5f;
  shift_only.max_shift = 40;
  WaveformAugment shift_gain = shift_only;
  shift_gain.gain_probability = 1.0f;
  shift_gain.gain_db_min = -12.0f;
  shift_gain.gain_db_max = 3.0f;
  for (const WaveCase& c : {
           WaveCase{"probabilities 0", 3, 1001, all_kinds(0.0f, 10), kExact},  // a copy
           WaveCase{"shift only, p 0.5", 7, 333, shift_only, kExact},           // moves values only
           // The gain's 10^(g/20) is double pow() rounded to float: host and device pow may
           // round to neighbouring floats, one ulp of the factor.
           WaveCase{"shift p 0.5 + gain p 1", 6, 257, shift_gain, 2e-7},
           WaveCase{"all kinds, p 0.5", 9, 1001, all_kinds(0.5f, 10), kAugment},
           WaveCase{"all kinds, p 1, batch 1", 1, 4097, all_kinds(1.0f, 300), kAugment},
           WaveCase{"all kinds, p 1, shift beyond the row", 5, 37, all_kinds(1.0f, 100), kAugment},
           WaveCase{"all kinds, p 0.5, 70 rows (two row chunks on the GPU)", 70, 129, all_kinds(0.5f, 5), kAugment},
           WaveCase{"all kinds, p 1, rows past the GPU's capped grid", 2, 300000, all_kinds(1.0f, 1000), kAugment},
           WaveCase{"all kinds, p 0.5, rows 48.. of a global batch", 8, 513, from_row(all_kinds(0.5f, 10), 48), kAugment},
       }) {
    const Shape shape{c.rows, c.samples};
    const std::string name = std::string(c.what) + ", pcm " + shape.str();
    auto pcm = t.make(shape, 100, 0.8f), out = t.make(shape, 101);
    const auto [ref_values, cand_values] = t.step_values(StepValues{.waveform_augment_key = 0xA11CE});
    t.ref().augment_waveform(c.a, ref_values, pcm.ref.tensor, out.ref.tensor);
    t.cand().augment_waveform(c.a, cand_values, pcm.cand.tensor, out.cand.tensor);
    t.compare("augment_waveform", "out", name, out, c.tolerance);
    t.compare("augment_waveform", "pcm (unchanged)", name, pcm, kExact);
  }

  struct MaskCase {
    const char* what;
    Shape shape;
    SpectrogramMask m;
  };
  for (const MaskCase& c : {
           MaskCase{"2 + 2 masks", Shape{3, 1, 13, 29}, SpectrogramMask{2, 5, 2, 4}},
           MaskCase{"batch 1, masks wider than T and F", Shape{1, 2, 7, 5}, SpectrogramMask{3, 50, 2, 20}},
           MaskCase{"time masks only", Shape{4, 1, 40, 101}, SpectrogramMask{2, 27, 0, 10}},
           MaskCase{"frequency masks only", Shape{2, 3, 17, 9}, SpectrogramMask{0, 5, 3, 6}},
           MaskCase{"no masks", Shape{2, 1, 8, 8}, SpectrogramMask{0, 5, 0, 5}},
           MaskCase{"70 rows (two row chunks on the GPU)", Shape{70, 1, 5, 11}, SpectrogramMask{1, 4, 1, 2}},
           MaskCase{"rows 32.. of a global batch", Shape{6, 1, 13, 29}, SpectrogramMask{2, 5, 2, 4, 32}},
       }) {
    const std::string name = std::string(c.what) + ", features " + c.shape.str();
    auto features = t.make_in(c.shape, 102, -80.0f, 0.0f);  // dB-like values, mean far from 0
    const auto [ref_values, cand_values] = t.step_values(StepValues{.spectrogram_mask_key = 0xBEEF});
    t.ref().mask_spectrogram(c.m, ref_values, features.ref.tensor);
    t.cand().mask_spectrogram(c.m, cand_values, features.cand.tensor);
    // Spans are exact; the mean is a double sum in another order, rounded to float.
    t.compare("mask_spectrogram", "features", name, features, kAugment);
  }
}

}  // namespace

std::vector<ParityResult> run_op_parity(Backend& reference, Backend& candidate) {
  ParityRun run(reference, candidate);
  // One family of cases; an exception (an op refusing its arguments, cuDNN offering no
  // algorithm, a CUDA error) becomes one failed row naming it, and the table goes on.
  auto family = [&](const std::string& what, const std::function<void()>& cases) {
    try {
      cases();
    } catch (const std::exception& e) {
      run.results().push_back(ParityResult{what, "threw", e.what(), INFINITY, 0.0, false, true});
    }
  };
  family("frontend cases", [&] { frontend_cases(run); });
  family("conv2d cases", [&] { conv2d_cases(run, Precision::fp32, kReduction); });
  family("dense cases", [&] { dense_cases(run, Precision::fp32, kReduction); });
  family("harmonic filterbank cases", [&] { harmonic_filterbank_cases(run, Precision::fp32, kReduction); });
  family("recurrent cases", [&] { recurrent_cases(run, Precision::fp32, kRecurrent); });
  // The layers whose math follows train.precision, again at tf32 and at bf16 (where the
  // GEMMs and recurrent layers run as tf32).
  for (Precision precision : {Precision::tf32, Precision::bf16}) {
    const std::string at = precision_suffix(precision);
    candidate.set_precision(precision);
    family("conv2d cases" + at, [&] {
      conv2d_cases(run, precision, precision == Precision::bf16 ? kBf16Convolution : kTf32);
    });
    family("dense cases" + at, [&] { dense_cases(run, precision, kTf32); });
    family("harmonic filterbank cases" + at, [&] { harmonic_filterbank_cases(run, precision, kTf32); });
    family("recurrent cases" + at, [&] { recurrent_cases(run, precision, kTf32Recurrent); });
  }
  candidate.set_precision(Precision::fp32);
  family("batchnorm cases", [&] { batchnorm_cases(run); });
  family("elementwise cases", [&] { elementwise_cases(run); });
  family("maxpool cases", [&] { maxpool_cases(run); });
  family("avgpool cases", [&] { avgpool_cases(run); });
  family("layout cases", [&] { layout_cases(run); });
  family("loss and optimizer cases", [&] { loss_and_optimizer_cases(run); });
  family("evaluation cases", [&] { evaluation_cases(run); });
  family("augmentation cases", [&] { augmentation_cases(run); });
  family("synchronize", [&] { candidate.synchronize(); });
  family("workspace guards", [&] { run.check_workspaces(); });
  return std::move(run.results());
}

ValueComparison compare_values(const float* reference, const float* candidate, std::int64_t count,
                               ErrorScale scale, NanRule nan) {
  double largest = 1.0;
  if (scale == ErrorScale::tensor)
    for (std::int64_t i = 0; i < count; ++i)
      if (std::isfinite(reference[i])) largest = std::max(largest, std::fabs(double(reference[i])));
  ValueComparison result;
  for (std::int64_t i = 0; i < count; ++i) {
    const double c = candidate[i], e = reference[i];
    if (!std::isfinite(e) || !std::isfinite(c)) {
      result.finite = result.finite && nan == NanRule::defined && std::isnan(c) && std::isnan(e);
      continue;
    }
    const double relative_to = scale == ErrorScale::tensor ? largest : std::max(1.0, std::fabs(e));
    result.max_error = std::max(result.max_error, std::fabs(c - e) / relative_to);
  }
  return result;
}

std::vector<std::string> uncovered_ops(const std::vector<ParityResult>& results) {
  std::set<std::string> seen;
  for (const ParityResult& r : results) seen.insert(r.op);
  std::vector<std::string> missing;
  for (const char* op : kBackendOps)
    if (!seen.count(op)) missing.push_back(op);
  return missing;
}

}  // namespace cadenza
