// scale_rows on the CPU: the per-row gate of squeeze-excitation, y = x * scale[row], and
// its gradients (dscale summed in double in lane_sum.hpp's fixed order).
#include "host/core/error.hpp"
#include "host/cpu/cpu_ops.hpp"
#include "host/cpu/lane_sum.hpp"

namespace cadenza::cpu {

void scale_rows_forward(int rows, int inner, const Tensor& x, const Tensor& scale, Tensor& y) {
  CADENZA_CHECK(x.numel() == std::int64_t(rows) * inner && y.numel() == x.numel() &&
                    scale.numel() == rows,
                "scale_rows sizes " << x.shape().str() << ", " << scale.shape().str());
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; ++r) {
    const float s = scale.f32()[r];
    const float* in = x.f32() + std::int64_t(r) * inner;
    float* out = y.f32() + std::int64_t(r) * inner;
    for (int i = 0; i < inner; ++i) out[i] = in[i] * s;
  }
}

void scale_rows_backward(int rows, int inner, const Tensor& x, const Tensor& scale, const Tensor& dy,
                         Tensor& dx, Tensor& dscale) {
  CADENZA_CHECK(x.numel() == std::int64_t(rows) * inner && dy.numel() == x.numel() &&
                    scale.numel() == rows && (!dscale.defined() || dscale.numel() == rows) &&
                    (!dx.defined() || dx.numel() == x.numel()),
                "scale_rows gradient sizes " << x.shape().str() << ", " << scale.shape().str());
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; ++r) {
    const float s = scale.f32()[r];
    const float* in = x.f32() + std::int64_t(r) * inner;
    const float* grad_out = dy.f32() + std::int64_t(r) * inner;
    if (dscale.defined()) {
      LaneSum sum;
      add_rows<2, 1>({grad_out, in}, inner, &sum, [](const std::array<Float8, 2>& rows) {
        return std::array<Double8, 1>{widen(rows[0]) * widen(rows[1])};
      });
      dscale.f32()[r] = static_cast<float>(sum.total());
    }
    if (dx.defined()) {
      float* grad_in = dx.f32() + std::int64_t(r) * inner;
      for (int i = 0; i < inner; ++i) grad_in[i] = grad_out[i] * s;
    }
  }
}

}  // namespace cadenza::cpu
