// Shapes of the ops' problems, resolved once when a model is built.
//
// Every op of the Backend interface takes one of these instead of re-deriving sizes from
// tensors, so the CPU and CUDA implementations solve exactly the same problem and a
// cuDNN descriptor or an im2col buffer can be sized from it once.
// Layouts: images are NCHW, row-major; a conv weight is (out_channels, in_channels, kh, kw)
// and a dense weight (out_features, in_features), as PyTorch stores them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cadenza {

class Shape;

struct Conv2dGeometry {
  int batch = 0, in_channels = 0, in_h = 0, in_w = 0;
  int out_channels = 0, kernel_h = 0, kernel_w = 0;
  int stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  // Zero padding on each side; top/left may differ from bottom/right ('same' with an even
  // kernel pads the extra row at the bottom/right, as PyTorch and Keras do).
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int out_h = 0, out_w = 0;
  // A ReLU fused in (the model's "conv2d+relu" node): y = relu_forward(conv + bias)
  // (activation_math.hpp: max(0, z), NaN kept).
  bool relu = false;

  // Fills the padding and output size for 'same' (output = ceil(input / stride)) or
  // 'valid' (no padding); an output size of 0 means the kernel does not fit (callers check).
  static Conv2dGeometry make(int batch, int in_channels, int in_h, int in_w, int out_channels,
                             int kernel_h, int kernel_w, int stride_h, int stride_w,
                             int dilation_h, int dilation_w, bool same_padding);
  // The same problem with `pad_h` zero rows at top and bottom and `pad_w` zero columns at
  // left and right (PyTorch's padding=(pad_h, pad_w)); output sizes follow.
  Conv2dGeometry with_padding(int pad_h, int pad_w) const;
  // "x [2, 3, 8, 8], 4x3x3 stride 2x2 dilation 1x1 pad 0/1/0/1" (pads top/bottom/left/right),
  // for errors and test case names.
  std::string str() const;
  std::int64_t macs() const {  // multiply-accumulates of the forward pass
    return std::int64_t(batch) * out_channels * out_h * out_w * in_channels * kernel_h * kernel_w;
  }
};

// Pooling over windows of an NCHW tensor (no padding, floor division: PyTorch's
// MaxPool2d default and Keras' 'valid'); an output size of 0 means the window does not fit.
struct Pool2dGeometry {
  int batch = 0, channels = 0, in_h = 0, in_w = 0;
  int window_h = 0, window_w = 0, stride_h = 0, stride_w = 0;
  int out_h = 0, out_w = 0;

  static Pool2dGeometry make(int batch, int channels, int in_h, int in_w, int window_h,
                             int window_w, int stride_h, int stride_w);
};

// Batch normalisation of a tensor seen as (outer, channels, inner): statistics per channel
// over outer*inner values. NCHW over channels is (N, C, H*W); per-frequency normalisation
// of (N, C, F, T) is (N*C, F, T).
struct BatchNormGeometry {
  int outer = 0, channels = 0, inner = 0;
  float eps = 1e-5f;
  float momentum = 0.1f;  // running = (1 - momentum) * running + momentum * batch statistic
  // A ReLU fused in: y = relu_forward(batchnorm(x)), and backward passes dy only where y > 0
  // (the backward ops then read y).
  bool relu = false;
};

// A dense layer on (batch, in_features) → (batch, out_features).
struct DenseGeometry {
  int batch = 0, in_features = 0, out_features = 0;
};

// Won et al.'s harmonic filterbank (host/math/harmonic_math.hpp) on a power spectrogram
// (batch, bins, frames), bins = n_fft / 2 + 1 spanning 0 .. sample_rate / 2: filters() =
// harmonics * bands triangular filters, harmonic-major, giving (batch, filters, frames).
struct HarmonicFilterbankGeometry {
  int batch = 0, bins = 0, frames = 0;
  int sample_rate = 0;  // Hz, of the audio the spectrogram came from
  int harmonics = 0, semitone_scale = 0;
  int bands = 0;  // pitch bands per harmonic; below 1 means sample_rate / (2 harmonics) < C1

  // Fills `bands` from the sample rate, harmonics and semitone_scale (callers check it).
  static HarmonicFilterbankGeometry make(int batch, int bins, int frames, int sample_rate,
                                         int harmonics, int semitone_scale);
  int filters() const { return harmonics * bands; }
  std::int64_t macs() const {  // multiply-accumulates of the forward product
    return std::int64_t(batch) * bins * filters() * frames;
  }
};

// The cell of a recurrent layer: torch.nn.RNN with nonlinearity tanh or relu, nn.GRU, nn.LSTM.
enum class RecurrentCell { rnn_tanh, rnn_relu, gru, lstm };

// How tests and reports name a cell ("rnn tanh", "gru").
constexpr const char* recurrent_cell_name(RecurrentCell cell) {
  switch (cell) {
    case RecurrentCell::rnn_tanh: return "rnn tanh";
    case RecurrentCell::rnn_relu: return "rnn relu";
    case RecurrentCell::gru: return "gru";
    case RecurrentCell::lstm: return "lstm";
  }
  return "?";
}

// One layer of a recurrent stack, in one direction or two, as torch.nn.GRU/LSTM/RNN with
// batch_first=True: x (batch, steps, input_size), y (batch, steps, directions * hidden_size)
// holding at each step the forward direction's state in [0, H) and the reverse direction's
// (which reads the sequence from its end) in [H, 2H). Initial hidden and cell states are zero.
// Each direction has PyTorch's weight_ih (gates*H, input_size), weight_hh (gates*H, H),
// bias_ih and bias_hh (gates*H), gates stacked in PyTorch's order (GRU r, z, n; LSTM i, f, g, o).
struct RecurrentGeometry {
  RecurrentCell cell = RecurrentCell::gru;
  int batch = 0, steps = 0, input_size = 0, hidden_size = 0;
  bool bidirectional = false;

  int gates() const { return cell == RecurrentCell::gru ? 3 : cell == RecurrentCell::lstm ? 4 : 1; }
  int directions() const { return bidirectional ? 2 : 1; }
  int output_size() const { return directions() * hidden_size; }  // y's last dimension
  std::int64_t macs() const {  // multiply-accumulates of the forward pass (the two projections)
    return std::int64_t(batch) * steps * directions() * gates() * hidden_size *
           (input_size + hidden_size);
  }
};

// A block copy between two tensors seen as matrices of rows: for r < rows and i < width,
// dst[r * dst_stride + dst_offset + i] = (or += when accumulate) src[r * src_stride +
// src_offset + i]. Concatenation along an axis, its gradient's split, picking one step of
// a sequence, and summing gradients are all this one op.
struct StridedCopy {
  std::int64_t rows = 0, width = 0;
  std::int64_t src_stride = 0, src_offset = 0;
  std::int64_t dst_stride = 0, dst_offset = 0;
  bool accumulate = false;

  // The whole of src into (or onto) dst, both `count` long.
  static StridedCopy whole(std::int64_t count, bool accumulate);
  // Checks (internal error otherwise) that every row lies inside tensors of these sizes.
  void check_fits(std::int64_t src_numel, std::int64_t dst_numel) const;
};

// A permutation of a tensor's axes: y's axis i is x's axis order[i] (torch.permute).
// Its gradient is the inverse permutation.
struct PermuteGeometry {
  static constexpr int kMaxRank = 6;
  int rank = 0;
  std::int64_t in_dims[kMaxRank] = {};
  int order[kMaxRank] = {};

  static PermuteGeometry make(const Shape& input, const std::vector<int>& order);
  PermuteGeometry inverse() const;
  std::int64_t out_dim(int axis) const { return in_dims[order[axis]]; }
  std::int64_t numel() const;
};

}  // namespace cadenza
