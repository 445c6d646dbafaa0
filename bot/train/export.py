"""A run's weights -> the TFLite model the bot runs (float, float16 or int8), the pooled features
centred on the training faces' mean."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from .data import DEFAULT_CACHE, load_cache, resize_batch, training_faces
from .network import POOLED, build_backbone
from .weights import latest_weights, load_weights


def export(run: Path, out: Path, float16: bool = False, cache: Path = DEFAULT_CACHE,
           vector: str = "pooled", int8: bool = False) -> Path:
    """The run's latest checkpoint -> TFLite taking SxS RGB float [0, 255], giving L2-normalised vectors.

    vector "pooled" (the default): the 1280 pooled features the training head projects from, centred
    on the mean of training faces (`pooled_mean`) then normalised. The head's 128-d projection is
    what the losses shape, but it drops what tells apart faces it never trained on (figures in
    models/README.md, "Pooled vector"). "embedding": the 128-d projection itself."""
    import tensorflow as tf
    import keras
    if vector not in ("pooled", "embedding"):
        raise SystemExit(f"--vector {vector!r}: expected pooled or embedding")
    cfg = json.loads((run / "config.json").read_text())
    model = build_backbone(cfg["size"], cfg["alpha"], cfg["dim"])
    found = latest_weights(run / "ckpt")
    if found is None:
        raise SystemExit(f"{run}: no checkpoint to export")
    load_weights(model, found)
    # embed.py resizes the aligned 112x112 face to the model's side with cv2 INTER_AREA, as training
    # does (TFLite has no area resize)
    inp = keras.Input((cfg["size"], cfg["size"], 3), name="aligned_face")
    z = None
    if vector == "pooled" or int8:  # both read training faces: the cache is loaded once
        if not Path(cache).exists():
            raise SystemExit(f"{cache}: no aligned-face cache to centre the vectors on or set int8 ranges; "
                             "run `python -m bot.train prepare`")
        z = load_cache(cache)
    if vector == "pooled":
        pooled = keras.Model(model.input, keras.layers.Flatten()(model.get_layer(POOLED).output))
        mean = pooled_mean(pooled, z, cfg["size"], cfg.get("seed", 0))
        if int8:
            # centred inside the last batch norm, so the int8 range of its output is spent on what tells
            # faces apart, not on the direction they all share
            bn = model.get_layer(POOLED)
            gamma, beta, *stats = bn.get_weights()
            bn.set_weights([gamma, beta - mean, *stats])
        x = pooled(inp, training=False)
        if not int8:
            x = keras.layers.Normalization(mean=mean, variance=np.ones_like(mean), name="centre")(x)
        extra = {"vector": "pooled", "centred_on": f"{cache.name}: training faces"}
    else:
        x = model(inp, training=False)
        extra = {"vector": "embedding"}
    if not int8:
        # int8 leaves it out (a sum of squares in 8 bits is the network's largest error): bot/embed.py
        # normalises every vector anyway
        x = keras.layers.UnitNormalization(axis=1, name="l2")(x)
    wrapper = keras.Model(inp, x)

    def converter():
        conv = tf.lite.TFLiteConverter.from_keras_model(wrapper)
        if float16:
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
        if int8:
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = _representative(z, cfg["size"], cfg.get("seed", 0))
        return conv

    if int8:
        data = _int8_model(converter, _representative(z, cfg["size"], cfg.get("seed", 0) + 7, n=8))
        extra.update(int8=True, float_layers=list(INT8_FLOAT_LAYERS), l2="bot/embed.py")
    else:
        data = converter().convert()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    meta = {"checkpoint": Path(found.get("stem") or found["legacy"]).name, **cfg, **extra, "bytes": len(data)}
    print(json.dumps(meta))
    return out


# left in float32 by an int8 export: the first two depthwise convolutions, the layers whose int8 output
# strays most from float (QuantizationDebugger; figures in models/README.md, "int8 export").
INT8_FLOAT_LAYERS = ("expanded_conv_depthwise", "block_1_depthwise")


def _int8_model(converter, probe) -> bytes:
    """Full-integer quantisation with INT8_FLOAT_LAYERS kept float: the debugger names the tensors."""
    import tensorflow as tf
    debug = tf.lite.experimental.QuantizationDebugger(converter=converter(), debug_dataset=probe)
    debug.run()
    buf = io.StringIO()
    debug.layer_statistics_dump(buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    keep = [r["tensor_name"] for r in rows if r["op_name"] == "DEPTHWISE_CONV_2D"
            and any(f"/{layer}_relu" in r["tensor_name"] for layer in INT8_FLOAT_LAYERS)]
    if len(keep) != len(INT8_FLOAT_LAYERS):
        raise SystemExit(f"int8 export: expected the layers {', '.join(INT8_FLOAT_LAYERS)}, found {len(keep)}")
    opts = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=keep)
    return tf.lite.experimental.QuantizationDebugger(converter=converter(), debug_dataset=probe,
                                                     debug_options=opts).get_nondebug_quantized_model()


def _representative(z: dict, size: int, seed: int = 0, n: int = 400):
    """Training faces for the int8 converter to set activation ranges."""
    faces = resize_batch(training_faces(z, seed, n, draw=seed + 1), size)

    def gen():
        for f in faces:
            yield [f[None].astype(np.float32)]
    return gen


def pooled_mean(pooled, z: dict, size: int, seed: int = 0, n: int = 3000) -> np.ndarray:
    """Mean pooled feature of up to n training faces (held-out identities excluded), clean: the pooled
    features share one large direction, which centring removes from every cosine."""
    import keras
    faces = training_faces(z, seed, n, draw=seed)
    feats = [keras.ops.convert_to_numpy(pooled(resize_batch(faces[i:i + 256], size), training=False))
             for i in range(0, len(faces), 256)]
    return np.concatenate(feats).astype(np.float64).mean(0).astype(np.float32)
