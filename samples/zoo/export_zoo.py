"""Export the model zoo: real architectures from public model code, narrowed.

Standalone (needs torch==2.13.0, timm and onnx; the serenity_mlir package
never imports it). Every model is built from timm's model definitions (or,
for those in WRITTEN_HERE, written here from the papers' definitions) with
seeded random weights, no pretrained weights, narrowed widths and depths,
in eval mode, and exported with the TorchScript exporter (``dynamo=False``,
opset 17, static shapes), then typed with ``onnx.shape_inference`` (except
RAW_EXPORT, kept as the exporter writes them).

    python samples/zoo/export_zoo.py [--out samples/zoo] [NAME ...]

Without timm installed only the models written here (WRITTEN_HERE) export,
named on the command line.

Narrowing: through constructor arguments where the model has them; NASNet's
sibling PNASNet-5, Inception-v3 and SelecSLS hard-code their widths, so they
are built under ``narrow(k)``, which divides every convolution's,
batch norm's and linear layer's channel count by ``k`` while the model is
constructed (the RGB input channels stay 3).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import math
import random
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F


class _Anything(type):
    """A class whose every attribute is another such class (stands in for torchvision's names)."""

    def __getattr__(cls, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything(name, (), {})

    def __call__(cls, *args, **kwargs):
        raise RuntimeError(f"torchvision stand-in {cls.__name__} called: torchvision is not importable")


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything(name, (), {})


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        m = _StubModule(spec.name)
        m.__path__ = []  # type: ignore[attr-defined]
        return m

    def exec_module(self, module) -> None:
        pass


def _stub_torchvision() -> None:
    """timm imports torchvision (data sets, transforms, FrozenBatchNorm2d) at import time.

    The torchvision wheels on PyPI are CUDA builds that do not load against
    torch's CPU build, and none of the zoo's models uses torchvision, so when
    the real torchvision is not importable every ``torchvision.*`` import
    gets a stand-in module whose names fail only when called.
    """
    try:
        import torchvision  # noqa: F401

        return
    except Exception:  # noqa: BLE001 - any failure to load means: stand in for it
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
    sys.meta_path.insert(0, _StubFinder())


# timm is needed only by the models built from its definitions; the ones
# written here (WRITTEN_HERE) export without it.
TIMM_INSTALLED = importlib.util.find_spec("timm") is not None
if TIMM_INSTALLED:
    _stub_torchvision()
    import timm
    from timm.models import efficientnet as _effnet
    from timm.models import ghostnet as _ghostnet
    from timm.models import mobilenetv3 as _mbv3
    from timm.models.regnet import RegNet, RegNetCfg
    from timm.models.res2net import Bottle2neck
    from timm.models.resnet import Bottleneck, ResNet

NUM_CLASSES = 10


# --------------------------------------------------------------------------
# Narrowing models that hard-code their widths


@contextlib.contextmanager
def narrow(k: int) -> Iterator[None]:
    """Divide the channel counts of Conv2d / BatchNorm2d / Linear inputs by k.

    A count divisible by k is divided exactly, so concatenations and sums
    stay consistent; other counts (the stems') are rounded. The 3 RGB input
    channels and the classifier's outputs are kept.
    """

    def f(c: int) -> int:
        if c == 3:
            return 3
        return c // k if c % k == 0 else max(1, round(c / k))

    conv_init = nn.Conv2d.__init__
    bn_init = nn.BatchNorm2d.__init__
    lin_init = nn.Linear.__init__

    def conv(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, *a, **kw):
        i, o = f(in_channels), f(out_channels)
        if groups == in_channels and groups > 1:
            g = i
        elif groups > 1:
            g = math.gcd(math.gcd(i, o), groups)
        else:
            g = 1
        conv_init(self, i, o, kernel_size, stride, padding, dilation, g, *a, **kw)

    def bn(self, num_features, *a, **kw):
        bn_init(self, f(num_features), *a, **kw)

    def lin(self, in_features, out_features, *a, **kw):
        lin_init(self, f(in_features), out_features, *a, **kw)

    nn.Conv2d.__init__ = conv  # type: ignore[method-assign]
    nn.BatchNorm2d.__init__ = bn  # type: ignore[method-assign]
    nn.Linear.__init__ = lin  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Conv2d.__init__ = conv_init  # type: ignore[method-assign]
        nn.BatchNorm2d.__init__ = bn_init  # type: ignore[method-assign]
        nn.Linear.__init__ = lin_init  # type: ignore[method-assign]


# --------------------------------------------------------------------------
# RandWire: one stage of a Watts-Strogatz WS(N, K, P) random graph
# (Xie et al., "Exploring Randomly Wired Neural Networks", ICCV 2019)


def ws_dag(n: int, k: int, p: float, seed: int) -> list[list[int]]:
    """Predecessors of each node of a WS(n, k, p) graph, edges oriented low -> high."""
    rng = random.Random(seed)
    edges = {frozenset((i, (i + j) % n)) for i in range(n) for j in range(1, k // 2 + 1)}
    for j in range(1, k // 2 + 1):  # rewire clockwise edges, as networkx's watts_strogatz_graph
        for i in range(n):
            e = frozenset((i, (i + j) % n))
            if rng.random() < p and e in edges:
                choices = [w for w in range(n) if w != i and frozenset((i, w)) not in edges]
                if choices:
                    edges.remove(e)
                    edges.add(frozenset((i, rng.choice(choices))))
    preds: list[list[int]] = [[] for _ in range(n)]
    for e in edges:
        a, b = sorted(e)
        preds[b].append(a)
    return [sorted(ps) for ps in preds]


class SepConvUnit(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )


class RandWireNode(nn.Module):
    def __init__(self, n_in: int, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(n_in)) if n_in > 1 else None
        self.op = SepConvUnit(cin, cout, stride)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        if self.w is None:
            x = xs[0]
        else:
            w = torch.sigmoid(self.w)
            x = xs[0] * w[0]
            for i in range(1, len(xs)):
                x = x + xs[i] * w[i]
        return self.op(x)


class RandWireStage(nn.Module):
    def __init__(self, cin: int, cout: int, n: int, k: int, p: float, seed: int) -> None:
        super().__init__()
        self.preds = ws_dag(n, k, p, seed)
        self.nodes = nn.ModuleList(
            RandWireNode(max(1, len(ps)), cin if not ps else cout, cout, 2 if not ps else 1) for ps in self.preds
        )
        used = {a for ps in self.preds for a in ps}
        self.outputs = [i for i in range(n) if i not in used]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ys: list[torch.Tensor] = []
        for ps, node in zip(self.preds, self.nodes, strict=True):
            ys.append(node([x] if not ps else [ys[a] for a in ps]))
        out = ys[self.outputs[0]]
        for i in self.outputs[1:]:
            out = out + ys[i]
        return out / len(self.outputs)


class RandWireNet(nn.Module):
    """conv stem, one RandWire WS(N, 4, 0.75) stage, classifier."""

    def __init__(self, c: int = 16, n: int = 32, seed: int = 0) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c // 2, 3, 2, 1, bias=False), nn.BatchNorm2d(c // 2))
        self.stage = RandWireStage(c // 2, c, n, 4, 0.75, seed)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(c, 4 * c, 1), nn.BatchNorm2d(4 * c), nn.ReLU())
        self.fc = nn.Linear(4 * c, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.stage(self.stem(x)))
        return self.fc(x.mean((2, 3)))


# --------------------------------------------------------------------------
# DARTS-space CIFAR network from a genotype (Liu et al. 2019; the PC-DARTS
# genotype of Xu et al. 2020, `PC_DARTS_cifar` in their genotypes.py)

PC_DARTS_NORMAL = [
    ("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
    ("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 1),
]  # fmt: skip
PC_DARTS_REDUCE = [
    ("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
    ("sep_conv_3x3", 0), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2),
]  # fmt: skip


class ReLUConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int, pad: int) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(cin, cout, k, stride, pad, bias=False), nn.BatchNorm2d(cout))


class DilConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int, pad: int, dil: int) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(cin, cin, k, stride, pad, dilation=dil, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )


class SepConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int, pad: int) -> None:
        super().__init__(DilConv(cin, cin, k, stride, pad, 1), DilConv(cin, cout, k, 1, pad, 1))


class FactorizedReduce(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.c2 = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return self.bn(torch.cat([self.c1(x), self.c2(x[:, :, 1:, 1:])], dim=1))


def darts_op(name: str, c: int, stride: int) -> nn.Module:
    if name == "sep_conv_3x3":
        return SepConv(c, c, 3, stride, 1)
    if name == "sep_conv_5x5":
        return SepConv(c, c, 5, stride, 2)
    if name == "dil_conv_3x3":
        return DilConv(c, c, 3, stride, 2, 2)
    if name == "dil_conv_5x5":
        return DilConv(c, c, 5, stride, 4, 2)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride, 1, count_include_pad=False)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, 1)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    raise ValueError(name)


class DartsCell(nn.Module):
    def __init__(self, genotype, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, 0)
        self.ops = nn.ModuleList(darts_op(name, c, 2 if reduction and idx < 2 else 1) for name, idx in genotype)
        self.idx = [idx for _, idx in genotype]

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for i in range(len(self.ops) // 2):
            a, b = 2 * i, 2 * i + 1
            states.append(self.ops[a](states[self.idx[a]]) + self.ops[b](states[self.idx[b]]))
        return torch.cat(states[2:], dim=1)


class DartsCifarNet(nn.Module):
    def __init__(self, normal, reduce, c: int = 16, cells: str = "NNRN") -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 3 * c, 3, padding=1, bias=False), nn.BatchNorm2d(3 * c))
        c_pp, c_p, cur, red_prev = 3 * c, 3 * c, c, False
        self.cells = nn.ModuleList()
        for kind in cells:
            red = kind == "R"
            if red:
                cur *= 2
            self.cells.append(DartsCell(reduce if red else normal, c_pp, c_p, cur, red, red_prev))
            c_pp, c_p, red_prev = c_p, 4 * cur, red
        self.fc = nn.Linear(c_p, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.fc(s1.mean((2, 3)))


# --------------------------------------------------------------------------
# ShuffleNetV2 (Ma et al. 2018), written after torchvision's definition


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = (int(d) for d in x.shape)  # Python ints: a constant reshape in the export
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
            )  # fmt: skip
        b_in = cin if stride > 1 else half
        self.branch2 = nn.Sequential(
            nn.Conv2d(b_in, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
            nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            half = int(x.shape[1]) // 2
            x1, x2 = x[:, :half], x[:, half:]
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, repeats=(2, 3, 2), channels=(12, 24, 48, 96, 256)) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, channels[0], 3, 2, 1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU()
        )
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers: list[nn.Module] = []
        cin = channels[0]
        for r, cout in zip(repeats, channels[1:4], strict=True):
            layers += [ShuffleUnit(cin, cout, 2)] + [ShuffleUnit(cout, cout, 1) for _ in range(r - 1)]
            cin = cout
        self.stages = nn.Sequential(*layers)
        self.conv5 = nn.Sequential(nn.Conv2d(cin, channels[4], 1, bias=False), nn.BatchNorm2d(channels[4]), nn.ReLU())
        self.fc = nn.Linear(channels[4], NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv5(self.stages(self.maxpool(self.conv1(x))))
        return self.fc(x.mean((2, 3)))


# --------------------------------------------------------------------------
# MobileNetV2 (Sandler et al. 2018), written after torchvision's definition;
# at width 0.35 and 144x144 input it is the microcontroller setting of
# MCUNetV2 (Lin et al. 2021)


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: the nearest multiple of ``divisor``, at least it, at most 10% down."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNReLU6(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU6()
        )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = round(cin * expand)
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = [ConvBNReLU6(cin, hidden, 1)] if expand != 1 else []
        layers += [
            ConvBNReLU6(hidden, hidden, 3, stride, groups=hidden),  # depthwise
            nn.Conv2d(hidden, cout, 1, bias=False),  # linear bottleneck
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


MOBILENETV2_SETTING = [  # t (expansion), c (channels), n (repeats), s (first stride)
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
]  # fmt: skip


class MobileNetV2(nn.Module):
    """Stem conv 3x3/2, the 17 inverted residual blocks, 1x1 conv to 1280 (kept at widths < 1, as in the
    reference), global average pool, classifier; channels scaled by ``width`` and made divisible by 8."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        cin = make_divisible(32 * width)
        last = make_divisible(1280 * max(1.0, width))
        layers: list[nn.Module] = [ConvBNReLU6(3, cin, 3, 2)]
        for t, c, n, s in MOBILENETV2_SETTING:
            cout = make_divisible(c * width)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        layers.append(ConvBNReLU6(cin, last, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(last, NUM_CLASSES)  # (the reference's Dropout(0.2) is the identity in eval mode)
        for m in self.modules():  # the reference's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


# --------------------------------------------------------------------------
# Beyond image classifiers: keyword spotting, segmentation, super-resolution,
# transformers. Exported as the exporter writes them (RAW_EXPORT): what a
# user hands the compiler, shape arithmetic included.


class DSCNN(nn.Module):
    """DS-CNN-S (Zhang et al. 2017, "Hello Edge"; MLPerf Tiny's keyword
    spotting reference): 10x4 conv stride 2, four depthwise-separable blocks
    of 64 channels (BN, ReLU), global average pool, 12 classes; the input is
    49 MFCC frames of 10 coefficients."""

    def __init__(self, channels: int = 64, blocks: int = 4, classes: int = 12) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, channels, (10, 4), (2, 2), (5, 1), bias=False), nn.BatchNorm2d(channels),
                                  nn.ReLU())  # fmt: skip
        self.blocks = nn.Sequential(
            *(
                nn.Sequential(
                    nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=False), nn.BatchNorm2d(channels),
                    nn.ReLU(), nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
                )  # fmt: skip
                for _ in range(blocks)
            )
        )
        self.classifier = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.blocks(self.stem(x)).mean((2, 3)))


def _double_conv(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
    )  # fmt: skip


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015), three levels of double 3x3 convs (8,
    16, 32 channels instead of 64..1024) with max-pool down, a transposed
    conv up from the bottom and nearest up-sampling above it, skip
    concatenations, a 1x1 conv to 2 classes per pixel."""

    def __init__(self, base: int = 8, classes: int = 2) -> None:
        super().__init__()
        self.down1, self.down2 = _double_conv(3, base), _double_conv(base, 2 * base)
        self.bottom = _double_conv(2 * base, 4 * base)
        self.up2 = nn.ConvTranspose2d(4 * base, 2 * base, 2, 2)
        self.dec2 = _double_conv(4 * base, 2 * base)
        self.dec1 = _double_conv(3 * base, base)
        self.head = nn.Conv2d(base, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.down1(x)
        b = self.down2(F.max_pool2d(a, 2))
        c = self.bottom(F.max_pool2d(b, 2))
        u = self.dec2(torch.cat([self.up2(c), b], 1))
        u = self.dec1(torch.cat([F.interpolate(u, scale_factor=2.0, mode="nearest"), a], 1))
        return self.head(u)


class ESPCN(nn.Module):
    """ESPCN (Shi et al. 2016) for x2 super-resolution of the luma channel:
    5x5 conv 64, 3x3 conv 32 (tanh), 3x3 conv to r^2 = 4 channels, pixel
    shuffle."""

    def __init__(self, r: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 64, 5, padding=2), nn.Tanh(), nn.Conv2d(64, 32, 3, padding=1), nn.Tanh(),
                                  nn.Conv2d(32, r * r, 3, padding=1))  # fmt: skip
        self.shuffle = nn.PixelShuffle(r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.body(x))


class TokenTransformer(nn.Module):
    """A class token, learned position embeddings and pre-norm transformer
    encoder layers (torch's nn.TransformerEncoderLayer, GELU), then a
    LayerNorm and a linear head on the class token. ``tokens`` turns the
    input into (1, n, width)."""

    def __init__(self, tokens: nn.Module, n: int, width: int, depth: int, heads: int, mlp: int, classes: int) -> None:
        super().__init__()
        self.tokens = tokens
        self.cls = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, n + 1, width) * 0.02)
        layer = partial(nn.TransformerEncoderLayer, width, heads, mlp, dropout=0.0, activation="gelu",
                        batch_first=True, norm_first=True)  # fmt: skip
        self.encoder = nn.Sequential(*(layer() for _ in range(depth)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.tokens(x)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], 1) + self.pos
        return self.head(self.norm(self.encoder(t))[:, 0])


class PatchEmbed(nn.Module):
    """ViT's patch embedding: a conv with the patch size as stride, flattened to tokens."""

    def __init__(self, patch: int, width: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, width, patch, patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class FrameEmbed(nn.Module):
    """KWT's embedding: each time frame of the MFCC image (1, 1, coeffs, frames) is one token."""

    def __init__(self, coeffs: int, width: int) -> None:
        super().__init__()
        self.proj = nn.Linear(coeffs, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.squeeze(1).transpose(1, 2))


# --------------------------------------------------------------------------
# The zoo: name -> (builder, input shape, what it is)


def _timm(name: str, **kw) -> nn.Module:
    return timm.create_model(name, pretrained=False, num_classes=NUM_CLASSES, **kw)


def _narrow_head(model: nn.Module, width: int) -> nn.Module:
    """Replace a hard-coded 1280-wide 1x1 head conv (and the classifier after it) by a `width`-wide one."""
    head = model.conv_head
    assert isinstance(head, nn.Conv2d)
    model.conv_head = nn.Conv2d(head.in_channels, width, 1, bias=head.bias is not None)
    model.classifier = nn.Linear(width, NUM_CLASSES)
    return model


def _pnasnet() -> nn.Module:
    with narrow(27):
        return _timm("pnasnet5large")


def _inception_v3() -> nn.Module:
    with narrow(16):
        return _timm("inception_v3")


def _dpn() -> nn.Module:
    # DPN slices its dual paths at hard-coded offsets, so narrow() cannot apply; three stages (DPN's
    # zip over the stage widths stops at the shortest tuple) keep the fixed 512-wide fourth stage out.
    return timm.models.dpn.DPN(
        small=True,
        num_init_features=16,
        k_r=16,
        groups=8,
        k_sec=(1, 2, 2),
        inc_sec=(8, 16, 16),
        num_classes=NUM_CLASSES,
    )


def _selecsls() -> nn.Module:
    with narrow(12):
        return _timm("selecsls42b")


ZOO: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], str]] = {
    "nasnet_a": (
        lambda: _timm("nasnetalarge", stem_size=16, num_features=24 * 4),
        (1, 3, 64, 64),
        "timm `nasnetalarge` (NASNet-A Large topology: 18 normal cells, 2 reduction cells), stem_size=16, "
        "num_features=96 (4 channels per cell branch instead of 168; it must be a multiple of 48)",
    ),
    "pnasnet5": (
        _pnasnet,
        (1, 3, 64, 64),
        "timm `pnasnet5large` (PNASNet-5 Large topology), every width / 27 via narrow(27) "
        "(stem 96 -> 4, cells 54..4320 -> 2..160)",
    ),
    "mnasnet": (
        lambda: _effnet._gen_mnasnet_a1(
            "mnasnet_a1", channel_multiplier=0.35, num_features=256, num_classes=NUM_CLASSES
        ),
        (1, 3, 64, 64),
        "timm MnasNet-A1 (`_gen_mnasnet_a1`), channel_multiplier=0.35, num_features=256",
    ),
    "efficientnet_b0": (
        lambda: _effnet._gen_efficientnet(
            "efficientnet_b0", channel_multiplier=0.25, depth_multiplier=0.5, num_classes=NUM_CLASSES
        ),
        (1, 3, 64, 64),
        "timm EfficientNet-B0 (`_gen_efficientnet`), channel_multiplier=0.25, depth_multiplier=0.5",
    ),
    "mobilenetv3": (
        lambda: _narrow_head(_mbv3._gen_mobilenet_v3("mobilenetv3_large_100", 0.25, num_classes=NUM_CLASSES), 256),
        (1, 3, 64, 64),
        "timm MobileNetV3-Large (`_gen_mobilenet_v3`), channel_multiplier=0.25, 1x1 head conv 1280 -> 256 wide",
    ),
    "ghostnet": (
        lambda: _narrow_head(_ghostnet._create_ghostnet("ghostnet_100", width=0.3, num_classes=NUM_CLASSES), 256),
        (1, 3, 64, 64),
        "timm GhostNet (`_create_ghostnet`), width=0.3, 1x1 head conv 1280 -> 256 wide",
    ),
    "densenet": (
        lambda: timm.models.densenet.DenseNet(growth_rate=8, block_config=(3, 6, 8, 4), num_classes=NUM_CLASSES),
        (1, 3, 64, 64),
        "timm DenseNet (DenseNet-121 layout narrowed): growth_rate=8, block_config=(3, 6, 8, 4)",
    ),
    "inception_v3": (
        _inception_v3,
        (1, 3, 80, 80),
        "timm `inception_v3`, every width / 16 via narrow(16); 80x80 input (>= 75 needed)",
    ),
    "dpn": (
        _dpn,
        (1, 3, 64, 64),
        "timm DPN (DPN-68 layout, small=True, dual-path blocks 64/128/256 wide), first three stages: "
        "k_sec=(1,2,2), inc_sec=(8,16,16), k_r=16, groups=8, num_init_features=16",
    ),
    "resnext": (
        lambda: ResNet(
            Bottleneck,
            (1, 2, 2, 1),
            cardinality=8,
            base_width=16,
            stem_width=16,
            channels=(8, 16, 32, 64),
            num_classes=NUM_CLASSES,
        ),
        (1, 3, 64, 64),
        "timm ResNet with Bottleneck (ResNeXt, group width = out/2 as in 32x4d): layers=(1,2,2,1), "
        "cardinality=8, base_width=16, stem_width=16, channels=(8,16,32,64)",
    ),  # fmt: skip
    "regnet": (
        lambda: RegNet(
            RegNetCfg(depth=10, w0=8, wa=6.0, wm=2.0, group_size=8, se_ratio=0.25, stem_width=16),
            num_classes=NUM_CLASSES,
        ),
        (1, 3, 64, 64),
        "timm RegNet (RegNetY-style, SE 0.25): RegNetCfg(depth=10, w0=8, wa=6, wm=2, group_size=8, stem_width=16): "
        "widths 8,16,32,64",
    ),
    "res2net": (
        lambda: ResNet(
            Bottle2neck,
            (1, 1, 2, 1),
            base_width=8,
            stem_width=16,
            channels=(16, 32, 64, 128),
            block_args=dict(scale=4),
            num_classes=NUM_CLASSES,
        ),
        (1, 3, 64, 64),
        "timm ResNet with Bottle2neck (Res2Net): layers=(1,1,2,1), base_width=8, scale=4, stem_width=16, "
        "channels=(16,32,64,128)",
    ),  # fmt: skip
    "selecsls": (
        _selecsls,
        (1, 3, 96, 96),
        "timm `selecsls42b`, every width / 12 via narrow(12); 96x96 input (at 64x64 the head's 3x3 stride-2 "
        "convolution of a 2x2 map makes IREE 3.13 fail: see samples/zoo/README.md)",
    ),
    "randwire": (
        partial(RandWireNet, c=16, n=32, seed=0),
        (1, 3, 64, 64),
        "written here: conv stem, one RandWire stage WS(32, 4, 0.75) (seed 0, sigmoid-weighted sums, "
        "ReLU-SepConv-BN nodes) with 16 channels, 1x1 head, classifier",
    ),
    "pc_darts_cifar": (
        partial(DartsCifarNet, PC_DARTS_NORMAL, PC_DARTS_REDUCE, c=16, cells="NNRN"),
        (1, 3, 32, 32),
        "written here from the PC-DARTS CIFAR genotype (DARTS NetworkCIFAR cells): stem, cells N,N,R,N, C=16",
    ),
    "shufflenet_v2": (
        ShuffleNetV2,
        (1, 3, 64, 64),
        "written here after torchvision's ShuffleNetV2: repeats (2,3,2), channels (12,24,48,96,256)",
    ),
    "mobilenetv2_035_144": (
        partial(MobileNetV2, width=0.35),
        (1, 3, 144, 144),
        "written here after torchvision's MobileNetV2 (Sandler et al. 2018), width 0.35: stem 16, blocks "
        "8,8,16,24,32,56,112 wide (17 inverted residuals), 1x1 head conv 1280; the microcontroller setting of "
        "MCUNetV2 (144x144)",
    ),
    "ds_cnn_kws": (
        DSCNN,
        (1, 1, 49, 10),
        "written here after DS-CNN-S (Zhang et al. 2017, MLPerf Tiny's keyword spotting model): 10x4/2 conv, four "
        "depthwise-separable blocks of 64 channels, 12 classes; 49 MFCC frames x 10 coefficients",
    ),
    "unet": (
        UNet,
        (1, 3, 64, 64),
        "written here after U-Net (Ronneberger et al. 2015): three levels 8/16/32 wide, transposed conv and nearest "
        "up-sampling, skip concatenations, 2 classes per pixel",
    ),
    "espcn": (
        ESPCN,
        (1, 1, 64, 64),
        "written here after ESPCN (Shi et al. 2016), x2: 5x5 conv 64, 3x3 conv 32, 3x3 conv 4, pixel shuffle",
    ),
    "vit": (
        lambda: TokenTransformer(PatchEmbed(8, 64), 16, 64, depth=2, heads=2, mlp=128, classes=NUM_CLASSES),
        (1, 3, 32, 32),
        "written here after ViT (Dosovitskiy et al. 2021): 8x8 patches of a 32x32 image, width 64, depth 2, 2 heads, "
        "MLP 128, class token, pre-norm (torch's nn.TransformerEncoderLayer)",
    ),
    "kwt": (
        lambda: TokenTransformer(FrameEmbed(40, 64), 98, 64, depth=4, heads=1, mlp=256, classes=35),
        (1, 1, 40, 98),
        "written here after the Keyword Transformer KWT-1 (Berg et al. 2021): each of 98 MFCC frames (40 "
        "coefficients) a token, width 64, 1 head, MLP 256, depth 4 of 12, class token, 35 keywords",
    ),
}

# The models written in this file: they export without timm.
WRITTEN_HERE = (
    "randwire", "pc_darts_cifar", "shufflenet_v2", "mobilenetv2_035_144", "ds_cnn_kws", "unet", "espcn", "vit", "kwt",
)  # fmt: skip
# Kept as the exporter writes them (no result shape pinned, nothing folded,
# no shape inference): the compiler's import must cope, as it must with a
# user's file.
RAW_EXPORT = frozenset({"ds_cnn_kws", "unet", "espcn", "vit", "kwt"})


@contextlib.contextmanager
def static_same_padding() -> Iterator[None]:
    """timm's TF-style "same" padding computes the pad from ``x.size()``, which
    the tracer records as Shape/Gather/arithmetic ops (dynamic shapes in the
    ONNX graph). The input shape is static, so pad with Python ints instead:
    the same padding, exported as a constant ``Pad``."""
    if not TIMM_INSTALLED:  # nothing to patch: only the models written here export
        yield
        return
    # (importlib: ``timm.layers`` re-exports functions under some module names)
    padding = importlib.import_module("timm.layers.padding")
    conv_same = importlib.import_module("timm.layers.conv2d_same")
    pool_same = importlib.import_module("timm.layers.pool2d_same")

    def pad_same(x, kernel_size, stride, dilation=(1, 1), value: float = 0):
        ih, iw = (int(d) for d in x.shape[-2:])
        pad_h = padding.get_same_padding(ih, kernel_size[0], stride[0], dilation[0])
        pad_w = padding.get_same_padding(iw, kernel_size[1], stride[1], dilation[1])
        return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=value)

    saved = [(mod, mod.pad_same) for mod in (padding, conv_same, pool_same)]
    for mod, _ in saved:
        mod.pad_same = pad_same
    try:
        yield
    finally:
        for mod, fn in saved:
            mod.pad_same = fn


FOLDABLE = frozenset(
    {"Cast", "Concat", "ConstantOfShape", "Gather", "Reshape", "Slice", "Squeeze", "Transpose", "Unsqueeze",
     "Add", "Sub", "Mul", "Div", "Neg", "Range", "Expand"}
)  # fmt: skip


def fold_shape_constants(m: onnx.ModelProto) -> onnx.ModelProto:
    """Evaluate the small index computations whose inputs are all constants.

    The TorchScript exporter builds a ``Pad``'s pads with Concat / Reshape /
    Slice / Transpose / Cast over constants and does not fold them; shape
    inference then cannot see the pads, and the rest of the graph loses its
    static shapes. Only ``Constant`` nodes feed the folding (never the
    weights), so no weight changes.
    """
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    known: dict[str, object] = {}
    nodes = []
    for node in m.graph.node:
        if node.op_type == "Constant" and len(node.output) == 1:
            known[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            nodes.append(node)
            continue
        if node.op_type in FOLDABLE and node.input and all(i in known for i in node.input if i):
            ins = [i for i in node.input if i]
            values = ReferenceEvaluator(node).run(None, {i: known[i] for i in ins})
            for out, v in zip(node.output, values, strict=True):
                known[out] = v
                nodes.append(onnx.helper.make_node("Constant", [], [out], value=numpy_helper.from_array(v, out)))
            continue
        nodes.append(node)
    # Drop the constants nothing uses any more.
    used = {i for n in nodes for i in n.input} | {o.name for o in m.graph.output}
    keep = [n for n in nodes if n.op_type != "Constant" or n.output[0] in used]
    del m.graph.node[:]
    m.graph.node.extend(keep)
    return m


def export(name: str, out_dir: Path) -> Path:
    build, shape, _ = ZOO[name]
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(*shape)
    path = out_dir / f"{name}.onnx"
    # The fused transformer fast path (eval, no grad) has no ONNX export.
    torch.backends.mha.set_fastpath_enabled(False)
    with torch.no_grad(), static_same_padding(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings about int() on sizes, deprecations
        y = model(x)
        torch.onnx.export(
            model, (x,), str(path), dynamo=False, opset_version=17,
            input_names=["input"], output_names=["output"], do_constant_folding=True,
        )  # fmt: skip
    m = onnx.load(str(path))
    if name in RAW_EXPORT:
        onnx.checker.check_model(m)
        return path
    # The exporter leaves symbolic dims where shapes go through Shape ops (timm's
    # "same" padding, views of x.shape): pin the result's shape and let shape
    # inference propagate the static values through the shape computations.
    for dim, n in zip(m.graph.output[0].type.tensor_type.shape.dim, y.shape, strict=True):
        dim.Clear()
        dim.dim_value = int(n)
    del m.graph.value_info[:]
    m = fold_shape_constants(m)
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True, data_prop=True)
    onnx.checker.check_model(m)
    dynamic = [
        v.name for v in m.graph.value_info if not all(d.HasField("dim_value") for d in v.type.tensor_type.shape.dim)
    ]
    if dynamic:
        raise SystemExit(f"{name}: {len(dynamic)} values keep a dynamic shape after inference, e.g. {dynamic[:3]}")
    onnx.save(m, str(path))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"models to export (default: all of {', '.join(ZOO)})")
    ap.add_argument("--out", default=str(Path(__file__).parent), help="output directory (default: samples/zoo)")
    args = ap.parse_args()
    unknown = [n for n in args.names if n not in ZOO]
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(unknown)}; the zoo: {', '.join(ZOO)}")
    names = args.names or list(ZOO)
    need_timm = [n for n in names if n not in WRITTEN_HERE]
    if need_timm and not TIMM_INSTALLED:
        raise SystemExit(
            f"{', '.join(need_timm)} need timm, which is not installed (see samples/zoo/README.md); "
            f"without it only these export: {' '.join(WRITTEN_HERE)}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        p = export(name, out)
        m = onnx.load(str(p))
        print(f"{name}: {p} {p.stat().st_size:,} B, {len(m.graph.node)} nodes, input {ZOO[name][1]}")


if __name__ == "__main__":
    main()
