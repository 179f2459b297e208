// The CPU implementations of the Backend ops, as free functions in namespace cadenza::cpu.
//
// Each op lives in the file of its name (conv2d.cpp, batchnorm.cpp, ...). Signatures equal
// the Backend's; loops run on OpenMP's threads, set by CpuBackend. All tensors
// are CPU, f32, contiguous; conventions (= vs +=, optional tensors) are backend.hpp's.
// Every loop that sums in floating point sums in a fixed order that does not depend on the
// thread count, so results are reproducible run to run.
#pragma once

#include <cstddef>
#include <cstdint>

#include "host/core/tensor.hpp"
#include "host/ops/backend.hpp"
#include "host/ops/geometry.hpp"

namespace cadenza::cpu {

// conv2d's workspace when run on at most `threads` threads (conv2d.cpp).
std::size_t conv2d_workspace_bytes(const Conv2dGeometry& g, int threads);
void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                    Tensor& y, Tensor& workspace);
void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& y, Tensor& dy,
                     Tensor& dx, Tensor& dw, Tensor& dbias, Tensor& workspace);

void batchnorm_forward_train(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                             const Tensor& beta, Tensor& y, Tensor& running_mean,
                             Tensor& running_var, Tensor& saved_mean, Tensor& saved_invstd);
void batchnorm_forward_inference(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                                 const Tensor& beta, const Tensor& running_mean,
                                 const Tensor& running_var, Tensor& y);
void batchnorm_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy,
                        const Tensor& gamma, const Tensor& saved_mean, const Tensor& saved_invstd,
                        Tensor& dx, Tensor& dgamma, Tensor& dbeta);
void batchnorm_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& sums, double count, Tensor& out);
void batchnorm_forward_from_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                 const Tensor& sums, const Tensor& squares, double count, Tensor& y,
                                 Tensor& running_mean, Tensor& running_var, Tensor& saved_mean, Tensor& saved_invstd);
void batchnorm_backward_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& saved_mean,
                             const Tensor& saved_invstd, Tensor& sums, Tensor& dgamma, Tensor& dbeta);
void batchnorm_backward_from_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& gamma,
                                  const Tensor& saved_mean, const Tensor& saved_invstd, const Tensor& sums,
                                  double count, Tensor& dx);

void activation_forward(Activation kind, float alpha, const Tensor& x, Tensor& y);
void activation_backward(Activation kind, float alpha, const Tensor& x, const Tensor& y,
                         const Tensor& dy, Tensor& dx);

void maxpool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y);
void maxpool2d_backward(const Pool2dGeometry& g, const Tensor& x, const Tensor& dy, Tensor& dx);
void mean_pool_forward(int outer, int inner, const Tensor& x, Tensor& y);
void mean_pool_backward(int outer, int inner, const Tensor& dy, Tensor& dx);
void avgpool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y);
void avgpool2d_backward(const Pool2dGeometry& g, const Tensor& dy, Tensor& dx);

void strided_copy(const StridedCopy& c, const Tensor& src, Tensor& dst);
void permute(const PermuteGeometry& g, const Tensor& x, Tensor& y);

void scale_rows_forward(int rows, int inner, const Tensor& x, const Tensor& scale, Tensor& y);
void scale_rows_backward(int rows, int inner, const Tensor& x, const Tensor& scale, const Tensor& dy,
                         Tensor& dx, Tensor& dscale);

void dropout_forward(float rate, const Tensor& step_values, std::uint64_t salt, std::uint64_t first_index,
                     const Tensor& x, Tensor& y);
void dropout_backward(float rate, const Tensor& step_values, std::uint64_t salt, std::uint64_t first_index,
                      const Tensor& dy, Tensor& dx);

void dense_forward(const DenseGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                   Tensor& y);
void dense_backward(const DenseGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy,
                    Tensor& dx, Tensor& dw, Tensor& dbias);

std::size_t harmonic_filterbank_workspace_bytes(const HarmonicFilterbankGeometry& g);
void harmonic_filterbank_forward(const HarmonicFilterbankGeometry& g, const Tensor& spectrogram,
                                 const Tensor& q, Tensor& filterbank, Tensor& y);
void harmonic_filterbank_backward(const HarmonicFilterbankGeometry& g, const Tensor& spectrogram,
                                  const Tensor& q, const Tensor& filterbank, const Tensor& dy,
                                  Tensor& dx, Tensor& dq, Tensor& workspace);

std::size_t recurrent_reserve_bytes(const RecurrentGeometry& g);
std::size_t recurrent_workspace_bytes(const RecurrentGeometry& g);
void recurrent_forward(const RecurrentGeometry& g, const RecurrentWeights& weights, const Tensor& x,
                       Tensor& y, Tensor& reserve, Tensor& workspace);
void recurrent_backward(const RecurrentGeometry& g, const RecurrentWeights& weights, const Tensor& x,
                        const Tensor& y, const Tensor& dy, Tensor& reserve, Tensor& dx,
                        RecurrentWeights& dweights, Tensor& workspace);

void softmax_cross_entropy(const Tensor& logits, const Tensor& targets, float label_smoothing,
                           Tensor& loss, Tensor& dlogits, float grad_scale);
void sigmoid_bce(const Tensor& logits, const Tensor& targets, Tensor& loss, Tensor& dlogits,
                 float grad_scale);

void adam_step(const AdamHyper& h, const Tensor& step_values, Tensor& params, const Tensor& grads,
               Tensor& m, Tensor& v);
void sgd_step(const SgdHyper& h, const Tensor& step_values, Tensor& params, const Tensor& grads,
              Tensor& momentum_buffer);
void clip_gradient_norm(float max_norm, Tensor& grads, Tensor& total_norm);

void output_scores(bool multi_label, const Tensor& logits, Tensor& scores);
void accumulate_confusion(const Tensor& scores, const Tensor& targets, int count, Tensor& confusion);
void tag_metrics(const Tensor& scores, const Tensor& targets, int count, float threshold, Tensor& metrics);
void accumulate_sum(const Tensor& values, int count, Tensor& sum);
void accumulate_window_scores(const Tensor& scores, std::int64_t first_window, int count, int windows_per_clip,
                              Tensor& clip_scores);

void augment_waveform(const WaveformAugment& a, const Tensor& step_values, const Tensor& pcm, Tensor& out);
void mask_spectrogram(const SpectrogramMask& m, const Tensor& step_values, Tensor& features);

}  // namespace cadenza::cpu
