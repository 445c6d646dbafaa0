"""Aligned 112x112 faces -> L2-normalised embeddings, with the TFLite model in models/.

The exported model takes square RGB float32 faces in [0, 255] and does its own scaling and
normalisation (bot/train.py export). Faces arrive aligned at 112x112 and are resized here to the
model's side with INTER_AREA, exactly as training resizes them.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .faces import DetectorError, load_interpreter


class ModelError(RuntimeError):
    """The face model is missing, damaged or of the wrong shape; str() names the file."""


class Embedder:
    def __init__(self, model_path: Path, threads: int = 2, max_batch: int = 32, flip: bool = True):
        self.path = Path(model_path)
        # also embed the mirror image and add the two: a face seen turned a little either way moves
        # less, for twice the embedding time
        self.flip = flip
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

    def _resize(self, n: int) -> None:
        if n != self._batch:
            self.interp.resize_tensor_input(self._in, [n, self.side, self.side, 3])
            self.interp.allocate_tensors()
            self._batch = n

    def embed(self, faces: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) uint8 RGB -> (N, dim) float32, unit length."""
        faces = np.asarray(faces)
        if len(faces) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self.flip:
            e = self._embed(np.concatenate([faces, faces[:, :, ::-1]]))
            e = e[:len(faces)] + e[len(faces):]
        else:
            e = self._embed(faces)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    def _embed(self, faces: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(faces), self.max_batch):
            chunk = faces[i:i + self.max_batch]
            if chunk.shape[1] != self.side:
                chunk = np.stack([cv2.resize(f, (self.side, self.side), interpolation=cv2.INTER_AREA) for f in chunk])
            chunk = chunk.astype(np.float32)
            self._resize(len(chunk))
            self.interp.set_tensor(self._in, chunk)
            self.interp.invoke()
            out.append(self.interp.get_tensor(self._out).copy())
        return np.concatenate(out)
