// gru, lstm and rnn layers: a stack of `num_layers` recurrent layers, as torch.nn.GRU,
// nn.LSTM and nn.RNN (nonlinearity tanh or relu) with batch_first=True, on a
// (batch, steps, features) input, from zero initial states.
//
// Output: return_sequences true gives every step of the last stacked layer, (B, T, D*H);
// false gives its last state, (B, D*H): the forward direction's output at the last step
// and, when bidirectional, the reverse direction's output at step 0 (its state after
// reading the whole sequence): PyTorch's h_n of the last layer, Keras' default output.
// Parameters: "<layer>.weight_ih_l<k>", ".weight_hh_l<k>", ".bias_ih_l<k>", ".bias_hh_l<k>"
// and their "_reverse" twins, in the order and layout of PyTorch's state_dict, all uniform
// in ±1/sqrt(units) as PyTorch initialises them.
// Arena: per stacked layer its reserve (what its backward reads, kept from the forward);
// the sequence of each stacked layer but the one whose sequence is y, and its gradient;
// with dropout, each dropped sequence and its gradient (Region::activations). The workspace
// is the model's shared one.
// Dropout between stacked layers: the dropout op on each stacked layer's output but the
// last, while training only; its salt mixes this layer's index and the stacked layer's
// number, so masks differ between layers, and a resumed run draws the same.
#include <array>
#include <cmath>
#include <string>

#include "host/core/error.hpp"
#include "host/math/random_math.hpp"
#include "host/model/layers.hpp"

namespace cadenza {
namespace {

RecurrentCell cell_of(const LayerConfig& c) {
  if (c.type == "gru") return RecurrentCell::gru;
  if (c.type == "lstm") return RecurrentCell::lstm;
  return c.nonlinearity == "relu" ? RecurrentCell::rnn_relu : RecurrentCell::rnn_tanh;
}

class RecurrentLayer final : public SingleInputLayer {
 public:
  RecurrentLayer(const LayerConfig& c, int index)
      : SingleInputLayer(c.type, c.name), config_(c), cell_(cell_of(c)), index_(index) {
    if (c.units <= 0)
      CADENZA_USER_ERROR(describe() << ": units (the hidden size) must be > 0, got " << c.units);
    if (c.num_layers < 1)
      CADENZA_USER_ERROR(describe() << ": num_layers must be >= 1, got " << c.num_layers);
    if (c.type == "rnn" && c.nonlinearity != "tanh" && c.nonlinearity != "relu")
      CADENZA_USER_ERROR(describe() << ": nonlinearity must be tanh or relu, got '" << c.nonlinearity << "'");
    if (!(c.dropout >= 0.0 && c.dropout < 1.0))
      CADENZA_USER_ERROR(describe() << ": dropout must be in [0, 1), got " << c.dropout);
  }

  Shape plan(const Shape& input, ArenaPlan& plan, Backend& backend) override {
    if (input.rank() != 3 || input[1] < 1 || input[2] < 1)
      CADENZA_USER_ERROR(describe() << ": expects a (batch, steps, features) input, got " << input.str()
                                    << " — add a to_sequence layer before it ((B, C, F, T) → (B, T, C·F)), "
                                    << "or a reshape or permute");
    const int batch = int(input[0]), steps = int(input[1]), hidden = config_.units;
    const bool bidirectional = config_.bidirectional;
    stack_.assign(std::size_t(config_.num_layers), Stacked{});
    int features = int(input[2]);
    for (std::size_t k = 0; k < stack_.size(); ++k) {
      Stacked& s = stack_[k];
      s.geometry = RecurrentGeometry{cell_, batch, steps, features, hidden, bidirectional};
      const std::int64_t gate_rows = std::int64_t(s.geometry.gates()) * hidden;
      for (int d = 0; d < s.geometry.directions(); ++d) {
        const std::string suffix = "_l" + std::to_string(k) + (d == 1 ? "_reverse" : "");
        Parameters& p = s.parameters[std::size_t(d)];
        p.weight_ih = plan.add_parameter(name() + ".weight_ih" + suffix, Shape{gate_rows, features});
        p.weight_hh = plan.add_parameter(name() + ".weight_hh" + suffix, Shape{gate_rows, hidden});
        p.bias_ih = plan.add_parameter(name() + ".bias_ih" + suffix, Shape{gate_rows});
        p.bias_hh = plan.add_parameter(name() + ".bias_hh" + suffix, Shape{gate_rows});
      }
      const std::string prefix = name() + ".layer" + std::to_string(k);
      const Shape sequence{batch, steps, s.geometry.output_size()};
      if (!sequence_is_output(k)) {
        s.sequence_id = plan.add(Region::activations, prefix + ".output", sequence);
        s.sequence_grad_id = plan.add(Region::activations, prefix + ".output_grad", sequence);
      }
      if (k + 1 < stack_.size() && config_.dropout > 0.0) {
        s.dropped_id = plan.add(Region::activations, prefix + ".dropped", sequence);
        s.dropped_grad_id = plan.add(Region::activations, prefix + ".dropped_grad", sequence);
      }
      s.reserve_id = plan.add(Region::activations, prefix + ".reserve",
                              Shape{std::int64_t(backend.recurrent_reserve_bytes(s.geometry))}, DType::u8);
      plan.reserve_workspace(backend.recurrent_workspace_bytes(s.geometry));
      features = s.geometry.output_size();
    }
    return config_.return_sequences ? Shape{batch, steps, features} : Shape{batch, features};
  }

  void bind(const Arena& arena) override {
    for (std::size_t k = 0; k < stack_.size(); ++k) {
      Stacked& s = stack_[k];
      for (int d = 0; d < s.geometry.directions(); ++d) {
        const Parameters& p = s.parameters[std::size_t(d)];
        s.weights[std::size_t(d)] = {arena.value(p.weight_ih), arena.value(p.weight_hh),
                                     arena.value(p.bias_ih), arena.value(p.bias_hh)};
        s.gradients[std::size_t(d)] = {arena.gradient(p.weight_ih), arena.gradient(p.weight_hh),
                                       arena.gradient(p.bias_ih), arena.gradient(p.bias_hh)};
      }
      if (s.sequence_id.valid()) {
        s.sequence = arena.get(s.sequence_id);
        s.sequence_grad = arena.get(s.sequence_grad_id);
      }
      if (s.dropped_id.valid()) {
        s.dropped = arena.get(s.dropped_id);
        s.dropped_grad = arena.get(s.dropped_grad_id);
      }
      s.reserve = arena.get(s.reserve_id);
    }
    workspace_ = arena.workspace();
  }

  void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo& step) override {
    for (std::size_t k = 0; k < stack_.size(); ++k) {
      Stacked& s = stack_[k];
      Tensor sequence = sequence_of(k, y);
      backend.recurrent_forward(s.geometry, s.weights, input_of(k, x, step), sequence, s.reserve, workspace_);
      if (drops_after(k, step))
        backend.dropout_forward(rate(), step.step_values, dropout_salt(k), step.first_element(sequence), sequence,
                                s.dropped);
    }
    if (!config_.return_sequences) {
      for (int d = 0; d < stack_.back().geometry.directions(); ++d)
        backend.strided_copy(last_state_copy(d, true), stack_.back().sequence, y);
    }
  }

  void backward(Backend& backend, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx,
                const StepInfo& step) override {
    Tensor d_sequence = dy;
    if (!config_.return_sequences) {
      d_sequence = stack_.back().sequence_grad;
      backend.fill_zero(d_sequence);  // only the last state's steps receive a gradient
      for (int d = 0; d < stack_.back().geometry.directions(); ++d)
        backend.strided_copy(last_state_copy(d, false), dy, d_sequence);
    }
    for (std::size_t k = stack_.size(); k-- > 0;) {
      Stacked& s = stack_[k];
      const Tensor sequence = sequence_of(k, y);
      Tensor d_input = dx;
      if (k > 0) d_input = drops_after(k - 1, step) ? stack_[k - 1].dropped_grad : stack_[k - 1].sequence_grad;
      backend.recurrent_backward(s.geometry, s.weights, input_of(k, x, step), sequence, d_sequence, s.reserve,
                                 d_input, s.gradients, workspace_);
      if (k > 0) {
        Stacked& below = stack_[k - 1];
        if (drops_after(k - 1, step))
          backend.dropout_backward(rate(), step.step_values, dropout_salt(k - 1),
                                   step.first_element(below.dropped_grad), below.dropped_grad, below.sequence_grad);
        d_sequence = below.sequence_grad;
      }
    }
  }

  std::vector<NamedParameter> parameters() const override {
    const TensorInit init{TensorInit::Kind::uniform, 1.0f / std::sqrt(float(config_.units))};
    std::vector<NamedParameter> out;
    for (std::size_t k = 0; k < stack_.size(); ++k) {
      for (int d = 0; d < stack_[k].geometry.directions(); ++d) {
        const std::string suffix = "_l" + std::to_string(k) + (d == 1 ? "_reverse" : "");
        const Parameters& p = stack_[k].parameters[std::size_t(d)];
        out.push_back({name() + ".weight_ih" + suffix, p.weight_ih, init});
        out.push_back({name() + ".weight_hh" + suffix, p.weight_hh, init});
        out.push_back({name() + ".bias_ih" + suffix, p.bias_ih, init});
        out.push_back({name() + ".bias_hh" + suffix, p.bias_hh, init});
      }
    }
    return out;
  }

  std::int64_t forward_flops() const override {
    std::int64_t macs = 0;
    for (const Stacked& s : stack_) macs += s.geometry.macs() / s.geometry.batch;
    return 2 * macs;
  }

 private:
  struct Parameters {
    ParameterId weight_ih, weight_hh, bias_ih, bias_hh;
  };
  struct Stacked {
    RecurrentGeometry geometry;
    std::array<Parameters, 2> parameters;  // [direction]
    RecurrentWeights weights, gradients;
    BufferId sequence_id, sequence_grad_id, dropped_id, dropped_grad_id, reserve_id;
    Tensor sequence, sequence_grad;  // (B, T, D*H); undefined when y is this layer's sequence
    Tensor dropped, dropped_grad;    // (B, T, D*H); with dropout, below the last layer only
    Tensor reserve;
  };

  bool sequence_is_output(std::size_t k) const {
    return config_.return_sequences && k + 1 == stack_.size();
  }
  // The sequence stacked layer k writes: y itself, or its own buffer.
  Tensor sequence_of(std::size_t k, const Tensor& y) const {
    return sequence_is_output(k) ? y : stack_[k].sequence;
  }
  float rate() const { return static_cast<float>(config_.dropout); }
  bool drops_after(std::size_t k, const StepInfo& step) const {
    return step.training && config_.dropout > 0.0 && k + 1 < stack_.size();
  }
  // What stacked layer k reads: the layer's input, or the (dropped) sequence below it.
  Tensor input_of(std::size_t k, const Tensor& x, const StepInfo& step) const {
    if (k == 0) return x;
    return drops_after(k - 1, step) ? stack_[k - 1].dropped : stack_[k - 1].sequence;
  }
  std::uint64_t dropout_salt(std::size_t k) const { return hash64(static_cast<std::uint64_t>(index_), k); }
  // The copy of direction d between the last stacked layer's sequence (B, T, D*H) and the
  // last state (B, D*H): the forward direction at step T-1, the reverse one at step 0.
  // `to_state`: sequence → state; otherwise state → sequence.
  StridedCopy last_state_copy(int d, bool to_state) const {
    const RecurrentGeometry& g = stack_.back().geometry;
    const std::int64_t width = g.output_size();
    const std::int64_t step = d == 0 ? g.steps - 1 : 0;
    StridedCopy c;
    c.rows = g.batch;
    c.width = g.hidden_size;
    const std::int64_t sequence_stride = std::int64_t(g.steps) * width;
    const std::int64_t sequence_offset = step * width + std::int64_t(d) * g.hidden_size;
    const std::int64_t state_offset = std::int64_t(d) * g.hidden_size;
    c.src_stride = to_state ? sequence_stride : width;
    c.src_offset = to_state ? sequence_offset : state_offset;
    c.dst_stride = to_state ? width : sequence_stride;
    c.dst_offset = to_state ? state_offset : sequence_offset;
    return c;
  }

  LayerConfig config_;
  RecurrentCell cell_;
  int index_;
  std::vector<Stacked> stack_;
  Tensor workspace_;
};

}  // namespace

std::unique_ptr<Layer> make_recurrent_layer(const LayerConfig& config, int layer_index) {
  return std::make_unique<RecurrentLayer>(config, layer_index);
}

}  // namespace cadenza
