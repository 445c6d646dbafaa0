"""The training loop: batches, checkpoints every epoch and every 10 minutes, validation on held-out
identities, resumable to the step."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from .augment import augment
from .data import LIKE_OUR_STUDENTS, load_cache, resize_batch, split_identities
from .network import POOLED, backend, build_backbone, training_model
from .weights import latest_weights, load_weights, save_weights


class Trainer:
    """CosFace on labelled identities + cosine distillation to dlib's centred vectors; checkpointed.

    Written against Keras 3 alone (no TensorFlow calls), so `KERAS_BACKEND=torch` or `jax` trains the
    same model on a GPU machine; checkpoints are Keras weight files that any backend reads, and
    `export` turns them into TFLite under TensorFlow.
    """

    def __init__(self, cache: Path, run: Path, size: int = 96, alpha: float = 0.5, dim: int = 128,
                 batch: int = 128, epochs: int = 40, lr: float = 0.05, distill: float = 40.0,
                 ce: float = 1.0, cos_s: float = 32.0, cos_m: float = 0.35, seed: int = 0,
                 target_weight: int = 1, relational: float = 0.0, jitter: float = 0.0, mix: float = 0.0,
                 blends: Path | None = None, workers: int = 1, bf16: bool = False):
        import keras
        self.keras = keras
        keras.utils.set_random_seed(seed)
        if bf16:
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        self.run, self.size, self.batch, self.seed = run, size, batch, seed
        self.workers = workers
        self.config = dict(size=size, alpha=alpha, dim=dim, batch=batch, epochs=epochs, lr=lr,
                           distill=distill, ce=ce, cos_s=cos_s, cos_m=cos_m, seed=seed,
                           target_weight=target_weight, relational=relational, jitter=jitter, mix=mix,
                           cache=str(cache))
        self.jitter, self.mix = jitter, mix
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
        self.blends = _load_blends(blends, z["paths"], self.t_mean) if mix else None
        self.val_idx = np.flatnonzero(self.held)
        self.val_ids = idents[self.val_idx]
        self.n_classes = len(names)
        self.backbone = build_backbone(size, alpha, dim)
        self.model = training_model(self.backbone, self.n_classes, dim, ce, distill, cos_s, cos_m, relational)
        self.steps_per_epoch = max(1, len(self.epoch_idx) // batch)
        self.total_steps = self.steps_per_epoch * epochs
        sched = keras.optimizers.schedules.CosineDecay(lr, self.total_steps)
        self.opt = keras.optimizers.SGD(sched, momentum=0.9, nesterov=True, weight_decay=5e-4)
        # XLA is slower than plain TensorFlow for this model on a CPU, torch.compile untested; JAX needs it
        self.model.compile(optimizer=self.opt, jit_compile=backend() == "jax")

    def batch_at(self, step: int) -> tuple[np.ndarray, dict]:
        """The augmented batch of a global step: a fresh permutation per epoch, seeded by (seed, epoch)
        and (seed, epoch, k), so a resumed run sees exactly what an unbroken one would."""
        epoch, k = divmod(step, self.steps_per_epoch)
        perm = np.random.default_rng((self.seed, epoch)).permutation(self.epoch_idx)
        idx = np.sort(perm[k * self.batch:(k + 1) * self.batch])
        faces = self.faces[idx]
        y = {"labels": self.labels[idx], "teacher": self.teacher[idx], "has_teacher": self.has_t[idx]}
        if self.blends is not None:
            faces, y = blend_into(faces, y, self.faces, self.blends, self.mix,
                                  np.random.default_rng((self.seed, epoch, k, 1)))
        return augment(faces, self.size, np.random.default_rng((self.seed, epoch, k)), self.jitter), y

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


def _load_blends(path: Path | None, paths: np.ndarray, t_mean: np.ndarray) -> dict:
    """`make_blends` records as cache indices, their teacher vectors centred and normalised as the
    cache's are; records whose faces the cache lacks are dropped."""
    if path is None or not Path(path).exists():
        raise SystemExit(f"{path}: no blends file for --mix; make one with `python -m bot.train blends`")
    z = np.load(path)
    where = {p: i for i, p in enumerate(paths)}
    keep = np.array([a in where and b in where for a, b in zip(z["a"], z["b"])], bool)
    if not keep.any():
        raise SystemExit(f"{path}: none of its blends are of faces in this cache")
    t = z["teacher"][keep].astype(np.float32) - t_mean
    return {"a": np.array([where[a] for a in z["a"][keep]]), "b": np.array([where[b] for b in z["b"][keep]]),
            "lam": z["lam"][keep], "teacher": t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-6)}


def blend_into(faces: np.ndarray, y: dict, all_faces: np.ndarray, blends: dict, share: float,
               rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A share of the batch's faces replaced by blends (bot/train/blends.py): the two aligned faces
    mixed by the record's weight, the teacher's vector of that blend as the target, no CosFace label.
    Augmentation comes after, as for any face."""
    pick = np.flatnonzero(rng.random(len(faces)) < share)
    if not len(pick):
        return faces, y
    r = rng.integers(len(blends["lam"]), size=len(pick))
    lam = blends["lam"][r][:, None, None, None]
    faces, y = faces.copy(), {key: v.copy() for key, v in y.items()}
    mixed = lam * all_faces[blends["a"][r]].astype(np.float32) + (1 - lam) * all_faces[blends["b"][r]]
    faces[pick] = np.round(mixed).astype(np.uint8)
    y["teacher"][pick] = blends["teacher"][r]
    y["labels"][pick] = -1
    y["has_teacher"][pick] = True
    return faces, y


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
                            time=time.strftime("%Y-%m-%dT%H:%M:%S"), backend=backend())
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
