// Shapes of the ops' problems, resolved once when a model is built.
//
// Every op of the Backend interface takes one of these instead of re-deriving sizes from
// tensors, so the CPU and CUDA implementations solve exactly the same problem and a
// cuDNN descriptor or an im2col buffer can be sized from it once.
// Layouts: images are NCHW, row-major; a conv weight is (out_channels, in_channels, kh, kw)
// and a dense weight (out_features, in_features), as PyTorch stores them.
#pragma once

#include <cstdint>

namespace cadenza {

struct Conv2dGeometry {
  int batch = 0, in_channels = 0, in_h = 0, in_w = 0;
  int out_channels = 0, kernel_h = 0, kernel_w = 0;
  int stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  // Zero padding on each side; top/left may differ from bottom/right ('same' with an even
  // kernel pads the extra row at the bottom/right, as PyTorch and Keras do).
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int out_h = 0, out_w = 0;

  // Fills the padding and output size for 'same' (output = ceil(input / stride)) or
  // 'valid' (no padding); an output size of 0 means the kernel does not fit (callers check).
  static Conv2dGeometry make(int batch, int in_channels, int in_h, int in_w, int out_channels,
                             int kernel_h, int kernel_w, int stride_h, int stride_w,
                             int dilation_h, int dilation_w, bool same_padding);
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
};

// A dense layer on (batch, in_features) → (batch, out_features).
struct DenseGeometry {
  int batch = 0, in_features = 0, out_features = 0;
};

}  // namespace cadenza
