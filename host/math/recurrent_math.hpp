// The per-unit math of the recurrent cells, forward and backward: one hidden unit of one
// example at one step, exactly as torch.nn.RNN (tanh, relu), nn.GRU and nn.LSTM define it.
// The CPU op (host/cpu/recurrent.cpp) calls these around its GEMMs; a custom CUDA kernel of
// the same cells would call them too.
//
// Conventions:
// - `gi` and `gh` point at unit j of the two projections of one (example, step), biases
//   included: gi = W_ih x + b_ih, gh = W_hh h_prev + b_hh; gate k of the unit is at
//   [k * stride] (stride = H). Gate orders are PyTorch's: GRU r, z, n; LSTM i, f, g, o.
// - `saved` points at unit j of what a step keeps for its backward, value k at
//   [k * stride]: rnn h; GRU r, z, n, (W_hn h_prev + b_hn); LSTM i, f, g, o, c.
// - Backward gets dh, the whole gradient reaching this step's h, and writes the gradients
//   of the pre-activations: d_gi (reaching W_ih x + b_ih) and d_gh (reaching
//   W_hh h_prev + b_hh). They differ only in the GRU's n gate, where the recurrent term is
//   scaled by r. The gradient of h_prev through W_hh is the caller's GEMM; what reaches
//   h_prev (and the LSTM's c_prev) directly is returned.
// - Derivatives come from the saved outputs (tanh' = 1 - y^2, sigmoid' = y (1 - y), relu'
//   = y > 0), as PyTorch's backward computes them.
#pragma once

#include "host/math/activation_math.hpp"
#include "host/math/hd.hpp"
#include "host/ops/geometry.hpp"

namespace cadenza {

// Values a step saves per unit for its backward.
constexpr int recurrent_saved_values(RecurrentCell cell) {
  return cell == RecurrentCell::gru ? 4 : cell == RecurrentCell::lstm ? 5 : 1;
}

// Simple RNN: h = act(gi + gh); saves h.
CADENZA_HD float rnn_unit_forward(bool relu, float gi, float gh, float* saved) {
  const float pre = gi + gh;
  const float h = relu ? relu_forward(pre) : tanh_forward(pre);
  saved[0] = h;
  return h;
}
// The pre-activation's gradient (the same for gi and gh); nothing reaches h_prev directly.
CADENZA_HD float rnn_unit_backward(bool relu, float dh, const float* saved) {
  const float h = saved[0];
  return relu ? relu_backward(h, dh) : tanh_backward(h, dh);  // h > 0 exactly when its input is
}

// GRU: r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r * gh_n),
// h = (1 - z) n + z h_prev, evaluated as PyTorch does: n + z (h_prev - n).
CADENZA_HD float gru_unit_forward(const float* gi, const float* gh, int stride, float h_prev,
                                  float* saved) {
  const float r = sigmoid_forward(gi[0] + gh[0]);
  const float z = sigmoid_forward(gi[stride] + gh[stride]);
  const float hidden_n = gh[2 * stride];
  const float n = tanh_forward(gi[2 * stride] + r * hidden_n);
  saved[0] = r;
  saved[stride] = z;
  saved[2 * stride] = n;
  saved[3 * stride] = hidden_n;
  return n + z * (h_prev - n);
}
// Returns the gradient reaching h_prev directly (z dh).
CADENZA_HD float gru_unit_backward(float dh, float h_prev, const float* saved, int stride,
                                   float* d_gi, float* d_gh) {
  const float r = saved[0], z = saved[stride], n = saved[2 * stride];
  const float hidden_n = saved[3 * stride];
  const float d_n_pre = tanh_backward(n, dh * (1.0f - z));
  const float d_z_pre = sigmoid_backward(z, dh * (h_prev - n));
  const float d_r_pre = sigmoid_backward(r, d_n_pre * hidden_n);
  d_gi[0] = d_r_pre;
  d_gi[stride] = d_z_pre;
  d_gi[2 * stride] = d_n_pre;
  d_gh[0] = d_r_pre;
  d_gh[stride] = d_z_pre;
  d_gh[2 * stride] = d_n_pre * r;
  return dh * z;
}

// LSTM: i, f, o = sigmoid, g = tanh of gi + gh; c = f c_prev + i g; h = o tanh(c).
CADENZA_HD float lstm_unit_forward(const float* gi, const float* gh, int stride, float c_prev,
                                   float* saved) {
  const float i = sigmoid_forward(gi[0] + gh[0]);
  const float f = sigmoid_forward(gi[stride] + gh[stride]);
  const float g = tanh_forward(gi[2 * stride] + gh[2 * stride]);
  const float o = sigmoid_forward(gi[3 * stride] + gh[3 * stride]);
  const float c = f * c_prev + i * g;
  saved[0] = i;
  saved[stride] = f;
  saved[2 * stride] = g;
  saved[3 * stride] = o;
  saved[4 * stride] = c;
  return o * tanh_forward(c);
}
// dc is the gradient reaching c from the next step (f_next dc_next). Writes the four
// pre-activation gradients (the same for gi and gh) and returns the gradient reaching c_prev.
CADENZA_HD float lstm_unit_backward(float dh, float dc, float c_prev, const float* saved,
                                    int stride, float* d_gates) {
  const float i = saved[0], f = saved[stride], g = saved[2 * stride], o = saved[3 * stride];
  const float tanh_c = tanh_forward(saved[4 * stride]);
  const float dc_total = dc + tanh_backward(tanh_c, dh * o);
  d_gates[0] = sigmoid_backward(i, dc_total * g);
  d_gates[stride] = sigmoid_backward(f, dc_total * c_prev);
  d_gates[2 * stride] = tanh_backward(g, dc_total * i);
  d_gates[3 * stride] = sigmoid_backward(o, dh * tanh_c);
  return dc_total * f;
}

}  // namespace cadenza
