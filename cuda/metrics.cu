// Evaluation accumulators on the GPU: class scores (one thread per row), the confusion
// matrix (one thread per row; float atomics adding 1.0 are exact below 2^24, so the
// counts do not depend on the order), running sums (one thread, in index order, as the
// CPU), multiframe clip scores (one thread per (clip row, class) adding its windows'
// terms in window order, as the CPU: no atomics, bit-equal results) and the per-tag
// metrics (one block per tag), all with host/math/metric_math.hpp's row math.
//
// The per-tag ranking metrics need no sort: each positive example is ranked against its
// whole column (O(n) per example, O(n^2 / threads) per tag, a few milliseconds for tens of
// thousands of clips). Counts and ROC-AUC terms are integers or halves, exact in double,
// so those results do not depend on the summation order; average precision sums
// ratios, in the fixed order of block_sum_in_order.
#include "cuda/block_reduce.cuh"
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

// Block `tag`: each thread ranks examples threadIdx.x, + blockDim.x, ... of the column.
__global__ void tag_metrics_kernel(const float* scores, const float* targets, int n, int k, float threshold,
                                   float* metrics) {
  const int tag = static_cast<int>(blockIdx.x);
  const float* column = scores + tag;
  const float* labels = targets + tag;
  double sums[6] = {};  // ROC-AUC terms, AP terms, true positives, predicted, positives, NaN scores
  for (int i = static_cast<int>(threadIdx.x); i < n; i += static_cast<int>(blockDim.x)) {
    const float score = column[std::int64_t(i) * k];
    const bool positive = is_positive_target(labels[std::int64_t(i) * k]);
    const bool predicted = predicted_positive(score, threshold);
    sums[2] += predicted && positive;
    sums[3] += predicted;
    sums[4] += positive;
    if (isnan(score)) {
      sums[5] += 1.0;
    } else if (positive) {
      const ColumnRank rank = rank_in_column(column, labels, n, k, score);
      sums[0] += roc_auc_term(rank);
      sums[1] += average_precision_term(rank);
    }
  }
  for (double& sum : sums) sum = block_sum_in_order(sum);
  if (threadIdx.x != 0) return;
  const bool has_nan = sums[5] > 0.0;
  const double positives = sums[4], negatives = double(n) - positives;
  metrics[kTagRocAuc * k + tag] = has_nan ? NAN : roc_auc_from_terms(sums[0], positives, negatives);
  metrics[kTagAveragePrecision * k + tag] = has_nan ? NAN : average_precision_from_terms(sums[1], positives);
  metrics[kTagTruePositives * k + tag] = static_cast<float>(sums[2]);
  metrics[kTagPredictedPositives * k + tag] = static_cast<float>(sums[3]);
  metrics[kTagPositives * k + tag] = static_cast<float>(positives);
  metrics[kTagNanScores * k + tag] = static_cast<float>(sums[5]);
}

// Thread (j, c) of clips * k: clip row first_clip + j, class c, adds the terms of the
// clip's windows that are rows of this batch, in window order.
__global__ void window_scores_kernel(const float* scores, std::int64_t first_window, int count,
                                     int windows_per_clip, int k, std::int64_t first_clip,
                                     std::int64_t clips, float* clip_scores) {
  const std::int64_t t = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= clips * k) return;
  const std::int64_t clip = first_clip + t / k;
  const int c = static_cast<int>(t % k);
  const std::int64_t begin = max(clip * windows_per_clip, first_window);
  const std::int64_t end = min((clip + 1) * windows_per_clip, first_window + count);
  float total = clip_scores[clip * k + c];
  for (std::int64_t w = begin; w < end; ++w)
    total += window_score_term(scores[(w - first_window) * k + c], windows_per_clip);
  clip_scores[clip * k + c] = total;
}

void launch_window_scores(cudaStream_t stream, const float* scores, std::int64_t first_window, int count,
                          int windows_per_clip, int k, float* clip_scores) {
  if (count == 0 || k == 0) return;
  const std::int64_t first_clip = clip_of_window(first_window, windows_per_clip);
  const std::int64_t clips = clip_of_window(first_window + count - 1, windows_per_clip) - first_clip + 1;
  window_scores_kernel<<<blocks_for(clips * k, 128), 128, 0, stream>>>(
      scores, first_window, count, windows_per_clip, k, first_clip, clips, clip_scores);
  CADENZA_CUDA_CHECK(cudaGetLastError());
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

void tag_metrics(CudaContext& ctx, const Tensor& scores, const Tensor& targets, int count, float threshold,
                 Tensor& metrics) {
  CADENZA_CHECK(scores.shape().rank() == 2 && targets.shape() == scores.shape() && count >= 0 &&
                    count <= scores.dim(0),
                "tag_metrics: scores " << scores.shape().str() << ", targets " << targets.shape().str()
                                       << ", count " << count);
  const int k = static_cast<int>(scores.dim(1));
  CADENZA_CHECK(metrics.shape() == Shape({std::int64_t(kTagMetricRows), k}),
                "tag_metrics: metrics " << metrics.shape().str() << " for " << k << " tags");
  check_device_tensor(ctx, scores, "tag_metrics", "scores", scores.numel());
  check_device_tensor(ctx, targets, "tag_metrics", "targets", targets.numel());
  check_device_tensor(ctx, metrics, "tag_metrics", "metrics", metrics.numel());
  if (k == 0) return;
  tag_metrics_kernel<<<k, row_reduction_threads(count), 0, ctx.stream>>>(
      static_cast<const float*>(scores.raw()), static_cast<const float*>(targets.raw()), count, k, threshold,
      static_cast<float*>(metrics.raw()));
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void accumulate_sum(CudaContext& ctx, const Tensor& values, int count, Tensor& sum) {
  CADENZA_CHECK(count >= 0 && count <= values.numel(), "accumulate_sum: " << count << " of " << values.shape().str());
  check_device_tensor(ctx, values, "accumulate_sum", "values", values.numel());
  check_device_tensor(ctx, sum, "accumulate_sum", "sum", 1);
  sum_kernel<<<1, 1, 0, ctx.stream>>>(static_cast<const float*>(values.raw()), count, static_cast<float*>(sum.raw()));
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void accumulate_window_scores(CudaContext& ctx, const Tensor& scores, std::int64_t first_window, int count,
                              int windows_per_clip, Tensor& clip_scores) {
  const char* op = "accumulate_window_scores";
  CADENZA_CHECK(scores.shape().rank() == 2 && count >= 0 && count <= scores.dim(0) && first_window >= 0 &&
                    windows_per_clip >= 1,
                op << ": scores " << scores.shape().str() << ", first_window " << first_window << ", count "
                   << count << ", windows_per_clip " << windows_per_clip);
  const int k = static_cast<int>(scores.dim(1));
  CADENZA_CHECK(clip_scores.shape().rank() == 2 && clip_scores.dim(1) == k,
                op << ": clip_scores " << clip_scores.shape().str() << " for scores " << scores.shape().str());
  check_device_tensor(ctx, scores, op, "scores", scores.numel());
  check_device_tensor(ctx, clip_scores, op, "clip_scores", clip_scores.numel());
  if (count == 0) return;
  const std::int64_t last_clip = clip_of_window(first_window + count - 1, windows_per_clip);
  CADENZA_CHECK(last_clip < clip_scores.dim(0), op << ": window " << first_window + count - 1 << " is in clip "
                                                   << last_clip << ", clip_scores " << clip_scores.shape().str());
  launch_window_scores(ctx.stream, static_cast<const float*>(scores.raw()), first_window, count, windows_per_clip,
                       k, static_cast<float*>(clip_scores.raw()));
}

}  // namespace cadenza::cuda
