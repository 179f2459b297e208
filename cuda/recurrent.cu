// Recurrent layers through cuDNN's RNN API; see recurrent.cuh for the plan cache and the
// reserve and workspace layouts. Compiled, not yet run on a GPU.
//
// cuDNN keeps all weights of an RNN in one weight space; cudnnGetRNNWeightParams says where
// each gate's matrix and bias lie. A gate block of cuDNN is a contiguous run of PyTorch's
// tensors (rows [k*H, (k+1)*H) of weight_ih or weight_hh, row-major; H values of a bias),
// which is how PyTorch itself hands its parameters to cuDNN: "linear layers" 0..G-1 are
// the input matrices with bias_ih, G..2G-1 the recurrent ones with bias_hh, in PyTorch's
// gate order (cuDNN's GRU r, z, h and LSTM i, f, c, o are PyTorch's r, z, n and i, f, g, o;
// cuDNN's GRU applies r to (W_hn h + b_hn), as PyTorch does); pseudo-layer 0 is the forward
// direction and 1 the reverse. One kernel copies every block in, and after backward adds
// every gradient block out (`+=`, each element by one thread: deterministic).
#include "cuda/recurrent.cuh"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cuda/check.cuh"

namespace cadenza::cuda {
namespace {

// cuDNN's buffers start on this boundary inside the reserve and workspace we are given.
constexpr std::size_t kAlignment = 256;

std::size_t aligned(std::size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

char* aligned_start(void* memory) {
  const auto address = reinterpret_cast<std::uintptr_t>(memory);
  return reinterpret_cast<char*>((address + kAlignment - 1) / kAlignment * kAlignment);
}

// Which tensor of RecurrentDirectionWeights a block belongs to.
enum class WeightTensor { weight_ih, weight_hh, bias_ih, bias_hh };

// A run of `count` floats at `tensor_offset` of one direction's tensor, at `space_offset`
// floats into cuDNN's weight space.
struct WeightBlock {
  std::size_t space_offset;
  int direction;
  WeightTensor tensor;
  std::int64_t tensor_offset;
  std::int64_t count;
};

// Two directions of an LSTM: 2 * 8 linear layers, each a matrix and a bias.
constexpr int kMaxBlocks = 32;

// The copies of one launch, passed by value as the kernel's parameter.
struct BlockCopies {
  int count = 0;
  const float* src[kMaxBlocks] = {};
  float* dst[kMaxBlocks] = {};
  std::int64_t n[kMaxBlocks] = {};
};

// Block row blockIdx.y copies (or adds) copy number blockIdx.y.
__global__ void copy_blocks_kernel(BlockCopies copies, bool accumulate) {
  const int k = blockIdx.y;
  const float* src = copies.src[k];
  float* dst = copies.dst[k];
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < copies.n[k];
       i += std::int64_t(gridDim.x) * blockDim.x)
    dst[i] = accumulate ? dst[i] + src[i] : src[i];
}

void launch_copy_blocks(CudaContext& ctx, const BlockCopies& copies, bool accumulate) {
  std::int64_t longest = 0;
  for (int k = 0; k < copies.count; ++k) longest = std::max(longest, copies.n[k]);
  const dim3 grid(grid_stride_blocks(longest), static_cast<unsigned int>(copies.count));
  copy_blocks_kernel<<<grid, kElementwiseThreads, 0, ctx.stream>>>(copies, accumulate);
  CADENZA_CUDA_CHECK(cudaGetLastError());
}

float* tensor_data(const RecurrentDirectionWeights& w, WeightTensor which) {
  const Tensor& t = which == WeightTensor::weight_ih   ? w.weight_ih
                    : which == WeightTensor::weight_hh ? w.weight_hh
                    : which == WeightTensor::bias_ih   ? w.bias_ih
                                                       : w.bias_hh;
  return static_cast<float*>(t.raw());
}

cudnnRNNMode_t cudnn_mode(RecurrentCell cell) {
  switch (cell) {
    case RecurrentCell::rnn_tanh: return CUDNN_RNN_TANH;
    case RecurrentCell::rnn_relu: return CUDNN_RNN_RELU;
    case RecurrentCell::gru: return CUDNN_GRU;
    case RecurrentCell::lstm: return CUDNN_LSTM;
  }
  return CUDNN_GRU;
}

std::int64_t descriptor_elements(cudnnTensorDescriptor_t desc) {
  constexpr int kMaxDims = 8;
  cudnnDataType_t type{};
  int dims = 0, sizes[kMaxDims] = {}, strides[kMaxDims] = {};
  CADENZA_CUDA_CHECK(cudnnGetTensorNdDescriptor(desc, kMaxDims, &type, &dims, sizes, strides));
  std::int64_t n = 1;
  for (int i = 0; i < dims; ++i) n *= sizes[i];
  return n;
}

void check_arguments(const CudaContext& ctx, const RecurrentGeometry& g, const RecurrentWeights& w,
                     const Tensor& x, const Tensor& y_like, const char* op) {
  const std::int64_t rows = std::int64_t(g.batch) * g.steps, gh = std::int64_t(g.gates()) * g.hidden_size;
  check_device_tensor(ctx, x, op, "x", rows * g.input_size);
  check_device_tensor(ctx, y_like, op, "y", rows * g.output_size());
  for (int d = 0; d < g.directions(); ++d) {
    check_device_tensor(ctx, w[d].weight_ih, op, "weight_ih", gh * g.input_size);
    check_device_tensor(ctx, w[d].weight_hh, op, "weight_hh", gh * g.hidden_size);
    check_device_tensor(ctx, w[d].bias_ih, op, "bias_ih", gh);
    check_device_tensor(ctx, w[d].bias_hh, op, "bias_hh", gh);
  }
}

void check_scratch(const CudaContext& ctx, const Tensor& t, std::size_t bytes, const char* op, const char* name) {
  CADENZA_CHECK(t.defined() && t.device() == Device::cuda(ctx.device) && t.bytes() >= bytes,
                op << ": " << name << " of " << t.bytes() << " bytes on " << t.device().str() << ", expected "
                   << bytes << " bytes on cuda:" << ctx.device);
}

}  // namespace

struct RecurrentPlans::Plan {
  cudnnRNNDescriptor_t rnn = nullptr;
  cudnnDropoutDescriptor_t dropout = nullptr;
  cudnnRNNDataDescriptor_t x_desc = nullptr, y_desc = nullptr;
  cudnnTensorDescriptor_t h_desc = nullptr;  // (directions, batch, hidden); also the cell state's
  int* device_sequence_lengths = nullptr;     // (batch) copies of steps, read by cuDNN's kernels
  std::size_t weight_space_bytes = 0, cudnn_workspace_bytes = 0, cudnn_reserve_bytes = 0;
  std::size_t dx_bytes = 0;  // the stand-in dx of a backward without one
  std::vector<WeightBlock> blocks;
  std::size_t reserve_bytes = 0, workspace_bytes = 0;

  ~Plan() {
    if (rnn) cudnnDestroyRNNDescriptor(rnn);
    if (dropout) cudnnDestroyDropoutDescriptor(dropout);
    if (x_desc) cudnnDestroyRNNDataDescriptor(x_desc);
    if (y_desc) cudnnDestroyRNNDataDescriptor(y_desc);
    if (h_desc) cudnnDestroyTensorDescriptor(h_desc);
    if (device_sequence_lengths) cudaFree(device_sequence_lengths);
  }

  // The block copies between the parameters (or their gradients) and a weight space.
  BlockCopies copies_into_space(const RecurrentWeights& weights, char* space) const {
    BlockCopies c;
    for (const WeightBlock& b : blocks) {
      c.src[c.count] = tensor_data(weights[b.direction], b.tensor) + b.tensor_offset;
      c.dst[c.count] = reinterpret_cast<float*>(space) + b.space_offset;
      c.n[c.count++] = b.count;
    }
    return c;
  }
  BlockCopies copies_from_space(const char* space, const RecurrentWeights& grads) const {
    BlockCopies c;
    for (const WeightBlock& b : blocks) {
      c.src[c.count] = reinterpret_cast<const float*>(space) + b.space_offset;
      c.dst[c.count] = tensor_data(grads[b.direction], b.tensor) + b.tensor_offset;
      c.n[c.count++] = b.count;
    }
    return c;
  }
};

namespace {

// Where each PyTorch block lies in the weight space. cudnnGetRNNWeightParams computes
// addresses from a weight space pointer, so a scratch one is allocated for the question
// (once per geometry, when the model is planned) and freed.
void locate_weight_blocks(CudaContext& ctx, const RecurrentGeometry& g, RecurrentPlans::Plan& plan) {
  void* probe = nullptr;
  CADENZA_CUDA_CHECK(cudaMalloc(&probe, plan.weight_space_bytes));
  const std::unique_ptr<void, decltype(&cudaFree)> probe_owner(probe, &cudaFree);
  cudnnTensorDescriptor_t matrix_desc = nullptr, bias_desc = nullptr;
  CADENZA_CUDA_CHECK(cudnnCreateTensorDescriptor(&matrix_desc));
  const std::unique_ptr<cudnnTensorStruct, decltype(&cudnnDestroyTensorDescriptor)> matrix_owner(
      matrix_desc, &cudnnDestroyTensorDescriptor);
  CADENZA_CUDA_CHECK(cudnnCreateTensorDescriptor(&bias_desc));
  const std::unique_ptr<cudnnTensorStruct, decltype(&cudnnDestroyTensorDescriptor)> bias_owner(
      bias_desc, &cudnnDestroyTensorDescriptor);
  const int gates = g.gates(), hidden = g.hidden_size;
  for (int d = 0; d < g.directions(); ++d) {
    for (int linear = 0; linear < 2 * gates; ++linear) {
      void* matrix = nullptr;
      void* bias = nullptr;
      CADENZA_CUDA_CHECK(cudnnGetRNNWeightParams(ctx.cudnn, plan.rnn, d, plan.weight_space_bytes, probe,
                                                 linear, matrix_desc, &matrix, bias_desc, &bias));
      const bool recurrent = linear >= gates;
      const int gate = linear % gates, columns = recurrent ? hidden : g.input_size;
      CADENZA_CHECK(matrix && bias && descriptor_elements(matrix_desc) == std::int64_t(hidden) * columns &&
                        descriptor_elements(bias_desc) == hidden,
                    "cuDNN's weight block " << linear << " of direction " << d << " has "
                                            << descriptor_elements(matrix_desc) << " + "
                                            << descriptor_elements(bias_desc) << " values, expected "
                                            << hidden * columns << " + " << hidden);
      auto offset = [&](void* at) {
        return std::size_t(static_cast<char*>(at) - static_cast<char*>(probe)) / sizeof(float);
      };
      plan.blocks.push_back({offset(matrix), d, recurrent ? WeightTensor::weight_hh : WeightTensor::weight_ih,
                             std::int64_t(gate) * hidden * columns, std::int64_t(hidden) * columns});
      plan.blocks.push_back({offset(bias), d, recurrent ? WeightTensor::bias_hh : WeightTensor::bias_ih,
                             std::int64_t(gate) * hidden, hidden});
    }
  }
  CADENZA_CHECK(plan.blocks.size() <= std::size_t(kMaxBlocks), plan.blocks.size() << " weight blocks");
}

}  // namespace

RecurrentPlans::RecurrentPlans() = default;
RecurrentPlans::~RecurrentPlans() = default;

const RecurrentPlans::Plan& RecurrentPlans::get(CudaContext& ctx, const RecurrentGeometry& g) {
  const auto key =
      std::make_tuple(int(g.cell), g.batch, g.steps, g.input_size, g.hidden_size, g.bidirectional, ctx.tf32);
  if (const auto found = plans_.find(key); found != plans_.end()) return *found->second;
  require_not_capturing(ctx, "a recurrent layer's cuDNN plan");
  CADENZA_CHECK(g.batch > 0 && g.steps > 0 && g.input_size > 0 && g.hidden_size > 0,
                "recurrent geometry batch " << g.batch << ", steps " << g.steps << ", input " << g.input_size
                                            << ", hidden " << g.hidden_size);
  auto plan = std::make_unique<Plan>();
  // No dropout inside cuDNN (one layer per call; the layer applies its own between layers):
  // a zero rate needs no random states.
  CADENZA_CUDA_CHECK(cudnnCreateDropoutDescriptor(&plan->dropout));
  CADENZA_CUDA_CHECK(cudnnSetDropoutDescriptor(plan->dropout, ctx.cudnn, 0.0f, nullptr, 0, 0));
  CADENZA_CUDA_CHECK(cudnnCreateRNNDescriptor(&plan->rnn));
  // The standard algorithm: cuDNN's persistent ones (PERSIST_STATIC*) refuse many
  // geometries only when they run, and PyTorch uses them for fp16 inputs alone.
  CADENZA_CUDA_CHECK(cudnnSetRNNDescriptor_v8(
      plan->rnn, CUDNN_RNN_ALGO_STANDARD, cudnn_mode(g.cell), CUDNN_RNN_DOUBLE_BIAS,
      g.bidirectional ? CUDNN_BIDIRECTIONAL : CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT, CUDNN_DATA_FLOAT,
      CUDNN_DATA_FLOAT, ctx.tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH, g.input_size, g.hidden_size,
      g.hidden_size /* no projection */, 1, plan->dropout,
      CUDNN_RNN_PADDED_IO_ENABLED /* needed by the unpacked layouts */));

  const std::vector<int> lengths(std::size_t(g.batch), g.steps);
  CADENZA_CUDA_CHECK(cudnnCreateRNNDataDescriptor(&plan->x_desc));
  CADENZA_CUDA_CHECK(cudnnSetRNNDataDescriptor(plan->x_desc, CUDNN_DATA_FLOAT,
                                               CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, g.steps, g.batch,
                                               g.input_size, lengths.data(), nullptr));
  CADENZA_CUDA_CHECK(cudnnCreateRNNDataDescriptor(&plan->y_desc));
  CADENZA_CUDA_CHECK(cudnnSetRNNDataDescriptor(plan->y_desc, CUDNN_DATA_FLOAT,
                                               CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, g.steps, g.batch,
                                               g.output_size(), lengths.data(), nullptr));
  const int h_dims[3] = {g.directions(), g.batch, g.hidden_size};
  const int h_strides[3] = {g.batch * g.hidden_size, g.hidden_size, 1};
  CADENZA_CUDA_CHECK(cudnnCreateTensorDescriptor(&plan->h_desc));
  CADENZA_CUDA_CHECK(cudnnSetTensorNdDescriptor(plan->h_desc, CUDNN_DATA_FLOAT, 3, h_dims, h_strides));

  // On the compute stream (a legacy-stream copy is not ordered before the non-blocking
  // compute stream's work), then waited for: `lengths` dies with this function.
  CADENZA_CUDA_CHECK(cudaMalloc(&plan->device_sequence_lengths, sizeof(int) * lengths.size()));
  CADENZA_CUDA_CHECK(cudaMemcpyAsync(plan->device_sequence_lengths, lengths.data(), sizeof(int) * lengths.size(),
                                     cudaMemcpyHostToDevice, ctx.stream));
  CADENZA_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));

  CADENZA_CUDA_CHECK(cudnnGetRNNTempSpaceSizes(ctx.cudnn, plan->rnn, CUDNN_FWD_MODE_TRAINING, plan->x_desc,
                                               &plan->cudnn_workspace_bytes, &plan->cudnn_reserve_bytes));
  CADENZA_CUDA_CHECK(cudnnGetRNNWeightSpaceSize(ctx.cudnn, plan->rnn, &plan->weight_space_bytes));
  plan->dx_bytes = sizeof(float) * std::size_t(g.batch) * g.steps * g.input_size;
  plan->reserve_bytes = kAlignment + aligned(plan->weight_space_bytes) + plan->cudnn_reserve_bytes;
  plan->workspace_bytes =
      kAlignment + std::max(plan->cudnn_workspace_bytes,
                            aligned(plan->weight_space_bytes) + aligned(plan->dx_bytes) + plan->cudnn_workspace_bytes);
  locate_weight_blocks(ctx, g, *plan);
  return *(plans_[key] = std::move(plan));
}

std::size_t recurrent_reserve_bytes(CudaContext& ctx, RecurrentPlans& plans, const RecurrentGeometry& g) {
  return plans.get(ctx, g).reserve_bytes;
}

std::size_t recurrent_workspace_bytes(CudaContext& ctx, RecurrentPlans& plans, const RecurrentGeometry& g) {
  return plans.get(ctx, g).workspace_bytes;
}

void recurrent_forward(CudaContext& ctx, RecurrentPlans& plans, const RecurrentGeometry& g,
                       const RecurrentWeights& weights, const Tensor& x, Tensor& y, Tensor& reserve,
                       Tensor& workspace) {
  check_arguments(ctx, g, weights, x, y, "recurrent_forward");
  const RecurrentPlans::Plan& plan = plans.get(ctx, g);
  check_scratch(ctx, reserve, plan.reserve_bytes, "recurrent_forward", "reserve");
  check_scratch(ctx, workspace, plan.workspace_bytes, "recurrent_forward", "workspace");
  char* weight_space = aligned_start(reserve.raw());
  char* cudnn_reserve = weight_space + aligned(plan.weight_space_bytes);
  launch_copy_blocks(ctx, plan.copies_into_space(weights, weight_space), false);
  CADENZA_CUDA_CHECK(cudnnRNNForward(ctx.cudnn, plan.rnn, CUDNN_FWD_MODE_TRAINING, plan.device_sequence_lengths,
                                     plan.x_desc, x.raw(), plan.y_desc, y.raw(), plan.h_desc, nullptr, nullptr,
                                     plan.h_desc, nullptr, nullptr, plan.weight_space_bytes, weight_space,
                                     plan.cudnn_workspace_bytes, aligned_start(workspace.raw()),
                                     plan.cudnn_reserve_bytes, cudnn_reserve));
}

void recurrent_backward(CudaContext& ctx, RecurrentPlans& plans, const RecurrentGeometry& g,
                        const RecurrentWeights& weights, const Tensor& x, const Tensor& y,
                        const Tensor& dy, Tensor& reserve, Tensor& dx, RecurrentWeights& dweights,
                        Tensor& workspace) {
  check_arguments(ctx, g, weights, x, y, "recurrent_backward");
  check_arguments(ctx, g, dweights, x, dy, "recurrent_backward");
  if (dx.defined()) check_device_tensor(ctx, dx, "recurrent_backward", "dx", x.numel());
  const RecurrentPlans::Plan& plan = plans.get(ctx, g);
  check_scratch(ctx, reserve, plan.reserve_bytes, "recurrent_backward", "reserve");
  check_scratch(ctx, workspace, plan.workspace_bytes, "recurrent_backward", "workspace");
  char* weight_space = aligned_start(reserve.raw());  // as the forward left it
  char* cudnn_reserve = weight_space + aligned(plan.weight_space_bytes);
  char* weight_gradient_space = aligned_start(workspace.raw());
  char* dx_stand_in = weight_gradient_space + aligned(plan.weight_space_bytes);
  char* cudnn_workspace = dx_stand_in + aligned(plan.dx_bytes);
  // Backward-data runs first: it leaves in the reserve what backward-weights reads. cuDNN's
  // weight gradient accumulates, so its space starts at zero.
  CADENZA_CUDA_CHECK(cudnnRNNBackwardData_v8(ctx.cudnn, plan.rnn, plan.device_sequence_lengths, plan.y_desc,
                                             y.raw(), dy.raw(), plan.x_desc, dx.defined() ? dx.raw() : dx_stand_in,
                                             plan.h_desc, nullptr, nullptr, nullptr, plan.h_desc, nullptr, nullptr,
                                             nullptr, plan.weight_space_bytes, weight_space,
                                             plan.cudnn_workspace_bytes, cudnn_workspace, plan.cudnn_reserve_bytes,
                                             cudnn_reserve));
  CADENZA_CUDA_CHECK(cudaMemsetAsync(weight_gradient_space, 0, plan.weight_space_bytes, ctx.stream));
  CADENZA_CUDA_CHECK(cudnnRNNBackwardWeights_v8(ctx.cudnn, plan.rnn, CUDNN_WGRAD_MODE_ADD,
                                                plan.device_sequence_lengths, plan.x_desc, x.raw(), plan.h_desc,
                                                nullptr, plan.y_desc, y.raw(), plan.weight_space_bytes,
                                                weight_gradient_space, plan.cudnn_workspace_bytes,
                                                cudnn_workspace, plan.cudnn_reserve_bytes, cudnn_reserve));
  launch_copy_blocks(ctx, plan.copies_from_space(weight_gradient_space, dweights), true);
}

}  // namespace cadenza::cuda
