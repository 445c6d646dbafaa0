"""Weight files any Keras backend reads and writes, and the first trainer's TensorFlow checkpoints."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def save_weights(backbone, stem: Path, cosface_w=None, **meta) -> None:
    """stem.weights.h5 (the backbone, Keras' own format), stem.npy (CosFace weights), stem.json (meta)
    written last, so a checkpoint counts only once it is whole."""
    import keras
    backbone.save_weights(str(stem) + ".weights.h5")
    if cosface_w is not None:
        np.save(str(stem) + ".npy", keras.ops.convert_to_numpy(cosface_w))
    Path(str(stem) + ".json").write_text(json.dumps(meta))


def latest_weights(ckpt_dir: Path) -> dict | None:
    """The newest whole checkpoint in ckpt_dir: {"stem": ..., **meta} for a Keras weight file, or
    {"legacy": ...} for a TensorFlow checkpoint of the first trainer (read under TensorFlow only)."""
    ckpt_dir = Path(ckpt_dir)
    metas = sorted(ckpt_dir.glob("step-*.json"))
    if metas:
        return {"stem": str(metas[-1].with_suffix("")), **json.loads(metas[-1].read_text())}
    if (ckpt_dir / "checkpoint").exists():
        import tensorflow as tf
        latest = tf.train.latest_checkpoint(str(ckpt_dir))
        if latest:
            step = int(latest.rsplit("-", 1)[-1]) if latest.rsplit("-", 1)[-1].isdigit() else 0
            return {"legacy": latest, "step": step}
    return None


def load_weights(backbone, found: dict) -> np.ndarray | None:
    """Load a checkpoint found by latest_weights into backbone; its CosFace weights, if it has them."""
    if "legacy" in found:
        import tensorflow as tf
        reader = tf.train.load_checkpoint(found["legacy"])
        shapes = reader.get_variable_to_shape_map()
        key = next((k for k in shapes if k.startswith("W/")), None)
        w = tf.Variable(tf.zeros(shapes[key])) if key else None
        parts = {"model": backbone, **({"W": w} if w is not None else {})}
        tf.train.Checkpoint(**parts).restore(found["legacy"]).expect_partial()
        return w.numpy() if w is not None else None
    backbone.load_weights(found["stem"] + ".weights.h5")
    npy = Path(found["stem"] + ".npy")
    return np.load(npy) if npy.exists() else None
