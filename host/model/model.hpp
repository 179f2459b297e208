// Model: the layers of model.layers wired into a graph and built for one (batch, input
// shape), with every buffer in the arena.
//
// Invariants:
// - Layers run in config order; a layer reads the outputs of the layers named in its
//   `inputs` (default: the previous one; "input" is the model's input), so the model is a
//   DAG in topological order. Every output but the last layer's is read by some layer.
// - Every layer output has a gradient buffer of the same shape; the model input has none.
//   An output read by k layers gets k - 1 more gradient buffers, one per extra reader;
//   backward sums them into the output's gradient before the layer that made it runs
//   backward (its readers all come later, so all have run).
// - Gradient buffers hold values only during backward, from the reader (or the loss) that
//   writes them to the layer that reads them; buffers never live at once share arena bytes
//   (ArenaPlan::add_by_lifetime). Read a layer's output gradient only while that holds.
// - output() is (batch, num_outputs): the logits the loss reads; embedding() is the last
//   layer's input, flattened per example.
// - A relu that alone reads a batchnorm's or a convolution's output, itself its only
//   reader, and is not the last layer, is fused into it: one node "batchnorm+relu" or
//   "conv2d+relu" (named as that layer) whose output the relu's readers read. Its own
//   output and gradient buffers then never exist, and the step makes fewer passes over
//   them each way. Parameters, state and their names are unchanged.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "host/config/config.hpp"
#include "host/core/arena.hpp"
#include "host/model/layer.hpp"

namespace cadenza {

struct LayerSummary {
  std::string name;
  std::string type;
  Shape output_shape;
  std::int64_t parameters = 0;
  std::int64_t forward_flops = 0;  // one example
};

// Told during backward, after each layer that has parameters has written their gradients:
// parameters()[first, end) are final for this step (data-parallel training starts
// reducing them here while earlier layers still run backward).
class GradientListener {
 public:
  virtual ~GradientListener() = default;
  virtual void gradients_ready(int first, int end) = 0;
};

class Model {
 public:
  // Declares the model's parameters, state, activations and workspace on `plan`.
  // `input_shape` includes the batch: (B, 1, bins, frames) for a spectrogram front-end.
  // `input_origin` (features/frontend_spec.hpp's describe_model_input) ends the error of a
  // layer the shapes do not fit, as the fix is often in the features or the clip length.
  Model(const ModelConfig& config, const Shape& input_shape, int num_outputs, ArenaPlan& plan,
        Backend& backend, const std::string& input_origin = "");
  ~Model();
  void bind(const Arena& arena);

  // Fills parameters and state from `seed` (host-side, then copied to the device), the
  // same values on every backend.
  void initialize(std::uint64_t seed, Backend& backend);

  Tensor input() const { return input_; }
  Tensor output() const;
  Tensor output_gradient() const;
  // The last layer's (first) input as (batch, features): the penultimate representation a
  // transfer-learning user fits a classifier on (seed 003's SVM features).
  Tensor embedding() const;

  void forward(Backend& backend, const StepInfo& step);
  // Backpropagates output_gradient() through every layer, adding into parameter gradients;
  // `listener`, when given, hears of each layer's finished parameter gradients.
  void backward(Backend& backend, const StepInfo& step, GradientListener* listener = nullptr);

  const std::vector<NamedParameter>& parameters() const { return parameters_; }
  const std::vector<NamedState>& state() const { return state_; }
  std::int64_t parameter_count() const;
  std::vector<LayerSummary> summary() const;

 private:
  static constexpr int kModelInput = -1;
  struct Node {
    std::unique_ptr<Layer> layer;
    int config_layer = 0;  // its layer in model.layers (a fused batchnorm+relu: the batchnorm)
    std::vector<int> input_nodes;  // kModelInput: the model input
    std::vector<BufferId> input_grads;  // where each input's gradient goes (invalid: none)
    Shape output_shape;
    std::int64_t parameter_count = 0;
    int first_parameter = 0, parameter_end = 0;  // its parameters in parameters()
    BufferId output, output_grad;
    std::vector<BufferId> extra_output_grads;  // from readers after the first
    bool needs_backward = false;  // it has parameters or an input that wants a gradient
    Tensor y, dy;
    std::vector<Tensor> x, dx, extra_dy;
  };
  std::string describe_node(const ModelConfig& config, int node) const;
  std::vector<Node> nodes_;
  BufferId input_id_;
  Tensor input_;
  std::vector<NamedParameter> parameters_;
  std::vector<NamedState> state_;
  const Arena* arena_ = nullptr;
};

}  // namespace cadenza
