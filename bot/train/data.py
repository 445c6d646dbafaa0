"""Training faces: every image of the training folders detected and aligned by the bot's own detector
and aligner, cached as uint8 arrays with identities and dlib teacher vectors; the held-out split.

seed-faces is the evaluation class and is never read here. Whole identities are held out (never
images) for validation and threshold calibration.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from ..config import PROJECT_DIR
from ..faces import FaceDetector, find_faces


DEFAULT_DATA = PROJECT_DIR.parent / "shared" / "data"
DEFAULT_CACHE = PROJECT_DIR / "cache" / "aligned.npz"
DEFAULT_BLENDS = PROJECT_DIR / "cache" / "blends.npz"
LABELLED = ("lfw-faces", "celeba-faces", "extra-faces")
UNLABELLED = "unlabelled-faces"
# Sources whose faces look like our students (Indonesian; women in hijab): see the data's README and
# UNLABELLED-SOURCES.md. `fit --target-weight N` shows each of them N times an epoch.
LIKE_OUR_STUDENTS = ("extra-faces/ITERA_", "unlabelled-faces/najahijab", "unlabelled-faces/najaother",
                     "unlabelled-faces/hijab", "unlabelled-faces/idtubes", "unlabelled-faces/idsuku")


def list_images(data: Path, limit_ids: int | None = None) -> list[tuple[str, str | None]]:
    """(relative path, identity or None) for every training image; never seed-faces."""
    items: list[tuple[str, str | None]] = []
    for folder in LABELLED:
        ids = sorted(p for p in (data / folder).iterdir() if p.is_dir())
        if limit_ids:
            ids = ids[:limit_ids]
        for d in ids:
            for f in sorted(d.glob("*.jpg")):
                items.append((f"{folder}/{d.name}/{f.name}", f"{folder}/{d.name}"))
    unl = sorted((data / UNLABELLED).glob("*.jpg"))
    if limit_ids:
        unl = unl[: limit_ids * 4]
    items += [(f"{UNLABELLED}/{f.name}", None) for f in unl]
    return items


def prepare(data: Path, out: Path, limit_ids: int | None = None, progress: bool = True,
            shard: int = 2000, workers: int | None = None) -> dict:
    """Align every face (the one nearest the crop's centre) and store uint8 arrays with labels and
    teacher vectors. Work is kept in shards beside `out`, so a killed run resumes where it stopped;
    shards are aligned in parallel, one process (and one detector thread) per core."""
    items = list_images(data, limit_ids)
    merged = in_shards(out, [(s, (data, items[s:s + shard])) for s in range(0, len(items), shard)], _align_shard,
                       ("faces", "paths", "identities", "teacher", "has_teacher"), "align", progress, workers, 6)
    stats = {"images": len(items), "aligned": int(len(merged["faces"])), "no_face": len(items) - int(len(merged["faces"]))}
    print(json.dumps(stats))
    return stats


def _align_shard(job: tuple[Path, list[tuple[str, str | None]], Path]) -> Path:
    data, items, part = job
    cv2.setNumThreads(1)
    teacher = np.load(data / "teacher-dlib.npz")
    t_index = {p: i for i, p in enumerate(teacher["paths"])}
    detector = FaceDetector(threads=1)
    faces, paths, idents, tvecs, has_t = [], [], [], [], []
    for rel, ident in items:
        img = cv2.imread(str(data / rel))
        found = find_faces(detector, img) if img is not None else []
        if not found:
            continue
        # the crops are centred on their face: take the face nearest the centre, not a background one
        h, w = img.shape[:2]
        face = min(found, key=lambda f: abs(f.box[0] + f.box[2] / 2 - w / 2) + abs(f.box[1] + f.box[3] / 2 - h / 2))
        faces.append(face.aligned)
        paths.append(rel)
        idents.append(ident or "")
        ti = t_index.get(rel)
        tvecs.append(teacher["vectors"][ti] if ti is not None else np.zeros(128, np.float16))
        has_t.append(ti is not None)
    tmp = part.with_suffix(".tmp.npz")
    np.savez(tmp, faces=np.stack(faces) if faces else np.zeros((0, 112, 112, 3), np.uint8),
             paths=np.array(paths, dtype=str), identities=np.array(idents, dtype=str),
             teacher=np.array(tvecs, np.float16).reshape(-1, 128), has_teacher=np.array(has_t, bool))
    os.replace(tmp, part)
    return part


def _progress(items, label: str, show: bool, total: int | None = None):
    if not show:
        return items
    from rich.progress import track
    return track(items, description=label, transient=False, total=total)


def in_shards(out: Path, jobs: list[tuple], work, keys: tuple[str, ...], label: str, progress: bool = True,
              workers: int | None = None, digits: int = 6) -> dict[str, np.ndarray]:
    """`work((*job, part))` for every (first item's number, job) whose shard file (beside `out`, named
    by that number) is not there yet, in parallel (one spawned process a core), then the shards' `keys` joined into
    `out`, written whole or not at all: a killed run resumes at the first missing shard."""
    shard_dir = out.parent / (out.stem + ".shards")
    shard_dir.mkdir(parents=True, exist_ok=True)
    parts = [shard_dir / f"{n:0{digits}d}.npz" for n, _ in jobs]
    todo = [(*job, part) for (_, job), part in zip(jobs, parts) if not part.exists()]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    if workers == 1:
        for job in _progress(todo, label, progress):
            work(job)
    else:
        import multiprocessing as mp
        with mp.get_context("spawn").Pool(workers) as pool:
            for _ in _progress(pool.imap_unordered(work, todo), label, progress, total=len(todo)):
                pass
    loaded = [np.load(part) for part in parts]
    merged = {k: np.concatenate([z[k] for z in loaded]) for k in keys}
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **merged)
    os.replace(tmp, out)
    return merged


def split_identities(identities: np.ndarray, seed: int = 0, frac: float = 0.12) -> np.ndarray:
    """Boolean mask of images whose identity is held out (whole identities, labelled, >= 2 images)."""
    names, counts = np.unique(identities[identities != ""], return_counts=True)
    rng = np.random.default_rng(seed)
    held = set()
    for folder in LABELLED:
        cand = [n for n, c in zip(names, counts) if n.startswith(folder) and c >= 2]
        k = max(1, int(round(len(cand) * frac)))
        held.update(rng.choice(cand, size=min(k, len(cand)), replace=False).tolist())
    return np.array([i in held for i in identities])


def load_cache(cache: Path) -> dict[str, np.ndarray]:
    """The aligned faces with identities and teacher vectors, from a `prepare` cache (uint8 arrays) or a
    `pack` file (WebP-encoded faces, small enough to travel to another machine)."""
    z = np.load(cache)
    out = {k: z[k] for k in ("paths", "identities", "teacher", "has_teacher")}
    if "faces" in z:
        out["faces"] = z["faces"]
    else:
        blob, offsets = z["blob"], z["offsets"]
        out["faces"] = np.stack([cv2.imdecode(blob[a:b], cv2.IMREAD_UNCHANGED)
                                 for a, b in zip(offsets[:-1], offsets[1:])])
    return out


def pack(cache: Path, out: Path, quality: int = 85) -> dict:
    """The cache with every face WebP-encoded: ~40 MB instead of ~600, to train on a machine that has
    no copy of the data (a GPU machine takes 64 MiB)."""
    z = load_cache(cache)
    encoded = [cv2.imencode(".webp", f, [cv2.IMWRITE_WEBP_QUALITY, quality])[1].ravel() for f in z["faces"]]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int64)
    rest = {k: v for k, v in z.items() if k != "faces"}
    tmp = out.with_suffix(".tmp.npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(tmp, blob=np.concatenate(encoded), offsets=offsets, **rest)
    os.replace(tmp, out)
    stats = {"faces": len(encoded), "bytes": out.stat().st_size, "quality": quality}
    print(json.dumps(stats))
    return stats


def resize_batch(batch: np.ndarray, size: int) -> np.ndarray:
    if size == 112:
        return batch.astype(np.float32)
    return np.stack([cv2.resize(b, (size, size), interpolation=cv2.INTER_AREA) for b in batch]).astype(np.float32)


def training_faces(z: dict, seed: int, n: int, draw: int) -> np.ndarray:
    """Up to n aligned faces of the training identities (held-out ones excluded), drawn with rng `draw`,
    in cache order."""
    train = np.flatnonzero(~split_identities(z["identities"], seed))
    pick = np.sort(np.random.default_rng(draw).choice(train, min(n, len(train)), replace=False))
    return z["faces"][pick]
