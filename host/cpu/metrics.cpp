// Evaluation accumulators on the CPU: class scores, the confusion matrix and running sums;
// the per-row math is host/math/metric_math.hpp's.
#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/metric_math.hpp"

namespace cadenza::cpu {

void output_scores(bool multi_label, const Tensor& logits, Tensor& scores) {
  CADENZA_CHECK(logits.shape().rank() == 2 && scores.shape() == logits.shape(),
                "output_scores: logits " << logits.shape().str() << ", scores " << scores.shape().str());
  const int rows = static_cast<int>(logits.dim(0)), k = static_cast<int>(logits.dim(1));
  for (int r = 0; r < rows; ++r) {
    const float* in = logits.f32() + std::int64_t(r) * k;
    float* out = scores.f32() + std::int64_t(r) * k;
    if (multi_label)
      sigmoid_row(in, k, out);
    else
      softmax_row(in, k, out);
  }
}

void accumulate_confusion(const Tensor& scores, const Tensor& targets, int count, Tensor& confusion) {
  CADENZA_CHECK(scores.shape().rank() == 2 && targets.shape() == scores.shape() && count >= 0 &&
                    count <= scores.dim(0),
                "accumulate_confusion: scores " << scores.shape().str() << ", targets "
                                                << targets.shape().str() << ", count " << count);
  const int k = static_cast<int>(scores.dim(1));
  CADENZA_CHECK(confusion.numel() == std::int64_t(k) * k, "accumulate_confusion: confusion " << confusion.shape().str());
  for (int r = 0; r < count; ++r) {
    const int truth = argmax_row(targets.f32() + std::int64_t(r) * k, k);
    const int predicted = argmax_row(scores.f32() + std::int64_t(r) * k, k);
    confusion.f32()[truth * k + predicted] += 1.0f;
  }
}

void accumulate_sum(const Tensor& values, int count, Tensor& sum) {
  CADENZA_CHECK(count >= 0 && count <= values.numel() && sum.numel() == 1,
                "accumulate_sum: " << count << " of " << values.shape().str());
  float total = sum.f32()[0];
  for (int i = 0; i < count; ++i) total += values.f32()[i];
  sum.f32()[0] = total;
}

}  // namespace cadenza::cpu
