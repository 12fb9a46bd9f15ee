"""Regenerates samples/branches.tflite with TensorFlow's own converter.

Needs TensorFlow (``pip install tensorflow-cpu``, about 1.6 GB installed),
only to regenerate the file: serenity-mlir reads .tflite files without it
(the ``tflite`` extra, Arm's ``tosa-converter-for-tflite``). The committed
file was made with tensorflow-cpu 2.21.0.

The model is the README's ONNX sample in TFLite's layout: 4 branches of
(1x1 conv 8->64, ReLU, 1x1 conv 64->8), summed; input ``input`` 1x32x32x8
float32 (NHWC), output 1x32x32x8; weights seeded; float32, no optimizations.

    python samples/make_tflite.py [OUT.tflite]
"""

import sys

import numpy as np
import tensorflow as tf

BRANCHES, C_IN, C_MID, H, W = 4, 8, 64, 32, 32


def build(seed: int = 0):
    rng = np.random.default_rng(seed)

    def w(*shape):
        return tf.constant(rng.standard_normal(shape, dtype=np.float32) * 0.1)

    params = [(w(1, 1, C_IN, C_MID), w(C_MID), w(1, 1, C_MID, C_IN), w(C_IN)) for _ in range(BRANCHES)]

    @tf.function(input_signature=[tf.TensorSpec([1, H, W, C_IN], tf.float32, name="input")])
    def branches(x):
        outs = []
        for w1, b1, w2, b2 in params:
            h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w1, 1, "VALID"), b1))
            outs.append(tf.nn.bias_add(tf.nn.conv2d(h, w2, 1, "VALID"), b2))
        return {"output": tf.add_n(outs)}

    return branches


def main(out: str = "samples/branches.tflite") -> None:
    fn = build()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    data = conv.convert()  # float32, no optimizations
    with open(out, "wb") as f:
        f.write(data)
    print(f"wrote {out}: {len(data)} bytes, tensorflow {tf.__version__}")


if __name__ == "__main__":
    main(*sys.argv[1:])
