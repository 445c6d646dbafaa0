"""New run folders from old ones: the mean of several checkpoints, or the latest weights alone."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .data import DEFAULT_CACHE
from .fit import Trainer
from .network import build_backbone
from .weights import latest_weights, load_weights, save_weights


def average(run: Path, stems: list[str], out: Path, cache: Path = DEFAULT_CACHE, bn_batches: int = 60) -> Path:
    """The mean of several checkpoints' weights (the last epochs of a run), batch-norm statistics then
    re-estimated on augmented training batches: a run folder `export` reads. The shipped model is the
    average of runs/a11's last 8 epochs; an average does at least as well as the run's last checkpoint
    alone (see models/README.md, "Checkpoint average")."""
    cfg = json.loads((run / "config.json").read_text())
    tr = Trainer(cache, out, size=cfg["size"], alpha=cfg["alpha"], dim=cfg["dim"], batch=cfg["batch"],
                 epochs=cfg["epochs"], target_weight=cfg.get("target_weight", 1), seed=cfg.get("seed", 0),
                 jitter=cfg.get("jitter", 0.0))
    total = None
    for stem in stems:
        tr.backbone.load_weights(str(stem) + ".weights.h5")
        w = [np.asarray(a, np.float64) for a in tr.backbone.get_weights()]
        total = w if total is None else [a + b for a, b in zip(total, w)]
    tr.backbone.set_weights([(a / len(stems)).astype(np.float32) for a in total])
    for i in range(bn_batches):  # BN momentum 0.9: 60 batches leave nothing of the averaged statistics
        tr.backbone(tr.batch_at(i * 7)[0], training=True)
    cos = np.load(str(stems[-1]) + ".npy") if Path(str(stems[-1]) + ".npy").exists() else None
    (out / "ckpt").mkdir(parents=True, exist_ok=True)
    save_weights(tr.backbone, out / "ckpt" / "step-0000001", cosface_w=cos, step=1)
    (out / "config.json").write_text(json.dumps({**cfg, "average_of": [str(s) for s in stems]}, indent=1))
    return out


def snapshot(run: Path, out: Path) -> Path:
    """The run's latest weights without optimizer state (small enough to commit), as a run folder that
    `fit --init-from` can start from on another machine, under any Keras backend."""
    cfg = json.loads((run / "config.json").read_text())
    model = build_backbone(cfg["size"], cfg["alpha"], cfg["dim"])
    found = latest_weights(run / "ckpt")
    if found is None:
        raise SystemExit(f"{run}: no checkpoint to snapshot")
    w = load_weights(model, found)
    (out / "ckpt").mkdir(parents=True, exist_ok=True)
    for old in (out / "ckpt").glob("*"):
        old.unlink()
    step = int(found.get("step", 0))
    save_weights(model, out / "ckpt" / f"step-{step:07d}", cosface_w=w, step=step)
    (out / "config.json").write_text(json.dumps({**cfg, "from": str(found.get("stem") or found["legacy"])}, indent=1))
    return out
