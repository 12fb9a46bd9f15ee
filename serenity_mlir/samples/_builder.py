"""A tiny ONNX graph builder shared by the sample-network generators.

The generators append nodes in the order a framework's forward pass would
execute them, so the ONNX node list is itself a plausible "framework" schedule:
that is the baseline the memory-aware scheduler is compared against.

Every tensor's static shape is tracked while building (and cross-checked against
ONNX shape inference in :meth:`GraphBuilder.build`).  Each node is also
evaluated eagerly in numpy (float64) on a tiny random calibration batch, and
BatchNormalization running statistics are set from the *actual* per-channel
statistics of the BN input, randomly perturbed.  That mimics a trained network
in inference mode, so activations stay O(1) however deep or wide the random
graph is; purely random BN statistics let the scale drift with depth.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
PRODUCER = "serenity_mlir.samples"
CALIBRATION_BATCH = 2

Shape = tuple[int, ...]
Array = np.ndarray


def conv_out(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Spatial output size of a convolution/pooling (floor mode, symmetric pads)."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def _windows(x: Array, kernel: int, stride: int, pad: int, dilation: int,
             fill: float) -> Array:
    """(N, C, Ho, Wo, k, k) view of the (padded) sliding windows of ``x``."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=fill)
    span = dilation * (kernel - 1) + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, (span, span), axis=(2, 3))
    return win[:, :, ::stride, ::stride, ::dilation, ::dilation]


class GraphBuilder:
    """Builds one ONNX graph node by node (NCHW, float32, batch 1, static shapes)."""

    def __init__(self, name: str, input_shape: Shape, seed: int, input_name: str = "input") -> None:
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.input_name = input_name
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.shapes: dict[str, Shape] = {input_name: tuple(input_shape)}
        # Calibration data has its own generator so it never shifts the weights.
        calib_rng = np.random.default_rng([seed, 0xCA1B])
        calib_shape = (CALIBRATION_BATCH, *input_shape[1:])
        self.values: dict[str, Array] = {input_name: calib_rng.standard_normal(calib_shape)}
        self._used: set[str] = {input_name}
        self._scopes: list[str] = []
        self._consts: dict[tuple[str, Shape, bytes], str] = {}

    # ------------------------------------------------------------------ naming
    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Prefix names created inside the block, like nested ``nn.Module`` names."""
        self._scopes.append(name)
        try:
            yield
        finally:
            self._scopes.pop()

    def _fresh(self, base: str) -> str:
        full = "/".join([*self._scopes, base])
        name, i = full, 1
        while name in self._used:
            name = f"{full}_{i}"
            i += 1
        self._used.add(name)
        return name

    def _init(self, name: str, value: Array) -> str:
        self._used.add(name)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def const(self, value: Array) -> str:
        """A shared constant initializer (e.g. Slice starts, Clip bounds)."""
        key = (str(value.dtype), tuple(value.shape), value.tobytes())
        if key not in self._consts:
            self._consts[key] = self._init(self._fresh(f"const{len(self._consts)}"), value)
        return self._consts[key]

    def _emit(self, op: str, inputs: Sequence[str], name: str, value: Array,
              *, reserved: bool = False, **attrs: Any) -> str:
        """Append one node; its single output tensor is named like the node.

        ``value`` is the node's result on the calibration batch; its shape (with
        batch 1) is the tensor's static shape.
        """
        node_name = name if reserved else self._fresh(name)
        self.nodes.append(helper.make_node(op, list(inputs), [node_name], name=node_name, **attrs))
        self.shapes[node_name] = (1, *value.shape[1:])
        self.values[node_name] = value
        return node_name

    def shape(self, x: str) -> Shape:
        return self.shapes[x]

    def channels(self, x: str) -> int:
        return self.shapes[x][1]

    def _nchw(self, x: str) -> tuple[int, int, int, int]:
        s = self.shapes[x]
        if len(s) != 4:
            raise ValueError(f"{x} is not NCHW: {s}")
        return s[0], s[1], s[2], s[3]

    # ------------------------------------------------------------------ layers
    def conv(self, x: str, out_ch: int, kernel: int, *, stride: int = 1, padding: int | None = None,
             dilation: int = 1, groups: int = 1, bias: bool = False, gain: float = 2.0,
             name: str = "conv") -> str:
        """Conv2d with He-like N(0, gain/fan_in) weights (gain=2 suits a ReLU input)."""
        _, c_in, _, _ = self._nchw(x)
        if c_in % groups or out_ch % groups:
            raise ValueError(f"channels {c_in}->{out_ch} not divisible by groups={groups}")
        if padding is None:
            padding = dilation * (kernel - 1) // 2
        ig, og = c_in // groups, out_ch // groups
        std = math.sqrt(gain / (ig * kernel * kernel))
        weight = self.rng.normal(0.0, std, size=(out_ch, ig, kernel, kernel)).astype(np.float32)
        node_name = self._fresh(name)
        inputs = [x, self._init(f"{node_name}.weight", weight)]
        win = _windows(self.values[x], kernel, stride, padding, dilation, 0.0)
        n, _, ho, wo = win.shape[:4]
        win = win.reshape(n, groups, ig, ho, wo, kernel, kernel)
        w64 = weight.astype(np.float64).reshape(groups, og, ig, kernel, kernel)
        y = np.einsum("ngihwab,goiab->ngohw", win, w64, optimize=True).reshape(n, out_ch, ho, wo)
        if bias:
            b = self.rng.normal(0.0, 0.01, size=out_ch).astype(np.float32)
            inputs.append(self._init(f"{node_name}.bias", b))
            y = y + b.reshape(1, -1, 1, 1)
        return self._emit("Conv", inputs, node_name, y, reserved=True,
                          kernel_shape=[kernel, kernel], strides=[stride, stride],
                          pads=[padding] * 4, dilations=[dilation, dilation], group=groups)

    def batch_norm(self, x: str, name: str = "bn") -> str:
        """Inference-mode BN whose running stats look like those of a trained net.

        Running mean/var are the calibration statistics of the input, randomly
        perturbed; the variance is floored so dead channels stay harmless.
        """
        c = self.channels(x)
        v = self.values[x]
        mean, var = v.mean(axis=(0, 2, 3)), v.var(axis=(0, 2, 3))
        var = np.maximum(var, 0.1 * float(var.mean()) + 1e-3)
        eps = 1e-5
        gamma = self.rng.uniform(0.8, 1.2, size=c)
        beta = self.rng.normal(0.0, 0.1, size=c)
        run_mean = mean + self.rng.normal(0.0, 0.1, size=c) * np.sqrt(var)
        run_var = var * self.rng.uniform(0.8, 1.25, size=c)  # strictly positive
        node_name = self._fresh(name)
        params = [self._init(f"{node_name}.{suffix}", arr.astype(np.float32))
                  for suffix, arr in (("weight", gamma), ("bias", beta),
                                      ("running_mean", run_mean), ("running_var", run_var))]
        p32 = [a.astype(np.float32).astype(np.float64).reshape(1, -1, 1, 1)
               for a in (gamma, beta, run_mean, run_var)]
        y = p32[0] * (v - p32[2]) / np.sqrt(p32[3] + eps) + p32[1]
        return self._emit("BatchNormalization", [x, *params], node_name, y,
                          reserved=True, epsilon=eps)

    def relu(self, x: str, name: str = "relu") -> str:
        return self._emit("Relu", [x], name, np.maximum(self.values[x], 0.0))

    def relu6(self, x: str, name: str = "relu6") -> str:
        """ReLU6 as ``Clip(x, 0, 6)``: what PyTorch exports at opset 17."""
        lo = self.const(np.array(0.0, dtype=np.float32))
        hi = self.const(np.array(6.0, dtype=np.float32))
        return self._emit("Clip", [x, lo, hi], name, np.clip(self.values[x], 0.0, 6.0))

    def add(self, a: str, b: str, name: str = "add") -> str:
        self._same_shape([a, b])
        return self._emit("Add", [a, b], name, self.values[a] + self.values[b])

    def sum(self, xs: Sequence[str], name: str = "sum") -> str:
        """Element-wise sum of any number of inputs as one ``Sum`` node."""
        self._same_shape(xs)
        return self._emit("Sum", xs, name, np.sum([self.values[x] for x in xs], axis=0))

    def mean(self, xs: Sequence[str], name: str = "mean") -> str:
        """Element-wise average as ``Sum`` then ``Mul`` by 1/k.

        ONNX ``Mean`` would be one node, but IREE 3.13's importer fails to
        legalize it for more than two inputs, so we spell out the same math.
        """
        total = self.sum(xs, name=f"{name}_sum")
        scale = self.const(np.array(1.0 / len(xs), dtype=np.float32))
        value = self.values[total] * float(np.float32(1.0 / len(xs)))
        return self._emit("Mul", [total, scale], name, value)

    def concat(self, xs: Sequence[str], name: str = "concat") -> str:
        """Channel concatenation."""
        shapes = [self._nchw(x) for x in xs]
        if len({(s[0], s[2], s[3]) for s in shapes}) != 1:
            raise ValueError(f"concat spatial mismatch: {shapes}")
        return self._emit("Concat", xs, name,
                          np.concatenate([self.values[x] for x in xs], axis=1), axis=1)

    def max_pool(self, x: str, kernel: int = 3, stride: int = 1, padding: int = 1,
                 name: str = "maxpool") -> str:
        y = _windows(self.values[x], kernel, stride, padding, 1, -np.inf).max(axis=(4, 5))
        return self._emit("MaxPool", [x], name, y, kernel_shape=[kernel, kernel],
                          strides=[stride, stride], pads=[padding] * 4)

    def avg_pool(self, x: str, kernel: int = 3, stride: int = 1, padding: int = 1,
                 count_include_pad: bool = False, name: str = "avgpool") -> str:
        v = self.values[x]
        total = _windows(v, kernel, stride, padding, 1, 0.0).sum(axis=(4, 5))
        if count_include_pad:
            count: Array | float = float(kernel * kernel)
        else:
            ones = np.ones((1, 1, *v.shape[2:]))
            count = _windows(ones, kernel, stride, padding, 1, 0.0).sum(axis=(4, 5))
        return self._emit("AveragePool", [x], name, total / count, kernel_shape=[kernel, kernel],
                          strides=[stride, stride], pads=[padding] * 4,
                          count_include_pad=int(count_include_pad))

    def shift_hw(self, x: str, name: str = "slice") -> str:
        """``x[:, :, 1:, 1:]`` as a Slice with constant starts/ends/axes."""
        _, _, h, w = self._nchw(x)
        starts = self.const(np.array([1, 1], dtype=np.int64))
        ends = self.const(np.array([h, w], dtype=np.int64))
        axes = self.const(np.array([2, 3], dtype=np.int64))
        return self._emit("Slice", [x, starts, ends, axes], name, self.values[x][:, :, 1:, 1:])

    def global_avg_pool(self, x: str, name: str = "gap") -> str:
        self._nchw(x)
        return self._emit("GlobalAveragePool", [x], name,
                          self.values[x].mean(axis=(2, 3), keepdims=True))

    def flatten(self, x: str, name: str = "flatten") -> str:
        v = self.values[x]
        return self._emit("Flatten", [x], name, v.reshape(v.shape[0], -1), axis=1)

    def gemm(self, x: str, out_features: int, name: str = "fc") -> str:
        """``nn.Linear``: Gemm with transB=1, N(0, 1/fan_in) weights and a small bias."""
        _, fan_in = self.shapes[x]
        w = self.rng.normal(0.0, math.sqrt(1.0 / fan_in), size=(out_features, fan_in))
        b = self.rng.normal(0.0, 0.01, size=out_features)
        w32, b32 = w.astype(np.float32), b.astype(np.float32)
        node_name = self._fresh(name)
        inputs = [x, self._init(f"{node_name}.weight", w32),
                  self._init(f"{node_name}.bias", b32)]
        y = self.values[x] @ w32.T.astype(np.float64) + b32
        return self._emit("Gemm", inputs, node_name, y, reserved=True, transB=1)

    def classifier(self, x: str, classes: int) -> str:
        """Global average pool -> flatten -> linear, the usual CNN head."""
        return self.gemm(self.flatten(self.global_avg_pool(x)), classes, name="classifier")

    def _same_shape(self, xs: Sequence[str]) -> None:
        if len(xs) < 1 or len({self.shapes[x] for x in xs}) != 1:
            raise ValueError(f"element-wise shape mismatch: {[self.shapes[x] for x in xs]}")

    # ------------------------------------------------------------------ finish
    def build(self, output: str, output_name: str = "output", doc: str = "") -> onnx.ModelProto:
        """Make the model; the last node's result is renamed to ``output_name``.

        Shapes are re-derived by strict ONNX shape inference and compared with the
        tracked ones; the inferred ``value_info`` is kept so consumers (e.g. a
        memory-aware scheduler) get every intermediate tensor size for free.
        """
        last = self.nodes[-1]
        if last.output[0] != output:
            raise ValueError("the graph output must be produced by the last node")
        last.output[0] = output_name
        self.shapes[output_name] = self.shapes.pop(output)
        inp = helper.make_tensor_value_info(self.input_name, TensorProto.FLOAT,
                                            list(self.shapes[self.input_name]))
        out = helper.make_tensor_value_info(output_name, TensorProto.FLOAT,
                                            list(self.shapes[output_name]))
        graph = helper.make_graph(self.nodes, self.name, [inp], [out],
                                  initializer=self.initializers)
        model = helper.make_model(graph, producer_name=PRODUCER, ir_version=IR_VERSION,
                                  opset_imports=[helper.make_opsetid("", OPSET)])
        model.doc_string = doc
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        for vi in model.graph.value_info:
            dims = tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
            tracked = self.shapes.get(vi.name)
            if dims != tracked:
                raise RuntimeError(f"{vi.name}: inferred shape {dims} != tracked {tracked}")
        return model


def pick(value: int | None, small: int, paper_value: int, paper: bool) -> int:
    """An explicit size wins; otherwise the small or the paper-like default."""
    if value is not None:
        return value
    return paper_value if paper else small
