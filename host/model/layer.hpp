// Layer: one node of a model, built for a fixed input shape.
//
// Life of a layer:
//   1. plan(input_shapes, plan): checks the input fits (UserError naming the layer and the
//      shape it expected), declares parameters, state and workspace on the ArenaPlan and
//      returns the output shape. Batch is the first dimension of every shape.
//   2. bind(arena): looks up the views of what it declared.
//   3. forward / backward, any number of times, allocating nothing.
//
// Invariants: forward writes y with `=`; backward writes dx with `=` (dx absent for the
// layer that reads the model input) and adds into its parameter gradients (`+=`, backend.hpp). Parameter
// names are "<layer name>.<tensor>" as PyTorch's state_dict names them (conv0.weight,
// bn1.running_mean), so safetensors checkpoints read naturally from Python.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "host/config/config.hpp"
#include "host/core/arena.hpp"
#include "host/core/tensor.hpp"
#include "host/ops/backend.hpp"

namespace cadenza {

// How a tensor is filled when a model is created (on the host, from the train seed).
struct TensorInit {
  enum class Kind { constant, uniform, normal } kind = Kind::constant;
  float a = 0.0f;  // constant: the value; uniform: bound (values in [-a, a)); normal: stddev
};

struct NamedParameter {
  std::string name;
  ParameterId id;
  TensorInit init;
};

// Non-trainable tensors that belong to the model (batchnorm running statistics).
struct NamedState {
  std::string name;
  BufferId id;
  TensorInit init;
};

class Communicator;

struct StepInfo {
  bool training = false;
  // Training: the step's StepValues on the backend's device (host/ops/step_values.hpp);
  // dropout layers draw from its dropout_seed, mixing in their own index as the salt.
  Tensor step_values;
  // Data-parallel: the row of this batch's first example in the step's global batch (rank ×
  // batch), so that per-element draws are those of one process of the whole global batch.
  std::int64_t first_row = 0;
  // train.dist.sync_batchnorm: batchnorm layers normalise training batches with statistics
  // summed over this communicator's ranks (null: each rank's own batch).
  Communicator* sync_batchnorm = nullptr;
  // The global index of element 0 of a batch-first tensor `t` of this batch.
  std::uint64_t first_element(const Tensor& t) const {
    return t.dim(0) > 0 ? static_cast<std::uint64_t>(first_row * (t.numel() / t.dim(0))) : 0;
  }
};

class Layer {
 public:
  Layer(std::string type, std::string name) : type_(std::move(type)), name_(std::move(name)) {}
  virtual ~Layer() = default;
  const std::string& type() const { return type_; }
  const std::string& name() const { return name_; }

  // `inputs` are in the order of the config's `inputs` key.
  virtual Shape plan(std::span<const Shape> inputs, ArenaPlan& plan, Backend& backend) = 0;
  virtual void bind(const Arena& arena) { (void)arena; }
  virtual void forward(Backend& backend, std::span<const Tensor> inputs, Tensor& y,
                       const StepInfo& step) = 0;
  // dinputs[i] is the gradient of inputs[i], written with `=`; undefined where no gradient
  // is wanted (the model's input). dy, the gradient of y, is the layer's to overwrite:
  // nothing reads it after this call (a fused ReLU masks it in place).
  virtual void backward(Backend& backend, std::span<const Tensor> inputs, const Tensor& y,
                        const Tensor& dy, std::span<Tensor> dinputs, const StepInfo& step) = 0;

  virtual std::vector<NamedParameter> parameters() const { return {}; }
  virtual std::vector<NamedState> state() const { return {}; }
  // Floating-point operations of one example's forward pass (a multiply-add counts 2).
  virtual std::int64_t forward_flops() const { return 0; }

 protected:
  // "layer 'conv2' (conv2d)": how errors name a layer.
  std::string describe() const { return "layer '" + name_ + "' (" + type_ + ")"; }

 private:
  std::string type_;
  std::string name_;
};

// A layer that reads one input: most layers. They implement the one-input forms below.
class SingleInputLayer : public Layer {
 public:
  using Layer::Layer;
  using Layer::backward;
  using Layer::forward;
  using Layer::plan;

  virtual Shape plan(const Shape& input, ArenaPlan& plan, Backend& backend) = 0;
  virtual void forward(Backend& backend, const Tensor& x, Tensor& y, const StepInfo& step) = 0;
  virtual void backward(Backend& backend, const Tensor& x, const Tensor& y, const Tensor& dy,
                        Tensor& dx, const StepInfo& step) = 0;

  Shape plan(std::span<const Shape> inputs, ArenaPlan& arena_plan, Backend& backend) final {
    return plan(inputs[0], arena_plan, backend);
  }
  void forward(Backend& backend, std::span<const Tensor> inputs, Tensor& y,
               const StepInfo& step) final {
    forward(backend, inputs[0], y, step);
  }
  void backward(Backend& backend, std::span<const Tensor> inputs, const Tensor& y,
                const Tensor& dy, std::span<Tensor> dinputs, const StepInfo& step) final {
    backward(backend, inputs[0], y, dy, dinputs[0], step);
  }
};

// Creates the layer a config entry describes. `num_outputs` is the dataset's label count,
// used by a last dense layer with units 0.
std::unique_ptr<Layer> make_layer(const LayerConfig& config, bool is_last, int num_outputs,
                                  int index);

}  // namespace cadenza
