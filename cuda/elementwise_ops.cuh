// Custom kernels for the elementwise and per-row ops no vendor library does the way the
// CPU backend does: activations, dropout, mean pooling, the fused losses, the fused
// optimizer updates and gradient clipping, and the evaluation accumulators. Each computes
// with the shared host/math functions, so its arithmetic is the CPU backend's line for
// line; nvcc may contract a multiply and an add into one fused rounding (--fmad, its
// default) where the host build does not (-ffp-contract=off), a few ulps the parity
// tolerances allow.
//
// Signatures equal cpu_ops.hpp's with the CudaContext first; every entry checks dtype,
// device and sizes, enqueues on ctx.stream and returns without synchronising.
#pragma once

#include <cstdint>

#include "cuda/cuda_context.cuh"
#include "host/ops/backend.hpp"

namespace cadenza::cuda {

void activation_forward(CudaContext& ctx, Activation kind, float alpha, const Tensor& x, Tensor& y);
void activation_backward(CudaContext& ctx, Activation kind, float alpha, const Tensor& x,
                         const Tensor& y, const Tensor& dy, Tensor& dx);

void dropout_forward(CudaContext& ctx, float rate, const Tensor& step_values, std::uint64_t salt,
                     std::uint64_t first_index, const Tensor& x, Tensor& y);
void dropout_backward(CudaContext& ctx, float rate, const Tensor& step_values, std::uint64_t salt,
                      std::uint64_t first_index, const Tensor& dy, Tensor& dx);

void mean_pool_forward(CudaContext& ctx, int outer, int inner, const Tensor& x, Tensor& y);
void mean_pool_backward(CudaContext& ctx, int outer, int inner, const Tensor& dy, Tensor& dx);

void softmax_cross_entropy(CudaContext& ctx, const Tensor& logits, const Tensor& targets,
                           float label_smoothing, Tensor& loss, Tensor& dlogits, float grad_scale);
void sigmoid_bce(CudaContext& ctx, const Tensor& logits, const Tensor& targets, Tensor& loss,
                 Tensor& dlogits, float grad_scale);

void adam_step(CudaContext& ctx, const AdamHyper& h, const Tensor& step_values, Tensor& params,
               const Tensor& grads, Tensor& m, Tensor& v);
void sgd_step(CudaContext& ctx, const SgdHyper& h, const Tensor& step_values, Tensor& params,
              const Tensor& grads, Tensor& momentum_buffer);
void clip_gradient_norm(CudaContext& ctx, float max_norm, Tensor& grads, Tensor& total_norm);

void output_scores(CudaContext& ctx, bool multi_label, const Tensor& logits, Tensor& scores);
void accumulate_confusion(CudaContext& ctx, const Tensor& scores, const Tensor& targets, int count,
                          Tensor& confusion);
void tag_metrics(CudaContext& ctx, const Tensor& scores, const Tensor& targets, int count, float threshold,
                 Tensor& metrics);
void accumulate_sum(CudaContext& ctx, const Tensor& values, int count, Tensor& sum);
void accumulate_window_scores(CudaContext& ctx, const Tensor& scores, std::int64_t first_window, int count,
                              int windows_per_clip, Tensor& clip_scores);

// y (rows, cols) += bias (cols) broadcast over rows; and dbias (cols) += sum over rows of dy.
void add_bias_rows(CudaContext& ctx, int rows, int cols, const Tensor& bias, Tensor& y);
void accumulate_bias_gradient(CudaContext& ctx, int rows, int cols, const Tensor& dy, Tensor& dbias);

}  // namespace cadenza::cuda
