"""Train rollcall's face embedding: MobileNetV2 (weights=None) -> L2-normalised embedding.

    python -m bot.train prepare   # detect + align every training face with the bot's own aligner (cached)
    python -m bot.train fit       # CosFace on labelled identities + distillation from dlib's ResNet
    python -m bot.train export    # -> models/face_embed.tflite
    python -m bot.train calibrate # held-out identities -> models/thresholds.json
    python -m bot.train all       # the four in order; each step resumes where it stopped

Data: ../shared/data/{lfw,celeba,extra}-faces/<identity>/*.jpg and unlabelled-faces/*.jpg, with the dlib
teacher vectors of teacher-dlib.npz. seed-faces is the evaluation class and is never read here.
Whole identities are held out (never images) for validation and threshold calibration.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from .config import PROJECT_DIR
from .faces import FaceDetector, find_faces

DEFAULT_DATA = PROJECT_DIR.parent / "shared" / "data"
DEFAULT_CACHE = PROJECT_DIR / "cache" / "aligned.npz"
DEFAULT_RUN = PROJECT_DIR / "runs" / "main"
LABELLED = ("lfw-faces", "celeba-faces", "extra-faces")
UNLABELLED = "unlabelled-faces"


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


def augment(batch: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Meeting-video conditions on aligned 112x112 RGB uint8 faces -> float32 (size x size) in [0, 255].

    Shrink to a 20-70 px face and back, codec artefacts, motion/defocus blur, exposure and white
    balance, sensor noise, occlusion, flips: what a gallery tile does to a face.
    """
    out = np.empty((len(batch), size, size, 3), np.float32)
    for i, img in enumerate(batch):
        im = img
        if rng.random() < 0.5:
            im = im[:, ::-1]
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


class Trainer:
    """CosFace on labelled identities + cosine distillation to dlib's centred vectors; checkpointed."""

    def __init__(self, cache: Path, run: Path, size: int = 96, alpha: float = 0.5, dim: int = 128,
                 batch: int = 128, epochs: int = 40, lr: float = 0.05, distill: float = 40.0,
                 ce: float = 1.0, cos_s: float = 32.0, cos_m: float = 0.35, seed: int = 0):
        import tensorflow as tf
        import keras
        self.tf, self.keras = tf, keras
        keras.utils.set_random_seed(seed)
        self.run, self.size, self.batch, self.epochs = run, size, batch, epochs
        self.distill, self.ce, self.cos_s, self.cos_m, self.seed = distill, ce, cos_s, cos_m, seed
        self.config = dict(size=size, alpha=alpha, dim=dim, batch=batch, epochs=epochs, lr=lr,
                           distill=distill, ce=ce, cos_s=cos_s, cos_m=cos_m, seed=seed, cache=str(cache))
        z = np.load(cache)
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
        self.val_idx = np.flatnonzero(self.held)
        self.val_ids = idents[self.val_idx]
        self.n_classes = len(names)
        self.model = build_backbone(size, alpha, dim)
        self.W = tf.Variable(tf.random.normal((dim, self.n_classes), stddev=0.01, seed=seed), name="cosface_w")
        steps_per_epoch = max(1, len(self.train_idx) // batch)
        self.total_steps = steps_per_epoch * epochs
        self.steps_per_epoch = steps_per_epoch
        sched = keras.optimizers.schedules.CosineDecay(lr, self.total_steps, warmup_target=None)
        self.opt = keras.optimizers.SGD(sched, momentum=0.9, nesterov=True, weight_decay=5e-4)
        self.step = tf.Variable(0, dtype=tf.int64, name="step")
        self.ckpt = tf.train.Checkpoint(model=self.model, W=self.W, opt=self.opt, step=self.step)
        self.manager = tf.train.CheckpointManager(self.ckpt, str(run / "ckpt"), max_to_keep=2)
        self._train_step = tf.function(self._step_fn)

    def _step_fn(self, x, labels, tvec, has_t):
        tf = self.tf
        with tf.GradientTape() as tape:
            emb = self.model(x, training=True)
            e = tf.math.l2_normalize(emb, axis=1)
            w = tf.math.l2_normalize(self.W, axis=0)
            cos = tf.matmul(e, w)
            lab_mask = labels >= 0
            safe = tf.where(lab_mask, labels, 0)
            onehot = tf.one_hot(safe, self.n_classes)
            logits = self.cos_s * (cos - self.cos_m * onehot)
            ce = tf.nn.softmax_cross_entropy_with_logits(onehot, logits)
            lab_f = tf.cast(lab_mask, tf.float32)
            ce = tf.reduce_sum(ce * lab_f) / tf.maximum(tf.reduce_sum(lab_f), 1.0)
            t_f = tf.cast(has_t, tf.float32)
            dist = tf.reduce_sum((1.0 - tf.reduce_sum(e * tvec, axis=1)) * t_f) / tf.maximum(tf.reduce_sum(t_f), 1.0)
            loss = self.ce * ce + self.distill * dist
            if self.model.losses:
                loss = loss + tf.add_n(self.model.losses)
        vars_ = self.model.trainable_variables + [self.W]
        self.opt.apply_gradients(zip(tape.gradient(loss, vars_), vars_))
        self.step.assign_add(1)
        return loss, ce, dist

    def embed(self, idx: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(idx), 256):
            x = resize_batch(self.faces[idx[i:i + 256]], self.size)
            out.append(self.model(x, training=False).numpy())
        e = np.concatenate(out)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    def validate(self) -> dict:
        e = self.embed(self.val_idx)
        return verification_figures(e, self.val_ids)

    def fit(self, max_minutes: float | None = None, init_from: Path | None = None) -> dict:
        """Train to the end of the schedule (or `max_minutes`). A new run may start from another run's
        weights (`init_from`: a longer schedule after a short one) with a fresh optimizer and step."""
        import threading
        import queue
        self.run.mkdir(parents=True, exist_ok=True)
        (self.run / "config.json").write_text(json.dumps(self.config, indent=1))
        if self.manager.latest_checkpoint:
            self.ckpt.restore(self.manager.latest_checkpoint)
            print(f"resumed at step {int(self.step.numpy())} of {self.total_steps}", flush=True)
        elif init_from is not None:
            latest = self.tf.train.latest_checkpoint(str(Path(init_from) / "ckpt"))
            if not latest:
                raise SystemExit(f"{init_from}: no checkpoint to start from")
            self.tf.train.Checkpoint(model=self.model, W=self.W).restore(latest).expect_partial()
            print(f"started from {latest}", flush=True)
        start_step = int(self.step.numpy())
        if start_step >= self.total_steps:
            return json.loads((self.run / "history.json").read_text())[-1] if (self.run / "history.json").exists() else {}
        t_end = time.time() + max_minutes * 60 if max_minutes else None
        q: queue.Queue = queue.Queue(maxsize=4)
        stop = threading.Event()

        def producer():
            # a fresh permutation per epoch, seeded by (seed, epoch): a resumed run sees the same order
            step = start_step
            while not stop.is_set() and step < self.total_steps:
                epoch, k = divmod(step, self.steps_per_epoch)
                rng = np.random.default_rng((self.seed, epoch))
                perm = rng.permutation(self.train_idx)
                idx = np.sort(perm[k * self.batch:(k + 1) * self.batch])
                arng = np.random.default_rng((self.seed, epoch, k))
                x = augment(self.faces[idx], self.size, arng)
                q.put((x, self.labels[idx], self.teacher[idx], self.has_t[idx]))
                step += 1
            q.put(None)

        th = threading.Thread(target=producer, daemon=True)
        th.start()
        history = json.loads((self.run / "history.json").read_text()) if (self.run / "history.json").exists() else []
        t0, seen, last_ckpt = time.time(), 0, time.time()
        losses = []
        bar = _StepBar(self.total_steps, start_step) if sys.stdout.isatty() else None
        while True:
            item = q.get()
            if item is None:
                break
            loss, ce, dist = self._train_step(*item)
            losses.append((float(loss), float(ce), float(dist)))
            seen += len(item[0])
            step = int(self.step.numpy())
            if step % 20 == 0:
                l = np.mean(losses[-20:], axis=0)
                line = (f"step {step}/{self.total_steps} epoch {step / self.steps_per_epoch:.2f} loss {l[0]:.3f} "
                        f"ce {l[1]:.3f} distill {l[2]:.4f} {seen / (time.time() - t0):.1f} img/s")
                if bar:
                    bar.update(step, line)
                else:
                    print(line, flush=True)
            done = step >= self.total_steps or (t_end and time.time() > t_end)
            if step % self.steps_per_epoch == 0 or done or time.time() - last_ckpt > 600:
                self.manager.save(checkpoint_number=step)
                last_ckpt = time.time()
                if step % self.steps_per_epoch == 0 or done:
                    figs = self.validate()
                    figs.update(step=step, epoch=round(step / self.steps_per_epoch, 2),
                                loss=float(np.mean(losses[-50:], axis=0)[0]), time=time.strftime("%Y-%m-%dT%H:%M:%S"))
                    history.append(figs)
                    (self.run / "history.json").write_text(json.dumps(history, indent=1))
                    print("validation", json.dumps(figs), flush=True)
            if done:
                break
        stop.set()
        if bar:
            bar.close()
        return history[-1] if history else {}


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
def export(run: Path, out: Path, float16: bool = False) -> Path:
    """The run's latest checkpoint -> TFLite taking SxS RGB float [0, 255], giving L2-normalised vectors."""
    import tensorflow as tf
    import keras
    cfg = json.loads((run / "config.json").read_text())
    model = build_backbone(cfg["size"], cfg["alpha"], cfg["dim"])
    ckpt = tf.train.Checkpoint(model=model)
    latest = tf.train.latest_checkpoint(str(run / "ckpt"))
    if not latest:
        raise SystemExit(f"{run}: no checkpoint to export")
    ckpt.restore(latest).expect_partial()
    # embed.py resizes the aligned 112x112 face to the model's side with cv2 INTER_AREA, as training
    # does (TFLite has no area resize)
    inp = keras.Input((cfg["size"], cfg["size"], 3), name="aligned_face")
    x = model(inp, training=False)
    x = keras.layers.UnitNormalization(axis=1, name="l2")(x)
    wrapper = keras.Model(inp, x)
    conv = tf.lite.TFLiteConverter.from_keras_model(wrapper)
    if float16:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    data = conv.convert()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    meta = {"checkpoint": Path(latest).name, **cfg, "bytes": len(data)}
    print(json.dumps(meta))
    return out


def snapshot(run: Path, out: Path) -> Path:
    """The run's latest weights without optimizer state (small enough to commit), as a run folder that
    `fit --init-from` can start from on another machine."""
    import tensorflow as tf
    cfg = json.loads((run / "config.json").read_text())
    model = build_backbone(cfg["size"], cfg["alpha"], cfg["dim"])
    latest = tf.train.latest_checkpoint(str(run / "ckpt"))
    if not latest:
        raise SystemExit(f"{run}: no checkpoint to snapshot")
    reader = tf.train.load_checkpoint(latest)
    w_shape = next(s for k, s in reader.get_variable_to_shape_map().items() if k.startswith("W/"))
    W = tf.Variable(tf.zeros(w_shape), name="cosface_w")
    tf.train.Checkpoint(model=model, W=W).restore(latest).expect_partial()
    (out / "ckpt").mkdir(parents=True, exist_ok=True)
    for old in (out / "ckpt").glob("*"):
        old.unlink()
    tf.train.Checkpoint(model=model, W=W).write(str(out / "ckpt" / Path(latest).name))
    # latest_checkpoint() reads this index file
    (out / "ckpt" / "checkpoint").write_text(f'model_checkpoint_path: "{Path(latest).name}"\n')
    (out / "config.json").write_text(json.dumps({**cfg, "from": str(latest)}, indent=1))
    return out


def calibrate(cache: Path, model_path: Path, out: Path, seed: int = 0, far: float = 0.001) -> dict:
    """Thresholds from held-out identities, computed through the exported TFLite model as the bot runs it.

    t_verify: the similarity a probe face must reach against a student's prototype (mean of that
    student's other faces) so that impostor prototypes pass at most `far` of the time.
    margin: how far another student must be ahead of the expected one before it is a mismatch, set so
    that at most `far` of genuine probes would be called a mismatch.
    """
    from .embed import Embedder
    z = np.load(cache)
    idents = z["identities"]
    held = split_identities(idents, seed)
    idx = np.flatnonzero(held)
    ids = idents[idx]
    emb = Embedder(model_path).embed(z["faces"][idx])
    names = np.unique(ids)
    genuine, impostor, gaps = [], [], []
    for i, who in enumerate(ids):
        # leave-one-out prototypes: the probe never sits in its own prototype
        protos = []
        for n in names:
            m = (ids == n)
            m[i] = False
            if m.sum() == 0:
                protos.append(np.zeros(emb.shape[1]))
                continue
            p = emb[m].mean(0)
            protos.append(p / np.linalg.norm(p))
        sims = np.array(protos) @ emb[i]
        own = int(np.flatnonzero(names == who)[0])
        if (ids == who).sum() < 2:
            continue
        genuine.append(sims[own])
        others = np.delete(sims, own)
        impostor.extend(others.tolist())
        gaps.append(others.max() - sims[own])
    genuine, impostor, gaps = map(np.asarray, (genuine, impostor, gaps))
    t_verify = float(np.quantile(impostor, 1 - far))
    margin = float(max(0.02, np.quantile(gaps, 1 - far)))
    result = {"t_verify": round(t_verify, 4), "margin": round(margin, 4), "far": far,
              "tar_at_t_verify": round(float((genuine >= t_verify).mean()), 4),
              "calibration": {"identities": int(len(names)), "probes": int(len(genuine)),
                              "impostor_comparisons": int(len(impostor)),
                              "method": "leave-one-out prototype (mean of the identity's other faces)"}}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return result


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
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--max-minutes", type=float, default=None, help="stop (checkpointed) after this long")
    f.add_argument("--init-from", type=Path, default=None, help="start a new run from this run's weights")
    e = sub.add_parser("export", help="latest checkpoint -> TFLite")
    e.add_argument("--run", type=Path, default=DEFAULT_RUN)
    e.add_argument("--out", type=Path, default=PROJECT_DIR / "models" / "face_embed.tflite")
    e.add_argument("--float16", action="store_true", help="float16 weights (half the file)")
    c = sub.add_parser("calibrate", help="held-out identities -> thresholds.json")
    c.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    c.add_argument("--model", type=Path, default=PROJECT_DIR / "models" / "face_embed.tflite")
    c.add_argument("--out", type=Path, default=PROJECT_DIR / "models" / "thresholds.json")
    c.add_argument("--far", type=float, default=0.001)
    a = sub.add_parser("all", help="prepare, fit, export and calibrate; each resumes where it stopped")
    a.add_argument("--data", type=Path, default=DEFAULT_DATA)
    a.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    a.add_argument("--run", type=Path, default=DEFAULT_RUN)
    a.add_argument("--models", type=Path, default=PROJECT_DIR / "models")
    a.add_argument("--limit-ids", type=int, default=None)
    for flag, typ, default in (("--size", int, 96), ("--alpha", float, 0.5), ("--dim", int, 128),
                               ("--batch", int, 128), ("--epochs", int, 40), ("--lr", float, 0.05),
                               ("--distill", float, 40.0), ("--ce", float, 1.0), ("--seed", int, 0), ("--max-minutes", float, None)):
        a.add_argument(flag, type=typ, default=default)
    n = sub.add_parser("snapshot", help="latest weights without optimizer state -> a small run folder")
    n.add_argument("--run", type=Path, default=DEFAULT_RUN)
    n.add_argument("--out", type=Path, default=PROJECT_DIR / "models" / "train-state")
    args = ap.parse_args(argv)
    if args.step == "snapshot":
        snapshot(args.run, args.out)
    elif args.step == "all":
        if not args.cache.exists():
            prepare(args.data, args.cache, args.limit_ids)
        Trainer(args.cache, args.run, **_run_config(args)).fit(args.max_minutes)
        model = export(args.run, args.models / "face_embed.tflite")
        calibrate(args.cache, model, args.models / "thresholds.json")
    elif args.step == "export":
        export(args.run, args.out, args.float16)
    elif args.step == "calibrate":
        calibrate(args.cache, args.model, args.out, far=args.far)
    elif args.step == "prepare":
        prepare(args.data, args.cache, args.limit_ids)
    elif args.step == "fit":
        cfg = _run_config(args)
        Trainer(args.cache, args.run, **cfg).fit(args.max_minutes, args.init_from)
    return 0


def _run_config(args) -> dict:
    """A resumed run keeps the settings it started with; new runs take the command line's."""
    keys = ("size", "alpha", "dim", "batch", "epochs", "lr", "distill", "ce", "seed")
    cfg = {k: getattr(args, k) for k in keys}
    saved = args.run / "config.json"
    if saved.exists():
        old = json.loads(saved.read_text())
        cfg.update({k: old[k] for k in keys if k in old and k != "epochs"})
    return cfg


if __name__ == "__main__":
    sys.exit(main())
