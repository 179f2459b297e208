// [cpu][op] Every CPU op: forward against closed forms or naive loops in double, backward
// against central finite differences accumulated in double.
//
// Gradient checks use the scalar L = sum_i r_i * y_i with fixed random r, so dL/dy = r.
// Ops compute in float32; a step of 1e-2 keeps float rounding of the differences below
// ~1e-4 while the truncation error of smooth ops stays below that too (linear ops have
// none). Kinks are declared: relu, elu and leaky_relu inputs are kept at least 0.05 away
// from 0, and max-pool inputs are a permutation of well-separated values, so no window has
// a tie within the step. sigmoid and tanh are smooth and are checked on inputs through 0.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <vector>

#include <omp.h>

#include "host/cpu/cpu_backend.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/pooling_math.hpp"
#include "host/math/random_math.hpp"
#include "tests/test_support.hpp"

using namespace cadenza;
using testing::random_tensor;

namespace {

// Keeps every value at least `margin` away from 0 (for ops with a kink at 0).
void push_away_from_zero(Tensor& t, float margin) {
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    float& v = t.f32()[i];
    if (std::fabs(v) < margin) v = v < 0 ? v - margin : v + margin;
  }
}

double weighted_sum(const Tensor& y, const Tensor& r) {
  double s = 0.0;
  for (std::int64_t i = 0; i < y.numel(); ++i) s += double(y.f32()[i]) * r.f32()[i];
  return s;
}

// Compares `analytic` with the central difference of L = sum r*y with respect to `x`,
// where `forward` recomputes y from the current contents of x.
void check_gradient(const char* what, Tensor& x, const Tensor& analytic, const Tensor& y,
                    const Tensor& r, const std::function<void()>& forward, float step = 1e-2f,
                    double tolerance = 2e-3) {
  INFO(what);
  REQUIRE(analytic.numel() == x.numel());
  double worst = 0.0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const float original = x.f32()[i];
    x.f32()[i] = original + step;
    forward();
    const double plus = weighted_sum(y, r);
    x.f32()[i] = original - step;
    forward();
    const double minus = weighted_sum(y, r);
    x.f32()[i] = original;
    const double numeric = (plus - minus) / (2.0 * step);
    const double a = analytic.f32()[i];
    const double error = std::fabs(a - numeric) / std::max(1.0, std::fabs(numeric));
    worst = std::max(worst, error);
    if (error > tolerance) {
      INFO("element " << i << ": analytic " << a << ", numeric " << numeric);
      REQUIRE(error <= tolerance);
    }
  }
  forward();
  CHECK(worst <= tolerance);
}

// Naive direct convolution in double.
std::vector<double> naive_conv2d(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                                 const Tensor& b) {
  std::vector<double> y(std::size_t(g.batch) * g.out_channels * g.out_h * g.out_w);
  for (int n = 0; n < g.batch; ++n)
    for (int o = 0; o < g.out_channels; ++o)
      for (int oy = 0; oy < g.out_h; ++oy)
        for (int ox = 0; ox < g.out_w; ++ox) {
          double s = b.numel() ? b.f32()[o] : 0.0;
          for (int c = 0; c < g.in_channels; ++c)
            for (int i = 0; i < g.kernel_h; ++i)
              for (int j = 0; j < g.kernel_w; ++j) {
                const int iy = oy * g.stride_h - g.pad_top + i * g.dilation_h;
                const int ix = ox * g.stride_w - g.pad_left + j * g.dilation_w;
                if (iy < 0 || iy >= g.in_h || ix < 0 || ix >= g.in_w) continue;
                s += double(x.f32()[((std::int64_t(n) * g.in_channels + c) * g.in_h + iy) * g.in_w + ix]) *
                     w.f32()[((std::int64_t(o) * g.in_channels + c) * g.kernel_h + i) * g.kernel_w + j];
              }
          y[((std::size_t(n) * g.out_channels + o) * g.out_h + oy) * g.out_w + ox] = s;
        }
  return y;
}

}  // namespace

TEST_CASE("conv2d geometry pads 'same' like PyTorch and Keras", "[cpu][op]") {
  const auto g = Conv2dGeometry::make(1, 1, 10, 9, 1, 4, 3, 1, 1, 1, 1, true);
  CHECK(g.out_h == 10);
  CHECK(g.out_w == 9);
  CHECK(g.pad_top == 1);  // even kernel: the extra row goes to the bottom
  CHECK(g.pad_bottom == 2);
  CHECK(g.pad_left == 1);
  CHECK(g.pad_right == 1);
  const auto strided = Conv2dGeometry::make(1, 1, 7, 7, 1, 3, 3, 2, 2, 1, 1, true);
  CHECK(strided.out_h == 4);  // ceil(7 / 2)
  const auto valid = Conv2dGeometry::make(1, 1, 7, 7, 1, 3, 3, 2, 2, 1, 1, false);
  CHECK(valid.out_h == 3);
}

TEST_CASE("conv2d forward equals a direct convolution, backward equals finite differences",
          "[cpu][op]") {
  struct Case {
    const char* name;
    Conv2dGeometry g;
  };
  const Case cases[] = {
      {"3x3 same, batch 2", Conv2dGeometry::make(2, 3, 6, 7, 4, 3, 3, 1, 1, 1, 1, true)},
      {"4x4 same (asymmetric padding)", Conv2dGeometry::make(1, 2, 5, 6, 3, 4, 4, 1, 1, 1, 1, true)},
      {"2x3 stride 2x1 valid", Conv2dGeometry::make(2, 2, 7, 6, 3, 2, 3, 2, 1, 1, 1, false)},
      {"3x3 dilation 2 same", Conv2dGeometry::make(1, 2, 7, 7, 2, 3, 3, 1, 1, 2, 2, true)},
      {"1x1 batch 1 odd sizes", Conv2dGeometry::make(1, 5, 3, 1, 7, 1, 1, 1, 1, 1, 1, false)},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      const Conv2dGeometry& g = c.g;
      Tensor x = random_tensor(Shape{g.batch, g.in_channels, g.in_h, g.in_w}, 1);
      Tensor w = random_tensor(Shape{g.out_channels, g.in_channels, g.kernel_h, g.kernel_w}, 2, 0.5f);
      Tensor b = random_tensor(Shape{g.out_channels}, 3);
      Tensor y = Tensor::zeros(Shape{g.batch, g.out_channels, g.out_h, g.out_w});
      Tensor workspace = Tensor::zeros(Shape{std::int64_t(cpu::conv2d_workspace_bytes(g, omp_get_max_threads()))}, DType::u8);
      auto forward = [&] { cpu::conv2d_forward(g, x, w, b, y, workspace); };
      forward();
      const std::vector<double> expected = naive_conv2d(g, x, w, b);
      for (std::size_t i = 0; i < expected.size(); ++i) REQUIRE(y.f32()[i] == Approx(expected[i]).margin(1e-5));

      Tensor r = random_tensor(y.shape(), 4);
      Tensor dx = Tensor::zeros(x.shape()), dw = Tensor::zeros(w.shape()), db = Tensor::zeros(b.shape());
      cpu::conv2d_backward(g, x, w, Tensor(), r, dx, dw, db, workspace);
      check_gradient("dx", x, dx, y, r, forward);
      check_gradient("dw", w, dw, y, r, forward);
      check_gradient("dbias", b, db, y, r, forward);

      // Parameter gradients accumulate (+=); the input gradient is overwritten (=).
      Tensor dx_again = Tensor::zeros(x.shape());
      cpu::conv2d_backward(g, x, w, Tensor(), r, dx_again, dw, db, workspace);
      Tensor dw_once = Tensor::zeros(w.shape()), db_once = Tensor::zeros(b.shape());
      cpu::conv2d_backward(g, x, w, Tensor(), r, dx_again, dw_once, db_once, workspace);
      for (std::int64_t i = 0; i < dw.numel(); ++i) REQUIRE(dw.f32()[i] == Approx(2 * dw_once.f32()[i]));
      for (std::int64_t i = 0; i < dx.numel(); ++i) REQUIRE(dx_again.f32()[i] == dx.f32()[i]);
    }
  }
}

// torch.relu keeps NaN (so a non-finite weight reaches the loss, where training stops) and
// threshold_backward gives it no gradient; -inf and 0 give 0.
TEST_CASE("relu passes NaN forward and no gradient back, as torch.relu does", "[cpu][op]") {
  CpuBackend backend(1);
  Tensor x = Tensor::zeros(Shape{5}), y = Tensor::zeros(Shape{5}), dy = Tensor::zeros(Shape{5}),
         dx = Tensor::zeros(Shape{5});
  const float values[5] = {std::nanf(""), -1.0f, 0.0f, 2.0f, -std::numeric_limits<float>::infinity()};
  for (int i = 0; i < 5; ++i) {
    x.f32()[i] = values[i];
    dy.f32()[i] = 1.0f;
  }
  backend.activation_forward(Activation::relu, 0.0f, x, y);
  backend.activation_backward(Activation::relu, 0.0f, x, y, dy, dx);
  CHECK(std::isnan(y.f32()[0]));
  CHECK(std::vector<float>(y.f32() + 1, y.f32() + 5) == std::vector<float>{0.0f, 0.0f, 2.0f, 0.0f});
  CHECK(std::vector<float>(dx.f32(), dx.f32() + 5) == std::vector<float>{0.0f, 0.0f, 0.0f, 1.0f, 0.0f});
}

// The fused ReLU (the model's conv2d+relu node) against conv2d then the relu op: the same
// bits forward and backward, over several row tiles.
TEST_CASE("conv2d with a fused relu equals conv2d then relu, bit for bit", "[cpu][op]") {
  for (int threads : {1, 2}) {
    auto g = Conv2dGeometry::make(3, 20, 9, 300, 5, 3, 3, 1, 1, 1, 1, true);
    Tensor x = random_tensor(Shape{g.batch, g.in_channels, g.in_h, g.in_w}, 31);
    Tensor w = random_tensor(Shape{g.out_channels, g.in_channels, g.kernel_h, g.kernel_w}, 32, 0.3f);
    Tensor b = random_tensor(Shape{g.out_channels}, 33);
    const Shape out{g.batch, g.out_channels, g.out_h, g.out_w};
    CpuBackend backend(threads);
    Tensor workspace = Tensor::zeros(Shape{std::int64_t(backend.conv2d_workspace_bytes(g))}, DType::u8);
    // Unfused: conv, relu; backward: relu, conv.
    Tensor z = Tensor::zeros(out), y = Tensor::zeros(out), dy = random_tensor(out, 34), dz = Tensor::zeros(out);
    Tensor dx = Tensor::zeros(x.shape()), dw = Tensor::zeros(w.shape()), db = Tensor::zeros(b.shape());
    backend.conv2d_forward(g, x, w, b, z, workspace);
    backend.activation_forward(Activation::relu, 0.0f, z, y);
    backend.activation_backward(Activation::relu, 0.0f, z, Tensor(), dy, dz);
    backend.conv2d_backward(g, x, w, Tensor(), dz, dx, dw, db, workspace);
    // Fused.
    g.relu = true;
    Tensor fused_y = Tensor::zeros(out), fused_dy = random_tensor(out, 34);
    Tensor fused_dx = Tensor::zeros(x.shape()), fused_dw = Tensor::zeros(w.shape()), fused_db = Tensor::zeros(b.shape());
    backend.conv2d_forward(g, x, w, b, fused_y, workspace);
    backend.conv2d_backward(g, x, w, fused_y, fused_dy, fused_dx, fused_dw, fused_db, workspace);
    std::int64_t zeros = 0;
    for (std::int64_t i = 0; i < y.numel(); ++i) zeros += y.f32()[i] == 0.0f;
    CHECK(zeros > y.numel() / 4);  // the relu cuts
    CHECK(std::memcmp(fused_y.raw(), y.raw(), y.bytes()) == 0);
    CHECK(std::memcmp(fused_dy.raw(), dz.raw(), dz.bytes()) == 0);  // dy masked in place
    CHECK(std::memcmp(fused_dx.raw(), dx.raw(), dx.bytes()) == 0);
    CHECK(std::memcmp(fused_dw.raw(), dw.raw(), dw.bytes()) == 0);
    CHECK(std::memcmp(fused_db.raw(), db.raw(), db.bytes()) == 0);
  }
}

// Images wide enough that a tile of output rows is smaller than the image, and a batch
// that splits unevenly into the weight-gradient groups.
TEST_CASE("conv2d over many row tiles and image groups equals direct sums, with the same bits on 1 and 4 threads",
          "[cpu][op]") {
  const auto g = Conv2dGeometry::make(10, 40, 9, 400, 3, 3, 3, 1, 2, 1, 1, true);
  Tensor x = random_tensor(Shape{g.batch, g.in_channels, g.in_h, g.in_w}, 21);
  Tensor w = random_tensor(Shape{g.out_channels, g.in_channels, g.kernel_h, g.kernel_w}, 22, 0.5f);
  Tensor b = random_tensor(Shape{g.out_channels}, 23);
  Tensor r = random_tensor(Shape{g.batch, g.out_channels, g.out_h, g.out_w}, 24);
  // dx and dw in double, straight from the definition.
  std::vector<double> dx_expected(std::size_t(x.numel())), dw_expected(std::size_t(w.numel()));
  for (int n = 0; n < g.batch; ++n)
    for (int o = 0; o < g.out_channels; ++o)
      for (int oy = 0; oy < g.out_h; ++oy)
        for (int ox = 0; ox < g.out_w; ++ox) {
          const double d = r.f32()[((std::int64_t(n) * g.out_channels + o) * g.out_h + oy) * g.out_w + ox];
          for (int c = 0; c < g.in_channels; ++c)
            for (int i = 0; i < g.kernel_h; ++i)
              for (int j = 0; j < g.kernel_w; ++j) {
                const int iy = oy * g.stride_h - g.pad_top + i, ix = ox * g.stride_w - g.pad_left + j;
                if (iy < 0 || iy >= g.in_h || ix < 0 || ix >= g.in_w) continue;
                const std::int64_t xi = ((std::int64_t(n) * g.in_channels + c) * g.in_h + iy) * g.in_w + ix;
                const std::int64_t wi = ((std::int64_t(o) * g.in_channels + c) * g.kernel_h + i) * g.kernel_w + j;
                dx_expected[std::size_t(xi)] += d * w.f32()[wi];
                dw_expected[std::size_t(wi)] += d * x.f32()[xi];
              }
        }
  const std::vector<double> y_expected = naive_conv2d(g, x, w, b);
  std::vector<std::vector<float>> runs[2];
  for (int run = 0; run < 2; ++run) {
    CpuBackend backend(run == 0 ? 1 : 4);
    REQUIRE(backend.conv2d_workspace_bytes(g) == cpu::conv2d_workspace_bytes(g, run == 0 ? 1 : 4));
    Tensor workspace = Tensor::zeros(Shape{std::int64_t(backend.conv2d_workspace_bytes(g))}, DType::u8);
    Tensor y = Tensor::zeros(r.shape()), dx = Tensor::zeros(x.shape()), dw = Tensor::zeros(w.shape());
    Tensor db = Tensor::zeros(b.shape());
    backend.conv2d_forward(g, x, w, b, y, workspace);
    backend.conv2d_backward(g, x, w, Tensor(), r, dx, dw, db, workspace);
    for (std::size_t i = 0; i < y_expected.size(); ++i) REQUIRE(y.f32()[i] == Approx(y_expected[i]).margin(1e-4));
    for (std::size_t i = 0; i < dx_expected.size(); ++i)
      REQUIRE(dx.f32()[i] == Approx(dx_expected[i]).margin(1e-4));
    for (std::size_t i = 0; i < dw_expected.size(); ++i)
      REQUIRE(dw.f32()[i] == Approx(dw_expected[i]).epsilon(1e-4).margin(1e-3));
    for (const Tensor& t : {y, dx, dw, db}) runs[run].emplace_back(t.f32(), t.f32() + t.numel());
  }
  CHECK(runs[0] == runs[1]);
}

TEST_CASE("dense forward equals x w^T + b, backward equals finite differences", "[cpu][op]") {
  for (int batch : {1, 3}) {
    SECTION("batch " + std::to_string(batch)) {
      const DenseGeometry g{batch, 5, 4};
      Tensor x = random_tensor(Shape{batch, 5}, 10), w = random_tensor(Shape{4, 5}, 11);
      Tensor b = random_tensor(Shape{4}, 12), y = Tensor::zeros(Shape{batch, 4});
      auto forward = [&] { cpu::dense_forward(g, x, w, b, y); };
      forward();
      for (int n = 0; n < batch; ++n)
        for (int o = 0; o < 4; ++o) {
          double s = b.f32()[o];
          for (int i = 0; i < 5; ++i) s += double(x.f32()[n * 5 + i]) * w.f32()[o * 5 + i];
          REQUIRE(y.f32()[n * 4 + o] == Approx(s).margin(1e-6));
        }
      Tensor r = random_tensor(y.shape(), 13);
      Tensor dx = Tensor::zeros(x.shape()), dw = Tensor::zeros(w.shape()), db = Tensor::zeros(b.shape());
      cpu::dense_backward(g, x, w, r, dx, dw, db);
      check_gradient("dx", x, dx, y, r, forward);
      check_gradient("dw", w, dw, y, r, forward);
      check_gradient("dbias", b, db, y, r, forward);
    }
  }
}

TEST_CASE("batchnorm normalises per channel, tracks running statistics, and has exact gradients",
          "[cpu][op]") {
  const BatchNormGeometry g{3, 2, 5, 1e-5f, 0.1f};  // (N=3, C=2, H*W=5)
  Tensor x = random_tensor(Shape{3, 2, 5}, 20, 2.0f);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.f32()[i] += (i / 5) % 2 ? 3.0f : -1.0f;
  Tensor gamma = random_tensor(Shape{2}, 21), beta = random_tensor(Shape{2}, 22);
  Tensor y = Tensor::zeros(x.shape());
  Tensor running_mean = Tensor::zeros(Shape{2}), running_var = Tensor::zeros(Shape{2});
  running_var.f32()[0] = running_var.f32()[1] = 1.0f;
  Tensor saved_mean = Tensor::zeros(Shape{2}), saved_invstd = Tensor::zeros(Shape{2});
  cpu::batchnorm_forward_train(g, x, gamma, beta, y, running_mean, running_var, saved_mean, saved_invstd);
  for (int c = 0; c < 2; ++c) {
    double mean = 0, sq = 0;
    for (int n = 0; n < 3; ++n)
      for (int i = 0; i < 5; ++i) mean += x.f32()[(n * 2 + c) * 5 + i];
    mean /= 15;
    for (int n = 0; n < 3; ++n)
      for (int i = 0; i < 5; ++i) sq += std::pow(x.f32()[(n * 2 + c) * 5 + i] - mean, 2);
    const double var = sq / 15;
    CHECK(saved_mean.f32()[c] == Approx(mean));
    CHECK(saved_invstd.f32()[c] == Approx(1.0 / std::sqrt(var + 1e-5)));
    CHECK(running_mean.f32()[c] == Approx(0.1 * mean));
    CHECK(running_var.f32()[c] == Approx(0.9 + 0.1 * sq / 14));  // unbiased, as PyTorch
    for (int n = 0; n < 3; ++n)
      for (int i = 0; i < 5; ++i) {
        const int k = (n * 2 + c) * 5 + i;
        CHECK(y.f32()[k] == Approx((x.f32()[k] - mean) / std::sqrt(var + 1e-5) * gamma.f32()[c] +
                                   beta.f32()[c]).margin(1e-5));
      }
  }
  SECTION("inference uses the running statistics") {
    Tensor yi = Tensor::zeros(x.shape());
    cpu::batchnorm_forward_inference(g, x, gamma, beta, running_mean, running_var, yi);
    const float k0 = gamma.f32()[0] / std::sqrt(running_var.f32()[0] + 1e-5f);
    CHECK(yi.f32()[0] == Approx((x.f32()[0] - running_mean.f32()[0]) * k0 + beta.f32()[0]));
  }
  SECTION("gradients") {
    Tensor r = random_tensor(y.shape(), 23);
    Tensor dx = Tensor::zeros(x.shape()), dgamma = Tensor::zeros(Shape{2}), dbeta = Tensor::zeros(Shape{2});
    cpu::batchnorm_backward(g, x, Tensor(), r, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta);
    Tensor rm = Tensor::zeros(Shape{2}), rv = Tensor::zeros(Shape{2});
    auto forward = [&] {
      cpu::batchnorm_forward_train(g, x, gamma, beta, y, rm, rv, saved_mean, saved_invstd);
    };
    check_gradient("dx", x, dx, y, r, forward, 1e-2f, 5e-3);
    check_gradient("dgamma", gamma, dgamma, y, r, forward);
    check_gradient("dbeta", beta, dbeta, y, r, forward);
  }
}

// A ReLU fused into batchnorm gives the bits of batchnorm followed by relu, forward and
// backward, in the plain ops and in synchronised batchnorm's split ops.
TEST_CASE("batchnorm with a fused relu equals batchnorm then relu", "[cpu][op]") {
  BatchNormGeometry g{3, 4, 17, 1e-5f, 0.1f};
  BatchNormGeometry fused = g;
  fused.relu = true;
  const Shape shape{3, 4, 17}, channel{4};
  const Tensor x = random_tensor(shape, 40, 2.0f), gamma = random_tensor(channel, 41), beta = random_tensor(channel, 42);
  const Tensor dy = random_tensor(shape, 43);
  auto zeros = [](const Shape& s) { return Tensor::zeros(s); };
  auto values = [](const Tensor& t) { return std::vector<float>(t.f32(), t.f32() + t.numel()); };

  // Unfused: z = batchnorm(x), y = relu(z); dz = relu'(z) dy, then batchnorm backward.
  Tensor z = zeros(shape), y = zeros(shape), rm = zeros(channel), rv = zeros(channel), sm = zeros(channel),
         si = zeros(channel);
  cpu::batchnorm_forward_train(g, x, gamma, beta, z, rm, rv, sm, si);
  cpu::activation_forward(Activation::relu, 0.0f, z, y);
  Tensor dz = zeros(shape), dx = zeros(shape), dgamma = zeros(channel), dbeta = zeros(channel);
  cpu::activation_backward(Activation::relu, 0.0f, z, y, dy, dz);
  cpu::batchnorm_backward(g, x, Tensor(), dz, gamma, sm, si, dx, dgamma, dbeta);

  Tensor yf = zeros(shape), rmf = zeros(channel), rvf = zeros(channel), smf = zeros(channel), sif = zeros(channel);
  cpu::batchnorm_forward_train(fused, x, gamma, beta, yf, rmf, rvf, smf, sif);
  Tensor dxf = zeros(shape), dgammaf = zeros(channel), dbetaf = zeros(channel);
  cpu::batchnorm_backward(fused, x, yf, dy, gamma, smf, sif, dxf, dgammaf, dbetaf);
  const std::vector<float> clipped = values(y);
  REQUIRE(std::count(clipped.begin(), clipped.end(), 0.0f) > 20);
  CHECK(values(yf) == values(y));
  CHECK(values(dxf) == values(dx));
  CHECK(values(dgammaf) == values(dgamma));
  CHECK(values(dbetaf) == values(dbeta));

  Tensor yi = zeros(shape), yif = zeros(shape), zi = zeros(shape);
  cpu::batchnorm_forward_inference(g, x, gamma, beta, rm, rv, zi);
  cpu::activation_forward(Activation::relu, 0.0f, zi, yi);
  cpu::batchnorm_forward_inference(fused, x, gamma, beta, rm, rv, yif);
  CHECK(values(yif) == values(yi));

  // The split ops on one rank's sums.
  const double count = 3.0 * 17;
  Tensor sums = zeros(channel), squares = zeros(channel);
  cpu::batchnorm_sums(g, x, Tensor(), count, sums);
  cpu::batchnorm_sums(g, x, sums, count, squares);
  Tensor ys = zeros(shape);
  cpu::batchnorm_forward_from_sums(fused, x, gamma, beta, sums, squares, count, ys, rmf, rvf, smf, sif);
  CHECK(values(ys) == values(y));
  Tensor grad_sums = zeros(Shape{2, 4}), grad_sums_unfused = zeros(Shape{2, 4});
  Tensor dg1 = zeros(channel), db1 = zeros(channel), dg2 = zeros(channel), db2 = zeros(channel);
  cpu::batchnorm_backward_sums(fused, x, ys, dy, smf, sif, grad_sums, dg1, db1);
  cpu::batchnorm_backward_sums(g, x, Tensor(), dz, sm, si, grad_sums_unfused, dg2, db2);
  CHECK(values(grad_sums) == values(grad_sums_unfused));
  Tensor dxs = zeros(shape), dxs_unfused = zeros(shape);
  cpu::batchnorm_backward_from_sums(fused, x, ys, dy, gamma, smf, sif, grad_sums, count, dxs);
  cpu::batchnorm_backward_from_sums(g, x, Tensor(), dz, gamma, sm, si, grad_sums_unfused, count, dxs_unfused);
  CHECK(values(dxs) == values(dxs_unfused));
}

TEST_CASE("relu, elu and leaky_relu match their definitions away from the kink at 0", "[cpu][op]") {
  for (Activation kind : {Activation::relu, Activation::elu, Activation::leaky_relu}) {
    SECTION(activation_name(kind)) {
      const float alpha = 0.7f;  // elu's alpha, leaky_relu's negative slope
      Tensor x = random_tensor(Shape{2, 3, 4}, 30, 3.0f);
      push_away_from_zero(x, 0.05f);
      Tensor y = Tensor::zeros(x.shape());
      auto forward = [&] { cpu::activation_forward(kind, alpha, x, y); };
      forward();
      for (std::int64_t i = 0; i < x.numel(); ++i) {
        const double v = x.f32()[i];
        const double negative = kind == Activation::relu ? 0.0
                                : kind == Activation::elu ? alpha * std::expm1(v)
                                                          : double(alpha) * v;
        REQUIRE(y.f32()[i] == Approx(v > 0 ? v : negative).margin(1e-6));
      }
      Tensor r = random_tensor(y.shape(), 31), dx = Tensor::zeros(x.shape());
      // relu and leaky_relu read x only: y is left out to show it.
      const Tensor y_read = kind == Activation::elu ? y : Tensor();
      cpu::activation_backward(kind, alpha, x, y_read, r, dx);
      check_gradient("dx", x, dx, y, r, forward, 1e-2f, 5e-3);
    }
  }
}

TEST_CASE("leaky_relu follows torch.nn.LeakyReLU at 0 and with a zero slope", "[cpu][op]") {
  Tensor x = Tensor::zeros(Shape{5}), y = Tensor::zeros(Shape{5});
  Tensor dy = Tensor::zeros(Shape{5}), dx = Tensor::zeros(Shape{5});
  const float values[] = {-2.0f, -0.0f, 0.0f, 1e-30f, 3.0f};
  for (int i = 0; i < 5; ++i) {
    x.f32()[i] = values[i];
    dy.f32()[i] = 1.0f;
  }
  SECTION("default slope 0.01: x > 0 ? dy : slope * dy, so the gradient at 0 is the slope") {
    cpu::activation_forward(Activation::leaky_relu, 0.01f, x, y);
    CHECK(y.f32()[0] == -2.0f * 0.01f);
    CHECK(y.f32()[1] == 0.0f);
    CHECK(y.f32()[2] == 0.0f);
    CHECK(y.f32()[3] == 1e-30f);
    CHECK(y.f32()[4] == 3.0f);
    cpu::activation_backward(Activation::leaky_relu, 0.01f, x, Tensor(), dy, dx);
    CHECK(dx.f32()[0] == 0.01f);
    CHECK(dx.f32()[1] == 0.01f);
    CHECK(dx.f32()[2] == 0.01f);
    CHECK(dx.f32()[3] == 1.0f);
    CHECK(dx.f32()[4] == 1.0f);
  }
  SECTION("slope 0 is relu") {
    Tensor relu_y = Tensor::zeros(Shape{5}), relu_dx = Tensor::zeros(Shape{5});
    cpu::activation_forward(Activation::leaky_relu, 0.0f, x, y);
    cpu::activation_forward(Activation::relu, 0.0f, x, relu_y);
    cpu::activation_backward(Activation::leaky_relu, 0.0f, x, Tensor(), dy, dx);
    cpu::activation_backward(Activation::relu, 0.0f, x, Tensor(), dy, relu_dx);
    for (int i = 0; i < 5; ++i) {
      CHECK(y.f32()[i] == relu_y.f32()[i]);
      CHECK(dx.f32()[i] == relu_dx.f32()[i]);
    }
  }
}

TEST_CASE("sigmoid and tanh match their closed forms; gradients come from y", "[cpu][op]") {
  for (Activation kind : {Activation::sigmoid, Activation::tanh}) {
    SECTION(activation_name(kind)) {
      auto exact = [kind](double v) { return kind == Activation::sigmoid ? 1.0 / (1.0 + std::exp(-v)) : std::tanh(v); };
      // Through 0 and into the tails: a few float ulps of the double value, relative
      // (sigmoid's small values keep their relative precision: e^x / (1 + e^x) for x < 0).
      Tensor x = random_tensor(Shape{3, 5, 7}, 32, 12.0f);
      Tensor y = Tensor::zeros(x.shape());
      auto forward = [&] { cpu::activation_forward(kind, 0.0f, x, y); };
      forward();
      for (std::int64_t i = 0; i < x.numel(); ++i) {
        const double expected = exact(x.f32()[i]);
        INFO("x = " << x.f32()[i] << ": " << y.f32()[i] << " vs " << expected);
        REQUIRE(std::fabs(y.f32()[i] - expected) <= 5e-7 * std::fabs(expected) + 1e-37);
      }
      // Smooth everywhere: no kink to avoid. x in (-3, 3), where the derivatives are not
      // negligible; x is not given to backward, which reads y only.
      Tensor xs = random_tensor(Shape{2, 3, 4}, 33, 3.0f), ys = Tensor::zeros(xs.shape());
      auto forward_small = [&] { cpu::activation_forward(kind, 0.0f, xs, ys); };
      forward_small();
      Tensor r = random_tensor(ys.shape(), 34), dx = Tensor::zeros(xs.shape());
      cpu::activation_backward(kind, 0.0f, Tensor(), ys, r, dx);
      check_gradient("dx", xs, dx, ys, r, forward_small, 1e-2f, 2e-3);
    }
  }
}

TEST_CASE("sigmoid and tanh saturate to exact values without NaN or Inf", "[cpu][op]") {
  const float inf = std::numeric_limits<float>::infinity();
  const float big = std::numeric_limits<float>::max();
  const std::vector<float> values = {-inf, -big, -1000.0f, -200.0f, -110.0f, -100.0f, -88.8f,
                                     -20.0f, -17.0f, 17.0f, 20.0f, 88.8f, 100.0f, 1000.0f,
                                     big, inf};
  const std::int64_t n = std::int64_t(values.size());
  Tensor x = Tensor::zeros(Shape{n}), sig = Tensor::zeros(Shape{n}), th = Tensor::zeros(Shape{n});
  Tensor dy = Tensor::zeros(Shape{n}), dsig = Tensor::zeros(Shape{n}), dth = Tensor::zeros(Shape{n});
  for (std::int64_t i = 0; i < n; ++i) {
    x.f32()[i] = values[i];
    dy.f32()[i] = 1.0f;
  }
  cpu::activation_forward(Activation::sigmoid, 0.0f, x, sig);
  cpu::activation_forward(Activation::tanh, 0.0f, x, th);
  cpu::activation_backward(Activation::sigmoid, 0.0f, x, sig, dy, dsig);
  cpu::activation_backward(Activation::tanh, 0.0f, x, th, dy, dth);
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = values[i];
    INFO("x = " << v << ": sigmoid " << sig.f32()[i] << ", tanh " << th.f32()[i]);
    REQUIRE(std::isfinite(sig.f32()[i]));
    REQUIRE(std::isfinite(th.f32()[i]));
    REQUIRE(std::isfinite(dsig.f32()[i]));
    REQUIRE(std::isfinite(dth.f32()[i]));
    CHECK(sig.f32()[i] >= 0.0f);
    CHECK(sig.f32()[i] <= 1.0f);
    // |x| >= 17: tanh is exactly +-1 (from |x| ~ 9.01), its derivative exactly 0.
    CHECK(th.f32()[i] == (v > 0 ? 1.0f : -1.0f));
    CHECK(dth.f32()[i] == 0.0f);
    if (v > 0) {
      // e^-x is below half an ulp of 1 from x ~ 16.6: exactly 1, gradient exactly 0.
      CHECK(sig.f32()[i] == 1.0f);
      CHECK(dsig.f32()[i] == 0.0f);
    } else if (v >= -88.8f) {
      // e^x / (1 + e^x) keeps the tiny value (x = -20: 2.06e-9, x = -88.8: ~2.9e-39, subnormal
      // from x ~ -87.3) rather than rounding 1 - something to 0.
      CHECK(sig.f32()[i] > 0.0f);
      CHECK(dsig.f32()[i] == sig.f32()[i] * (1.0f - sig.f32()[i]));
    } else if (v >= -100.0f) {
      CHECK(sig.f32()[i] > 0.0f);  // subnormal, still not 0
    } else {
      // expf underflows to 0 below x ~ -103.97: exactly 0, gradient exactly 0.
      CHECK(sig.f32()[i] == 0.0f);
      CHECK(dsig.f32()[i] == 0.0f);
    }
  }
  CHECK(sig.f32()[7] == Approx(std::exp(-20.0)).epsilon(1e-6));  // x = -20
}

TEST_CASE("power_to_db is 10 log10(max(x, 1e-10)); its gradient is torch's, 0 below amin",
          "[cpu][op]") {
  // Powers log-uniform over 1e-12 .. 1e3, then the edges: 0, just below amin, amin itself
  // (torch's clamp_min passes the gradient where x >= min), 1 and 1e3.
  const std::vector<float> edges = {0.0f, 9.99e-11f, 1e-10f, 1.0f, 1e3f};
  const std::int64_t n = 200 + std::int64_t(edges.size());
  Tensor x = Tensor::zeros(Shape{n}), y = Tensor::zeros(Shape{n});
  Tensor dy = random_tensor(Shape{n}, 35), dx = Tensor::zeros(Shape{n});
  for (std::int64_t i = 0; i < 200; ++i)
    x.f32()[i] = std::pow(10.0f, -12.0f + 15.0f * uniform01(36, 0, std::uint64_t(i)));
  for (std::size_t i = 0; i < edges.size(); ++i) x.f32()[200 + std::int64_t(i)] = edges[i];
  cpu::activation_forward(Activation::power_to_db, 0.0f, x, y);
  cpu::activation_backward(Activation::power_to_db, 0.0f, x, Tensor(), dy, dx);  // reads x only
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = x.f32()[i];
    const double amin = 1e-10f;
    const double expected = 10.0 * std::log10(std::max(v, amin));
    const double expected_grad = v >= amin ? dy.f32()[i] * 10.0 / (std::log(10.0) * v) : 0.0;
    INFO("x = " << v << ": y " << y.f32()[i] << " vs " << expected << ", dx " << dx.f32()[i]
                << " vs " << expected_grad);
    // A few float ulps of the result: log10f's rounding and the float products.
    REQUIRE(std::fabs(y.f32()[i] - expected) <= 1e-6 * std::max(1.0, std::fabs(expected)));
    REQUIRE(std::fabs(dx.f32()[i] - expected_grad) <= 1e-6 * std::fabs(expected_grad));
  }
  CHECK(y.f32()[200] == -100.0f);  // 0 is clamped to amin: 10 log10(1e-10)
  CHECK(dx.f32()[200] == 0.0f);
  CHECK(dx.f32()[201] == 0.0f);
  CHECK(dx.f32()[202] != 0.0f);
  CHECK(y.f32()[203] == 0.0f);
  CHECK(y.f32()[204] == 30.0f);
  // Finite differences on x in [0.5, 4]: there the central difference's truncation error,
  // h^2 f'''(x) / 6 relative to f'(x), is at most 1.3e-4, below the tolerance 2e-3.
  Tensor xs = Tensor::zeros(Shape{24}), ys = Tensor::zeros(Shape{24}), dxs = Tensor::zeros(Shape{24});
  for (std::int64_t i = 0; i < 24; ++i) xs.f32()[i] = 0.5f + 3.5f * uniform01(37, 0, std::uint64_t(i));
  Tensor r = random_tensor(Shape{24}, 38);
  auto forward = [&] { cpu::activation_forward(Activation::power_to_db, 0.0f, xs, ys); };
  forward();
  cpu::activation_backward(Activation::power_to_db, 0.0f, xs, Tensor(), r, dxs);
  check_gradient("dx", xs, dxs, ys, r, forward, 1e-2f, 2e-3);
}

TEST_CASE("maxpool2d takes window maxima and routes gradients to them", "[cpu][op]") {
  for (auto [wh, ww, sh, sw] : {std::array<int, 4>{2, 2, 2, 2}, {3, 2, 2, 1}, {2, 3, 1, 3}}) {
    SECTION("window " + std::to_string(wh) + "x" + std::to_string(ww) + " stride " +
            std::to_string(sh) + "x" + std::to_string(sw)) {
      const auto g = Pool2dGeometry::make(2, 2, 7, 8, wh, ww, sh, sw);
      Tensor x = Tensor::zeros(Shape{2, 2, 7, 8});
      // A permutation of values 0.1 apart: no two in a window within the step.
      std::vector<int> order(x.numel());
      std::iota(order.begin(), order.end(), 0);
      for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[uniform_index(40, 0, i, i)]);
      for (std::int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = 0.1f * order[i];
      Tensor y = Tensor::zeros(Shape{2, 2, g.out_h, g.out_w});
      auto forward = [&] { cpu::maxpool2d_forward(g, x, y); };
      forward();
      for (int p = 0; p < 4; ++p)
        for (int oy = 0; oy < g.out_h; ++oy)
          for (int ox = 0; ox < g.out_w; ++ox) {
            float best = -1e30f;
            for (int i = 0; i < wh; ++i)
              for (int j = 0; j < ww; ++j)
                best = std::max(best, x.f32()[(p * 7 + oy * sh + i) * 8 + ox * sw + j]);
            REQUIRE(y.f32()[(p * g.out_h + oy) * g.out_w + ox] == best);
          }
      Tensor r = random_tensor(y.shape(), 41), dx = Tensor::zeros(x.shape());
      cpu::maxpool2d_backward(g, x, r, dx);
      check_gradient("dx", x, dx, y, r, forward, 1e-2f);
    }
  }
  SECTION("ties go to the first maximum") {
    const auto g = Pool2dGeometry::make(1, 1, 2, 2, 2, 2, 2, 2);
    Tensor x = Tensor::zeros(Shape{1, 1, 2, 2}), dy = Tensor::zeros(Shape{1, 1, 1, 1});
    Tensor dx = Tensor::zeros(x.shape());
    dy.f32()[0] = 1.0f;
    cpu::maxpool2d_backward(g, x, dy, dx);
    CHECK(dx.f32()[0] == 1.0f);
    CHECK(dx.f32()[1] + dx.f32()[2] + dx.f32()[3] == 0.0f);
  }
}

TEST_CASE("maxpool2d follows the shared window rule bit for bit: ties, NaNs, leftovers, overlaps",
          "[cpu][op]") {
  // Values on a coarse grid (many ties, +0 against -0 among them) with NaNs; plane sizes
  // that leave rows and columns past the last window; tiling windows of several shapes
  // (the unrolled path), overlapping and gapped ones (the window-by-window path); output
  // rows longer than one run of columns (256).
  for (auto [in_h, in_w, wh, ww, sh, sw] :
       {std::array<int, 6>{7, 9, 2, 2, 2, 2}, {11, 10, 3, 3, 3, 3}, {9, 13, 4, 4, 4, 4}, {5, 9, 1, 4, 1, 4},
        {9, 5, 4, 1, 4, 1}, {7, 6, 2, 1, 2, 1}, {5, 1100, 2, 2, 2, 2}, {7, 9, 3, 2, 2, 1},
        {6, 11, 2, 2, 3, 3}, {4, 600, 1, 4, 1, 2}}) {
    const auto g = Pool2dGeometry::make(2, 3, in_h, in_w, wh, ww, sh, sw);
    INFO("plane " << in_h << "x" << in_w << ", window " << wh << "x" << ww << ", stride " << sh << "x" << sw);
    Tensor x = Tensor::zeros(Shape{2, 3, in_h, in_w});
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      const float u = uniform01(42, 0, std::uint64_t(i));
      const float grid = std::floor(5.0f * u) - 2.0f;  // -2 .. 2
      x.f32()[i] = u < 0.03f ? std::nanf("") : grid == 0.0f && uniform01(45, 0, std::uint64_t(i)) < 0.5f ? -0.0f : grid;
    }
    Tensor y = Tensor::zeros(Shape{2, 3, g.out_h, g.out_w});
    cpu::maxpool2d_forward(g, x, y);
    Tensor dy = random_tensor(y.shape(), 43), dx = random_tensor(x.shape(), 44);  // dx is overwritten
    cpu::maxpool2d_backward(g, x, dy, dx);
    std::vector<float> expected_dx(std::size_t(x.numel()), 0.0f);
    const std::int64_t plane = std::int64_t(in_h) * in_w, out_plane = std::int64_t(g.out_h) * g.out_w;
    for (int p = 0; p < 6; ++p)
      for (int oy = 0; oy < g.out_h; ++oy)
        for (int ox = 0; ox < g.out_w; ++ox) {
          const int winner = max_window_argmax(g, x.f32() + p * plane, oy, ox);
          const float got = y.f32()[p * out_plane + oy * g.out_w + ox], want = x.f32()[p * plane + winner];
          REQUIRE(std::memcmp(&got, &want, sizeof(float)) == 0);
          expected_dx[std::size_t(p * plane + winner)] += dy.f32()[p * out_plane + oy * g.out_w + ox];
        }
    CHECK(std::memcmp(dx.f32(), expected_dx.data(), sizeof(float) * expected_dx.size()) == 0);
  }
}

TEST_CASE("mean pooling averages the trailing axis", "[cpu][op]") {
  Tensor x = random_tensor(Shape{3, 7}, 50), y = Tensor::zeros(Shape{3});
  auto forward = [&] { cpu::mean_pool_forward(3, 7, x, y); };
  forward();
  for (int o = 0; o < 3; ++o) {
    double s = 0;
    for (int i = 0; i < 7; ++i) s += x.f32()[o * 7 + i];
    CHECK(y.f32()[o] == Approx(s / 7));
  }
  Tensor r = random_tensor(y.shape(), 51), dx = Tensor::zeros(x.shape());
  cpu::mean_pool_backward(3, 7, r, dx);
  check_gradient("dx", x, dx, y, r, forward);
}

TEST_CASE("avgpool2d averages windows; its gradient spreads evenly", "[cpu][op]") {
  for (auto [wh, ww, sh, sw] : {std::array<int, 4>{2, 2, 2, 2}, {3, 2, 1, 2}, {7, 1, 1, 1}, {2, 2, 3, 3}}) {
    SECTION("window " + std::to_string(wh) + "x" + std::to_string(ww) + " stride " +
            std::to_string(sh) + "x" + std::to_string(sw)) {
      const auto g = Pool2dGeometry::make(2, 2, 7, 8, wh, ww, sh, sw);
      Tensor x = random_tensor(Shape{2, 2, 7, 8}, 52), y = Tensor::zeros(Shape{2, 2, g.out_h, g.out_w});
      auto forward = [&] { cpu::avgpool2d_forward(g, x, y); };
      forward();
      for (int p = 0; p < 4; ++p)
        for (int oy = 0; oy < g.out_h; ++oy)
          for (int ox = 0; ox < g.out_w; ++ox) {
            double sum = 0.0;
            for (int i = 0; i < wh; ++i)
              for (int j = 0; j < ww; ++j) sum += x.f32()[(p * 7 + oy * sh + i) * 8 + ox * sw + j];
            REQUIRE(y.f32()[(p * g.out_h + oy) * g.out_w + ox] == Approx(sum / (wh * ww)).margin(1e-7));
          }
      Tensor r = random_tensor(y.shape(), 53), dx = Tensor::zeros(x.shape());
      cpu::avgpool2d_backward(g, r, dx);
      check_gradient("dx", x, dx, y, r, forward);
    }
  }
}

TEST_CASE("strided_copy moves and adds row blocks; permute reorders axes", "[cpu][op]") {
  SECTION("a block lands in the middle of wider rows, the rest untouched") {
    Tensor src = random_tensor(Shape{3, 5}, 54), dst = random_tensor(Shape{3, 8}, 55);
    const Tensor before = random_tensor(Shape{3, 8}, 55);
    StridedCopy c;
    c.rows = 3, c.width = 4, c.src_stride = 5, c.src_offset = 1, c.dst_stride = 8, c.dst_offset = 2;
    cpu::strided_copy(c, src, dst);
    for (int r = 0; r < 3; ++r)
      for (int i = 0; i < 8; ++i) {
        const bool inside = i >= 2 && i < 6;
        REQUIRE(dst.f32()[r * 8 + i] == (inside ? src.f32()[r * 5 + i - 1] : before.f32()[r * 8 + i]));
      }
    c.accumulate = true;
    cpu::strided_copy(c, src, dst);
    CHECK(dst.f32()[8 + 3] == 2.0f * src.f32()[5 + 2]);
    CHECK(dst.f32()[8 + 7] == before.f32()[8 + 7]);
  }
  SECTION("a copy past the end of a tensor is refused") {
    Tensor src = Tensor::zeros(Shape{3, 5}), dst = Tensor::zeros(Shape{3, 5});
    StridedCopy c;
    c.rows = 3, c.width = 4, c.src_stride = 5, c.src_offset = 2, c.dst_stride = 5;
    CHECK_THROWS(cpu::strided_copy(c, src, dst));
  }
  SECTION("permute follows torch.permute and its inverse undoes it") {
    const Shape shape{2, 3, 4, 5};
    Tensor x = random_tensor(shape, 56), y = Tensor::zeros(Shape{2, 5, 3, 4}), back = Tensor::zeros(shape);
    const auto g = PermuteGeometry::make(shape, {0, 3, 1, 2});
    cpu::permute(g, x, y);
    for (int b = 0; b < 2; ++b)
      for (int c = 0; c < 3; ++c)
        for (int h = 0; h < 4; ++h)
          for (int w = 0; w < 5; ++w)
            REQUIRE(y.f32()[((b * 5 + w) * 3 + c) * 4 + h] == x.f32()[((b * 3 + c) * 4 + h) * 5 + w]);
    cpu::permute(g.inverse(), y, back);
    CHECK(std::memcmp(back.f32(), x.f32(), x.bytes()) == 0);
  }
}

TEST_CASE("scale_rows gates each row; gradients by finite differences", "[cpu][op]") {
  Tensor x = random_tensor(Shape{4, 9}, 57), s = random_tensor(Shape{4}, 58), y = Tensor::zeros(Shape{4, 9});
  auto forward = [&] { cpu::scale_rows_forward(4, 9, x, s, y); };
  forward();
  for (int i = 0; i < 36; ++i) REQUIRE(y.f32()[i] == x.f32()[i] * s.f32()[i / 9]);
  Tensor r = random_tensor(y.shape(), 59), dx = Tensor::zeros(x.shape()), ds = Tensor::zeros(s.shape());
  cpu::scale_rows_backward(4, 9, x, s, r, dx, ds);
  check_gradient("dx", x, dx, y, r, forward);
  check_gradient("dscale", s, ds, y, r, forward);
}

TEST_CASE("dropout keeps 1 - rate of the elements, scaled, with a mask fixed by its key",
          "[cpu][op]") {
  const float rate = 0.3f;
  Tensor x = Tensor::zeros(Shape{100000});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = 1.0f;
  Tensor y = Tensor::zeros(x.shape()), y2 = Tensor::zeros(x.shape()), y3 = Tensor::zeros(x.shape());
  const Tensor seed7 = step_values_tensor({.dropout_seed = 7}), seed8 = step_values_tensor({.dropout_seed = 8});
  cpu::dropout_forward(rate, seed7, 1, 0, x, y);
  cpu::dropout_forward(rate, seed7, 1, 0, x, y2);
  cpu::dropout_forward(rate, seed8, 1, 0, x, y3);
  std::int64_t kept = 0, same_as_other_key = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const float v = y.f32()[i];
    REQUIRE((v == 0.0f || v == Approx(1.0f / (1.0f - rate))));
    REQUIRE(v == y2.f32()[i]);
    kept += v != 0.0f;
    same_as_other_key += (v != 0.0f) == (y3.f32()[i] != 0.0f);
  }
  CHECK(double(kept) / x.numel() == Approx(0.7).margin(0.01));
  CHECK(double(same_as_other_key) / x.numel() < 0.65);  // 0.58 expected for independent masks
  Tensor dx = Tensor::zeros(x.shape());
  cpu::dropout_backward(rate, seed7, 1, 0, x, dx);  // dy = 1: the mask itself
  for (std::int64_t i = 0; i < x.numel(); ++i) REQUIRE(dx.f32()[i] == y.f32()[i]);
  // A data-parallel rank's tensor starting at global element 60000 draws that part of the
  // whole batch's mask.
  Tensor part = Tensor::view(x.f32(), Shape{40000}, DType::f32, Device::cpu()), part_y = Tensor::zeros(Shape{40000});
  cpu::dropout_forward(rate, seed7, 1, 60000, part, part_y);
  for (std::int64_t i = 0; i < part.numel(); ++i) REQUIRE(part_y.f32()[i] == y.f32()[60000 + i]);
  // Another salt (another dropout layer of the model) draws another mask.
  cpu::dropout_forward(rate, seed7, 2, 0, x, y3);
  std::int64_t same_as_other_salt = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) same_as_other_salt += (y.f32()[i] != 0.0f) == (y3.f32()[i] != 0.0f);
  CHECK(double(same_as_other_salt) / x.numel() < 0.65);
}

TEST_CASE("softmax cross-entropy matches its definition, with label smoothing", "[cpu][op]") {
  Tensor logits = random_tensor(Shape{3, 5}, 60, 4.0f);
  logits.f32()[0] = 80.0f;  // large logits stay finite
  Tensor targets = Tensor::zeros(Shape{3, 5});
  targets.f32()[0 * 5 + 2] = targets.f32()[1 * 5 + 0] = targets.f32()[2 * 5 + 4] = 1.0f;
  for (float smoothing : {0.0f, 0.1f}) {
    SECTION("smoothing " + std::to_string(smoothing)) {
      Tensor loss = Tensor::zeros(Shape{3}), dlogits = Tensor::zeros(logits.shape());
      cpu::softmax_cross_entropy(logits, targets, smoothing, loss, dlogits, 1.0f);
      for (int r = 0; r < 3; ++r) {
        double m = -1e300, s = 0;
        for (int k = 0; k < 5; ++k) m = std::max(m, double(logits.f32()[r * 5 + k]));
        for (int k = 0; k < 5; ++k) s += std::exp(logits.f32()[r * 5 + k] - m);
        double expected = 0;
        for (int k = 0; k < 5; ++k) {
          const double t = (1 - smoothing) * targets.f32()[r * 5 + k] + smoothing / 5;
          expected -= t * (logits.f32()[r * 5 + k] - m - std::log(s));
        }
        REQUIRE(std::isfinite(loss.f32()[r]));
        CHECK(loss.f32()[r] == Approx(expected).epsilon(1e-5));
      }
      // The gradient of sum_r w_r loss_r, checked by finite differences of the loss.
      Tensor w = random_tensor(Shape{3}, 61), weighted = Tensor::zeros(logits.shape());
      Tensor no_grad;
      Tensor l = Tensor::zeros(Shape{3});
      for (int r = 0; r < 3; ++r)
        for (int k = 0; k < 5; ++k) weighted.f32()[r * 5 + k] = dlogits.f32()[r * 5 + k] * w.f32()[r];
      logits.f32()[0] = 3.0f;  // back to a scale where a 1e-2 step is accurate
      cpu::softmax_cross_entropy(logits, targets, smoothing, l, dlogits, 1.0f);
      for (int r = 0; r < 3; ++r)
        for (int k = 0; k < 5; ++k) weighted.f32()[r * 5 + k] = dlogits.f32()[r * 5 + k] * w.f32()[r];
      check_gradient("dlogits", logits, weighted, l, w,
                     [&] { cpu::softmax_cross_entropy(logits, targets, smoothing, l, no_grad, 1.0f); },
                     1e-2f, 3e-3);
    }
  }
}

TEST_CASE("sigmoid BCE matches BCEWithLogits and stays finite for large logits", "[cpu][op]") {
  Tensor logits = random_tensor(Shape{2, 4}, 70, 3.0f);
  Tensor targets = Tensor::zeros(Shape{2, 4});
  targets.f32()[1] = targets.f32()[2] = targets.f32()[7] = 1.0f;
  Tensor loss = Tensor::zeros(Shape{2}), dlogits = Tensor::zeros(logits.shape());
  cpu::sigmoid_bce(logits, targets, loss, dlogits, 0.5f);
  for (int r = 0; r < 2; ++r) {
    double expected = 0;
    for (int k = 0; k < 4; ++k) {
      const double z = logits.f32()[r * 4 + k], y = targets.f32()[r * 4 + k];
      const double p = 1 / (1 + std::exp(-z));
      expected -= y * std::log(p) + (1 - y) * std::log(1 - p);
      CHECK(dlogits.f32()[r * 4 + k] == Approx(0.5 * (p - y) / 4).margin(1e-7));
    }
    CHECK(loss.f32()[r] == Approx(expected / 4).epsilon(1e-5));
  }
  Tensor extreme = Tensor::zeros(Shape{1, 2}), t = Tensor::zeros(Shape{1, 2}), l = Tensor::zeros(Shape{1});
  Tensor d = Tensor::zeros(Shape{1, 2});
  extreme.f32()[0] = 200.0f;
  extreme.f32()[1] = -200.0f;
  t.f32()[1] = 1.0f;
  cpu::sigmoid_bce(extreme, t, l, d, 1.0f);
  CHECK(l.f32()[0] == Approx(200.0f));  // (200 + 200) / 2
  CHECK(std::isfinite(d.f32()[0]));
}

TEST_CASE("gradient-norm clipping follows torch.nn.utils.clip_grad_norm_", "[cpu][op]") {
  Tensor g = random_tensor(Shape{200001}, 90);  // several fixed-size chunks
  double squares = 0;
  for (std::int64_t i = 0; i < g.numel(); ++i) squares += double(g.f32()[i]) * g.f32()[i];
  const double norm = std::sqrt(squares);
  const Tensor original = Tensor::zeros(g.shape());
  std::memcpy(original.raw(), g.raw(), g.bytes());
  Tensor total = Tensor::zeros(Shape{1});
  SECTION("above max_norm: scaled to max_norm") {
    cpu::clip_gradient_norm(2.0f, g, total);
    CHECK(total.f32()[0] == Approx(norm).epsilon(1e-6));
    const float coefficient = static_cast<float>(2.0 / (norm + 1e-6));
    for (std::int64_t i = 0; i < g.numel(); ++i) REQUIRE(g.f32()[i] == original.f32()[i] * coefficient);
    double clipped = 0;
    for (std::int64_t i = 0; i < g.numel(); ++i) clipped += double(g.f32()[i]) * g.f32()[i];
    CHECK(std::sqrt(clipped) == Approx(2.0).epsilon(1e-5));
  }
  SECTION("below max_norm: unchanged") {
    cpu::clip_gradient_norm(1e9f, g, total);
    CHECK(total.f32()[0] == Approx(norm).epsilon(1e-6));
    for (std::int64_t i = 0; i < g.numel(); ++i) REQUIRE(g.f32()[i] == original.f32()[i]);
  }
}

TEST_CASE("evaluation accumulators: scores, confusion counts and sums", "[cpu][op]") {
  Tensor logits = Tensor::zeros(Shape{3, 3});
  const float values[] = {2.0f, 1.0f, 0.0f, 0.0f, 0.0f, 5.0f, 1.0f, 1.0f, 0.5f};  // row 2 ties
  std::copy(std::begin(values), std::end(values), logits.f32());
  Tensor scores = Tensor::zeros(logits.shape());
  cpu::output_scores(true, logits, scores);
  CHECK(scores.f32()[0] == Approx(1.0 / (1.0 + std::exp(-2.0))));
  cpu::output_scores(false, logits, scores);
  const double z = std::exp(2.0) + std::exp(1.0) + 1.0;
  CHECK(scores.f32()[0] == Approx(std::exp(2.0) / z));
  CHECK(scores.f32()[0] + scores.f32()[1] + scores.f32()[2] == Approx(1.0));
  Tensor targets = Tensor::zeros(logits.shape());
  targets.f32()[0 * 3 + 0] = targets.f32()[1 * 3 + 1] = targets.f32()[2 * 3 + 1] = 1.0f;
  Tensor confusion = Tensor::zeros(Shape{3, 3});
  cpu::accumulate_confusion(scores, targets, 3, confusion);
  CHECK(confusion.f32()[0 * 3 + 0] == 1.0f);  // true 0, predicted 0
  CHECK(confusion.f32()[1 * 3 + 2] == 1.0f);  // true 1, predicted 2
  CHECK(confusion.f32()[1 * 3 + 0] == 1.0f);  // true 1, a tie between 0 and 1 goes to 0
  cpu::accumulate_confusion(scores, targets, 1, confusion);  // only the first row counts
  CHECK(confusion.f32()[0] == 2.0f);
  double total = 0;
  for (int i = 0; i < 9; ++i) total += confusion.f32()[i];
  CHECK(total == 4.0);
  Tensor sum = Tensor::zeros(Shape{1});
  cpu::accumulate_sum(logits, 4, sum);
  cpu::accumulate_sum(logits, 2, sum);
  CHECK(sum.f32()[0] == Approx(3.0 + 3.0));
}

TEST_CASE("Adam, AdamW and SGD follow torch.optim's update rules", "[cpu][op]") {
  const float p0 = 0.5f, g = 0.2f;
  // The step values of step `step` at learning rate `lr` (default betas).
  auto optimizer_values = [](float lr, std::int64_t step) {
    StepValues values;
    set_optimizer_step_values(values, lr, 0.9f, 0.999f, step);
    return step_values_tensor(values);
  };
  SECTION("adam with L2 weight decay, two steps") {
    AdamHyper h;
    h.weight_decay = 0.01f;
    Tensor p = Tensor::zeros(Shape{1}), grad = Tensor::zeros(Shape{1}), m = Tensor::zeros(Shape{1}),
           v = Tensor::zeros(Shape{1});
    p.f32()[0] = p0;
    grad.f32()[0] = g;
    double pd = p0, md = 0, vd = 0;
    for (int step = 1; step <= 2; ++step) {
      cpu::adam_step(h, optimizer_values(0.1f, step), p, grad, m, v);
      const double gd = g + 0.01 * pd;
      md = 0.9 * md + 0.1 * gd;
      vd = 0.999 * vd + 0.001 * gd * gd;
      const double mhat = md / (1 - std::pow(0.9, step)), vhat = vd / (1 - std::pow(0.999, step));
      pd -= 0.1 * mhat / (std::sqrt(vhat) + 1e-8);
      CHECK(p.f32()[0] == Approx(pd).epsilon(1e-6));
    }
  }
  SECTION("adamw decays the weight directly") {
    AdamHyper h;
    h.weight_decay = 0.5f;
    h.decoupled_weight_decay = true;
    Tensor p = Tensor::zeros(Shape{1}), grad = Tensor::zeros(Shape{1}), m = Tensor::zeros(Shape{1}),
           v = Tensor::zeros(Shape{1});
    p.f32()[0] = p0;
    grad.f32()[0] = g;
    cpu::adam_step(h, optimizer_values(0.1f, 1), p, grad, m, v);
    // First step: m_hat = g, v_hat = g^2, so the Adam part moves by lr * sign(g).
    CHECK(p.f32()[0] == Approx(p0 * (1 - 0.1 * 0.5) - 0.1 * g / (g + 1e-8)).epsilon(1e-6));
  }
  SECTION("sgd with nesterov momentum") {
    SgdHyper h;
    h.momentum = 0.9f;
    h.nesterov = true;
    Tensor p = Tensor::zeros(Shape{1}), grad = Tensor::zeros(Shape{1}), buf = Tensor::zeros(Shape{1});
    p.f32()[0] = p0;
    grad.f32()[0] = g;
    double pd = p0, b = 0;
    for (int step = 1; step <= 3; ++step) {
      cpu::sgd_step(h, optimizer_values(0.1f, step), p, grad, buf);
      b = step == 1 ? g : 0.9 * b + g;
      pd -= 0.1 * (g + 0.9 * b);
      CHECK(p.f32()[0] == Approx(pd).epsilon(1e-6));
    }
  }
}
