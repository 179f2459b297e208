// Recurrent layers (RNN tanh/relu, GRU, LSTM) on the CPU: SGEMMs around the per-unit math
// of host/math/recurrent_math.hpp, one direction after the other.
//
// Forward, per direction: one GEMM projects the inputs of all steps (B*T rows) through
// W_ih; then, step by step in the direction's order, one GEMM projects the previous state
// through W_hh and the unit math gives the new state, written straight into y. Backward
// through time runs the steps in reverse: the unit math turns dh into the gates'
// pre-activation gradients (kept for all steps), one GEMM per step carries dh back through
// W_hh; then one GEMM each gives dW_ih, dW_hh and dx over all steps at once.
//
// Reserve (f32): (D, T, B, S*H), the S values per unit of recurrent_math.hpp that each step
// saves. The previous state is read from y (the reverse direction's "previous" step is t+1).
// Workspace (f32), carved up per call, so the step allocates nothing:
//   forward:  input projection (B*T, G*H) | recurrent projection (B, G*H)
//   backward: d input pre-activations (B*T, G*H) | d recurrent pre-activations (B*T, G*H),
//             GRU only (the other cells share the first) | previous states (B*T, H) |
//             dh carried between steps (2, B, H) | dc carried (2, B, H), LSTM only
// Deterministic whatever the thread count: element loops write disjoint elements, bias
// gradients sum rows in index order in double, and every GEMM goes through blocked_sgemm,
// which cuts the output into blocks of a fixed size and computes each with one
// single-threaded SGEMM over the whole inner dimension (OpenBLAS alone picks other kernels
// and splits for other thread counts, which changes the last bits).
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/math/recurrent_math.hpp"

namespace cadenza::cpu {
namespace {

// Sizes of one call, in elements.
struct Extents {
  explicit Extents(const RecurrentGeometry& g)
      : B(g.batch), T(g.steps), In(g.input_size), H(g.hidden_size), D(g.directions()),
        GH(g.gates() * g.hidden_size), Y(g.output_size()), S(recurrent_saved_values(g.cell)),
        rows(std::int64_t(g.batch) * g.steps) {}
  int B, T, In, H, D, GH, Y, S;
  std::int64_t rows;  // B*T: one per (example, step), in x's order

  std::int64_t forward_floats() const { return rows * GH + std::int64_t(B) * GH; }
  std::int64_t backward_floats(RecurrentCell cell) const {
    const std::int64_t gates = rows * GH * (cell == RecurrentCell::gru ? 2 : 1);
    const std::int64_t carries = std::int64_t(B) * H * (cell == RecurrentCell::lstm ? 4 : 2);
    return gates + rows * H + carries;
  }
  // The step that feeds step t in direction d, valid after the direction's first step.
  int previous_step(int d, int t) const { return d == 0 ? t - 1 : t + 1; }
  int step_at(int d, int s) const { return d == 0 ? s : T - 1 - s; }
};

// C (m, n) = alpha op(A) op(B) + beta C, row-major, as cblas_sgemm; computed in blocks of
// kGemmBlock rows (or columns, when n > m) of C, one SGEMM each on OpenMP's threads. The
// blocks depend on the sizes only, and OpenBLAS runs single-threaded inside a parallel
// region of several threads (with one OpenMP thread, CpuBackend has set OpenBLAS to one
// thread too), so the result does not depend on the thread count.
constexpr int kGemmBlock = 64;

void blocked_sgemm(CBLAS_TRANSPOSE trans_a, CBLAS_TRANSPOSE trans_b, int m, int n, int k, float alpha,
                   const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  const bool by_rows = m >= n;
  const int extent = by_rows ? m : n;
  const int blocks = (extent + kGemmBlock - 1) / kGemmBlock;
#pragma omp parallel for schedule(static)
  for (int block = 0; block < blocks; ++block) {
    const int first = block * kGemmBlock, count = std::min(kGemmBlock, extent - first);
    if (by_rows) {
      const float* a_rows = a + (trans_a == CblasNoTrans ? std::int64_t(first) * lda : first);
      cblas_sgemm(CblasRowMajor, trans_a, trans_b, count, n, k, alpha, a_rows, lda, b, ldb, beta,
                  c + std::int64_t(first) * ldc, ldc);
    } else {
      const float* b_columns = b + (trans_b == CblasNoTrans ? first : std::int64_t(first) * ldb);
      cblas_sgemm(CblasRowMajor, trans_a, trans_b, m, count, k, alpha, a, lda, b_columns, ldb, beta,
                  c + first, ldc);
    }
  }
}

void check_arguments(const RecurrentGeometry& g, const RecurrentWeights& w, const Tensor& x,
                     const Tensor& y, const Tensor& reserve, const Tensor& workspace) {
  const Extents e(g);
  CADENZA_CHECK(g.batch > 0 && g.steps > 0 && g.input_size > 0 && g.hidden_size > 0,
                "recurrent geometry batch " << g.batch << ", steps " << g.steps << ", input "
                                            << g.input_size << ", hidden " << g.hidden_size);
  CADENZA_CHECK(x.numel() == e.rows * e.In, "recurrent input " << x.shape().str());
  CADENZA_CHECK(y.numel() == e.rows * e.Y, "recurrent output " << y.shape().str());
  for (int d = 0; d < e.D; ++d) {
    CADENZA_CHECK(w[d].weight_ih.shape() == (Shape{e.GH, e.In}) &&
                      w[d].weight_hh.shape() == (Shape{e.GH, e.H}) &&
                      w[d].bias_ih.shape() == (Shape{e.GH}) && w[d].bias_hh.shape() == (Shape{e.GH}),
                  "recurrent weights of direction " << d << ": " << w[d].weight_ih.shape().str() << ", "
                                                    << w[d].weight_hh.shape().str() << ", "
                                                    << w[d].bias_ih.shape().str() << ", "
                                                    << w[d].bias_hh.shape().str());
  }
  CADENZA_CHECK(reserve.bytes() >= recurrent_reserve_bytes(g), "recurrent reserve of " << reserve.bytes() << " bytes");
  CADENZA_CHECK(workspace.bytes() >= recurrent_workspace_bytes(g),
                "recurrent workspace of " << workspace.bytes() << " bytes");
}

// Every one of `rows` rows of `out` (row length n) = bias.
void fill_rows(float* out, std::int64_t rows, int n, const float* bias) {
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) std::memcpy(out + r * n, bias, sizeof(float) * std::size_t(n));
}

// bias (n) += the column sums of m (rows, n), each summed in row order in double.
void add_column_sums(const float* m, std::int64_t rows, int n, float* bias) {
#pragma omp parallel for schedule(static)
  for (int k = 0; k < n; ++k) {
    double sum = 0.0;
    for (std::int64_t r = 0; r < rows; ++r) sum += m[r * n + k];
    bias[k] += static_cast<float>(sum);
  }
}

void forward_direction(const RecurrentGeometry& g, const Extents& e, int d,
                       const RecurrentDirectionWeights& w, const float* x, float* y, float* reserve,
                       float* workspace) {
  float* input_pre = workspace;                   // (B*T, GH): W_ih x + b_ih
  float* recurrent_pre = workspace + e.rows * e.GH;  // (B, GH): W_hh h_prev + b_hh
  fill_rows(input_pre, e.rows, e.GH, w.bias_ih.f32());
  blocked_sgemm(CblasNoTrans, CblasTrans, int(e.rows), e.GH, e.In, 1.0f, x, e.In,
                w.weight_ih.f32(), e.In, 1.0f, input_pre, e.GH);
  const std::int64_t saved_row = std::int64_t(e.S) * e.H;  // per example
  const std::int64_t y_row = std::int64_t(e.T) * e.Y;      // y's stride between examples
  for (int s = 0; s < e.T; ++s) {
    const int t = e.step_at(d, s), tp = e.previous_step(d, t);
    const bool first = s == 0;
    fill_rows(recurrent_pre, e.B, e.GH, w.bias_hh.f32());
    if (!first) {
      blocked_sgemm(CblasNoTrans, CblasTrans, e.B, e.GH, e.H, 1.0f,
                    y + std::int64_t(tp) * e.Y + std::int64_t(d) * e.H, int(y_row), w.weight_hh.f32(), e.H,
                    1.0f, recurrent_pre, e.GH);
    }
    float* saved_t = reserve + (std::int64_t(d) * e.T + t) * e.B * saved_row;
    const float* saved_prev = first ? nullptr : reserve + (std::int64_t(d) * e.T + tp) * e.B * saved_row;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < e.B; ++b) {
      for (int j = 0; j < e.H; ++j) {
        const float* gi = input_pre + (std::int64_t(b) * e.T + t) * e.GH + j;
        const float* gh = recurrent_pre + std::int64_t(b) * e.GH + j;
        float* saved = saved_t + b * saved_row + j;
        float* h = y + b * y_row + std::int64_t(t) * e.Y + std::int64_t(d) * e.H + j;
        switch (g.cell) {
          case RecurrentCell::rnn_tanh:
          case RecurrentCell::rnn_relu:
            *h = rnn_unit_forward(g.cell == RecurrentCell::rnn_relu, gi[0], gh[0], saved);
            break;
          case RecurrentCell::gru: {
            const float h_prev = first ? 0.0f : h[std::int64_t(tp - t) * e.Y];
            *h = gru_unit_forward(gi, gh, e.H, h_prev, saved);
            break;
          }
          case RecurrentCell::lstm: {
            const float c_prev = first ? 0.0f : saved_prev[b * saved_row + 4 * e.H + j];
            *h = lstm_unit_forward(gi, gh, e.H, c_prev, saved);
            break;
          }
        }
      }
    }
  }
}

// Adds direction d's share of dx (written with = by direction 0, added by direction 1).
void backward_direction(const RecurrentGeometry& g, const Extents& e, int d,
                        const RecurrentDirectionWeights& w, const float* x, const float* y,
                        const float* dy, const float* reserve, float* dx,
                        RecurrentDirectionWeights& dw, float* workspace) {
  float* d_input_pre = workspace;  // (B*T, GH)
  float* cursor = workspace + e.rows * e.GH;
  float* d_recurrent_pre = d_input_pre;  // (B*T, GH); its own buffer for the GRU only
  if (g.cell == RecurrentCell::gru) {
    d_recurrent_pre = cursor;
    cursor += e.rows * e.GH;
  }
  float* previous_h = cursor;  // (B*T, H): the state each step read, zero for the first
  cursor += e.rows * e.H;
  const std::int64_t carry = std::int64_t(e.B) * e.H;
  float* dh_carry[2] = {cursor, cursor + carry};  // reaching the current / the previous step
  cursor += 2 * carry;
  const bool lstm = g.cell == RecurrentCell::lstm;
  float* dc_carry[2] = {lstm ? cursor : nullptr, lstm ? cursor + carry : nullptr};
  std::fill(dh_carry[0], dh_carry[0] + carry, 0.0f);
  if (lstm) std::fill(dc_carry[0], dc_carry[0] + carry, 0.0f);

  const std::int64_t saved_row = std::int64_t(e.S) * e.H;
  const std::int64_t y_row = std::int64_t(e.T) * e.Y;
  for (int s = e.T - 1; s >= 0; --s) {
    const int t = e.step_at(d, s), tp = e.previous_step(d, t);
    const bool first = s == 0;
    const float* saved_t = reserve + (std::int64_t(d) * e.T + t) * e.B * saved_row;
    const float* saved_prev = first ? nullptr : reserve + (std::int64_t(d) * e.T + tp) * e.B * saved_row;
    const float* dh_in = dh_carry[0];
    const float* dc_in = dc_carry[0];
    float* dh_out = dh_carry[1];
    float* dc_out = dc_carry[1];
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < e.B; ++b) {
      for (int j = 0; j < e.H; ++j) {
        const std::int64_t row = std::int64_t(b) * e.T + t;
        const std::int64_t at = b * y_row + std::int64_t(t) * e.Y + std::int64_t(d) * e.H + j;
        const std::int64_t unit = std::int64_t(b) * e.H + j;
        const float dh = dy[at] + dh_in[unit];
        const float h_prev = first ? 0.0f : y[at + std::int64_t(tp - t) * e.Y];
        const float* saved = saved_t + b * saved_row + j;
        float* d_gi = d_input_pre + row * e.GH + j;
        float* d_gh = d_recurrent_pre + row * e.GH + j;
        float direct = 0.0f;  // what reaches h_prev without W_hh
        switch (g.cell) {
          case RecurrentCell::rnn_tanh:
          case RecurrentCell::rnn_relu:
            d_gi[0] = rnn_unit_backward(g.cell == RecurrentCell::rnn_relu, dh, saved);
            break;
          case RecurrentCell::gru:
            direct = gru_unit_backward(dh, h_prev, saved, e.H, d_gi, d_gh);
            break;
          case RecurrentCell::lstm: {
            const float c_prev = first ? 0.0f : saved_prev[b * saved_row + 4 * e.H + j];
            dc_out[unit] = lstm_unit_backward(dh, dc_in[unit], c_prev, saved, e.H, d_gi);
            break;
          }
        }
        dh_out[unit] = direct;
        previous_h[row * e.H + j] = h_prev;
      }
    }
    if (!first) {
      // dh_prev (B, H) += d_recurrent_pre of step t (B, GH; rows T*GH apart) W_hh (GH, H)
      blocked_sgemm(CblasNoTrans, CblasNoTrans, e.B, e.H, e.GH, 1.0f,
                    d_recurrent_pre + std::int64_t(t) * e.GH, e.T * e.GH, w.weight_hh.f32(), e.H, 1.0f,
                    dh_out, e.H);
    }
    std::swap(dh_carry[0], dh_carry[1]);
    std::swap(dc_carry[0], dc_carry[1]);
  }
  const int rows = int(e.rows);
  // dW_ih (GH, In) += d_input_pre^T (GH, B*T) x (B*T, In)
  blocked_sgemm(CblasTrans, CblasNoTrans, e.GH, e.In, rows, 1.0f, d_input_pre, e.GH, x,
                e.In, 1.0f, dw.weight_ih.f32(), e.In);
  // dW_hh (GH, H) += d_recurrent_pre^T (GH, B*T) previous_h (B*T, H)
  blocked_sgemm(CblasTrans, CblasNoTrans, e.GH, e.H, rows, 1.0f, d_recurrent_pre, e.GH,
                previous_h, e.H, 1.0f, dw.weight_hh.f32(), e.H);
  add_column_sums(d_input_pre, e.rows, e.GH, dw.bias_ih.f32());
  add_column_sums(d_recurrent_pre, e.rows, e.GH, dw.bias_hh.f32());
  if (dx) {
    // dx (B*T, In) (= for direction 0, += for 1) d_input_pre (B*T, GH) W_ih (GH, In)
    blocked_sgemm(CblasNoTrans, CblasNoTrans, rows, e.In, e.GH, 1.0f, d_input_pre, e.GH,
                  w.weight_ih.f32(), e.In, d == 0 ? 0.0f : 1.0f, dx, e.In);
  }
}

}  // namespace

std::size_t recurrent_reserve_bytes(const RecurrentGeometry& g) {
  const Extents e(g);
  return sizeof(float) * std::size_t(e.D) * std::size_t(e.rows) * std::size_t(e.S) * std::size_t(e.H);
}

std::size_t recurrent_workspace_bytes(const RecurrentGeometry& g) {
  const Extents e(g);
  return sizeof(float) * std::size_t(std::max(e.forward_floats(), e.backward_floats(g.cell)));
}

void recurrent_forward(const RecurrentGeometry& g, const RecurrentWeights& weights, const Tensor& x,
                       Tensor& y, Tensor& reserve, Tensor& workspace) {
  check_arguments(g, weights, x, y, reserve, workspace);
  const Extents e(g);
  for (int d = 0; d < e.D; ++d) {
    forward_direction(g, e, d, weights[d], x.f32(), y.f32(), static_cast<float*>(reserve.raw()),
                      static_cast<float*>(workspace.raw()));
  }
}

void recurrent_backward(const RecurrentGeometry& g, const RecurrentWeights& weights, const Tensor& x,
                        const Tensor& y, const Tensor& dy, Tensor& reserve, Tensor& dx,
                        RecurrentWeights& dweights, Tensor& workspace) {
  check_arguments(g, weights, x, y, reserve, workspace);
  const Extents e(g);
  CADENZA_CHECK(dy.numel() == y.numel(), "recurrent output gradient " << dy.shape().str());
  CADENZA_CHECK(!dx.defined() || dx.numel() == x.numel(), "recurrent input gradient " << dx.shape().str());
  for (int d = 0; d < e.D; ++d) {
    const RecurrentDirectionWeights& w = weights[d];
    const RecurrentDirectionWeights& dw = dweights[d];
    CADENZA_CHECK(dw.weight_ih.shape() == w.weight_ih.shape() && dw.weight_hh.shape() == w.weight_hh.shape() &&
                      dw.bias_ih.shape() == w.bias_ih.shape() && dw.bias_hh.shape() == w.bias_hh.shape(),
                  "recurrent weight gradients of direction " << d << ": " << dw.weight_ih.shape().str() << ", "
                                                             << dw.weight_hh.shape().str() << ", "
                                                             << dw.bias_ih.shape().str() << ", "
                                                             << dw.bias_hh.shape().str());
    backward_direction(g, e, d, weights[d], x.f32(), y.f32(), dy.f32(),
                       static_cast<const float*>(reserve.raw()), dx.defined() ? dx.f32() : nullptr,
                       dweights[d], static_cast<float*>(workspace.raw()));
  }
}

}  // namespace cadenza::cpu
