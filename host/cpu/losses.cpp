// Softmax cross-entropy and sigmoid BCE on the CPU, one row per example; the math is
// host/math/loss_math.hpp's.
#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/loss_math.hpp"

namespace cadenza::cpu {
namespace {

void check(const Tensor& logits, const Tensor& targets, const Tensor& loss, const Tensor& dlogits) {
  CADENZA_CHECK(logits.shape().rank() == 2 && logits.shape() == targets.shape(),
                "loss logits " << logits.shape().str() << " vs targets " << targets.shape().str());
  CADENZA_CHECK(loss.numel() == logits.dim(0), "loss output " << loss.shape().str());
  CADENZA_CHECK(!dlogits.defined() || dlogits.shape() == logits.shape(),
                "loss gradient " << dlogits.shape().str());
}

}  // namespace

void softmax_cross_entropy(const Tensor& logits, const Tensor& targets, float label_smoothing,
                           Tensor& loss, Tensor& dlogits, float grad_scale) {
  check(logits, targets, loss, dlogits);
  const int rows = static_cast<int>(logits.dim(0)), k = static_cast<int>(logits.dim(1));
  const bool want_grad = dlogits.defined();
  for (int r = 0; r < rows; ++r) {
    const std::int64_t at = std::int64_t(r) * k;
    loss.f32()[r] = softmax_cross_entropy_row(logits.f32() + at, targets.f32() + at, k,
                                              label_smoothing, grad_scale,
                                              want_grad ? dlogits.f32() + at : nullptr);
  }
}

void sigmoid_bce(const Tensor& logits, const Tensor& targets, Tensor& loss, Tensor& dlogits,
                 float grad_scale) {
  check(logits, targets, loss, dlogits);
  const int rows = static_cast<int>(logits.dim(0)), k = static_cast<int>(logits.dim(1));
  const bool want_grad = dlogits.defined();
  for (int r = 0; r < rows; ++r) {
    const std::int64_t at = std::int64_t(r) * k;
    loss.f32()[r] = sigmoid_bce_row(logits.f32() + at, targets.f32() + at, k, grad_scale,
                                    want_grad ? dlogits.f32() + at : nullptr);
  }
}

}  // namespace cadenza::cpu
