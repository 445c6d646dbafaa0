"""Train rollcall's face embedding: MobileNetV2 (weights=None) -> L2-normalised embedding.

    python -m bot.train prepare   # detect + align every training face with the bot's own aligner (cached)
    python -m bot.train fit       # CosFace on labelled identities + distillation from dlib's ResNet
    python -m bot.train export    # -> models/face_embed.tflite
    python -m bot.train calibrate # held-out identities -> models/thresholds.json
    python -m bot.train all       # the four in order; each step resumes where it stopped
    python -m bot.train snapshot  # a run's weights alone (small enough to commit) to start from elsewhere
    python -m bot.train pack      # the cache with WebP faces (~35 MB) to train on another machine

The trainer uses Keras 3 alone: `KERAS_BACKEND=jax` (or torch) trains the same model on a GPU machine,
and `export` reads its weight files under TensorFlow.

Data: ../shared/data/{lfw,celeba,extra}-faces/<identity>/*.jpg and unlabelled-faces/*.jpg, with the dlib
teacher vectors of teacher-dlib.npz. seed-faces is the evaluation class and is never read here.
Whole identities are held out (never images) for validation and threshold calibration.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from .config import PROJECT_DIR
from .faces import INNER_FACE, FaceDetector, find_faces

DEFAULT_DATA = PROJECT_DIR.parent / "shared" / "data"
DEFAULT_CACHE = PROJECT_DIR / "cache" / "aligned.npz"
DEFAULT_RUN = PROJECT_DIR / "runs" / "main"
# the layer whose output the exported model gives (export): the pooled features before the 128-d head
POOLED = "gdc_bn"
LABELLED = ("lfw-faces", "celeba-faces", "extra-faces")
UNLABELLED = "unlabelled-faces"
# Sources whose faces look like our students (Indonesian; women in hijab): see the data's README and
# UNLABELLED-SOURCES.md. `fit --target-weight N` shows each of them N times an epoch.
LIKE_OUR_STUDENTS = ("extra-faces/ITERA_", "unlabelled-faces/najahijab", "unlabelled-faces/najaother",
                     "unlabelled-faces/hijab", "unlabelled-faces/idtubes", "unlabelled-faces/idsuku")


# ---------------------------------------------------------------- prepare: detect, align, cache
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
    shard_dir = out.parent / (out.stem + ".shards")
    shard_dir.mkdir(parents=True, exist_ok=True)
    starts = list(range(0, len(items), shard))
    todo = [(data, items[s:s + shard], shard_dir / f"{s:06d}.npz") for s in starts
            if not (shard_dir / f"{s:06d}.npz").exists()]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    if workers == 1:
        for job in _progress(todo, "align", progress):
            _align_shard(job)
    else:
        import multiprocessing as mp
        with mp.get_context("spawn").Pool(workers) as pool:
            for _ in _progress(pool.imap_unordered(_align_shard, todo), "align", progress, total=len(todo)):
                pass
    parts = [np.load(shard_dir / f"{s:06d}.npz") for s in starts]
    merged = {k: np.concatenate([p[k] for p in parts]) for k in ("faces", "paths", "identities", "teacher", "has_teacher")}
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **merged)
    os.replace(tmp, out)
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


# ---------------------------------------------------------------- split, augmentation, model
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


def augment(batch: np.ndarray, size: int, rng: np.random.Generator, jitter: float = 0.0) -> np.ndarray:
    """Meeting-video conditions on aligned 112x112 RGB uint8 faces -> float32 (size x size) in [0, 255].

    Shrink to a 20-70 px face and back, codec artefacts, motion/defocus blur, exposure and white
    balance, sensor noise, occlusion, flips: what a gallery tile does to a face. And another colour of
    hijab, clothes and background around the face (`_recolour_surround`). With `jitter` (a share of
    the faces) the alignment itself is moved a little (`_misalign`).
    """
    out = np.empty((len(batch), size, size, 3), np.float32)
    for i, img in enumerate(batch):
        im = img
        if jitter and rng.random() < jitter:
            im = _misalign(im, rng)
        if rng.random() < 0.5:
            im = im[:, ::-1]
        if rng.random() < 0.5:
            im = _recolour_surround(im, rng)
        if rng.random() < 0.15:
            im = _cut_off(im, rng)
        if rng.random() < 0.6:  # the face spans ~70 of the 112 px: a 20-70 px face is 32-112 px here
            s = int(rng.integers(32, 100))
            im = cv2.resize(np.ascontiguousarray(im), (s, s), interpolation=cv2.INTER_AREA)
            im = cv2.resize(im, (112, 112), interpolation=cv2.INTER_LINEAR)
        r = rng.random()
        if r < 0.15:
            k = int(rng.choice([3, 5, 7]))
            kern = np.zeros((k, k), np.float32)
            kern[k // 2] = 1.0 / k
            m = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
            im = cv2.filter2D(np.ascontiguousarray(im), -1, cv2.warpAffine(kern, m, (k, k)))
        elif r < 0.3:
            im = cv2.GaussianBlur(np.ascontiguousarray(im), (0, 0), float(rng.uniform(0.5, 1.8)))
        f = np.ascontiguousarray(im).astype(np.float32)
        if rng.random() < 0.8:  # exposure, contrast, white balance, gamma
            f = f * rng.uniform(0.5, 1.3) + rng.uniform(-30, 30)
            f = f * rng.uniform(0.85, 1.15, size=3)
            f = 255.0 * (np.clip(f, 0, 255) / 255.0) ** rng.uniform(0.7, 1.5)
        if rng.random() < 0.3:
            f = f + rng.normal(0, rng.uniform(2, 10), f.shape)
        if rng.random() < 0.15:  # a hand, a mug or a microphone over part of the face
            h, w = int(rng.integers(20, 55)), int(rng.integers(20, 60))
            y, x = int(rng.integers(40, 112 - h + 1)), int(rng.integers(0, 112 - w + 1))
            f[y:y + h, x:x + w] = rng.uniform(40, 230, size=3)
        if rng.random() < 0.12:
            f = _glasses(f, rng)
        f = np.clip(f, 0, 255).astype(np.uint8)
        if rng.random() < 0.5:  # video codec / JPEG blocks
            ok, enc = cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 75))])
            f = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)
        if size != 112:
            f = cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA)
        out[i] = f
    return out


def _misalign(im: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The aligned face moved as landmark noise moves it: shifted ~1.5 px, scaled by up to 4%, turned by
    ~3 degrees. On a meeting tile BlazeFace's landmarks wander from capture to capture (the short- and
    full-range models part by 0.07 eye distances at the median, ~2.5 px on the template), and the a11
    model was that sensitive to it: the same 200 training faces shifted by N(0, 1.5) px gave vectors at
    cosine 0.86 to the unshifted ones (3 px: 0.71), on the benchmark's same webcam views 0.88 capture to
    capture. The teacher's vector stays that of the face as aligned."""
    m = cv2.getRotationMatrix2D((56.0, 56.0), float(np.clip(rng.normal(0, 3), -8, 8)), float(rng.uniform(0.96, 1.04)))
    m[:, 2] += np.clip(rng.normal(0, 1.5, 2), -4, 4)
    return cv2.warpAffine(np.ascontiguousarray(im), m, (112, 112), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def _inner_face_mask() -> np.ndarray:
    """1 over the template's brows-to-chin, cheek-to-cheek ellipse, 0 around it, a soft edge between."""
    cx, cy, rx, ry = INNER_FACE
    yy, xx = np.mgrid[0:112, 0:112].astype(np.float32)
    inside = (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1).astype(np.float32)
    return cv2.GaussianBlur(inside, (0, 0), 3)[..., None]


_INNER_FACE = _inner_face_mask()


def _recolour_surround(im: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hue, saturation and brightness changed outside the inner face. Our students are mostly in hijab,
    which the aligned crop holds as much of as the face: a student in a pink hijab one day must not
    look like the classmate who usually wears pink (measured on seed-faces: Mareta Aliana and Novia
    Evianti, both often in pink, were the model's most confused pair, and a pink-hijab photo of
    Mareta matched Novia in the demo). The teacher's vector is of the unchanged face."""
    hsv = cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(20, 160)) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.3, 1.6), 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * rng.uniform(0.6, 1.3), 0, 255)
    other = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    return (im * _INNER_FACE + other * (1 - _INNER_FACE)).astype(np.uint8)


def _cut_off(im: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The face running off the tile's edge as alignment renders it: beyond a line across the top (the
    forehead, most often) or one side, every row or column repeats the last one inside (the aligner's
    replicated border). Cut as far as the brows or a third of the width: faces.in_view 0.72-0.98."""
    out = np.ascontiguousarray(im).copy()
    side = rng.random()
    if side < 0.6:
        k = int(rng.integers(24, 47))
        out[:k] = out[k]
    else:
        k = int(rng.integers(28, 45))
        if side < 0.8:
            out[:, :k] = out[:, k:k + 1]
        else:
            out[:, 112 - k:] = out[:, 111 - k:112 - k]
    return out


# Eye centres of the ArcFace 112x112 template (bot/faces.py aligns onto it), where glasses sit.
_EYES = ((38.29, 51.70), (73.53, 51.50))


def _glasses(f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Spectacle frames (and sometimes tinted lenses) drawn over the template's eyes."""
    img = np.ascontiguousarray(f)
    colour = tuple(float(c) for c in rng.uniform(0, 90, size=3))
    rx, ry = int(rng.integers(12, 17)), int(rng.integers(8, 12))
    thick = int(rng.integers(1, 4))
    dy = float(rng.uniform(-3, 3))
    centres = [(int(round(x)), int(round(y + dy))) for x, y in _EYES]
    if rng.random() < 0.3:
        tint = img.copy()
        for c in centres:
            cv2.ellipse(tint, c, (rx, ry), 0, 0, 360, colour, -1)
        img = cv2.addWeighted(img, 0.45, tint, 0.55, 0)
    for c in centres:
        cv2.ellipse(img, c, (rx, ry), 0, 0, 360, colour, thick)
    cv2.line(img, (centres[0][0] + rx, centres[0][1]), (centres[1][0] - rx, centres[1][1]), colour, thick)
    return img


def resize_batch(batch: np.ndarray, size: int) -> np.ndarray:
    if size == 112:
        return batch.astype(np.float32)
    return np.stack([cv2.resize(b, (size, size), interpolation=cv2.INTER_AREA) for b in batch]).astype(np.float32)


def build_backbone(size: int, alpha: float, dim: int):
    """MobileNetV2 (no pretrained weights) with a global depthwise head: [0,255] RGB -> embedding (not normalised)."""
    import keras
    inp = keras.Input((size, size, 3), name="face")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, include_top=False,
                                          weights=None)
    x = base(x)
    x = keras.layers.DepthwiseConv2D(x.shape[1], padding="valid", use_bias=False, name="gdc")(x)
    x = keras.layers.BatchNormalization(name="gdc_bn")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.1)(x)
    x = keras.layers.Dense(dim, use_bias=False, name="embedding")(x)
    x = keras.layers.BatchNormalization(name="embedding_bn")(x)
    model = keras.Model(inp, x, name="rollcall_face")
    # Keras' MobileNetV2 keeps BN moving averages with momentum 0.999: after the ~1000 steps a CPU run
    # affords they are still a third their initial values and eval-mode embeddings collapse. 0.9
    # follows the weights within ~50 steps.
    for layer in [*base.layers, *model.layers]:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    return model


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


def _backend() -> str:
    import keras
    return keras.backend.backend()


def _training_model(backbone, n_classes: int, dim: int, ce_weight: float, distill: float, s: float, m: float,
                    relational: float = 0.0):
    """The backbone plus CosFace weights, with the training loss as its compute_loss, in keras.ops only:
    the same code trains under TensorFlow here and torch or JAX on a GPU machine.

    `relational` > 0 adds a loss on the vector the bot actually uses (the pooled features, which the
    other two losses shape only through the 128-d head): within a batch, the cosines between the
    batch-centred pooled features of every two faces should equal the cosines of their teacher vectors."""
    import keras
    ops = keras.ops
    both = keras.Model(backbone.input, [backbone.output, backbone.get_layer(POOLED).output]) if relational else None

    class FaceTrainer(keras.Model):
        def __init__(self):
            super().__init__()
            self.backbone = backbone
            self.cosface_w = self.add_weight(shape=(dim, n_classes), name="cosface_w",
                                             initializer=keras.initializers.RandomNormal(stddev=0.01))

        def call(self, x, training=False):
            if both is not None:
                return both(x, training=training)
            return self.backbone(x, training=training)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            labels = ops.cast(y["labels"], "int32")
            pooled = None
            if both is not None:
                y_pred, pooled = y_pred
            e = ops.normalize(ops.cast(y_pred, "float32"), axis=1)
            w = ops.normalize(self.cosface_w, axis=0)
            onehot = ops.one_hot(ops.maximum(labels, 0), n_classes)
            logits = s * (ops.matmul(e, w) - m * onehot)
            lab = ops.cast(labels >= 0, "float32")
            ce = ops.categorical_crossentropy(onehot, logits, from_logits=True)
            ce = ops.sum(ce * lab) / ops.maximum(ops.sum(lab), 1.0)
            has_t = ops.cast(y["has_teacher"], "float32")
            cos_t = ops.sum(e * ops.cast(y["teacher"], "float32"), axis=1)
            dist = ops.sum((1.0 - cos_t) * has_t) / ops.maximum(ops.sum(has_t), 1.0)
            loss = ce_weight * ce + distill * dist
            if pooled is not None:
                p = ops.reshape(ops.cast(pooled, "float32"), (ops.shape(pooled)[0], -1))
                p = ops.normalize(p - ops.mean(p, axis=0, keepdims=True), axis=1)
                t = ops.cast(y["teacher"], "float32")
                pair = has_t[:, None] * has_t[None, :] * (1.0 - ops.eye(ops.shape(has_t)[0]))
                gap = ops.matmul(p, ops.transpose(p)) - ops.matmul(t, ops.transpose(t))
                loss = loss + relational * ops.sum(ops.square(gap) * pair) / ops.maximum(ops.sum(pair), 1.0)
            return loss

    return FaceTrainer()


class Trainer:
    """CosFace on labelled identities + cosine distillation to dlib's centred vectors; checkpointed.

    Written against Keras 3 alone (no TensorFlow calls), so `KERAS_BACKEND=torch` or `jax` trains the
    same model on a GPU machine; checkpoints are Keras weight files that any backend reads, and
    `export` turns them into TFLite under TensorFlow.
    """

    def __init__(self, cache: Path, run: Path, size: int = 96, alpha: float = 0.5, dim: int = 128,
                 batch: int = 128, epochs: int = 40, lr: float = 0.05, distill: float = 40.0,
                 ce: float = 1.0, cos_s: float = 32.0, cos_m: float = 0.35, seed: int = 0,
                 target_weight: int = 1, relational: float = 0.0, jitter: float = 0.0, workers: int = 1,
                 bf16: bool = False):
        import keras
        self.keras = keras
        keras.utils.set_random_seed(seed)
        if bf16:
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        self.run, self.size, self.batch, self.seed = run, size, batch, seed
        self.workers = workers
        self.config = dict(size=size, alpha=alpha, dim=dim, batch=batch, epochs=epochs, lr=lr,
                           distill=distill, ce=ce, cos_s=cos_s, cos_m=cos_m, seed=seed,
                           target_weight=target_weight, relational=relational, jitter=jitter, cache=str(cache))
        self.jitter = jitter
        z = load_cache(cache)
        self.faces = z["faces"]
        idents = z["identities"]
        self.held = split_identities(idents, seed)
        teacher = z["teacher"].astype(np.float32)
        self.has_t = z["has_teacher"]
        self.t_mean = teacher[self.has_t & ~self.held].mean(0)
        t = teacher - self.t_mean
        self.teacher = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-6)
        # classes: labelled training identities with >= 2 images
        train_ids = idents[(idents != "") & ~self.held]
        names, counts = np.unique(train_ids, return_counts=True)
        names = names[counts >= 2]
        cls = {n: i for i, n in enumerate(names)}
        self.labels = np.array([cls.get(n, -1) if not h else -1 for n, h in zip(idents, self.held)], np.int32)
        self.train_idx = np.flatnonzero(~self.held & ((self.labels >= 0) | self.has_t))
        like = np.array([p.startswith(LIKE_OUR_STUDENTS) for p in z["paths"]], bool)
        # an epoch: every training face once, those like our students target_weight times
        self.epoch_idx = np.concatenate([self.train_idx] + [self.train_idx[like[self.train_idx]]] * (target_weight - 1))
        self.val_idx = np.flatnonzero(self.held)
        self.val_ids = idents[self.val_idx]
        self.n_classes = len(names)
        self.backbone = build_backbone(size, alpha, dim)
        self.model = _training_model(self.backbone, self.n_classes, dim, ce, distill, cos_s, cos_m, relational)
        self.steps_per_epoch = max(1, len(self.epoch_idx) // batch)
        self.total_steps = self.steps_per_epoch * epochs
        sched = keras.optimizers.schedules.CosineDecay(lr, self.total_steps)
        self.opt = keras.optimizers.SGD(sched, momentum=0.9, nesterov=True, weight_decay=5e-4)
        # XLA is slower than plain TensorFlow for this model on a CPU, torch.compile untested; JAX needs it
        self.model.compile(optimizer=self.opt, jit_compile=_backend() == "jax")

    def batch_at(self, step: int) -> tuple[np.ndarray, dict]:
        """The augmented batch of a global step: a fresh permutation per epoch, seeded by (seed, epoch)
        and (seed, epoch, k), so a resumed run sees exactly what an unbroken one would."""
        epoch, k = divmod(step, self.steps_per_epoch)
        perm = np.random.default_rng((self.seed, epoch)).permutation(self.epoch_idx)
        idx = np.sort(perm[k * self.batch:(k + 1) * self.batch])
        x = augment(self.faces[idx], self.size, np.random.default_rng((self.seed, epoch, k)), self.jitter)
        return x, {"labels": self.labels[idx], "teacher": self.teacher[idx], "has_teacher": self.has_t[idx]}

    def embed(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clean faces -> (training head's embedding, pooled features), each unit length."""
        ops = self.keras.ops
        both = self.keras.Model(self.backbone.input, [self.backbone.output, self.backbone.get_layer(POOLED).output])
        out: list[list[np.ndarray]] = [[], []]
        for i in range(0, len(idx), 256):
            x = resize_batch(self.faces[idx[i:i + 256]], self.size)
            for acc, y in zip(out, both(x, training=False)):
                y = ops.convert_to_numpy(ops.cast(y, "float32"))
                acc.append(y.reshape(len(y), -1))
        e, p = (np.concatenate(o) for o in out)
        return e / np.linalg.norm(e, axis=1, keepdims=True), p / np.linalg.norm(p, axis=1, keepdims=True)

    def validate(self) -> dict:
        e, pooled = self.embed(self.val_idx)
        figs = verification_figures(e, self.val_ids)
        # how close the student is to its teacher on clean held-out faces (1.0 = the same direction)
        t = self.has_t[self.val_idx]
        figs["teacher_cos"] = float(np.mean(np.sum(e[t] * self.teacher[self.val_idx][t], axis=1)))
        # the vector the bot uses (export): pooled features, here not centred (export centres them on
        # training faces), so these read a little below the exported model's
        figs.update({f"pooled_{k}": v for k, v in verification_figures(pooled, self.val_ids).items()
                     if k.startswith(("tar", "rank"))})
        return figs

    def save(self, step: int) -> None:
        ckpt = self.run / "ckpt"
        ckpt.mkdir(parents=True, exist_ok=True)
        save_weights(self.backbone, ckpt / f"step-{step:07d}", cosface_w=self.model.cosface_w, step=step)
        for old in sorted(ckpt.glob("step-*.json"))[:-2]:
            for f in ckpt.glob(old.stem + ".*"):
                f.unlink()

    def restore(self, ckpt_dir: Path) -> int | None:
        """Weights (and CosFace weights, where their shape fits) from a run's latest checkpoint, either
        format; the step it was saved at, or None when there is none."""
        found = latest_weights(ckpt_dir)
        if found is None:
            return None
        w = load_weights(self.backbone, found)
        if w is not None and tuple(w.shape) == tuple(self.model.cosface_w.shape):
            self.model.cosface_w.assign(w)
        return int(found.get("step", 0))

    def fit(self, max_minutes: float | None = None, init_from: Path | None = None) -> dict:
        """Train to the end of the schedule (or `max_minutes`). A new run may start from another run's
        weights (`init_from`: a longer schedule after a short one) with a fresh optimizer and step."""
        self.run.mkdir(parents=True, exist_ok=True)
        (self.run / "config.json").write_text(json.dumps(self.config, indent=1))
        start_step = self.restore(self.run / "ckpt")
        if start_step is not None:
            print(f"resumed at step {start_step} of {self.total_steps}", flush=True)
        else:
            start_step = 0
            if init_from is not None:
                if self.restore(Path(init_from) / "ckpt") is None:
                    raise SystemExit(f"{init_from}: no checkpoint to start from")
                print(f"started from {init_from}", flush=True)
        hist_file = self.run / "history.json"
        history = json.loads(hist_file.read_text()) if hist_file.exists() else []
        if start_step >= self.total_steps:
            return history[-1] if history else {}
        # the schedule goes on from the step the checkpoint was saved at (momentum starts afresh)
        self.opt.build(self.model.trainable_variables)
        self.opt.iterations.assign(start_step)
        data = _step_batches(self, start_step, self.workers)
        cb = _fit_callback(self, start_step, history, hist_file, max_minutes)
        self.model.fit(data, epochs=1, verbose=0, callbacks=[cb])
        cb.finish()
        return history[-1] if history else {}


def _step_batches(trainer: Trainer, start: int, workers: int):
    import keras

    class Batches(keras.utils.PyDataset):
        """Global steps start..total as one long Keras epoch, augmented by worker threads: OpenCV lets go
        of the GIL, and threads, unlike forked processes, are safe beside JAX's and torch's own."""

        def __init__(self, trainer: Trainer, start: int, workers: int):
            super().__init__(workers=max(1, workers), use_multiprocessing=False, max_queue_size=2 * max(1, workers))
            self.trainer, self.start = trainer, start

        def __len__(self):
            return self.trainer.total_steps - self.start

        def __getitem__(self, i):
            return self.trainer.batch_at(self.start + i)

    return Batches(trainer, start, workers)


def _fit_callback(trainer: Trainer, start: int, history: list, hist_file: Path, max_minutes: float | None):
    """Logs (a bar on a terminal), checkpoints every epoch and every 10 minutes, validates every epoch,
    and stops after max_minutes."""
    import keras

    class Progress(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.t0 = self.last_ckpt = time.time()
            self.t_end = self.t0 + max_minutes * 60 if max_minutes else None
            self.prev_mean, self.recent = 0.0, []
            self.bar = _StepBar(trainer.total_steps, start) if sys.stdout.isatty() else None
            self.step = start

        def on_train_batch_end(self, batch, logs=None):
            # Keras reports the mean loss since the epoch began: recover this batch's own loss
            mean = float((logs or {}).get("loss", 0.0))
            self.recent.append((batch + 1) * mean - batch * self.prev_mean)
            self.prev_mean = mean
            self.step = start + batch + 1
            step, spe = self.step, trainer.steps_per_epoch
            if step % 20 == 0:
                line = (f"step {step}/{trainer.total_steps} epoch {step / spe:.2f} "
                        f"loss {np.mean(self.recent[-20:]):.3f} "
                        f"{(step - start) * trainer.batch / (time.time() - self.t0):.1f} img/s")
                if self.bar:
                    self.bar.update(step, line)
                else:
                    print(line, flush=True)
            timeout = bool(self.t_end and time.time() > self.t_end)
            if step % spe == 0 or step >= trainer.total_steps or timeout:
                self.checkpoint(validate=True)
            elif time.time() - self.last_ckpt > 600:
                self.checkpoint(validate=False)
            if timeout:
                self.model.stop_training = True

        def checkpoint(self, validate: bool) -> None:
            if history and history[-1]["step"] == self.step:
                return
            # under JAX the weights live outside the model during fit until synced back
            getattr(self.model, "jax_state_sync", lambda: None)()
            trainer.save(self.step)
            self.last_ckpt = time.time()
            if validate:
                figs = trainer.validate()
                figs.update(step=self.step, epoch=round(self.step / trainer.steps_per_epoch, 2),
                            loss=float(np.mean(self.recent[-50:])) if self.recent else None,
                            time=time.strftime("%Y-%m-%dT%H:%M:%S"), backend=_backend())
                history.append(figs)
                hist_file.write_text(json.dumps(history, indent=1))
                print("validation", json.dumps(figs), flush=True)

        def finish(self) -> None:
            self.checkpoint(validate=True)
            if self.bar:
                self.bar.close()

    return Progress()


class _StepBar:
    """A rich progress bar over training steps on a terminal (logs get plain lines instead)."""

    def __init__(self, total: int, done: int):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
        self._p = Progress(TextColumn("fit"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                           TimeRemainingColumn(), TextColumn("{task.description}"))
        self._task = self._p.add_task("", total=total, completed=done)
        self._p.start()

    def update(self, step: int, line: str) -> None:
        self._p.update(self._task, completed=step, description=line.split(" ", 2)[2])

    def close(self) -> None:
        self._p.stop()


# ---------------------------------------------------------------- weight files (any backend)
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


def verification_figures(emb: np.ndarray, ids: np.ndarray) -> dict:
    """TAR at FAR 1% / 0.1% over all pairs of held-out faces, and leave-one-out identification."""
    sim = emb @ emb.T
    same = ids[:, None] == ids[None, :]
    iu = np.triu_indices(len(ids), 1)
    s, g = sim[iu], same[iu]
    imp = np.sort(s[~g])
    out = {"val_faces": int(len(ids)), "val_identities": int(len(np.unique(ids)))}
    for far in (0.01, 0.001):
        thr = imp[min(len(imp) - 1, int(np.ceil(len(imp) * (1 - far))))] if len(imp) else 1.0
        out[f"tar@far{far}"] = float((s[g] > thr).mean()) if g.any() else 0.0
        out[f"thr@far{far}"] = float(thr)
    np.fill_diagonal(sim, -2)
    has_mate = same.sum(1) > 1
    out["rank1"] = float((same[np.arange(len(ids)), sim.argmax(1)])[has_mate].mean())
    return out


# ---------------------------------------------------------------- export and calibrate
def export(run: Path, out: Path, float16: bool = False, cache: Path = DEFAULT_CACHE,
           vector: str = "pooled", int8: bool = False) -> Path:
    """The run's latest checkpoint -> TFLite taking SxS RGB float [0, 255], giving L2-normalised vectors.

    vector "pooled" (the default): the 1280 pooled features the training head projects from, centred
    on the mean of training faces (`pooled_mean`) then normalised. The head's 128-d projection is
    what the losses shape, but it drops what tells apart faces it never trained on: on held-out
    identities (three views) the pooled features reach TAR 57.8% at FAR 1% against the projection's
    54.1%, and on seed-faces 96.4% identified against 94.8% (session 5; models/README.md).
    "embedding": the 128-d projection itself."""
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
# strays most from float (QuantizationDebugger, RMSE over the quantisation step: 0.86 and 0.48; no other
# layer above 0.36). Cosine to the float model's vectors 0.991 -> 0.996, embed 43 -> 49 ms (session 10).
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


def _training_faces(z: dict, seed: int, n: int, draw: int) -> np.ndarray:
    """Up to n aligned faces of the training identities (held-out ones excluded), drawn with rng `draw`,
    in cache order."""
    train = np.flatnonzero(~split_identities(z["identities"], seed))
    pick = np.sort(np.random.default_rng(draw).choice(train, min(n, len(train)), replace=False))
    return z["faces"][pick]


def _representative(z: dict, size: int, seed: int = 0, n: int = 400):
    """Training faces for the int8 converter to set activation ranges."""
    faces = resize_batch(_training_faces(z, seed, n, draw=seed + 1), size)

    def gen():
        for f in faces:
            yield [f[None].astype(np.float32)]
    return gen


def pooled_mean(pooled, z: dict, size: int, seed: int = 0, n: int = 3000) -> np.ndarray:
    """Mean pooled feature of up to n training faces (held-out identities excluded), clean: the pooled
    features share one large direction, which centring removes from every cosine."""
    import keras
    faces = _training_faces(z, seed, n, draw=seed)
    feats = [keras.ops.convert_to_numpy(pooled(resize_batch(faces[i:i + 256], size), training=False))
             for i in range(0, len(faces), 256)]
    return np.concatenate(feats).astype(np.float64).mean(0).astype(np.float32)


def average(run: Path, stems: list[str], out: Path, cache: Path = DEFAULT_CACHE, bn_batches: int = 60) -> Path:
    """The mean of several checkpoints' weights (the last epochs of a run), batch-norm statistics then
    re-estimated on augmented training batches: a run folder `export` reads. The shipped model is the
    average of runs/a11's last 8 epochs (session 7). Measured on runs/a10f (session 5): its average gave
    seed-faces 96.5 / 95.9 / 94.9% at full / 56 / 40 px against 96.3 / 95.7 / 94.9% for its last
    checkpoint alone."""
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


def leave_one_out_scores(emb: np.ndarray, lab: np.ndarray, top_k: int) -> np.ndarray:
    """(faces, identities) scores of every face against every identity by decide.Gallery's rule
    (top_k 0: the prototype; k: the mean of the k nearest faces), a face never counted in its own
    identity's gallery; -inf where that leaves its own gallery empty."""
    from .decide import top_k_scores
    n_ids = int(lab.max()) + 1
    if top_k <= 0:
        sums = np.stack([emb[lab == k].sum(0) for k in range(n_ids)])
        out = np.empty((len(emb), n_ids), np.float32)
        for i in range(len(emb)):
            protos = sums.copy()
            protos[lab[i]] -= emb[i]
            norm = np.linalg.norm(protos, axis=1)
            out[i] = np.where(norm > 1e-6, (protos @ emb[i]) / np.maximum(norm, 1e-12), -np.inf)
        return out
    sims = emb @ emb.T
    out = top_k_scores(sims, lab, n_ids, top_k)
    # a face's own identity: its gallery is the others, the face itself left out
    for k in range(n_ids):
        rows = np.flatnonzero(lab == k)
        kk = min(top_k, len(rows) - 1)
        own = sims[np.ix_(rows, rows)]
        np.fill_diagonal(own, -np.inf)
        out[rows, k] = np.sort(own, axis=1)[:, ::-1][:, :kk].mean(1) if kk > 0 else -np.inf
    return out


def calibrate(cache: Path, model_path: Path, out: Path, seed: int = 0, far: float = 0.01,
              class_size: int = 30, top_k: int = 3, min_gallery: int = 7, head_lambda: float = 0.05,
              head_weight: float = 1.0) -> dict:
    """Thresholds from held-out identities, computed through the exported TFLite model as the bot runs it.

    Every held-out face is a probe against every held-out identity, scored by decide.Gallery's rule
    with `top_k` (the probe left out of its own identity's gallery). Only identities with at least
    `min_gallery` faces take part: the score an impostor's gallery reaches grows with its size (top-3
    at FAR 1%, alpha-0.5 model: 0.50 for 1-3 faces, 0.61 for 7-12, 0.62 for 13+), and a student is
    enrolled from many photos, so small galleries would set t_verify too low. t_verify: the score an
    impostor identity reaches for at most `far` of (probe, other identity) pairs. margin: how far one
    other identity is ahead of the probe's own in at most `far` of those pairs. Both are per pair, so
    they do not depend on how many students a class has; what a class of `class_size` then sees is
    simulated and stored.

    With head_lambda > 0 (and top_k >= 1) the class head joins the ranking (decide.Gallery) and its
    margin comes from classes of `class_size` (head_margin); t_verify stays on the cosine.
    """
    from .decide import HeadRule, QuickRule, Thresholds
    from .embed import Embedder, unit
    z = load_cache(cache)
    idents = z["identities"]
    held = split_identities(idents, seed)
    idx = np.flatnonzero(held)
    names, lab = np.unique(idents[idx], return_inverse=True)
    counts = np.bincount(lab)
    wanted = min_gallery
    # a tiny cache (tests, --limit-ids) may hold no identity that large: use the largest galleries it has
    while min_gallery > 1 and (counts >= min_gallery + 1).sum() < 3:
        min_gallery -= 1
    big = counts >= min_gallery + 1  # the probe's own gallery keeps min_gallery faces
    if big.sum() < 3:
        raise ValueError(f"{cache}: fewer than 3 held-out identities with 2+ faces; cannot calibrate")
    if min_gallery < wanted:
        print(f"calibrate: only {int((counts >= wanted + 1).sum())} held-out identities have {wanted + 1}+ faces; "
              f"using galleries of {min_gallery}+", flush=True)
    keep = big[lab]
    idx, lab = idx[keep], np.unique(lab[keep], return_inverse=True)[1]
    embedder = Embedder(model_path)
    per_view = embedder.view_vectors(z["faces"][idx])
    emb = unit(per_view.sum(0))
    sims = leave_one_out_scores(emb, lab, top_k)
    rows = np.arange(len(lab))
    genuine = sims[rows, lab]
    other = np.ones_like(sims, bool)
    other[rows, lab] = False
    impostor = sims[other]
    gaps = (sims - genuine[:, None])[other]
    t_verify = float(np.quantile(impostor, 1 - far))
    margin = float(max(0.02, np.quantile(gaps, 1 - far)))
    # how alike one identity's photos are, on average: enroll notes a student above the 95th percentile
    # (varied press photos of one person reach ~0.45 with the shipped model, one webcam sitting 0.92-0.97)
    pair_sims = emb @ emb.T
    alike = [float(pair_sims[np.ix_(lab == k, lab == k)][np.triu_indices(int((lab == k).sum()), 1)].mean())
             for k in range(int(lab.max()) + 1)]
    head = None
    if head_lambda > 0 and top_k > 0:
        head = HeadRule(head_lambda, head_weight,
                        head_margin(emb, lab, head_lambda, head_weight, top_k, class_size, far, seed))
    th = Thresholds(t_verify=t_verify, margin=margin, far=far, top_k=top_k, head=head)
    quick = None
    if len(embedder.views) > 1:
        gap, share = quick_gap(emb, per_view[0], lab, th, class_size, seed)
        quick = {"view": embedder.views[0], "gap": round(gap, 4), "settled": round(share, 4),
                 "method": "a face verified on its first view alone, ahead of every other member and "
                           "of t_verify by `gap` there, keeps that verdict: 2 x the largest such lead at "
                           "which the other views changed a verdict, classes of "
                           f"{class_size} held-out identities, probes under their own name, another "
                           "member's and (outsiders) a member's; `settled`: the share of own-name probes "
                           "it spares the other views"}
        th = dataclasses.replace(th, quick=QuickRule(quick["view"], gap))
    result = {"t_verify": round(t_verify, 4), "margin": round(margin, 4), "far": far, "top_k": int(top_k),
              "tar_at_t_verify": round(float((genuine >= t_verify).mean()), 4),
              "alike": round(float(np.quantile(alike, 0.95)), 4)}
    if head:
        result["head"] = {"lambda": head.lam, "weight": head.weight, "margin": round(head.margin, 4),
                          "method": f"ridge onto +-1 per student, standardised and added to the nearest-{top_k} "
                                    f"score; margin: one other member ahead in at most `far` of (probe, other "
                                    f"member) pairs, classes of {class_size} held-out identities, a third of each "
                                    "one's faces as probes"}
    if quick:
        result["quick"] = quick
    result["in_a_class"] = _class_outcomes(emb, lab, th, class_size, seed)
    result["calibration"] = {"identities": int(lab.max() + 1), "probes": int(len(genuine)),
                             "impostor_comparisons": int(len(impostor)), "min_gallery": int(min_gallery),
                             "method": (f"mean of the {top_k} nearest faces of an identity" if top_k > 0
                                        else "leave-one-out prototypes") +
                                       f"; identities with {min_gallery}+ faces beside the probe; t_verify "
                                       "and margin per (probe, other identity) pair at `far`"}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return result


def class_trials(lab: np.ndarray, size: int, seed: int, trials: int):
    """Random classes of `size` identities (never all of them: outsiders remain), each member's faces
    split at random, a third of them (at least one) as probes and the rest enrolled, as a lecturer
    enrolls from photos and the bot then sees other ones. Yields (members, enrolled, probes): face
    indices into lab."""
    rng = np.random.default_rng(seed)
    n_ids = int(lab.max()) + 1
    size = min(size, n_ids - 1)
    for _ in range(trials):
        members = rng.choice(n_ids, size=size, replace=False)
        enrolled, probes = [], []
        for m in members:
            faces = rng.permutation(np.flatnonzero(lab == m))
            k = max(1, len(faces) // 3)
            probes.append(faces[:k])
            enrolled.append(faces[k:])
        yield members, np.concatenate(enrolled), np.concatenate(probes)


def head_margin(emb: np.ndarray, lab: np.ndarray, lam: float, weight: float, top_k: int, size: int,
                far: float, seed: int, trials: int = 100, floor: float = 0.1) -> float:
    """The class head's margin: in classes of `size` held-out identities (class_trials), how far one
    other member's ranking score (decide.class_scores) leads the probe's own in at most `far` of
    (probe, other member) pairs; at least `floor`. The ranking is standardised per face, so its
    units do not depend on the model; its spread does depend on the class size."""
    from .decide import Gallery, HeadRule
    leads = []
    for _, enrolled, probes in class_trials(lab, size, seed, trials):
        gallery = Gallery.from_embeddings(lab[enrolled], emb[enrolled], top_k, HeadRule(lam, weight, 0.0))
        own = np.searchsorted(gallery.student_ids, lab[probes])
        _, rank = gallery.rank(emb[probes])
        rows = np.arange(len(probes))
        other = np.ones_like(rank, bool)
        other[rows, own] = False
        leads.append((rank - rank[rows, own][:, None])[other])
    return float(max(floor, np.quantile(np.concatenate(leads), 1 - far)))


def quick_gap(emb: np.ndarray, first: np.ndarray, lab: np.ndarray, th, size: int, seed: int,
              trials: int = 100, floor: float = 0.05, room: float = 2.0) -> tuple[float, float]:
    """(gap, settled share) for decide.QuickRule: in classes of `size` held-out identities, every probe
    under its own name, under another member's and (an outsider's face) under a member's is decided on
    its first view (`first`) and on all views (`emb`); where the first view verifies but all views do
    not, the first view's decide.settle_lead is noted. gap: `room` x the largest of those (at least
    `floor`); share: of own-name probes, those the first view settles at that gap."""
    from .decide import Gallery, decide, settle_lead
    rng = np.random.default_rng(seed + 2)
    changed, leads, own = [], [], 0  # leads where the other views changed a verdict; of own-name probes
    for members, enrolled, probes in class_trials(lab, size, seed, trials):
        gallery = Gallery.from_embeddings(lab[enrolled].astype(str), emb[enrolled], th.top_k, th.head)
        outside = rng.permutation(np.flatnonzero(~np.isin(lab, members)))[:len(probes) // 2]
        shown = [(i, str(lab[i])) for i in probes]
        shown += [(i, str(rng.choice([m for m in members if m != lab[i]]))) for i in probes]
        shown += [(i, str(rng.choice(members))) for i in outside]
        own += len(probes)
        for n, (i, name) in enumerate(shown):
            lead = settle_lead(name, first[i], gallery, th)
            if lead is None:
                continue
            if n < len(probes):
                leads.append(lead)
            if decide(name, emb[i], gallery, th).verdict != "verified":
                changed.append(lead)
    gap = max(floor, room * max(changed, default=0.0))
    return gap, float((np.array(leads) >= gap).sum() / max(1, own))


def _class_outcomes(emb: np.ndarray, lab: np.ndarray, th, size: int, seed: int, trials: int = 200) -> dict:
    """decide.py's verdicts for the probes of classes of `size` held-out identities (class_trials),
    each shown under its own name: the share verified, unknown_face and (wrongly) mismatch; and how
    often a face of an identity outside the class, shown under a random member's name, is verified
    (the false accept rate the lecturer sees when someone not enrolled sits in)."""
    from .decide import Gallery, decide
    rng = np.random.default_rng(seed + 1)
    counts = {"verified": 0, "unknown_face": 0, "mismatch": 0}
    outsider_pass, outsiders = 0, 0
    for members, enrolled, probes in class_trials(lab, size, seed, trials):
        gallery = Gallery.from_embeddings(lab[enrolled].astype(str), emb[enrolled], th.top_k, th.head)
        for i in probes:
            counts[decide(str(lab[i]), emb[i], gallery, th).verdict] += 1
        outside = np.flatnonzero(~np.isin(lab, members))
        for i in rng.permutation(outside)[:50]:
            outsiders += 1
            outsider_pass += decide(str(rng.choice(members)), emb[i], gallery, th).verdict == "verified"
    total = max(1, sum(counts.values()))
    return {"class_size": int(min(size, int(lab.max()))), **{k: round(v / total, 4) for k, v in counts.items()},
            "outsider_verified": round(outsider_pass / max(1, outsiders), 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bot.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", help="detect and align every training face (cached)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--limit-ids", type=int, default=None, help="only the first N identities per folder (tests)")
    f = sub.add_parser("fit", help="train (resumes from the run's last checkpoint)")
    f.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    f.add_argument("--run", type=Path, default=DEFAULT_RUN)
    f.add_argument("--size", type=int, default=96, help="input side in px (the 112x112 aligned face is resized)")
    f.add_argument("--alpha", type=float, default=0.5)
    f.add_argument("--dim", type=int, default=128)
    f.add_argument("--batch", type=int, default=128)
    f.add_argument("--epochs", type=int, default=40)
    f.add_argument("--lr", type=float, default=0.05)
    f.add_argument("--distill", type=float, default=40.0, help="weight of the distillation loss")
    f.add_argument("--ce", type=float, default=1.0, help="weight of the CosFace loss (0: distillation only)")
    f.add_argument("--target-weight", type=int, default=2,
                   help="times an epoch each face like our students (Indonesian, hijab) is shown")
    f.add_argument("--relational", type=float, default=0.0,
                   help="weight of the loss matching pooled-feature cosines to the teacher's within a batch")
    f.add_argument("--jitter", type=float, default=0.0,
                   help="share of training faces whose alignment is moved a little (landmark noise)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--max-minutes", type=float, default=None, help="stop (checkpointed) after this long")
    f.add_argument("--init-from", type=Path, default=None, help="start a new run from this run's weights")
    f.add_argument("--workers", type=int, default=1,
                   help="threads that augment batches beside training (more on a many-core machine)")
    f.add_argument("--bf16", action="store_true", help="mixed bfloat16 (a GPU; slower on a CPU)")
    k = sub.add_parser("pack", help="the cache with WebP-encoded faces (~40 MB), to train on another machine")
    k.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    k.add_argument("--out", type=Path, default=PROJECT_DIR / "cache" / "packed.npz")
    k.add_argument("--quality", type=int, default=85)
    e = sub.add_parser("export", help="latest checkpoint -> TFLite")
    e.add_argument("--run", type=Path, default=DEFAULT_RUN)
    e.add_argument("--out", type=Path, default=PROJECT_DIR / "models" / "face_embed.tflite")
    e.add_argument("--float16", action="store_true", help="float16 weights (half the file)")
    e.add_argument("--int8", action="store_true",
                   help="int8 weights and activations, ranges set on training faces (a third of the file)")
    e.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="training faces to centre the vectors on")
    e.add_argument("--vector", choices=("pooled", "embedding"), default="pooled",
                   help="pooled: the 1280 pooled features, centred (default); embedding: the 128-d head")
    c = sub.add_parser("calibrate", help="held-out identities -> thresholds.json")
    c.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    c.add_argument("--model", type=Path, default=PROJECT_DIR / "models" / "face_embed.tflite")
    c.add_argument("--out", type=Path, default=PROJECT_DIR / "models" / "thresholds.json")
    c.add_argument("--far", type=float, default=0.01, help="false accept rate per (face, other student) pair")
    c.add_argument("--top-k", type=int, default=3,
                   help="score a face by its k nearest enrolled faces (0: prototype)")
    c.add_argument("--head-lambda", type=float, default=0.05,
                   help="ridge penalty of the class head fitted at enrollment; 0: no head")
    c.add_argument("--head-weight", type=float, default=1.0, help="the head's share of the ranking score")
    c.add_argument("--min-gallery", type=int, default=7,
                   help="only identities with this many faces besides the probe")
    a = sub.add_parser("all", help="prepare, fit, export and calibrate; each resumes where it stopped")
    a.add_argument("--data", type=Path, default=DEFAULT_DATA)
    a.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    a.add_argument("--run", type=Path, default=DEFAULT_RUN)
    a.add_argument("--models", type=Path, default=PROJECT_DIR / "models")
    a.add_argument("--limit-ids", type=int, default=None)
    for flag, typ, default in (("--size", int, 96), ("--alpha", float, 0.5), ("--dim", int, 128),
                               ("--batch", int, 128), ("--epochs", int, 40), ("--lr", float, 0.05),
                               ("--distill", float, 40.0), ("--ce", float, 1.0), ("--target-weight", int, 2), ("--relational", float, 0.0), ("--jitter", float, 0.0), ("--seed", int, 0), ("--max-minutes", float, None)):
        a.add_argument(flag, type=typ, default=default)
    v = sub.add_parser("average", help="mean weights of several checkpoints -> a run folder to export")
    v.add_argument("--run", type=Path, default=DEFAULT_RUN, help="the run whose config the checkpoints share")
    v.add_argument("--out", type=Path, required=True)
    v.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    v.add_argument("stems", nargs="+", help="checkpoint stems (ckpt/step-NNNNNNN, without .weights.h5)")
    n = sub.add_parser("snapshot", help="latest weights without optimizer state -> a small run folder")
    n.add_argument("--run", type=Path, default=DEFAULT_RUN)
    n.add_argument("--out", type=Path, default=PROJECT_DIR / "models" / "train-state")
    args = ap.parse_args(argv)
    if args.step == "snapshot":
        snapshot(args.run, args.out)
    elif args.step == "average":
        average(args.run, args.stems, args.out, args.cache)
    elif args.step == "all":
        if not args.cache.exists():
            prepare(args.data, args.cache, args.limit_ids)
        Trainer(args.cache, args.run, **_run_config(args)).fit(args.max_minutes)
        model = export(args.run, args.models / "face_embed.tflite", cache=args.cache)
        calibrate(args.cache, model, args.models / "thresholds.json")
    elif args.step == "export":
        export(args.run, args.out, args.float16, args.cache, args.vector, args.int8)
    elif args.step == "calibrate":
        calibrate(args.cache, args.model, args.out, far=args.far, top_k=args.top_k,
                  min_gallery=args.min_gallery, head_lambda=args.head_lambda, head_weight=args.head_weight)
    elif args.step == "prepare":
        prepare(args.data, args.cache, args.limit_ids)
    elif args.step == "fit":
        cfg = _run_config(args)
        Trainer(args.cache, args.run, **cfg, workers=args.workers, bf16=args.bf16).fit(args.max_minutes, args.init_from)
    elif args.step == "pack":
        pack(args.cache, args.out, args.quality)
    return 0


def _run_config(args) -> dict:
    """A resumed run keeps the settings it started with; new runs take the command line's."""
    keys = ("size", "alpha", "dim", "batch", "epochs", "lr", "distill", "ce", "target_weight", "relational", "jitter",
            "seed")
    cfg = {k: getattr(args, k) for k in keys}
    saved = args.run / "config.json"
    if saved.exists():
        # a run begun before a setting existed trained as that setting's neutral value does
        old = {"ce": 1.0, "target_weight": 1, "relational": 0.0, "jitter": 0.0, **json.loads(saved.read_text())}
        cfg.update({k: old[k] for k in keys if k in old and k != "epochs"})
    return cfg


if __name__ == "__main__":
    sys.exit(main())
