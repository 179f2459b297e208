// Evaluation accumulators on the GPU: class scores (one thread per row), the confusion
// matrix (one thread per row; float atomics adding 1.0 are exact below 2^24, so the
// counts do not depend on the order) and running sums (one thread, in index order, as the
// CPU), all with host/math/metric_math.hpp's row math.
#include "cuda/check.cuh"
#include "cuda/elementwise_ops.cuh"
#include "host/math/metric_math.hpp"

namespace cadenza::cuda {
namespace {

__global__ void output_scores_kernel(bool multi_label, const float* logits, float* scores, int rows, int k) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  if (multi_label)
    sigmoid_row(logits + std::int64_t(r) * k, k, scores + std::int64_t(r) * k);
  else
    softmax_row(logits + std::int64_t(r) * k, k, scores + std::int64_t(r) * k);
}

__global__ void confusion_kernel(const float* scores, const float* targets, int count, int k, float* confusion) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= count) return;
  const int truth = argmax_row(targets + std::int64_t(r) * k, k);
  const int predicted = argmax_row(scores + std::int64_t(r) * k, k);
  atomicAdd(confusion + truth * k + predicted, 1.0f);
}

__global__ void sum_kernel(const float* values, int count, float* sum) {
  float total = sum[0];
  for (int i = 0; i < count; ++i) total += values[i];
  sum[0] = total;
}

}  // namespace

void output_scores(CudaContext& ctx, bool multi_label, const Tensor& logits, Tensor& scores) {
  CADENZA_CHECK(logits.shape().rank() == 2, "output_scores: logits " << logits.shape().str());
  const int rows = static_cast<int>(logits.dim(0)), k = static_cast<int>(logits.dim(1));
  check_device_tensor(ctx, logits, "output_scores", "logits", logits.numel());
  check_device_tensor(ctx, scores, "output_scores", "scores", logits.numel());
  if (rows == 0) return;
  output_scores_kernel<<<blocks_for(rows, 128), 128, 0, ctx.stream>>>(
      multi_label, static_cast<const float*>(logits.raw()), static_cast<float*>(scores.raw()), rows, k);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void accumulate_confusion(CudaContext& ctx, const Tensor& scores, const Tensor& targets, int count,
                          Tensor& confusion) {
  CADENZA_CHECK(scores.shape().rank() == 2 && count >= 0 && count <= scores.dim(0),
                "accumulate_confusion: scores " << scores.shape().str() << ", count " << count);
  const int k = static_cast<int>(scores.dim(1));
  check_device_tensor(ctx, scores, "accumulate_confusion", "scores", scores.numel());
  check_device_tensor(ctx, targets, "accumulate_confusion", "targets", scores.numel());
  check_device_tensor(ctx, confusion, "accumulate_confusion", "confusion", std::int64_t(k) * k);
  if (count == 0) return;
  confusion_kernel<<<blocks_for(count, 128), 128, 0, ctx.stream>>>(
      static_cast<const float*>(scores.raw()), static_cast<const float*>(targets.raw()), count, k,
      static_cast<float*>(confusion.raw()));
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void accumulate_sum(CudaContext& ctx, const Tensor& values, int count, Tensor& sum) {
  CADENZA_CHECK(count >= 0 && count <= values.numel(), "accumulate_sum: " << count << " of " << values.shape().str());
  check_device_tensor(ctx, values, "accumulate_sum", "values", values.numel());
  check_device_tensor(ctx, sum, "accumulate_sum", "sum", 1);
  sum_kernel<<<1, 1, 0, ctx.stream>>>(static_cast<const float*>(values.raw()), count, static_cast<float*>(sum.raw()));
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace cadenza::cuda
