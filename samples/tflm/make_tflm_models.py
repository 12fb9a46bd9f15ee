"""Regenerates the ``samples/tflm/*.tflite`` models with TensorFlow's own converter.

Real architectures from Keras' own application code (``keras.applications``),
with seeded random weights (no download) and random batch-norm statistics
(so the normalisation is not the identity), at 96x96 RGB input, with global
average pooling and a 10-way linear classifier as the head, narrowed
where Keras has a width knob so that the files stay small and each compile
stays short. Every model is written twice, exactly as a user's converter
writes it:

- ``NAME.f32.tflite``: ``TFLiteConverter.from_keras_model``, no
  optimisation (float32; the input keeps Keras' dynamic batch,
  ``shape_signature`` ``[-1, 96, 96, 3]``);
- ``NAME.int8.tflite``: full-integer quantisation, int8 input and output,
  ``TFLITE_BUILTINS_INT8`` only, calibrated on 16 seeded uniform [-1, 1]
  inputs.

Needs TensorFlow (``pip install tensorflow-cpu`` into a venv of its own;
serenity-mlir and its tests never import it). The committed files were made
with tensorflow-cpu 2.21.0 (Keras 3.15.1):

    python samples/tflm/make_tflm_models.py [OUT_DIR] [NAME ...]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import applications  # noqa: E402
from keras.src.applications import densenet, efficientnet, nasnet, resnet  # noqa: E402

SIZE = 96
CLASSES = 10
SEED = 0


def _resnet_small(**kw):
    # ResNet v1 bottleneck stacks (Keras' own stack_residual_blocks_v1), one
    # block per stage, 16..128 filters (ResNet-50 is 3/4/6/3 blocks of 64..512).
    def stack_fn(x):
        x = resnet.stack_residual_blocks_v1(x, 8, 1, stride1=1, name="conv2")
        x = resnet.stack_residual_blocks_v1(x, 16, 1, name="conv3")
        x = resnet.stack_residual_blocks_v1(x, 32, 1, name="conv4")
        return resnet.stack_residual_blocks_v1(x, 64, 1, name="conv5")

    return resnet.ResNet(stack_fn, False, True, name="resnet_small", **kw)


# name -> (what it is, a builder of the Keras model)
MODELS = {
    "mobilenet_v2_035": (
        "MobileNetV2, width 0.35",
        lambda **kw: applications.MobileNetV2(alpha=0.35, **kw),
    ),
    "mobilenet_v3_small": (
        "MobileNetV3-Small, width 0.75 (hard-swish, squeeze-excite), no preprocessing layer",
        lambda **kw: applications.MobileNetV3Small(alpha=0.75, include_preprocessing=False, **kw),
    ),
    "efficientnet_b0_w025": (
        "EfficientNet-B0's blocks at width 0.25 (depth 1.0), with its Rescaling and Normalization layers",
        lambda **kw: efficientnet.EfficientNet(0.25, 1.0, SIZE, name="efficientnet_b0_w025", **kw),
    ),
    "densenet_small": (
        "DenseNet (growth rate 32) with dense blocks of 2, 2, 2, 2 layers (DenseNet-121: 6, 12, 24, 16)",
        lambda **kw: densenet.DenseNet([2, 2, 2, 2], name="densenet_small", **kw),
    ),
    "resnet_small": (
        "ResNet v1 with bottleneck blocks, one per stage, 8-64 filters (ResNet-50: 3/4/6/3 blocks, 64-512)",
        _resnet_small,
    ),
    "nasnet_small": (
        "NASNet-A (the NASNet-Mobile cells), penultimate filters 192, 1 block per stage, stem 8 filters",
        lambda **kw: nasnet.NASNet(penultimate_filters=192, num_blocks=1, stem_block_filters=8, **kw),
    ),
}


def build(name: str) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(SEED)
    # The feature extractor, global average pooling and a 10-way linear
    # classifier (logits): Keras' 1000-class heads would be most of the bytes.
    base = MODELS[name][1](input_shape=(SIZE, SIZE, 3), weights=None, include_top=False, pooling="avg")
    logits = tf.keras.layers.Dense(CLASSES, name="logits")(base.output)
    model = tf.keras.Model(base.input, logits, name=name)
    rng = np.random.default_rng(SEED)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                    rng.normal(0.0, 0.1, beta.shape).astype(np.float32),
                    rng.normal(0.0, 0.1, mean.shape).astype(np.float32),
                    rng.uniform(0.5, 1.5, var.shape).astype(np.float32),
                ]
            )
    return model


def convert(model: tf.keras.Model, int8: bool) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(SEED + 1)

        def representative():
            for _ in range(16):
                yield [rng.uniform(-1, 1, (1, SIZE, SIZE, 3)).astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent
    names = argv[1:] or list(MODELS)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        model = build(name)
        for kind in ("f32", "int8"):
            data = convert(model, kind == "int8")
            path = out / f"{name}.{kind}.tflite"
            path.write_bytes(data)
            print(
                f"wrote {path}: {len(data):,} bytes, {model.count_params():,} parameters, tensorflow {tf.__version__}"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
