// Model: graph wiring, planning, initialisation and the forward/backward sweeps.
#include "host/model/model.hpp"

#include <map>

#include "host/core/error.hpp"
#include "host/math/random_math.hpp"
#include "host/model/layers.hpp"

namespace cadenza {

namespace {

// The names layer i reads: its `inputs`, or the previous layer ("input" for the first).
std::vector<std::string> layer_inputs(const ModelConfig& config, std::size_t i) {
  const LayerConfig& lc = config.layers[i];
  if (!lc.inputs.empty()) return lc.inputs;
  return {i == 0 ? "input" : config.layers[i - 1].name};
}

// The layer types whose op can apply a ReLU to its output and mask its gradient.
bool takes_fused_relu(const std::string& type) {
  return type == "batchnorm" || type == "conv2d" || type == "conv1d";
}

// Which config layers are a relu the model fuses into the layer before it: that layer
// takes a fused ReLU, the relu reads it alone, no other layer reads it, and the relu is
// not the last layer (whose input is the embedding).
std::vector<bool> fused_relus(const ModelConfig& config) {
  const std::size_t n = config.layers.size();
  std::map<std::string, int> readers;
  std::vector<std::string> sole_input(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::vector<std::string> inputs = layer_inputs(config, i);
    for (const std::string& source : inputs) ++readers[source];
    if (inputs.size() == 1) sole_input[i] = inputs[0];
  }
  std::vector<bool> fused(n, false);
  for (std::size_t i = 1; i + 1 < n; ++i) {
    const LayerConfig& previous = config.layers[i - 1];
    fused[i] = config.layers[i].type == "relu" && takes_fused_relu(previous.type) && sole_input[i] == previous.name &&
               readers[previous.name] == 1;
  }
  return fused;
}

}  // namespace

// "model.layers[3], layer 'pool2' (maxpool2d)" or "the model input": the config's index
// first, as a layer without a name of the user's has one made from its type and index.
std::string Model::describe_node(const ModelConfig& config, int node) const {
  if (node == kModelInput) return "the model input";
  const int index = nodes_[node].config_layer;
  const LayerConfig& layer = config.layers[index];
  return "model.layers[" + std::to_string(index) + "], layer '" + layer.name + "' (" + layer.type + ")";
}

Model::Model(const ModelConfig& config, const Shape& input_shape, int num_outputs,
             ArenaPlan& plan, Backend& backend, const std::string& input_origin)
{
  if (config.layers.empty()) CADENZA_USER_ERROR("model.layers: the model has no layers");
  input_id_ = plan.add(Region::activations, "input", input_shape);
  std::map<std::string, int> index_of;
  std::vector<int> readers(config.layers.size(), 0);
  // Activation gradients are planned by lifetime on the backward pass's clock, where node
  // k runs at time -k: a node's output gradient is written by its first reader (or, for
  // the last node, by the loss) and read by the node itself; a later reader's gradient
  // for it lives from that reader to the node. Buffers never live at once may share bytes
  // (a chain needs two at a time).
  std::vector<ArenaPlan::LifetimeRequest> gradients;
  std::vector<int> output_gradient_of;                       // per node: its request
  std::vector<std::vector<int>> input_gradients_of, extras_of;  // per node: requests (-1: none)
  const std::vector<bool> fused_relu = fused_relus(config);
  for (std::size_t i = 0; i < config.layers.size(); ++i) {
    const LayerConfig& lc = config.layers[i];
    if (fused_relu[i]) {  // the previous layer's node computes it; the relu's readers read that node
      index_of[lc.name] = static_cast<int>(nodes_.size()) - 1;
      continue;
    }
    Node node;
    node.config_layer = static_cast<int>(i);
    std::vector<Shape> input_shapes;
    std::vector<int> input_gradients;
    for (const std::string& source : layer_inputs(config, i)) {
      int source_node = kModelInput;
      if (source != "input") {
        const auto found = index_of.find(source);
        if (found == index_of.end())
          CADENZA_USER_ERROR("layer '" << lc.name << "': input '" << source
                                       << "' is not the name of an earlier layer");
        source_node = found->second;
      }
      node.input_nodes.push_back(source_node);
      input_shapes.push_back(source_node == kModelInput ? input_shape
                                                        : nodes_[source_node].output_shape);
      int gradient = -1;
      if (source_node != kModelInput) {
        const int reader = -static_cast<int>(nodes_.size());
        if (readers[source_node]++ == 0) {
          gradient = output_gradient_of[source_node];
          gradients[gradient].first = reader;
        } else {
          gradient = static_cast<int>(gradients.size());
          gradients.push_back({lc.name + ".input_grad" + std::to_string(node.input_nodes.size() - 1),
                               nodes_[source_node].output_shape, reader, -source_node});
          extras_of[source_node].push_back(gradient);
        }
        node.needs_backward = true;
      }
      input_gradients.push_back(gradient);
    }
    const bool is_last = i + 1 == config.layers.size();
    if (i + 1 < fused_relu.size() && fused_relu[i + 1])
      node.layer = lc.type == "batchnorm" ? make_batchnorm_relu_layer(lc) : make_conv_relu_layer(lc);
    else
      node.layer = make_layer(lc, is_last, num_outputs, static_cast<int>(i));
    try {
      node.output_shape = node.layer->plan(input_shapes, plan, backend);
    } catch (const UserError& e) {
      // Name where the input came from, so a shape mismatch names both layers.
      std::string sources;
      for (std::size_t k = 0; k < node.input_nodes.size(); ++k)
        sources += (k ? ", " : "") + describe_node(config, node.input_nodes[k]) + " gives " +
                   input_shapes[k].str();
      throw UserError("model.layers[" + std::to_string(i) + "], " + e.what() + " (its input: " + sources + ")" +
                      (input_origin.empty() ? "" : "; " + input_origin));
    }
    node.output = plan.add(Region::activations, lc.name + ".output", node.output_shape);
    const int at = -static_cast<int>(nodes_.size());
    output_gradient_of.push_back(static_cast<int>(gradients.size()));
    gradients.push_back({lc.name + ".output_grad", node.output_shape, at - 1, at});  // first: the loss's
    input_gradients_of.push_back(std::move(input_gradients));
    extras_of.emplace_back();
    node.first_parameter = static_cast<int>(parameters_.size());
    for (auto& p : node.layer->parameters()) {
      node.parameter_count += plan.entries()[p.id.value.index].shape.numel();
      parameters_.push_back(p);
    }
    node.parameter_end = static_cast<int>(parameters_.size());
    if (node.parameter_count > 0) node.needs_backward = true;
    for (auto& s : node.layer->state()) state_.push_back(s);
    index_of[lc.name] = static_cast<int>(nodes_.size());
    nodes_.push_back(std::move(node));
  }
  const std::vector<BufferId> ids = plan.add_by_lifetime(Region::activations, gradients);
  for (std::size_t n = 0; n < nodes_.size(); ++n) {
    Node& node = nodes_[n];
    node.output_grad = ids[output_gradient_of[n]];
    for (int request : input_gradients_of[n]) node.input_grads.push_back(request >= 0 ? ids[request] : BufferId{});
    for (int request : extras_of[n]) node.extra_output_grads.push_back(ids[request]);
  }
  for (std::size_t n = 0; n + 1 < nodes_.size(); ++n) {
    if (readers[n] == 0)
      CADENZA_USER_ERROR(describe_node(config, int(n))
                         << ": its output is read by no layer; every layer but the last must "
                            "feed a later one (name it in that layer's inputs)");
  }
  const Shape& out = nodes_.back().output_shape;
  if (out != (Shape{input_shape[0], num_outputs}))
    CADENZA_USER_ERROR("layer '" << config.layers.back().name << "' (" << config.layers.back().type
                                 << ") is the model's output and must give (batch, " << num_outputs
                                 << ") = " << Shape{input_shape[0], num_outputs}.str()
                                 << " for the dataset's " << num_outputs << " labels, but gives "
                                 << out.str());
}

Model::~Model() = default;

void Model::bind(const Arena& arena) {
  arena_ = &arena;
  input_ = arena.get(input_id_);
  for (Node& node : nodes_) {
    node.layer->bind(arena);
    node.y = arena.get(node.output);
    node.dy = arena.get(node.output_grad);
    node.extra_dy.clear();
    for (BufferId id : node.extra_output_grads) node.extra_dy.push_back(arena.get(id));
  }
  // Inputs after every output is bound: a node reads outputs of earlier nodes.
  for (Node& node : nodes_) {
    node.x.clear();
    node.dx.clear();
    for (std::size_t k = 0; k < node.input_nodes.size(); ++k) {
      const int source = node.input_nodes[k];
      node.x.push_back(source == kModelInput ? input_ : nodes_[source].y);
      node.dx.push_back(node.input_grads[k].valid() ? arena.get(node.input_grads[k]) : Tensor());
    }
  }
}

Tensor Model::output() const { return nodes_.back().y; }
Tensor Model::output_gradient() const { return nodes_.back().dy; }

Tensor Model::embedding() const {
  const Tensor& x = nodes_.back().x.front();
  const std::int64_t batch = x.dim(0);
  return x.reshaped(Shape{batch, x.numel() / batch});
}

void Model::initialize(std::uint64_t seed, Backend& backend) {
  CADENZA_CHECK(arena_, "initialize before bind");
  auto fill = [&](const TensorInit& init, Tensor device_tensor, std::uint64_t stream) {
    Tensor host = Tensor::zeros(device_tensor.shape());
    float* p = host.f32();
    for (std::int64_t i = 0; i < host.numel(); ++i) {
      switch (init.kind) {
        case TensorInit::Kind::constant: p[i] = init.a; break;
        case TensorInit::Kind::uniform:
          p[i] = init.a * (2.0f * uniform01(seed, stream, std::uint64_t(i)) - 1.0f);
          break;
        case TensorInit::Kind::normal: p[i] = init.a * normal(seed, stream, std::uint64_t(i)); break;
      }
    }
    backend.copy(host, device_tensor);
  };
  // Streams: parameter k draws from stream hash64(k, 0); changing one layer's size does
  // not change the values drawn for the other layers.
  std::uint64_t k = 0;
  for (const NamedParameter& p : parameters_) fill(p.init, arena_->value(p.id), hash64(k++, 0));
  for (const NamedState& s : state_) fill(s.init, arena_->get(s.id), 0);
}

void Model::forward(Backend& backend, const StepInfo& step) {
  for (Node& node : nodes_) node.layer->forward(backend, node.x, node.y, step);
}

void Model::backward(Backend& backend, const StepInfo& step, GradientListener* listener) {
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    Node& node = *it;
    for (const Tensor& extra : node.extra_dy)
      backend.strided_copy(StridedCopy::whole(extra.numel(), true), extra, node.dy);
    // A layer whose only inputs are the model's, and which has no parameters, has nothing
    // to compute.
    if (node.needs_backward) node.layer->backward(backend, node.x, node.y, node.dy, node.dx, step);
    if (listener && node.parameter_end > node.first_parameter)
      listener->gradients_ready(node.first_parameter, node.parameter_end);
  }
}

std::int64_t Model::parameter_count() const {
  std::int64_t n = 0;
  for (const Node& node : nodes_) n += node.parameter_count;
  return n;
}

std::vector<LayerSummary> Model::summary() const {
  std::vector<LayerSummary> rows;
  for (const Node& node : nodes_) {
    rows.push_back({node.layer->name(), node.layer->type(), node.output_shape,
                    node.parameter_count, node.layer->forward_flops()});
  }
  return rows;
}

}  // namespace cadenza
