"""Blended faces with the teacher's own vector of each blend: new points to distil on (`fit --mix`).

The student learns dlib's vectors of 18k faces by heart (held-out figures level after ~30 epochs while
the loss keeps falling). A blend of two training faces is a face of nobody; dlib's vector of it is a
target the data does not hold. The blend of the two faces' vectors is no stand-in for it: dlib's
vector of the blended chip lies at cosine 0.75 of the blended (centred) vectors on average, as dlib
follows the heavier face (see models/README.md, "Blends").
dlib takes ~90 ms a face on this CPU, so the blends are made once here, in resumable shards, one process
a core, and travel with the cache.

Each record: the two images (paths as in the cache), the weight of the first, and dlib's vector of the
blend of their dlib chips (HOG box and 5 landmarks from teacher-dlib.npz, 150 px, padding 0.25: what
face_recognition computes). The student sees the same blend of the two faces as the bot aligns them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from .data import in_shards, load_cache, split_identities


def make_blends(data: Path, cache: Path, out: Path, n: int, seed: int = 0, shard: int = 500,
                workers: int | None = None) -> dict:
    """n blend records of training faces (held-out identities never), appended shard by shard: a killed
    run, or a larger n later, goes on from the shards already made."""
    z = load_cache(cache)
    ok = np.flatnonzero(z["has_teacher"] & ~split_identities(z["identities"], seed))
    rng = np.random.default_rng((seed, 16))
    # drawn for the largest n ever asked, so a larger n extends a smaller one's records
    a = rng.choice(ok, 1_000_000)
    b = rng.choice(ok, 1_000_000)
    b = np.where(a == b, ok[(np.searchsorted(ok, b) + 1) % len(ok)], b)
    lam = rng.uniform(0.2, 0.8, 1_000_000).astype(np.float32)
    paths = z["paths"]
    jobs = [(s, (data, [(str(paths[a[i]]), str(paths[b[i]]), float(lam[i])) for i in range(s, min(n, s + shard))]))
            for s in range(0, n, shard)]
    merged = in_shards(out, jobs, _blend_shard, ("a", "b", "lam", "teacher"), "blend", workers=workers, digits=7)
    stats = {"blends": int(len(merged["lam"])), "out": str(out)}
    print(json.dumps(stats))
    return stats


def _blend_shard(job: tuple[Path, list[tuple[str, str, float]], Path]) -> Path:
    import dlib
    import face_recognition_models
    data, items, part = job
    cv2.setNumThreads(1)
    teacher = np.load(data / "teacher-dlib.npz")
    where = {p: i for i, p in enumerate(teacher["paths"])}
    model = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())

    def chip(rel: str) -> np.ndarray:
        i = where[rel]
        img = np.ascontiguousarray(cv2.imread(str(data / rel))[:, :, ::-1])
        l, t, r, b = (int(v) for v in teacher["boxes"][i])
        pts = [dlib.point(int(round(x)), int(round(y))) for x, y in teacher["landmarks5"][i].reshape(-1, 2)]
        return dlib.get_face_chip(img, dlib.full_object_detection(dlib.rectangle(l, t, r, b), pts),
                                  size=150, padding=0.25).astype(np.float32)

    blends = [np.round(lam * chip(pa) + (1 - lam) * chip(pb)).astype(np.uint8) for pa, pb, lam in items]
    vecs = np.array(model.compute_face_descriptor(blends), np.float16).reshape(-1, 128)
    tmp = part.with_suffix(".tmp.npz")
    np.savez(tmp, a=np.array([i[0] for i in items], dtype=str), b=np.array([i[1] for i in items], dtype=str),
             lam=np.array([i[2] for i in items], np.float32), teacher=vecs)
    os.replace(tmp, part)
    return part
