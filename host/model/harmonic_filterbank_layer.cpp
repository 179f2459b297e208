// harmonic_filterbank layer: Won et al.'s HarmonicSTFT filters (2020) on a power STFT
// (B, 1, bins, T), bins = n_fft / 2 + 1 odd, giving (B, harmonics, bands, T): channel h is
// harmonic h + 1, row j the pitch band 24 + j / semitone_scale in MIDI notes
// (host/math/harmonic_math.hpp has the filters; backend.hpp the op).
// One parameter, "<layer>.bw_Q" (1), the bandwidth scale Q, init 1.0, as PyTorch names
// Won's hstft.bw_Q. The filterbank (bins, filters) is rebuilt from Q by every forward pass
// into an activations buffer that its backward pass reads; the backward pass's dfb is the
// shared workspace. Won's dB step is a power_to_db layer after this one.
#include "host/core/error.hpp"
#include "host/model/layers.hpp"

namespace cadenza {
namespace {

class HarmonicFilterbankLayer final : public SingleInputLayer {
 public:
  explicit HarmonicFilterbankLayer(const LayerConfig& c)
      : SingleInputLayer("harmonic_filterbank", c.name), config_(c) {
    if (c.sample_rate <= 0)
      CADENZA_USER_ERROR(describe() << ": sample_rate must be the audio's sample rate in Hz (> 0), got "
                                    << c.sample_rate);
    if (c.harmonics < 1 || c.semitone_scale < 1)
      CADENZA_USER_ERROR(describe() << ": harmonics and semitone_scale must be >= 1, got "
                                    << c.harmonics << " and " << c.semitone_scale);
  }

  Shape plan(const Shape& input, ArenaPlan& plan, Backend& backend) override {
    if (input.rank() != 4 || input[1] != 1 || input[2] < 3 || input[2] % 2 == 0)
      CADENZA_USER_ERROR(describe() << ": expects a power STFT (batch, 1, n_fft / 2 + 1 bins, frames) "
                                    << "with an odd number of bins >= 3, got " << input.str());
    geometry_ = HarmonicFilterbankGeometry::make(int(input[0]), int(input[2]), int(input[3]),
                                                 config_.sample_rate, config_.harmonics,
                                                 config_.semitone_scale);
    if (geometry_.bands < 1)
      CADENZA_USER_ERROR(describe() << ": sample_rate / (2 harmonics) = "
                                    << config_.sample_rate / (2.0 * config_.harmonics)
                                    << " Hz is below C1 (32.7 Hz), so no pitch band fits; "
                                    << "use fewer harmonics");
    q_ = plan.add_parameter(name() + ".bw_Q", Shape{1});
    filterbank_ = plan.add(Region::activations, name() + ".filterbank",
                           Shape{geometry_.bins, geometry_.filters()});
    plan.reserve_workspace(backend.harmonic_filterbank_workspace_bytes(geometry_));
    return Shape{input[0], config_.harmonics, geometry_.bands, input[3]};
  }

  void bind(const Arena& arena) override {
    q_value_ = arena.value(q_);
    q_gradient_ = arena.gradient(q_);
    filterbank_value_ = arena.get(filterbank_);
    workspace_ = arena.workspace();
  }

  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo&) override {
    Tensor filters_y = y.reshaped(filters_shape());
    backend.harmonic_filterbank_forward(geometry_, x.reshaped(bins_shape()), q_value_,
                                        filterbank_value_, filters_y);
  }

  void backward(Backend& backend, const Tensor& x, const Tensor&, const Tensor& dy, Tensor& dx,
                const StepInfo&) override {
    Tensor bins_dx = dx.defined() ? dx.reshaped(bins_shape()) : dx;
    backend.harmonic_filterbank_backward(geometry_, x.reshaped(bins_shape()), q_value_,
                                         filterbank_value_, dy.reshaped(filters_shape()), bins_dx,
                                         q_gradient_, workspace_);
  }

  std::vector<NamedParameter> parameters() const override {
    return {{name() + ".bw_Q", q_, {TensorInit::Kind::constant, 1.0f}}};
  }
  std::int64_t forward_flops() const override { return 2 * geometry_.macs() / geometry_.batch; }

 private:
  // The op's views: (B, bins, frames) and (B, filters, frames).
  Shape bins_shape() const { return Shape{geometry_.batch, geometry_.bins, geometry_.frames}; }
  Shape filters_shape() const { return Shape{geometry_.batch, geometry_.filters(), geometry_.frames}; }

  LayerConfig config_;
  HarmonicFilterbankGeometry geometry_;
  ParameterId q_;
  BufferId filterbank_;
  Tensor q_value_, q_gradient_, filterbank_value_, workspace_;
};

}  // namespace

std::unique_ptr<Layer> make_harmonic_filterbank_layer(const LayerConfig& config) {
  return std::make_unique<HarmonicFilterbankLayer>(config);
}

}  // namespace cadenza
