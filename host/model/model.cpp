// Model: graph wiring, planning, initialisation and the forward/backward sweeps.
#include "host/model/model.hpp"

#include <map>

#include "host/core/error.hpp"
#include "host/math/random_math.hpp"

namespace cadenza {

Model::Model(const ModelConfig& config, const Shape& input_shape, int num_outputs,
             ArenaPlan& plan, Backend& backend)
{
  if (config.layers.empty()) CADENZA_USER_ERROR("model.layers: the model has no layers");
  input_id_ = plan.add(Region::activations, "input", input_shape);
  std::map<std::string, int> index_of;
  std::vector<int> readers(config.layers.size(), 0);
  int input_readers = 0;
  for (std::size_t i = 0; i < config.layers.size(); ++i) {
    const LayerConfig& lc = config.layers[i];
    Node node;
    node.input_node = static_cast<int>(i) - 1;
    if (lc.inputs.size() > 1)
      CADENZA_USER_ERROR("layer '" << lc.name << "': " << lc.inputs.size()
                                   << " inputs given; layers here take one input");
    if (lc.inputs.size() == 1) {
      const std::string& source = lc.inputs[0];
      if (source == "input") {
        node.input_node = -1;
      } else {
        const auto found = index_of.find(source);
        if (found == index_of.end())
          CADENZA_USER_ERROR("layer '" << lc.name << "': input '" << source
                                       << "' is not the name of an earlier layer");
        node.input_node = found->second;
      }
    }
    int& reader_count = node.input_node < 0 ? input_readers : readers[node.input_node];
    if (++reader_count > 1)
      CADENZA_USER_ERROR("layer '" << lc.name << "': the output of '"
                                   << (node.input_node < 0 ? std::string("input")
                                                           : config.layers[node.input_node].name)
                                   << "' is already read by another layer; an output feeds one layer");
    const bool is_last = i + 1 == config.layers.size();
    node.layer = make_layer(lc, is_last, num_outputs, static_cast<int>(i));
    const Shape in = node.input_node < 0 ? input_shape : nodes_[node.input_node].output_shape;
    node.output_shape = node.layer->plan(in, plan, backend);
    node.output = plan.add(Region::activations, lc.name + ".output", node.output_shape);
    node.output_grad = plan.add(Region::activations, lc.name + ".output_grad", node.output_shape);
    for (auto& p : node.layer->parameters()) {
      node.parameter_count += plan.entries()[p.id.value.index].shape.numel();
      parameters_.push_back(p);
    }
    for (auto& s : node.layer->state()) state_.push_back(s);
    index_of[lc.name] = static_cast<int>(i);
    nodes_.push_back(std::move(node));
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
  }
}

Tensor Model::output() const { return nodes_.back().y; }
Tensor Model::output_gradient() const { return nodes_.back().dy; }

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
  for (Node& node : nodes_) {
    const Tensor& x = node.input_node < 0 ? input_ : nodes_[node.input_node].y;
    node.layer->forward(backend, x, node.y, step);
  }
}

void Model::backward(Backend& backend, const StepInfo& step) {
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    Node& node = *it;
    const bool reads_input = node.input_node < 0;
    // The model input needs no gradient: a layer reading it runs backward only for its
    // parameters' gradients.
    if (reads_input && node.parameter_count == 0) continue;
    const Tensor& x = reads_input ? input_ : nodes_[node.input_node].y;
    Tensor no_gradient;
    Tensor& dx = reads_input ? no_gradient : nodes_[node.input_node].dy;
    node.layer->backward(backend, x, node.y, node.dy, dx, step);
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
