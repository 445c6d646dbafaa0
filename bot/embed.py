"""Aligned 112x112 faces -> L2-normalised embeddings, with the TFLite model in models/.

The exported model takes RGB float32 in [0, 255] at 112x112 and does its own resizing, scaling and
normalisation (bot/train.py export), so this module knows nothing about how it was trained.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .faces import DetectorError, load_interpreter


class ModelError(RuntimeError):
    """The face model is missing, damaged or of the wrong shape; str() names the file."""


class Embedder:
    def __init__(self, model_path: Path, threads: int = 2, max_batch: int = 32):
        self.path = Path(model_path)
        try:
            self.interp = load_interpreter(self.path, threads)
        except DetectorError as e:
            raise ModelError(str(e)) from None
        inp = self.interp.get_input_details()[0]
        out = self.interp.get_output_details()[0]
        if tuple(inp["shape"][1:]) != (112, 112, 3) or len(out["shape"]) != 2:
            raise ModelError(f"{self.path}: expected a 112x112x3 -> vector face model, got "
                             f"{list(inp['shape'])} -> {list(out['shape'])}")
        self._in, self._out = inp["index"], out["index"]
        self.dim = int(out["shape"][1])
        self.max_batch = max_batch
        self._batch = 1

    def _resize(self, n: int) -> None:
        if n != self._batch:
            self.interp.resize_tensor_input(self._in, [n, 112, 112, 3])
            self.interp.allocate_tensors()
            self._batch = n

    def embed(self, faces: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) uint8 RGB -> (N, dim) float32, unit length."""
        faces = np.asarray(faces)
        if len(faces) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for i in range(0, len(faces), self.max_batch):
            chunk = faces[i:i + self.max_batch].astype(np.float32)
            self._resize(len(chunk))
            self.interp.set_tensor(self._in, chunk)
            self.interp.invoke()
            out.append(self.interp.get_tensor(self._out).copy())
        e = np.concatenate(out)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
