"""The verifier's own noise, from which its unsure band is set: how far a face's scores move when the
same face is described again mirrored (bot/verify.py Verifier.second_look), on few-shot classes of
held-out identities. A lead or a score that moves by this much under a change that carries no identity
is not evidence (decide.decide_verifier's unsure band)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

# a band of 1.96 sigma holds 95% of a normal noise's values; sigma from the median absolute change of
# the difference of two descriptions (each one noisy): median |d| = 0.6745 x sqrt(2) x sigma
Z = 1.96
MEDIAN_TO_SIGMA = 1.0 / (0.6745 * np.sqrt(2.0))


def second_vectors(data: Path, detected: dict[str, np.ndarray], rows: np.ndarray, verifier, first: np.ndarray,
                   out: Path, progress: bool = True) -> np.ndarray:
    """The verifier's second looks (Verifier.second_look) at the detected faces at `rows`, whose first
    looks are `first`; cached at `out` while it holds the same paths and chip recipe."""
    paths = detected["paths"][rows]
    key = f"{verifier.chip_recipe}:second"
    if out.exists():
        z = np.load(out)
        if np.array_equal(z["paths"], paths) and str(z["recipe"]) == key:
            return z["second"]
    import cv2
    from ..types import Face
    vecs = []
    for n, i in enumerate(rows):
        img = cv2.imread(str(data / detected["paths"][i]))
        face = Face(box=tuple(float(v) for v in detected["boxes"][i]), score=1.0, landmarks=detected["landmarks"][i])
        vecs.append(verifier.second_look(img, face, first[n]))
        if progress and n % 200 == 0:
            print(f"second_vectors: {n}/{len(rows)}", flush=True)
    result = np.array(vecs, np.float32).reshape(-1, verifier.dim)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, paths=paths, recipe=np.array(key), second=result)
    tmp.replace(out)
    return result


def fit_unsure(first: dict, mirrored: dict) -> tuple[float, float]:
    """(unsure_lead, unsure_score) from fewshot_judgements of the same classes on the plain descriptions
    of the faces and on their mirrored ones (2 x second look - plain): own faces' score, and the lead
    of the best other member over it, as far as mirroring moves them."""
    a, b = first["own"], mirrored["own"]
    d_score = b["v_own"] - a["v_own"]
    d_lead = (b["v_other"] - b["v_own"]) - (a["v_other"] - a["v_own"])
    return _band(d_lead), _band(d_score)


def _band(change: np.ndarray) -> float:
    """Z sigma of a noise whose changes between two descriptions are `change`."""
    return float(Z * MEDIAN_TO_SIGMA * np.median(np.abs(change)))


def verdict_codes(v_own: np.ndarray, v_other: np.ndarray, t_verify: float, margin: float,
                  unsure_lead: float | None = None, unsure_score: float | None = None) -> np.ndarray:
    """decide_verifier's verdict from the named student's score and the best other's: 0 verified,
    1 mismatch, 2 unknown_face, 3 unjudged (within the unsure band)."""
    lead = v_other - v_own
    if unsure_lead is None:
        ahead = lead >= margin
        return np.where(ahead & (v_other >= t_verify), 1, np.where((v_own >= t_verify) & ~ahead, 0, 2))
    mis = (lead >= max(margin, unsure_lead)) & (v_other >= t_verify)
    ver = ~mis & (v_own >= t_verify) & (lead < 0)
    unk = ~mis & ~ver & (v_own < t_verify - (unsure_score or 0.0)) & (v_other < t_verify)
    return np.where(mis, 1, np.where(ver, 0, np.where(unk, 2, 3)))


def with_second_look(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """decide.cascade's second look on verdict codes: an accusation (1, 2) stands only where the second
    look accuses too (its code), else unjudged (3); other verdicts are the first look's."""
    accused = np.isin(first, (1, 2))
    return np.where(accused, np.where(np.isin(second, (1, 2)), second, 3), first)
