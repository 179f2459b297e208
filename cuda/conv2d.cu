// conv2d through cuDNN's convolution API; see conv2d.cuh for the plan cache and limits.
//
// Layouts are NCHW (x, y) and KCRS (w), fully packed, as the CPU backend's. Bias is added
// by a per-channel kernel and its gradient summed per channel, both in a fixed order.
// Parameter gradients accumulate (beta = 1), the input gradient is overwritten (beta = 0).
// cuDNN pads symmetrically only; uneven 'same' padding (an even kernel) is done explicitly:
// x is copied into a zero-padded buffer at the front of the workspace, cuDNN runs without
// padding, and the input gradient is computed into that buffer and cropped back.
// A fused ReLU (g.relu) is applied in the bias pass; backward first masks dy in place by y.
//
// train.precision bf16: cuDNN runs on bf16 copies in NHWC (filters KRSC), the layout its
// bf16 tensor-core kernels read, with fp32 sums (PSEUDO_BFLOAT16_CONFIG). One kernel
// converts an fp32 NCHW tensor into a bf16 NHWC copy (zero-padding it, so cuDNN never pads
// in this mode), another widens a bf16 NHWC result back into fp32 NCHW (cropping, or
// adding into the target for the weight gradient). The copies live at the workspace's
// front: x (later its gradient), w, dw, then y or dy.
#include "cuda/conv2d.cuh"

#include <cuda_bf16.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "cuda/check.cuh"
#include "host/math/activation_math.hpp"

namespace cadenza::cuda {

// Workspace cuDNN may ask for per algorithm; larger ones are skipped.
constexpr std::size_t kMaxConvWorkspaceBytes = std::size_t(512) << 20;

struct Conv2dPlans::Plan {
  cudnnTensorDescriptor_t x_desc = nullptr, y_desc = nullptr;
  cudnnFilterDescriptor_t w_desc = nullptr;
  // One convolution descriptor per direction, each carrying the math type of the
  // algorithm chosen for it (cuDNN runs the descriptor's math type, not the algorithm's).
  cudnnConvolutionDescriptor_t forward_desc = nullptr, backward_data_desc = nullptr,
                               backward_filter_desc = nullptr;
  // Absent when cuDNN offers no deterministic algorithm: an error only if that direction is
  // asked for (a first layer never computes dx).
  std::optional<cudnnConvolutionFwdAlgo_t> forward_algo;
  std::optional<cudnnConvolutionBwdDataAlgo_t> backward_data_algo;
  std::optional<cudnnConvolutionBwdFilterAlgo_t> backward_filter_algo;
  bool explicit_padding = false;  // uneven padding (or bf16): x goes through a padded copy
  int padded_h = 0, padded_w = 0;
  bool bf16 = false;              // cuDNN runs on bf16 NHWC copies
  // The workspace's front: fp32, the padded copy of x; bf16, the copies (x16, w16, dw16,
  // y16 at these offsets). cuDNN's own workspace follows.
  std::size_t staging_bytes = 0;
  std::size_t w16_offset = 0, dw16_offset = 0, y16_offset = 0;
  std::size_t cudnn_workspace_bytes = 0;
  std::size_t workspace_bytes = 0;

  ~Plan() {
    if (x_desc) cudnnDestroyTensorDescriptor(x_desc);
    if (y_desc) cudnnDestroyTensorDescriptor(y_desc);
    if (w_desc) cudnnDestroyFilterDescriptor(w_desc);
    for (cudnnConvolutionDescriptor_t d : {forward_desc, backward_data_desc, backward_filter_desc})
      if (d) cudnnDestroyConvolutionDescriptor(d);
  }
  // What every training step needs; the backward-data algorithm only where dx is asked for.
  bool trains() const { return forward_algo && backward_filter_algo; }
};

namespace {

// An algorithm and the workspace it asks for.
template <typename Algo>
struct Chosen {
  Algo algo;
  std::size_t workspace_bytes;
};

// The first of cuDNN's ranked algorithms that is deterministic, needs at most
// kMaxConvWorkspaceBytes, computes in fp32 where `allowed` is CUDNN_FMA_MATH (a ranked
// entry of tensor-op math would run fp32 data as TF32: PyTorch asserts the same), and
// whose workspace query succeeds once `desc` carries its math type (as PyTorch, the next
// candidate is tried when one is refused); `desc` keeps the chosen one's math type. Empty
// when none qualifies.
template <typename Perf, typename WorkspaceQuery>
std::optional<Chosen<decltype(Perf::algo)>> choose(const std::vector<Perf>& ranked, int count,
                                                   cudnnConvolutionDescriptor_t desc, cudnnMathType_t allowed,
                                                   WorkspaceQuery query) {
  for (int i = 0; i < count; ++i) {
    const Perf& p = ranked[i];
    if (p.status != CUDNN_STATUS_SUCCESS || p.determinism != CUDNN_DETERMINISTIC || p.memory > kMaxConvWorkspaceBytes)
      continue;
    if (allowed == CUDNN_FMA_MATH && p.mathType != CUDNN_FMA_MATH) continue;
    CADENZA_CUDA_CHECK(cudnnSetConvolutionMathType(desc, p.mathType));
    std::size_t bytes = 0;
    if (query(p.algo, &bytes) == CUDNN_STATUS_SUCCESS && bytes <= kMaxConvWorkspaceBytes)
      return Chosen<decltype(Perf::algo)>{p.algo, bytes};
  }
  return std::nullopt;
}

// Makes `desc` (a member of the plan, so that the plan frees it even when a call below
// throws) a convolution descriptor of the plan's padding and the geometry's strides and
// dilations.
void make_convolution_descriptor(cudnnConvolutionDescriptor_t& desc, const Conv2dGeometry& g, int pad_h, int pad_w,
                                 cudnnMathType_t math) {
  CADENZA_CUDA_CHECK(cudnnCreateConvolutionDescriptor(&desc));
  CADENZA_CUDA_CHECK(cudnnSetConvolution2dDescriptor(desc, pad_h, pad_w, g.stride_h, g.stride_w, g.dilation_h,
                                                     g.dilation_w, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CADENZA_CUDA_CHECK(cudnnSetConvolutionMathType(desc, math));
}

std::size_t aligned_256(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

// dst (N, Hp, Wp, C) bf16 = src (N, C, H, W) fp32 placed at (top, left) in zeros.
__global__ void to_nhwc_bf16_kernel(const float* __restrict__ src, __nv_bfloat16* __restrict__ dst, int c, int h,
                                    int w, int hp, int wp, int top, int left, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const int channel = static_cast<int>(i % c);
    const std::int64_t pixel = i / c;
    const int x_ = static_cast<int>(pixel % wp) - left, y = static_cast<int>(pixel / wp % hp) - top;
    const std::int64_t image = pixel / (std::int64_t(wp) * hp);
    const bool inside = y >= 0 && y < h && x_ >= 0 && x_ < w;
    dst[i] = __float2bfloat16(inside ? src[((image * c + channel) * h + y) * w + x_] : 0.0f);
  }
}

// dst (N, C, H, W) fp32 = (or +=, accumulate) the (top, left)-offset window of src
// (N, Hp, Wp, C) bf16.
__global__ void from_nhwc_bf16_kernel(const __nv_bfloat16* __restrict__ src, float* __restrict__ dst, int c,
                                      int h, int w, int hp, int wp, int top, int left, bool accumulate,
                                      std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const int x_ = static_cast<int>(i % w), y = static_cast<int>(i / w % h);
    const int channel = static_cast<int>(i / (std::int64_t(w) * h) % c);
    const std::int64_t image = i / (std::int64_t(w) * h * c);
    const float v = __bfloat162float(src[((image * hp + y + top) * wp + x_ + left) * c + channel]);
    dst[i] = accumulate ? dst[i] + v : v;
  }
}

// The bf16 NHWC copy of an fp32 NCHW tensor of `images` x `c` x (h, w), zero-padded to
// (hp, wp) with the tensor at (top, left).
void to_nhwc_bf16(cudaStream_t stream, const void* src, void* dst, int images, int c, int h, int w, int hp, int wp,
                  int top, int left) {
  const std::int64_t n = std::int64_t(images) * hp * wp * c;
  to_nhwc_bf16_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, stream>>>(
      static_cast<const float*>(src), static_cast<__nv_bfloat16*>(dst), c, h, w, hp, wp, top, left, n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void from_nhwc_bf16(cudaStream_t stream, const void* src, void* dst, int images, int c, int h, int w, int hp, int wp,
                    int top, int left, bool accumulate) {
  const std::int64_t n = std::int64_t(images) * c * h * w;
  from_nhwc_bf16_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, stream>>>(
      static_cast<const __nv_bfloat16*>(src), static_cast<float*>(dst), c, h, w, hp, wp, top, left, accumulate, n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

// y += bias per channel (bias may be null), then y = relu(y) with a fused ReLU.
__global__ void bias_relu_kernel(float* y, const float* bias, bool relu, int channels, std::int64_t plane,
                                 std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    float v = y[i];
    if (bias) v += bias[(i / plane) % channels];
    y[i] = relu ? relu_forward(v) : v;
  }
}

// A fused ReLU's backward, in place: dy = relu_backward at the output y.
__global__ void relu_mask_kernel(const float* __restrict__ y, float* __restrict__ dy, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x)
    dy[i] = relu_backward(y[i], dy[i]);
}

// One block per channel; each thread sums a fixed strided slice, then a fixed tree.
__global__ void channel_bias_gradient_kernel(const float* dy, float* dbias, int batch, int channels,
                                             std::int64_t plane) {
  __shared__ double partial[256];
  const int c = blockIdx.x;
  double sum = 0.0;
  const std::int64_t count = std::int64_t(batch) * plane;
  for (std::int64_t e = threadIdx.x; e < count; e += blockDim.x) {
    const std::int64_t n = e / plane, p = e % plane;
    sum += dy[(n * channels + c) * plane + p];
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) dbias[c] += static_cast<float>(partial[0]);
}

// xp (N, C, Hp, Wp) = x (N, C, H, W) placed at (top, left) in zeros.
__global__ void pad_kernel(const float* x, float* xp, int h, int w, int hp, int wp, int top, int left,
                           std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t plane = i / (std::int64_t(hp) * wp);
    const int y = static_cast<int>(i / wp % hp) - top, x_ = static_cast<int>(i % wp) - left;
    xp[i] = (y >= 0 && y < h && x_ >= 0 && x_ < w) ? x[(plane * h + y) * w + x_] : 0.0f;
  }
}

// dx (N, C, H, W) = the (top, left)-offset window of dxp (N, C, Hp, Wp).
__global__ void crop_kernel(const float* dxp, float* dx, int h, int w, int hp, int wp, int top, int left,
                            std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t plane = i / (std::int64_t(h) * w);
    const int y = static_cast<int>(i / w % h), x_ = static_cast<int>(i % w);
    dx[i] = dxp[(plane * hp + y + top) * wp + x_ + left];
  }
}

void check_shapes(const CudaContext& ctx, const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                  const Tensor& y_like, const char* op) {
  check_device_tensor(ctx, x, op, "x", std::int64_t(g.batch) * g.in_channels * g.in_h * g.in_w);
  check_device_tensor(ctx, w, op, "w",
                      std::int64_t(g.out_channels) * g.in_channels * g.kernel_h * g.kernel_w);
  check_device_tensor(ctx, y_like, op, "y", std::int64_t(g.batch) * g.out_channels * g.out_h * g.out_w);
}

}  // namespace

Conv2dPlans::Conv2dPlans() = default;
Conv2dPlans::~Conv2dPlans() = default;

namespace {

// The plan of `g` with cuDNN on bf16 NHWC copies (`bf16`) or on the fp32 tensors; any of
// its algorithms may be absent.
std::unique_ptr<Conv2dPlans::Plan> make_plan(CudaContext& ctx, const Conv2dGeometry& g, bool bf16) {
  auto plan = std::make_unique<Conv2dPlans::Plan>();
  plan->bf16 = bf16;
  plan->explicit_padding = plan->bf16 || g.pad_top != g.pad_bottom || g.pad_left != g.pad_right;
  const int in_h = plan->explicit_padding ? g.in_h + g.pad_top + g.pad_bottom : g.in_h;
  const int in_w = plan->explicit_padding ? g.in_w + g.pad_left + g.pad_right : g.in_w;
  const int pad_h = plan->explicit_padding ? 0 : g.pad_top, pad_w = plan->explicit_padding ? 0 : g.pad_left;
  plan->padded_h = in_h;
  plan->padded_w = in_w;
  const std::size_t bf16_bytes = sizeof(__nv_bfloat16);
  if (plan->bf16) {
    const std::size_t w_bytes = aligned_256(bf16_bytes * g.out_channels * g.in_channels * g.kernel_h * g.kernel_w);
    plan->w16_offset = aligned_256(bf16_bytes * g.batch * g.in_channels * in_h * in_w);
    plan->dw16_offset = plan->w16_offset + w_bytes;
    plan->y16_offset = plan->dw16_offset + w_bytes;
    plan->staging_bytes = plan->y16_offset + aligned_256(bf16_bytes * g.batch * g.out_channels * g.out_h * g.out_w);
  } else if (plan->explicit_padding) {
    plan->staging_bytes = aligned_256(sizeof(float) * g.batch * g.in_channels * in_h * in_w);
  }
  const cudnnTensorFormat_t format = plan->bf16 ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  const cudnnDataType_t type = plan->bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  CADENZA_CUDA_CHECK(cudnnCreateTensorDescriptor(&plan->x_desc));
  CADENZA_CUDA_CHECK(cudnnCreateTensorDescriptor(&plan->y_desc));
  CADENZA_CUDA_CHECK(cudnnCreateFilterDescriptor(&plan->w_desc));
  CADENZA_CUDA_CHECK(cudnnSetTensor4dDescriptor(plan->x_desc, format, type, g.batch, g.in_channels, in_h, in_w));
  CADENZA_CUDA_CHECK(
      cudnnSetTensor4dDescriptor(plan->y_desc, format, type, g.batch, g.out_channels, g.out_h, g.out_w));
  CADENZA_CUDA_CHECK(cudnnSetFilter4dDescriptor(plan->w_desc, type, format, g.out_channels, g.in_channels,
                                                g.kernel_h, g.kernel_w));
  // The math the heuristics may choose from; each direction's descriptor then takes the
  // math type of its chosen algorithm.
  const cudnnMathType_t allowed = plan->bf16 ? CUDNN_TENSOR_OP_MATH : ctx.tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  make_convolution_descriptor(plan->forward_desc, g, pad_h, pad_w, allowed);
  make_convolution_descriptor(plan->backward_data_desc, g, pad_h, pad_w, allowed);
  make_convolution_descriptor(plan->backward_filter_desc, g, pad_h, pad_w, allowed);
  int n = 0, h = 0, w = 0, c = 0;
  CADENZA_CUDA_CHECK(cudnnGetConvolution2dForwardOutputDim(plan->forward_desc, plan->x_desc, plan->w_desc, &n,
                                                           &c, &h, &w));
  CADENZA_CHECK(n == g.batch && c == g.out_channels && h == g.out_h && w == g.out_w,
                "conv2d " << g.str() << ": cuDNN's output " << n << "x" << c << "x" << h << "x" << w
                          << " differs from the geometry's");

  int count = 0;
  std::vector<cudnnConvolutionFwdAlgoPerf_t> forward(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
  CADENZA_CUDA_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(ctx.cudnn, plan->x_desc, plan->w_desc,
                                                            plan->forward_desc, plan->y_desc,
                                                            int(forward.size()), &count, forward.data()));
  const auto f = choose(forward, count, plan->forward_desc, allowed,
                        [&](cudnnConvolutionFwdAlgo_t algo, std::size_t* bytes) {
                          return cudnnGetConvolutionForwardWorkspaceSize(ctx.cudnn, plan->x_desc, plan->w_desc,
                                                                         plan->forward_desc, plan->y_desc, algo,
                                                                         bytes);
                        });
  if (f) {
    plan->forward_algo = f->algo;
    plan->cudnn_workspace_bytes = f->workspace_bytes;
  }

  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> backward_data(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
  CADENZA_CUDA_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
      ctx.cudnn, plan->w_desc, plan->y_desc, plan->backward_data_desc, plan->x_desc, int(backward_data.size()),
      &count, backward_data.data()));
  const auto d = choose(backward_data, count, plan->backward_data_desc, allowed,
                        [&](cudnnConvolutionBwdDataAlgo_t algo, std::size_t* bytes) {
                          return cudnnGetConvolutionBackwardDataWorkspaceSize(ctx.cudnn, plan->w_desc, plan->y_desc,
                                                                              plan->backward_data_desc, plan->x_desc,
                                                                              algo, bytes);
                        });
  if (d) {
    plan->backward_data_algo = d->algo;
    plan->cudnn_workspace_bytes = std::max(plan->cudnn_workspace_bytes, d->workspace_bytes);
  }

  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> backward_filter(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
  CADENZA_CUDA_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
      ctx.cudnn, plan->x_desc, plan->y_desc, plan->backward_filter_desc, plan->w_desc,
      int(backward_filter.size()), &count, backward_filter.data()));
  const auto b = choose(backward_filter, count, plan->backward_filter_desc, allowed,
                        [&](cudnnConvolutionBwdFilterAlgo_t algo, std::size_t* bytes) {
                          return cudnnGetConvolutionBackwardFilterWorkspaceSize(
                              ctx.cudnn, plan->x_desc, plan->y_desc, plan->backward_filter_desc, plan->w_desc, algo,
                              bytes);
                        });
  if (b) {
    plan->backward_filter_algo = b->algo;
    plan->cudnn_workspace_bytes = std::max(plan->cudnn_workspace_bytes, b->workspace_bytes);
  }
  plan->workspace_bytes = plan->staging_bytes + plan->cudnn_workspace_bytes;
  return plan;
}

}  // namespace

const Conv2dPlans::Plan& Conv2dPlans::get(CudaContext& ctx, const Conv2dGeometry& g) {
  const Key key{{g.batch, g.in_channels, g.in_h, g.in_w, g.out_channels, g.kernel_h, g.kernel_w, g.stride_h,
                 g.stride_w, g.dilation_h, g.dilation_w, g.pad_top, g.pad_bottom, g.pad_left, g.pad_right},
                ctx.tf32,
                ctx.bf16_convolutions};
  if (const auto found = plans_.find(key); found != plans_.end()) return *found->second;
  require_not_capturing(ctx, "a convolution's cuDNN plan");
  std::unique_ptr<Plan> plan = make_plan(ctx, g, ctx.bf16_convolutions);
  // bf16 where cuDNN has deterministic kernels for all three directions of this geometry;
  // otherwise this layer stays on its fp32 tensors (its parity rows then measure fp32). The
  // plan cannot tell whether its layer will ask for dx, so a missing bf16 backward-data
  // algorithm falls back too. In fp32 a missing backward-data algorithm fails only a layer
  // that asks for dx.
  if (plan->bf16 && !(plan->trains() && plan->backward_data_algo)) plan = make_plan(ctx, g, false);
  CADENZA_CHECK(plan->forward_algo, "conv2d " << g.str() << ": cuDNN offers no deterministic forward algorithm");
  return *(plans_[key] = std::move(plan));
}

namespace {

// The input cuDNN reads: x itself, or its zero-padded copy made at the workspace's front.
const void* padded_input(CudaContext& ctx, const Conv2dPlans::Plan& plan, const Conv2dGeometry& g,
                         const Tensor& x, Tensor& workspace) {
  if (!plan.explicit_padding) return x.raw();
  const std::int64_t n = std::int64_t(g.batch) * g.in_channels * plan.padded_h * plan.padded_w;
  pad_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, ctx.stream>>>(static_cast<const float*>(x.raw()),
                                                   static_cast<float*>(workspace.raw()), g.in_h, g.in_w,
                                                   plan.padded_h, plan.padded_w, g.pad_top, g.pad_left, n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
  return workspace.raw();
}

void* cudnn_workspace(const Conv2dPlans::Plan& plan, Tensor& workspace) {
  return static_cast<char*>(workspace.raw()) + plan.staging_bytes;
}

void* at(Tensor& workspace, std::size_t offset) { return static_cast<char*>(workspace.raw()) + offset; }

// The bias and the fused ReLU on the convolution's output, in one pass (none without either).
void add_bias_and_relu(CudaContext& ctx, const Conv2dGeometry& g, const Tensor& bias, Tensor& y) {
  if (!bias.defined() && !g.relu) return;
  const std::int64_t plane = std::int64_t(g.out_h) * g.out_w;
  const std::int64_t n = std::int64_t(g.batch) * g.out_channels * plane;
  bias_relu_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, ctx.stream>>>(
      static_cast<float*>(y.raw()), bias.defined() ? static_cast<const float*>(bias.raw()) : nullptr, g.relu,
      g.out_channels, plane, n);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

void add_bias_gradient(CudaContext& ctx, const Conv2dGeometry& g, const Tensor& dy, Tensor& dbias) {
  channel_bias_gradient_kernel<<<g.out_channels, 256, 0, ctx.stream>>>(
      static_cast<const float*>(dy.raw()), static_cast<float*>(dbias.raw()), g.batch, g.out_channels,
      std::int64_t(g.out_h) * g.out_w);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

// x and w into their bf16 NHWC copies (x zero-padded).
void stage_bf16_inputs(CudaContext& ctx, const Conv2dPlans::Plan& plan, const Conv2dGeometry& g, const Tensor& x,
                       const Tensor& w, Tensor& workspace) {
  to_nhwc_bf16(ctx.stream, x.raw(), workspace.raw(), g.batch, g.in_channels, g.in_h, g.in_w, plan.padded_h,
               plan.padded_w, g.pad_top, g.pad_left);
  to_nhwc_bf16(ctx.stream, w.raw(), at(workspace, plan.w16_offset), g.out_channels, g.in_channels, g.kernel_h,
               g.kernel_w, g.kernel_h, g.kernel_w, 0, 0);
}

void conv2d_forward_bf16(CudaContext& ctx, const Conv2dPlans::Plan& plan, const Conv2dGeometry& g, const Tensor& x,
                         const Tensor& w, Tensor& y, Tensor& workspace) {
  const float one = 1.0f, zero = 0.0f;
  stage_bf16_inputs(ctx, plan, g, x, w, workspace);
  void* y16 = at(workspace, plan.y16_offset);
  CADENZA_CUDA_CHECK(cudnnConvolutionForward(ctx.cudnn, &one, plan.x_desc, workspace.raw(), plan.w_desc,
                                             at(workspace, plan.w16_offset), plan.forward_desc, *plan.forward_algo,
                                             cudnn_workspace(plan, workspace), plan.cudnn_workspace_bytes, &zero,
                                             plan.y_desc, y16));
  from_nhwc_bf16(ctx.stream, y16, y.raw(), g.batch, g.out_channels, g.out_h, g.out_w, g.out_h, g.out_w, 0, 0, false);
}

// dw += the bf16 weight gradient; dx = the bf16 input gradient (cropped), when defined.
void conv2d_backward_bf16(CudaContext& ctx, const Conv2dPlans::Plan& plan, const Conv2dGeometry& g,
                          const Tensor& x, const Tensor& w, const Tensor& dy, Tensor& dx, Tensor& dw,
                          Tensor& workspace) {
  const float one = 1.0f, zero = 0.0f;
  stage_bf16_inputs(ctx, plan, g, x, w, workspace);
  void* dy16 = at(workspace, plan.y16_offset);
  void* dw16 = at(workspace, plan.dw16_offset);
  to_nhwc_bf16(ctx.stream, dy.raw(), dy16, g.batch, g.out_channels, g.out_h, g.out_w, g.out_h, g.out_w, 0, 0);
  CADENZA_CUDA_CHECK(cudnnConvolutionBackwardFilter(ctx.cudnn, &one, plan.x_desc, workspace.raw(), plan.y_desc, dy16,
                                                    plan.backward_filter_desc, *plan.backward_filter_algo,
                                                    cudnn_workspace(plan, workspace), plan.cudnn_workspace_bytes,
                                                    &zero, plan.w_desc, dw16));
  from_nhwc_bf16(ctx.stream, dw16, dw.raw(), g.out_channels, g.in_channels, g.kernel_h, g.kernel_w, g.kernel_h,
                 g.kernel_w, 0, 0, true);
  if (!dx.defined()) return;
  // The copy of x is no longer needed: the input gradient goes there, then into dx.
  CADENZA_CUDA_CHECK(cudnnConvolutionBackwardData(ctx.cudnn, &one, plan.w_desc, at(workspace, plan.w16_offset),
                                                  plan.y_desc, dy16, plan.backward_data_desc, *plan.backward_data_algo,
                                                  cudnn_workspace(plan, workspace), plan.cudnn_workspace_bytes,
                                                  &zero, plan.x_desc, workspace.raw()));
  from_nhwc_bf16(ctx.stream, workspace.raw(), dx.raw(), g.batch, g.in_channels, g.in_h, g.in_w, plan.padded_h,
                 plan.padded_w, g.pad_top, g.pad_left, false);
}

}  // namespace

std::size_t conv2d_workspace_bytes(CudaContext& ctx, Conv2dPlans& plans, const Conv2dGeometry& g) {
  return plans.get(ctx, g).workspace_bytes;
}

void conv2d_forward(CudaContext& ctx, Conv2dPlans& plans, const Conv2dGeometry& g, const Tensor& x,
                    const Tensor& w, const Tensor& bias, Tensor& y, Tensor& workspace) {
  check_shapes(ctx, g, x, w, y, "conv2d_forward");
  if (bias.defined()) check_device_tensor(ctx, bias, "conv2d_forward", "bias", g.out_channels);
  const auto& plan = plans.get(ctx, g);
  CADENZA_CHECK(workspace.bytes() >= plan.workspace_bytes, "conv2d workspace too small");
  if (plan.bf16) {
    conv2d_forward_bf16(ctx, plan, g, x, w, y, workspace);
  } else {
    const float one = 1.0f, zero = 0.0f;
    const void* input = padded_input(ctx, plan, g, x, workspace);
    CADENZA_CUDA_CHECK(cudnnConvolutionForward(ctx.cudnn, &one, plan.x_desc, input, plan.w_desc, w.raw(),
                                               plan.forward_desc, *plan.forward_algo, cudnn_workspace(plan, workspace),
                                               plan.cudnn_workspace_bytes, &zero, plan.y_desc, y.raw()));
  }
  add_bias_and_relu(ctx, g, bias, y);
}

void conv2d_backward(CudaContext& ctx, Conv2dPlans& plans, const Conv2dGeometry& g, const Tensor& x,
                     const Tensor& w, const Tensor& y, Tensor& dy, Tensor& dx, Tensor& dw, Tensor& dbias,
                     Tensor& workspace) {
  // Every argument and algorithm is checked before anything is enqueued: a failed check
  // leaves dy (which a fused ReLU masks in place) and the gradients untouched.
  check_shapes(ctx, g, x, w, dy, "conv2d_backward");
  check_device_tensor(ctx, dw, "conv2d_backward", "dw", w.numel());
  if (dx.defined()) check_device_tensor(ctx, dx, "conv2d_backward", "dx", x.numel());
  if (dbias.defined()) check_device_tensor(ctx, dbias, "conv2d_backward", "dbias", g.out_channels);
  if (g.relu) check_device_tensor(ctx, y, "conv2d_backward", "y", dy.numel());
  const auto& plan = plans.get(ctx, g);
  CADENZA_CHECK(workspace.bytes() >= plan.workspace_bytes, "conv2d workspace too small");
  CADENZA_CHECK(plan.backward_filter_algo,
                "conv2d " << g.str() << ": cuDNN offers no deterministic backward-filter algorithm");
  CADENZA_CHECK(!dx.defined() || plan.backward_data_algo,
                "conv2d " << g.str() << ": cuDNN offers no deterministic backward-data algorithm");
  if (g.relu) {
    relu_mask_kernel<<<grid_stride_blocks(dy.numel()), kElementwiseThreads, 0, ctx.stream>>>(
        static_cast<const float*>(y.raw()), static_cast<float*>(dy.raw()), dy.numel());
    CADENZA_CUDA_CHECK(cudaGetLastError());
  }
  if (dbias.defined()) add_bias_gradient(ctx, g, dy, dbias);
  if (plan.bf16) {
    conv2d_backward_bf16(ctx, plan, g, x, w, dy, dx, dw, workspace);
    return;
  }
  const float one = 1.0f, zero = 0.0f;
  const void* input = padded_input(ctx, plan, g, x, workspace);
  CADENZA_CUDA_CHECK(cudnnConvolutionBackwardFilter(
      ctx.cudnn, &one, plan.x_desc, input, plan.y_desc, dy.raw(), plan.backward_filter_desc,
      *plan.backward_filter_algo, cudnn_workspace(plan, workspace), plan.cudnn_workspace_bytes, &one,
      plan.w_desc, dw.raw()));
  if (dx.defined()) {
    // Uneven padding: the gradient of the padded input goes to the padded buffer (its
    // copy of x is no longer needed), and the inner window is dx.
    void* grad_input = plan.explicit_padding ? workspace.raw() : dx.raw();
    CADENZA_CUDA_CHECK(cudnnConvolutionBackwardData(
        ctx.cudnn, &one, plan.w_desc, w.raw(), plan.y_desc, dy.raw(), plan.backward_data_desc,
        *plan.backward_data_algo, cudnn_workspace(plan, workspace), plan.cudnn_workspace_bytes, &zero,
        plan.x_desc, grad_input));
    if (plan.explicit_padding) {
      const std::int64_t n = dx.numel();
      crop_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, ctx.stream>>>(
          static_cast<const float*>(workspace.raw()), static_cast<float*>(dx.raw()), g.in_h, g.in_w, plan.padded_h,
          plan.padded_w, g.pad_top, g.pad_left, n);
      CADENZA_CUDA_CHECK(cudaGetLastError());
    }
  }
}

}  // namespace cadenza::cuda
