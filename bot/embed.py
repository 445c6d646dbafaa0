"""Aligned 112x112 faces -> L2-normalised embeddings, with the TFLite model in models/.

The exported model takes square RGB float32 faces in [0, 255] and does its own scaling, centring and
normalisation (bot/train.py export; an int8 export leaves normalisation to `embed`, which
normalises every view's vector anyway); its vector is whatever size it gives (1280 pooled features for
the shipped model). Faces arrive aligned at 112x112 and are resized here to the
model's side with INTER_AREA, exactly as training resizes them.

Each face is embedded in several views and the vectors added (VIEWS): the face, its mirror image (a
face turned a little either way moves less) and its central 90% zoomed (the alignment template's
margin holds hair, hijab and background that change between rooms). Chosen on the held-out
identities of the training split (128-d model of session 4): rank-1 58.0 -> 59.9 -> 63.3%, TAR at FAR 1%
50.4 -> 52.6 -> 54.1%.
The recipe is part of the model's `fingerprint`: vectors made by one recipe are not compared with
another's. `view_vectors` gives each view's vector apart, for a caller that stops early: the pipeline
keeps a face's first view alone when it settles the verdict (decide.settled, thresholds.json `quick`).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from .faces import DetectorError, load_interpreter


class ModelError(RuntimeError):
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
    def __init__(self, model_path: Path, threads: int = 2, max_batch: int = 32,
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
    # each view's vector too: an int8 model leaves normalisation out (bot/train.py export)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
