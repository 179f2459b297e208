// Dense forward and backward as cuBLAS SGEMMs.
//
// cuBLAS is column-major; a row-major (m, n) matrix is the column-major (n, m) matrix, its
// transpose, with leading dimension n. With x (B, in), w (out, in), y (B, out) row-major:
//   y^T (out, B)  = w (out, in) . x^T (in, B)   → gemm(T, N, out, B, in, w:ld in, x:ld in, y:ld out)
//   dw^T (in, out) += x^T (in, B) . dy (B, out) → gemm(N, T, in, out, B, x:ld in, dy:ld out, dw:ld in)
//   dx^T (in, B)  = w^T (in, out) . dy^T (out, B) → gemm(N, N, in, B, out, w:ld in, dy:ld out, dx:ld in)
#include "cuda/dense.cuh"

#include "cuda/check.cuh"
#include "cuda/elementwise_ops.cuh"

namespace cadenza::cuda {
namespace {

const float* in(const Tensor& t) { return static_cast<const float*>(t.raw()); }
float* out(Tensor& t) { return static_cast<float*>(t.raw()); }

}  // namespace

void dense_forward(CudaContext& ctx, const DenseGeometry& g, const Tensor& x, const Tensor& w,
                   const Tensor& bias, Tensor& y) {
  check_device_tensor(ctx, x, "dense_forward", "x", std::int64_t(g.batch) * g.in_features);
  check_device_tensor(ctx, w, "dense_forward", "w", std::int64_t(g.out_features) * g.in_features);
  check_device_tensor(ctx, y, "dense_forward", "y", std::int64_t(g.batch) * g.out_features);
  const float one = 1.0f, zero = 0.0f;
  CADENZA_CUDA_CHECK(cublasSgemm(ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, g.out_features, g.batch,
                                 g.in_features, &one, in(w), g.in_features, in(x), g.in_features,
                                 &zero, out(y), g.out_features));
  if (bias.defined()) add_bias_rows(ctx, g.batch, g.out_features, bias, y);
}

void dense_backward(CudaContext& ctx, const DenseGeometry& g, const Tensor& x, const Tensor& w,
                    const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& dbias) {
  check_device_tensor(ctx, x, "dense_backward", "x", std::int64_t(g.batch) * g.in_features);
  check_device_tensor(ctx, dy, "dense_backward", "dy", std::int64_t(g.batch) * g.out_features);
  check_device_tensor(ctx, dw, "dense_backward", "dw", std::int64_t(g.out_features) * g.in_features);
  if (dx.defined()) {  // checked before anything is enqueued, so a failed check changes nothing
    check_device_tensor(ctx, w, "dense_backward", "w", std::int64_t(g.out_features) * g.in_features);
    check_device_tensor(ctx, dx, "dense_backward", "dx", x.numel());
  }
  const float one = 1.0f, zero = 0.0f;
  CADENZA_CUDA_CHECK(cublasSgemm(ctx.cublas, CUBLAS_OP_N, CUBLAS_OP_T, g.in_features, g.out_features,
                                 g.batch, &one, in(x), g.in_features, in(dy), g.out_features, &one,
                                 out(dw), g.in_features));
  if (dbias.defined()) accumulate_bias_gradient(ctx, g.batch, g.out_features, dy, dbias);
  if (dx.defined()) {
    CADENZA_CUDA_CHECK(cublasSgemm(ctx.cublas, CUBLAS_OP_N, CUBLAS_OP_N, g.in_features, g.batch,
                                   g.out_features, &one, in(w), g.in_features, in(dy),
                                   g.out_features, &zero, out(dx), g.in_features));
  }
}

}  // namespace cadenza::cuda
