"""The PyTorch peer of a cadenza config: its front-end as torchaudio transforms and its
model as torch.nn modules, built from the resolved config (blocks expanded, defaults
filled) that build/bench_train writes, so the benchmarks run the same model on both sides.

front_end(features, sample_rate): torchaudio MelSpectrogram (+ AmplitudeToDB) with the
config's parameters; (batch, samples) -> (batch, mels, frames).
ConfigModel(layers, input_shape, num_labels): the layer graph as torch modules with the
same parameters (the benchmark checks the counts are equal; the model fixtures of
tools/fixtures/make_model_fixtures.py check outputs and gradients). Layer types the peer
does not cover raise ValueError naming the layer.
"""
import math

import torch
import torchaudio


def front_end(features, sample_rate):
    if features.get("type", "mel") != "mel" or features.get("log", "db") not in ("db", "none"):
        raise ValueError("the torch peer covers mel features with log db or none")
    power = float(features.get("power", 2.0))
    stages = [torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=features.get("n_fft", 512), win_length=features.get("win_length", 0) or None,
        hop_length=features.get("hop_length", 256), f_min=features.get("f_min", 0.0),
        f_max=features.get("f_max", 0) or None, n_mels=features.get("n_mels", 96), power=power,
        center=features.get("center", True), pad_mode=features.get("pad_mode", "reflect"),
        mel_scale=features.get("mel_scale", "htk"),
        norm=None if features.get("mel_norm", "none") == "none" else "slaney")]
    if features.get("log", "db") == "db":
        stages.append(_PerExampleToDB(torchaudio.transforms.AmplitudeToDB(
            stype="power" if power == 2.0 else "magnitude", top_db=features.get("top_db") or None)))
    return torch.nn.Sequential(*stages)


class _PerExampleToDB(torch.nn.Module):
    """AmplitudeToDB with top_db measured from each example's own peak, as cadenza and librosa
    do: torchaudio takes a 3-D input's first axis as channels of one example, so a batch of
    (batch, mels, frames) would be clipped against the loudest example of the batch."""

    def __init__(self, to_db):
        super().__init__()
        self.to_db = to_db

    def forward(self, x):
        return self.to_db(x.unsqueeze(1)).squeeze(1)


def _pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


class _AxisBatchNorm(torch.nn.Module):
    """BatchNorm over another axis than the channels (cadenza's batchnorm `axis`)."""

    def __init__(self, size, axis, momentum, eps):
        super().__init__()
        self.axis = axis
        self.bn = torch.nn.BatchNorm1d(size, momentum=momentum, eps=eps)

    def forward(self, x):
        moved = x.movedim(self.axis, 1)
        shape = moved.shape
        return self.bn(moved.reshape(shape[0], shape[1], -1)).reshape(shape).movedim(1, self.axis)


class _Recurrent(torch.nn.Module):
    def __init__(self, kind, features, layer):
        super().__init__()
        cls = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}[kind]
        extra = {"nonlinearity": layer.get("nonlinearity", "tanh")} if kind == "rnn" else {}
        self.rnn = cls(features, layer["units"], num_layers=layer.get("num_layers", 1), batch_first=True,
                       bidirectional=layer.get("bidirectional", False), dropout=layer.get("dropout", 0.0), **extra)
        self.sequences = layer.get("return_sequences", False)

    def forward(self, x):
        out, state = self.rnn(x)
        if self.sequences:
            return out
        h = state[0] if isinstance(state, tuple) else state
        directions = 2 if self.rnn.bidirectional else 1
        return torch.cat([h[-directions + d] for d in range(directions)], dim=1)


def _conv_padding(layer, dims):
    padding = layer.get("padding", "same")
    if padding == "valid":
        return 0
    if padding == "explicit":
        pad = _pair(layer.get("pad", [0, 0]))
        return pad[0] if dims == 1 else pad
    if any(s != 1 for s in _pair(layer.get("stride", [1, 1]))):
        raise ValueError(f"layer {layer['name']}: the torch peer takes padding 'same' at stride 1 only")
    return "same"


def _build(layer, shape, num_labels, is_last):
    """The module of one layer and its output shape (without the batch)."""
    kind, name = layer["type"], layer["name"]
    if kind == "batchnorm":
        axis = layer.get("axis", 1)
        axis = axis if axis > 0 else len(shape) + 1 + axis
        momentum, eps = float(layer.get("momentum", 0.1)), float(layer.get("eps", 1e-5))
        if axis == 1 and len(shape) == 3:
            return torch.nn.BatchNorm2d(shape[0], momentum=momentum, eps=eps), shape
        if axis == 1 and len(shape) <= 2:
            return torch.nn.BatchNorm1d(shape[0], momentum=momentum, eps=eps), shape
        return _AxisBatchNorm(shape[axis - 1], axis, momentum, eps), shape
    if kind in ("conv2d", "conv1d"):
        dims = 2 if kind == "conv2d" else 1
        kernel, stride, dilation = (_pair(layer.get(k, d)) for k, d in (("kernel", 3), ("stride", 1), ("dilation", 1)))
        if dims == 1:
            kernel, stride, dilation = kernel[0], stride[0], dilation[0]
        cls = torch.nn.Conv2d if dims == 2 else torch.nn.Conv1d
        module = cls(shape[0], layer["filters"], kernel, stride=stride, dilation=dilation,
                     padding=_conv_padding(layer, dims), bias=layer.get("bias", True))
        with torch.no_grad():
            out = module(torch.zeros(1, *shape)).shape[1:]
        return module, tuple(out)
    if kind in ("relu", "elu", "leaky_relu", "sigmoid", "tanh"):
        module = {"relu": torch.nn.ReLU(), "elu": torch.nn.ELU(layer.get("alpha", 1.0)),
                  "leaky_relu": torch.nn.LeakyReLU(layer.get("negative_slope", 0.01)),
                  "sigmoid": torch.nn.Sigmoid(), "tanh": torch.nn.Tanh()}[kind]
        return module, shape
    if kind in ("maxpool2d", "avgpool2d", "maxpool1d", "avgpool1d"):
        pool = _pair(layer.get("pool", [2, 2]))
        stride = tuple(s or p for s, p in zip(_pair(layer.get("pool_stride", [0, 0])), pool))
        if kind.endswith("1d"):
            pool, stride = pool[0], stride[0]
        cls = {"maxpool2d": torch.nn.MaxPool2d, "avgpool2d": torch.nn.AvgPool2d,
               "maxpool1d": torch.nn.MaxPool1d, "avgpool1d": torch.nn.AvgPool1d}[kind]
        module = cls(pool, stride)
        with torch.no_grad():
            out = module(torch.zeros(1, *shape)).shape[1:]
        return module, tuple(out)
    if kind in ("global_avg_pool", "global_max_pool"):
        axes = layer.get("axes") or list(range(2, len(shape) + 1))
        reduce = torch.mean if kind == "global_avg_pool" else torch.amax
        out = tuple(s for i, s in enumerate(shape, start=1) if i not in axes)
        return _Lambda(lambda x: reduce(x, dim=axes)), out
    if kind == "to_sequence":
        if len(shape) == 3:
            return _Lambda(lambda x: x.permute(0, 3, 1, 2).flatten(2)), (shape[2], shape[0] * shape[1])
        return _Lambda(lambda x: x.permute(0, 2, 1)), (shape[1], shape[0])
    if kind == "flatten":
        return torch.nn.Flatten(), (math.prod(shape),)
    if kind == "reshape":
        target = list(layer["shape"])
        if -1 in target:
            known = math.prod(d for d in target if d != -1)
            target[target.index(-1)] = math.prod(shape) // known
        return _Lambda(lambda x, target=tuple(target): x.reshape(x.shape[0], *target)), tuple(target)
    if kind == "permute":
        order = list(layer["order"])
        return _Lambda(lambda x, order=tuple(order): x.permute(*order)), tuple(shape[i - 1] for i in order[1:])
    if kind in ("gru", "lstm", "rnn"):
        module = _Recurrent(kind, shape[-1], layer)
        width = layer["units"] * (2 if layer.get("bidirectional", False) else 1)
        return module, ((shape[0], width) if layer.get("return_sequences", False) else (width,))
    if kind == "dropout":
        return torch.nn.Dropout(layer.get("rate", 0.0)), shape
    if kind == "dense":
        units = layer.get("units", 0) or (num_labels if is_last else 0)
        if len(shape) != 1 or units <= 0:
            raise ValueError(f"layer {name}: the torch peer takes dense on (batch, features) with units")
        return torch.nn.Linear(shape[0], units, bias=layer.get("bias", True)), (units,)
    raise ValueError(f"layer {name}: type {kind} is not covered by the torch peer")


class _Lambda(torch.nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, *xs):
        return self.function(*xs)


class ConfigModel(torch.nn.Module):
    """The config's layer graph: each layer reads the outputs its `inputs` name ("input" is
    the model's input); add sums its inputs, concat joins them along `axis`."""

    def __init__(self, layers, input_shape, num_labels):
        super().__init__()
        shapes = {"input": tuple(input_shape)}
        self.stages = torch.nn.ModuleList()
        self.wiring = []
        for index, layer in enumerate(layers):
            inputs = layer.get("inputs") or ["input" if index == 0 else layers[index - 1]["name"]]
            kind = layer["type"]
            if kind == "add":
                module, shape = _Lambda(lambda *xs: sum(xs)), shapes[inputs[0]]
            elif kind == "scale_channels":  # [x (B, C, ...), gate (B, C)]: squeeze-excitation
                x_shape = shapes[inputs[0]]
                module = _Lambda(lambda x, gate: x * gate.reshape(*gate.shape, *([1] * (x.dim() - 2))))
                shape = x_shape
            elif kind == "concat":
                axis = layer.get("axis", 1)
                rank = len(shapes[inputs[0]]) + 1
                axis = axis if axis > 0 else rank + axis
                joined = sum(shapes[i][axis - 1] for i in inputs)
                shape = tuple(joined if d == axis - 1 else s for d, s in enumerate(shapes[inputs[0]]))
                module = _Lambda(lambda *xs, axis=axis: torch.cat(xs, dim=axis))
            else:
                if len(inputs) != 1:
                    raise ValueError(f"layer {layer['name']}: type {kind} reads one input")
                module, shape = _build(layer, shapes[inputs[0]], num_labels, index == len(layers) - 1)
            shapes[layer["name"]] = shape
            self.stages.append(module)
            self.wiring.append((layer["name"], inputs))

    def forward(self, x):
        outputs = {"input": x}
        for stage, (name, inputs) in zip(self.stages, self.wiring):
            outputs[name] = stage(*(outputs[i] for i in inputs))
        return outputs[self.wiring[-1][0]]
