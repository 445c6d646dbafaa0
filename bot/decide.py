"""Embeddings + enrolled gallery -> one verdict per tile (the table in DESIGN.md)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .types import Face, Verdict


class ThresholdError(ValueError):
    """thresholds.json is missing or malformed; str() names the file."""


@dataclass(frozen=True)
class Thresholds:
    t_verify: float
    margin: float
    far: float | None = None
    top_k: int = 0  # the scoring rule the thresholds were calibrated for (Gallery)
    # mean similarity between one person's photos above which they look taken at one sitting (enroll
    # warns): few held-out identities' photos are that alike. None: the file predates it
    alike: float | None = None


def load_thresholds(path: Path, t_verify: float = -1.0, margin: float = -1.0) -> Thresholds:
    """The calibrated thresholds shipped with the model; a value >= 0 from settings overrides each."""
    try:
        data = json.loads(Path(path).read_text())
        t, m = float(data["t_verify"]), float(data["margin"])
        top_k = int(data.get("top_k", 0))
        alike = float(data["alike"]) if data.get("alike") is not None else None
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
    except FileNotFoundError:
        raise ThresholdError(f"{path}: thresholds file not found") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ThresholdError(f"{path}: not a valid thresholds file ({e})") from None
    return Thresholds(t_verify=t if t_verify == -1 else t_verify, margin=m if margin == -1 else margin,
                      far=data.get("far"), top_k=top_k, alike=alike)


def top_k_scores(sims: np.ndarray, owner: np.ndarray, n_owners: int, k: int) -> np.ndarray:
    """Per owner, the mean of the k highest similarities among that owner's vectors (all of them when
    it has fewer). sims: (P, N) probe-to-vector similarities; owner: (N,) index 0..n_owners-1 of each
    vector. -> (P, n_owners); -inf for an owner with no vector.

    Enrolled photos of one student vary (lighting, glasses, a turned head): a face close to a few of
    them is that student even when it is far from their average, which a prototype would miss."""
    sims = np.atleast_2d(np.asarray(sims, np.float32))
    out = np.full((sims.shape[0], n_owners), -np.inf, np.float32)
    for o in range(n_owners):
        s = sims[:, owner == o]
        if s.shape[1]:
            kk = min(k, s.shape[1])
            out[:, o] = np.partition(s, s.shape[1] - kk, axis=1)[:, -kk:].mean(1)
    return out


@dataclass
class Gallery:
    """The enrolled students and how a face is scored against each.

    top_k 0: one unit-length prototype per student (the normalised mean of their photo embeddings),
    the score its cosine. top_k k >= 1: the mean cosine of the k enrolled photos nearest the face. The
    thresholds (t_verify, margin) hold only for the rule they were calibrated with (thresholds.json)."""
    student_ids: list[str]
    prototypes: np.ndarray  # (S, D)
    vectors: np.ndarray | None = None  # (N, D) every enrolled photo's embedding
    owner: np.ndarray | None = None    # (N,) index into student_ids
    top_k: int = 0

    @classmethod
    def from_embeddings(cls, student_ids: np.ndarray, vectors: np.ndarray, top_k: int = 0) -> "Gallery":
        student_ids = np.asarray(student_ids)
        ids = sorted(set(student_ids.tolist())) if len(student_ids) else []
        protos = []
        for sid in ids:
            p = vectors[student_ids == sid].mean(0)
            protos.append(p / max(np.linalg.norm(p), 1e-12))
        dim = vectors.shape[1] if vectors.ndim == 2 else 0
        owner = np.searchsorted(np.array(ids), student_ids) if ids else np.zeros(0, np.int64)
        return cls(ids, np.array(protos, np.float32).reshape(len(ids), dim),
                   np.asarray(vectors, np.float32).reshape(len(student_ids), dim), owner, top_k)

    def similarities(self, emb: np.ndarray) -> np.ndarray:
        if not len(self.student_ids):
            return np.zeros(0, np.float32)
        if self.top_k <= 0 or self.vectors is None:
            return self.prototypes @ emb
        return top_k_scores(self.vectors @ emb, self.owner, len(self.student_ids), self.top_k)[0]


def gate(face: Face, min_face_px: int, blur_min: float) -> str:
    """Why a face cannot be judged ("" when it can): too small or too blurred to accuse anyone."""
    if face.box[2] < min_face_px:
        return "small"
    if face.blur < blur_min:
        return "blur"
    return ""


def identify(emb: np.ndarray, gallery: Gallery, th: Thresholds) -> tuple[str | None, float]:
    """Best enrolled student if it passes t_verify, else None; with its similarity."""
    sims = gallery.similarities(emb)
    if not len(sims):
        return None, 0.0
    best = int(np.argmax(sims))
    return (gallery.student_ids[best] if sims[best] >= th.t_verify else None), float(sims[best])


def decide(expected: str | None, emb: np.ndarray, gallery: Gallery, th: Thresholds) -> Verdict:
    """Verdict for one judged face whose tile is labelled `expected` (None: the name did not resolve)."""
    sims = gallery.similarities(emb)
    ids = gallery.student_ids
    if expected is None:
        who, sim = identify(emb, gallery, th)
        return Verdict("unlabeled", similarity=round(sim, 4), identified_as=who)
    if expected not in ids:
        # a roster student with no enrolled photo: we can only say whether the face is someone else's
        who, sim = identify(emb, gallery, th)
        if who is not None:
            return Verdict("mismatch", similarity=None, identified_as=who, best_other=who,
                           best_other_similarity=round(sim, 4), reason="expected student not enrolled")
        return Verdict("unjudged", reason="not enrolled")
    k = ids.index(expected)
    s_exp = float(sims[k])
    others = np.delete(sims, k)
    if len(others):
        j = int(np.argmax(others))
        other_id, s_other = ids[j if j < k else j + 1], float(others[j])
    else:
        other_id, s_other = None, -1.0
    common = dict(similarity=round(s_exp, 4), best_other=other_id,
                  best_other_similarity=round(s_other, 4) if other_id else None)
    if other_id and s_other >= th.t_verify and s_other - s_exp >= th.margin:
        return Verdict("mismatch", identified_as=other_id, **common)
    if s_exp >= th.t_verify:
        return Verdict("verified", identified_as=expected, **common)
    return Verdict("unknown_face", identified_as=None, **common)
