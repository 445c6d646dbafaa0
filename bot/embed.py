"""Aligned 112x112 faces -> L2-normalised embeddings, with the TFLite model in models/.

The exported model takes square RGB float32 faces in [0, 255] and does its own scaling, centring and
normalisation (bot/train/export.py; an int8 export leaves normalisation to `embed`, which
normalises every view's vector anyway); its vector is whatever size it gives (1280 pooled features for
the shipped model). Faces arrive aligned at 112x112 and are resized here to the
model's side with INTER_AREA, exactly as training resizes them.

Each face is embedded in several views and the vectors added (VIEWS): the face, its mirror image (a
face turned a little either way moves less) and its central 90% zoomed (the alignment template's
margin holds hair, hijab and background that change between rooms). Each view added lifted the
held-out identities' rank-1 and TAR (see models/README.md, "Embedder views").
The recipe is part of the model's `fingerprint`: vectors made by one recipe are not compared with
another's. `view_vectors` gives each view's vector apart, for a caller that stops early: the pipeline
keeps a face's first view alone when it settles the verdict (decide.settled, thresholds.json `quick`).
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import RollcallError
from .config import RecognitionSettings
from .faces import DetectorError, load_interpreter
from .places import Phases


@dataclass(frozen=True)
class EmbedTuning:
    """The embedder's and VectorMemory's tuning values, each with its reason (measurements:
    benchmarks/HISTORY.md, VectorMemory)."""
    max_batch: int = 32         # face views one invoke takes: bounds the input tensor's memory (an enrolment's photos)
    # VectorMemory: a face whose signature differs from its vector's face by less keeps the vector; only
    # 9 of 1,500 training faces come nearer than 0.22 to a face of another identity
    max_diff: float = 0.22
    refresh_every: int = RecognitionSettings.vector_refresh  # captures a kept vector lasts (recognition.vector_refresh)
    signature_crop: tuple[int, int] = (16, 96)  # template rows and columns of the signature: brows to chin, little hair
    signature_side: int = 16    # the signature's side: the face's layout, not its detail


EMBED_TUNING = EmbedTuning()


class ModelError(RollcallError, RuntimeError):
    """The face model is missing, damaged or of the wrong shape; str() names the file."""


VIEWS = ("face", "mirror", "zoom90")


def view(faces: np.ndarray, name: str) -> np.ndarray:
    """One view of (N, 112, 112, 3) aligned faces."""
    if name == "face":
        return faces
    if name == "mirror":
        return faces[:, :, ::-1]
    if name == "zoom90":
        side = faces.shape[1]
        c = int(round(side * 0.9))
        o = (side - c) // 2
        return np.stack([cv2.resize(f[o:o + c, o:o + c], (side, side), interpolation=cv2.INTER_LINEAR)
                         for f in faces])
    raise ValueError(f"unknown view {name!r}; known: {', '.join(VIEWS)}")


def fingerprint(model_path: Path, views: tuple[str, ...]) -> str:
    """What an enrolled vector was made with: the model file's digest and the views."""
    digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()[:16]
    return f"{digest}:{'+'.join(views)}"


class Embedder:
    def __init__(self, model_path: Path, threads: int = 2, max_batch: int = EMBED_TUNING.max_batch,
                 views: tuple[str, ...] = VIEWS):
        self.path = Path(model_path)
        unknown = set(views) - set(VIEWS)
        if unknown:  # here, not mid-session
            raise ValueError(f"unknown views {sorted(unknown)}; known: {', '.join(VIEWS)}")
        self.views = tuple(views) or ("face",)
        try:
            self.interp = load_interpreter(self.path, threads)
        except DetectorError as e:
            raise ModelError(str(e)) from None
        inp = self.interp.get_input_details()[0]
        out = self.interp.get_output_details()[0]
        shape = tuple(int(v) for v in inp["shape"][1:])
        if len(shape) != 3 or shape[0] != shape[1] or shape[2] != 3 or len(out["shape"]) != 2:
            raise ModelError(f"{self.path}: expected a square RGB image -> vector face model, got "
                             f"{list(inp['shape'])} -> {list(out['shape'])}")
        self._in, self._out = inp["index"], out["index"]
        self.side = shape[0]
        self.dim = int(out["shape"][1])
        self.max_batch = max_batch
        self._batch = 1
        self.made = 0  # face views run through the model so far, for the benchmark and tests
        self.fingerprint = fingerprint(self.path, self.views)

    def _resize(self, n: int) -> None:
        if n != self._batch:
            self.interp.resize_tensor_input(self._in, [n, self.side, self.side, 3])
            self.interp.allocate_tensors()
            self._batch = n

    def embed(self, faces: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) uint8 RGB -> (N, dim) float32, unit length."""
        return unit(self.view_vectors(faces).sum(0))

    def view_vectors(self, faces: np.ndarray, views: tuple[str, ...] | None = None) -> np.ndarray:
        """(N, 112, 112, 3) uint8 RGB -> (len(views), N, dim): each view's own unit vector (views: the
        embedder's by default). `embed` is their normalised sum; a caller may add them up in parts."""
        views = self.views if views is None else tuple(views)
        faces = np.asarray(faces)
        n = len(faces)
        if n == 0:
            return np.zeros((len(views), 0, self.dim), np.float32)
        fitted = self._fit(faces)
        # the mirror of the resized face is the resized mirror, to the bit (INTER_AREA is symmetric)
        vs = [fitted if v == "face" else fitted[:, :, ::-1] if v == "mirror" else self._fit(view(faces, v))
              for v in views]
        return unit(self._embed(np.concatenate(vs))).reshape(len(views), n, -1)

    def _fit(self, faces: np.ndarray) -> np.ndarray:
        """Faces at the model's side, resized as training resizes them."""
        if faces.shape[1] == self.side:
            return faces
        return np.stack([cv2.resize(f, (self.side, self.side), interpolation=cv2.INTER_AREA) for f in faces])

    def _embed(self, faces: np.ndarray) -> np.ndarray:
        self.made += len(faces)
        out = []
        for i in range(0, len(faces), self.max_batch):
            chunk = faces[i:i + self.max_batch].astype(np.float32)
            self._resize(len(chunk))
            self.interp.set_tensor(self._in, chunk)
            self.interp.invoke()
            out.append(self.interp.get_tensor(self._out).copy())
        return np.concatenate(out)


def unit(e: np.ndarray) -> np.ndarray:
    """Each row to unit length."""
    # each view's vector too: an int8 model leaves normalisation out (bot/train/export.py)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def signature(aligned: np.ndarray, t: EmbedTuning = EMBED_TUNING) -> np.ndarray:
    """What `VectorMemory` compares: the aligned face's centre (template rows and columns
    t.signature_crop, brows to chin, little hair or background) in small grey, standardised so a change
    of exposure is no change. Compared by mean absolute difference against t.max_diff."""
    a, b = t.signature_crop
    g = cv2.cvtColor(np.ascontiguousarray(aligned[a:b, a:b]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    g = cv2.resize(g, (t.signature_side, t.signature_side), interpolation=cv2.INTER_AREA)
    return (g - g.mean()) / max(float(g.std()), 1e-3)


@dataclass
class _Kept:
    face: np.ndarray       # the aligned face the vector was made from
    sig: np.ndarray
    vector: np.ndarray
    expected: str | None   # the student the tile's name resolved to then
    age: int               # captures the vector has been handed back since it was made
    verified: bool = False


class VectorMemory:
    """Face vectors per tile position across captures, so a sitter who barely moved is not embedded again.

    The very same aligned face (a still tile, face_memory.FaceMemory) keeps its vector, whatever its verdict.
    A face whose `signature` differs from the one its vector was made from by under `max_diff` keeps the
    vector too, but only while that vector verified the face beyond doubt (the caller's `judged`: the
    pipeline asks decide.settled) as the student the tile still names, and for at most
    `refresh_every` - 1 captures in a row: anything else (a mismatch, an unknown face, a verdict by a
    hair, a new name, another face) is embedded afresh every capture, so each capture of a doubtful
    face is fresh evidence for the tracker's N of M, and a face that changed is judged on its own
    vector. The signature is compared with the face the vector was made from, not the last one seen, so
    a slow drift adds up to a change. Tiles get staggered ages (dealt in reading order, `places.Phases`), so their
    refreshes spread out. It cuts the face views embedded a steady capture by nearly a quarter (see
    benchmarks/HISTORY.md, VectorMemory). The keyword arguments max_diff and refresh_every override
    `tuning`'s.
    """

    def __init__(self, max_diff: float | None = None, refresh_every: int | None = None,
                 tuning: EmbedTuning = EMBED_TUNING):
        given = dict(max_diff=max_diff, refresh_every=refresh_every)
        self.tuning = dataclasses.replace(tuning, **{k: v for k, v in given.items() if v is not None})
        self.max_diff, self.refresh_every = self.tuning.max_diff, self.tuning.refresh_every
        self._kept: dict[tuple, _Kept] = {}
        self._phases = Phases(self.refresh_every)
        self.counts = {"same": 0, "near": 0, "made": 0}  # how each face was served, for tests and tuning

    def recall(self, key: tuple, aligned: np.ndarray, expected: str | None) -> np.ndarray | None:
        k = self._kept.get(key)
        if k is None:
            return None
        if k.face is aligned:
            self.counts["same"] += 1
            return k.vector
        if (k.verified and k.expected == expected and k.age + 1 < self.refresh_every
                and float(np.abs(signature(aligned, self.tuning) - k.sig).mean()) < self.max_diff):
            k.age += 1
            self.counts["near"] += 1
            return k.vector
        return None

    def keep(self, key: tuple, aligned: np.ndarray, vector: np.ndarray, expected: str | None) -> None:
        """A vector just made for this tile's face."""
        age = 0 if key in self._kept else -self._phases.deal()
        self._kept[key] = _Kept(aligned, signature(aligned, self.tuning), vector, expected, age)
        self.counts["made"] += 1

    def judged(self, key: tuple, verified: bool) -> None:
        """The verdict the tile's vector gave this capture."""
        if key in self._kept:
            self._kept[key].verified = verified

    def only(self, keys) -> None:
        """Forget every tile position not in `keys` (tiles without one judged face this capture)."""
        self._kept = {k: v for k, v in self._kept.items() if k in keys}
