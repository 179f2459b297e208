// [cuda] The shared host/device math gives the device the host's results: bit-equal for the
// integer-hash random numbers and dropout masks, within a few float ulps for functions of
// expf/logf/sqrtf (CUDA's and glibc's last bits may differ).
#include <catch2/catch.hpp>

#include <cmath>

#include "host/math/random_math.hpp"
#include "tests/cuda/shared_math_on_device.cuh"

using cadenza::testing::evaluate_shared_math;

namespace {

void require_close(const char* what, const std::vector<float>& device,
                   const std::vector<float>& host, double tolerance) {
  INFO(what);
  REQUIRE(device.size() == host.size());
  for (std::size_t i = 0; i < host.size(); ++i) {
    REQUIRE(std::isfinite(device[i]));
    const double error = std::fabs(double(device[i]) - host[i]) / std::max(1.0, std::fabs(double(host[i])));
    if (error > tolerance) {
      INFO("element " << i << ": device " << device[i] << ", host " << host[i]);
      REQUIRE(error <= tolerance);
    }
  }
}

}  // namespace

TEST_CASE("shared math on the device equals the host's", "[cuda]") {
  const int k = 7;
  std::vector<float> inputs(7 * 301);  // odd sizes: rows of 7, a partial last block
  for (std::size_t i = 0; i < inputs.size(); ++i)
    inputs[i] = 12.0f * (cadenza::uniform01(5, 0, i) - 0.5f);
  const auto host = evaluate_shared_math(inputs, k, false);
  const auto device = evaluate_shared_math(inputs, k, true);
  CHECK(device.uniform == host.uniform);  // integer hashing: exact
  CHECK(device.dropout == host.dropout);
  CHECK(device.relu == host.relu);
  CHECK(device.relu_grad == host.relu_grad);
  // leaky_relu is a comparison and one correctly rounded multiply on both sides: exact.
  CHECK(device.leaky_relu == host.leaky_relu);
  CHECK(device.leaky_relu_grad == host.leaky_relu_grad);
  // A few float ulps: expm1f, expf/logf, sqrtf, log10f, cosf differ in the last bits.
  require_close("elu", device.elu, host.elu, 1e-6);
  require_close("elu gradient", device.elu_grad, host.elu_grad, 1e-6);
  // sigmoid (expf and a division) and tanh (tanhf) are within 2 ulps on each side; their
  // outputs lie in [-1, 1], where a few ulps are below 1e-6, and so are their gradients
  // (0.5 y(1 - y) and 0.5 (1 - y^2), the latter perhaps fused into an FMA by nvcc).
  require_close("sigmoid", device.sigmoid, host.sigmoid, 1e-6);
  require_close("sigmoid gradient", device.sigmoid_grad, host.sigmoid_grad, 1e-6);
  require_close("tanh", device.tanh, host.tanh, 1e-6);
  require_close("tanh gradient", device.tanh_grad, host.tanh_grad, 1e-6);
  require_close("normal", device.normal, host.normal, 1e-5);
  require_close("softmax cross-entropy", device.softmax_loss, host.softmax_loss, 1e-5);
  require_close("softmax gradient", device.softmax_grad, host.softmax_grad, 1e-5);
  require_close("bce", device.bce_loss, host.bce_loss, 1e-5);
  require_close("bce gradient", device.bce_grad, host.bce_grad, 1e-5);
  require_close("adam param", device.adam_param, host.adam_param, 1e-6);
  require_close("adam m", device.adam_m, host.adam_m, 1e-6);
  require_close("adam v", device.adam_v, host.adam_v, 1e-6);
  require_close("db", device.db, host.db, 1e-5);
}
