"""The face model's accuracy harness: `rollcall evaluate DIR [--folds K] [--json] [--peer]`.

DIR holds one folder of photos per identity (DIR/<Name>/*.jpg). Every photo is read, its faces are
detected once and the largest face is embedded once; the folds are then played on the cached vectors:

* folds split the photos of each identity (seeded, deterministic); for each fold the other K-1 folds
  are enrolled and every held-out photo is identified as the best-scoring identity (closed set), scored
  by the bot's own rule (decide.Gallery, `top_k` from thresholds.json: the mean of the k nearest
  enrolled photos, or with 0 one prototype per identity; and where thresholds.json has a "head", the
  class head fitted on the enrolled folds, as the bot fits it on a class). A photo in which no face was found (or that
  cannot be read) counts as wrong. Per-identity precision and recall follow.
* verification: the true accept rate at a false accept rate of 1% and 0.1%, over every pair of photos
  with a face (genuine: same identity; impostor: different identities), scored by cosine similarity.
* --enroll K (bot/few_shot.py): the few-shot protocol. K photos with a face per identity are enrolled,
  drawn at random (N draws, seeds 0..N-1), and every other photo is a probe judged by the bot's cascade
  (decide.cascade: MobileNetV2's `verified` where beyond doubt, the verifier everywhere else): identified
  (decide.cascade_identify), judged under its own name (`own_face`) and under every other identity's
  (`other_face`), the gates (decide.gate, hold_back) applied as the bot applies them. Each photo is
  detected and described once per model (few_shot.collect_cascade), whatever the number of draws; where the
  verifier describes an enrolled photo otherwise than a run-time face (verify.Verifier's enrolment
  recipe), the photos some draw enrols are described that way too (few_shot.describe_enrolled), as `rollcall
  enroll` would.
* ms_per_face: the MEDIAN over photos with a face of detection + alignment + embedding of the largest
  face, measured on the photo as identified (the shrunk probe with shrink_px), image decoding excluded.

No enrollment gates (size, blur, second face) apply here: the harness measures the model, not the gates.

`shrink_px` renders every probe (held-out) photo shrunk so that its face is that many pixels wide and
re-encoded as JPEG quality 40 (a face in a crowded gallery, through a video codec), while enrollment uses
the full-size photos; verification then pairs shrunk probes against full-size photos.

The peer is dlib's ResNet exactly as the `face_recognition` package runs it (DlibPeer below), on the same
photos, folds, scoring rule (the class head aside) and metrics; it keeps its own metric (Euclidean distance on the raw 128-d
vectors, a prototype being the plain mean), as a face_recognition user would.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import cv2
import numpy as np

from .decide import Gallery, HeadRule, top_k_scores
from .embed import Embedder
from .errors import RollcallError
from .faces import FaceDetector, find_faces
from .sources import IMAGE_SUFFIXES

FARS = (0.01, 0.001)
SHRINK_JPEG_QUALITY = 40


class EvaluateError(RollcallError, ValueError):
    """DIR or an option is unusable; str() names it."""


class EmbedsFaces(Protocol):
    def embed(self, faces: np.ndarray) -> np.ndarray: ...


# ---------------------------------------------------------------- photos in
def list_photos(photos_dir: Path) -> tuple[list[str], list[Path], np.ndarray]:
    """(identity names, photo paths, identity index per photo), both in name order.

    The progress callback of evaluate() is called once per photo: len(paths) is its total.
    """
    photos_dir = Path(photos_dir)
    if not photos_dir.is_dir():
        raise EvaluateError(f"{photos_dir}: not a folder of identity folders (DIR/<Name>/*.jpg)")
    names, paths, labels = [], [], []
    for folder in sorted(p for p in photos_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        photos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not photos:
            continue
        names.append(folder.name)
        paths += photos
        labels += [len(names) - 1] * len(photos)
    if len(names) < 2:
        raise EvaluateError(f"{photos_dir}: needs photo folders of at least two identities, found {len(names)}")
    return names, paths, np.array(labels, dtype=np.int64)


def shrink_probe(image_bgr: np.ndarray, face_width: float, shrink_px: int,
                 quality: int = SHRINK_JPEG_QUALITY) -> np.ndarray:
    """The photo scaled so its face is `shrink_px` wide, through JPEG at `quality`.

    A face already narrower than shrink_px is not enlarged (that would invent detail); it still goes
    through the JPEG step.
    """
    scale = min(1.0, shrink_px / max(face_width, 1.0))
    h, w = image_bgr.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else image_bgr
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


# ---------------------------------------------------------------- the peer: dlib as face_recognition runs it
class DlibPeer:
    """dlib's HOG detector (upsampled once), 5-point predictor and ResNet encoder (no jitter): exactly
    face_recognition.face_locations + face_encodings with their defaults."""

    name = "face_recognition"
    metric = "euclidean"

    def __init__(self):
        import dlib
        import face_recognition_models as frm
        self._detector = dlib.get_frontal_face_detector()
        self._pose = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._encoder = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    @classmethod
    def load(cls) -> "DlibPeer | None":
        """The peer, or None when dlib or face_recognition_models is not installed."""
        try:
            return cls()
        except ImportError:
            return None

    def detect(self, rgb: np.ndarray) -> list:
        """dlib rectangles, largest first."""
        return sorted(self._detector(rgb, 1), key=lambda r: -r.width() * r.height())

    def encode(self, rgb: np.ndarray, rect) -> np.ndarray:
        shape = self._pose(rgb, rect)
        return np.array(self._encoder.compute_face_descriptor(rgb, shape, 1), dtype=np.float32)

    def detect_and_encode(self, image_bgr: np.ndarray, largest_only: bool = False
                          ) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
        """[(box x, y, w, h; 128-d vector)] for the faces in a BGR image, largest first."""
        rgb = np.ascontiguousarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
        rects = self.detect(rgb)[:1] if largest_only else self.detect(rgb)
        return [((r.left(), r.top(), r.width(), r.height()), self.encode(rgb, r)) for r in rects]


# ---------------------------------------------------------------- one system's vectors
@dataclass
class Vectors:
    """One system's result per photo: a vector where a face was found (ok), its face width, its time."""
    vecs: np.ndarray       # (N, D), zeros where not ok
    ok: np.ndarray         # (N,) bool
    face_px: np.ndarray    # (N,) detected face width in px, nan where not ok
    ms: np.ndarray         # (N,) detection + alignment + embedding, nan where not ok

    @classmethod
    def empty(cls, n: int, dim: int) -> "Vectors":
        return cls(np.zeros((n, dim), np.float32), np.zeros(n, bool), np.full(n, np.nan), np.full(n, np.nan))

    def put(self, i: int, vec: np.ndarray, face_px: float, ms: float) -> None:
        self.vecs[i], self.ok[i], self.face_px[i], self.ms[i] = vec, True, face_px, ms


def ours_one(detector: FaceDetector, embedder: EmbedsFaces, image_bgr: np.ndarray):
    """(vector, face width, ms) of the largest face, or None when no face is found."""
    t0 = time.perf_counter()
    faces = find_faces(detector, image_bgr)
    if not faces:
        return None
    vec = embedder.embed(faces[0].aligned[None])[0]
    return vec, faces[0].box[2], (time.perf_counter() - t0) * 1000.0


def peer_one(peer: DlibPeer, image_bgr: np.ndarray):
    t0 = time.perf_counter()
    found = peer.detect_and_encode(image_bgr, largest_only=True)
    if not found:
        return None
    box, vec = found[0]
    return vec, float(box[2]), (time.perf_counter() - t0) * 1000.0


# ---------------------------------------------------------------- scoring (pure numpy)
def make_folds(labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fold index per photo: each identity's photos shuffled (seeded by seed and identity, so adding an
    identity leaves the others' folds alone) and dealt round-robin into k folds."""
    labels = np.asarray(labels)
    folds = np.zeros(len(labels), np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        perm = np.random.default_rng([seed, int(c)]).permutation(len(idx))
        folds[idx[perm]] = np.arange(len(idx)) % k
    return folds


def score_matrix(a: np.ndarray, b: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Higher = more alike: cosine similarity of unit vectors, or minus the Euclidean distance."""
    if metric == "cosine":
        return a @ b.T
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return -np.sqrt(np.maximum(d2, 0.0))


def _prototypes(labels: np.ndarray, vecs: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    if metric == "cosine":
        g = Gallery.from_embeddings(labels, vecs)
        return np.array(g.student_ids, np.int64), g.prototypes
    ids = np.unique(labels)
    return ids, np.stack([vecs[labels == c].mean(0) for c in ids]) if len(ids) else vecs[:0]


def identity_scores(probes: np.ndarray, labels: np.ndarray, vecs: np.ndarray, metric: str = "cosine",
                    top_k: int = 0, head: HeadRule | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(identities, probe x identity ranking scores) against the enrolled vecs, by decide.Gallery's
    rule: with `head` (cosine, top_k >= 1, 3+ identities), the class head fitted on these vecs."""
    if top_k <= 0:
        ids, protos = _prototypes(labels, vecs, metric)
        return ids, score_matrix(probes, protos, metric)
    if metric == "cosine":
        g = Gallery.from_embeddings(labels, vecs, top_k, head)
        return np.array(g.student_ids), g.rank(probes)[1]
    ids, owner = np.unique(labels, return_inverse=True)
    return ids, top_k_scores(score_matrix(probes, vecs, metric), owner, len(ids), top_k)


def identify_folds(labels: np.ndarray, folds: np.ndarray, enroll: Vectors, probe: Vectors,
                   metric: str = "cosine", top_k: int = 0, head: HeadRule | None = None) -> np.ndarray:
    """Predicted identity per photo when its fold is held out; -1 where the probe has no face."""
    preds = np.full(len(labels), -1, np.int64)
    for f in np.unique(folds):
        train = (folds != f) & enroll.ok
        test = np.flatnonzero((folds == f) & probe.ok)
        if not len(test) or not train.any():
            continue
        ids, s = identity_scores(probe.vecs[test], labels[train], enroll.vecs[train], metric, top_k, head)
        preds[test] = ids[np.argmax(s, axis=1)]
    return preds


def per_identity(labels: np.ndarray, preds: np.ndarray, names: list[str]) -> dict:
    """{name: {n, precision, recall}}; precision is 0.0 for an identity nobody was identified as."""
    out = {}
    for c, name in enumerate(names):
        n = int((labels == c).sum())
        said = preds == c
        hits = int((said & (labels == c)).sum())
        out[name] = {"n": n, "precision": hits / said.sum() if said.any() else 0.0,
                     "recall": hits / n if n else 0.0}
    return out


def pair_scores(labels: np.ndarray, a: Vectors, b: Vectors | None = None,
                metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) scores. Without b: every unordered pair of photos with a face in a. With b
    (the full-size photos, a being the shrunk probes): every probe against every other photo of b."""
    ia = np.flatnonzero(a.ok)
    if b is None:
        s = score_matrix(a.vecs[ia], a.vecs[ia], metric)
        keep = np.triu(np.ones_like(s, bool), k=1)
        same = labels[ia][:, None] == labels[ia][None, :]
    else:
        ib = np.flatnonzero(b.ok)
        s = score_matrix(a.vecs[ia], b.vecs[ib], metric)
        keep = ia[:, None] != ib[None, :]
        same = labels[ia][:, None] == labels[ib][None, :]
    return s[keep & same], s[keep & ~same]


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, fars=FARS) -> dict[str, float | None]:
    """True accept rate at each false accept rate.

    The threshold is the (k+1)-th highest impostor score with k = floor(far * impostors); a pair is
    accepted when its score is strictly above it, so at most k impostors (<= far) pass. None where
    there are no genuine or no impostor pairs.
    """
    out: dict[str, float | None] = {}
    imp = np.sort(np.asarray(impostor, np.float64))[::-1]
    gen = np.asarray(genuine, np.float64)
    for far in fars:
        if not len(imp) or not len(gen):
            out[str(far)] = None
            continue
        k = int(np.floor(far * len(imp) + 1e-9))
        threshold = imp[min(k, len(imp) - 1)]
        out[str(far)] = float((gen > threshold).mean())
    return out


def scores(labels: np.ndarray, names: list[str], folds: np.ndarray, enroll: Vectors,
           probe: Vectors | None = None, metric: str = "cosine", top_k: int = 0,
           head: HeadRule | None = None) -> dict:
    """faces_found, identification_accuracy, per_student, tar_at_far, ms_per_face for one system.

    probe defaults to enroll (no shrinking). faces_found and ms are those of the probes.
    """
    shrunk = probe is not None
    probe = enroll if probe is None else probe
    preds = identify_folds(labels, folds, enroll, probe, metric, top_k, head)
    gen, imp = pair_scores(labels, probe, enroll if shrunk else None, metric)
    ms = probe.ms[probe.ok]
    return {"faces_found": float(probe.ok.mean()) if len(labels) else 0.0,
            "identification_accuracy": float((preds == labels).mean()) if len(labels) else 0.0,
            "per_student": per_identity(labels, preds, names),
            "tar_at_far": tar_at_far(gen, imp),
            "ms_per_face": float(np.median(ms)) if len(ms) else None}


# ---------------------------------------------------------------- the harness
def collect(paths: list[Path], detector: FaceDetector, embedder: EmbedsFaces, peer: DlibPeer | None = None,
            shrink_sizes: tuple[int, ...] = (), tick: Callable[[], None] = lambda: None) -> dict[str, Vectors]:
    """Detect and embed every photo once, and each shrunk probe once: {"ours", "peer", "ours@56",
    "peer@56", ...}, the peer and probe entries only when asked for.

    The shrink factor comes from our detector's face width (the peer's when ours found none), so both
    systems see the very same probe image; a photo where neither found a face has no probe face.
    """
    n = len(paths)
    systems = ["ours"] + (["peer"] if peer else [])
    dims = {"ours": getattr(embedder, "dim", None) or 0, "peer": 128}
    out = {key: None for s in systems for key in [s] + [f"{s}@{px}" for px in shrink_sizes]}

    def run(system: str, img: np.ndarray):
        return ours_one(detector, embedder, img) if system == "ours" else peer_one(peer, img)

    def keep(key: str, i: int, r) -> None:
        if r is None:
            return
        if out[key] is None:
            out[key] = Vectors.empty(n, len(r[0]))
        out[key].put(i, *r)

    for i, path in enumerate(paths):
        img = cv2.imread(str(path))
        if img is not None:
            full = {s: run(s, img) for s in systems}
            for s, r in full.items():
                keep(s, i, r)
            width = next((r[1] for r in full.values() if r is not None), None)
            for px in shrink_sizes if width is not None else ():
                small = shrink_probe(img, width, px)
                for s in systems:
                    keep(f"{s}@{px}", i, run(s, small))
        tick()
    # a system that never found a face still gets its (empty) row of results
    return {key: v if v is not None else Vectors.empty(n, dims[key.split("@")[0]]) for key, v in out.items()}


def _setup(photos_dir: Path, model_path: Path | None, folds: int, sizes: tuple[int, ...],
           embedder: EmbedsFaces | None, detector: FaceDetector | None):
    if folds < 2:
        raise EvaluateError(f"--folds: needs at least 2 folds, got {folds}")
    for px in sizes:
        if px < 8:
            raise EvaluateError(f"shrink_px: a face must be at least 8 px wide, got {px}")
    names, paths, labels = list_photos(photos_dir)
    if embedder is None:
        if model_path is None:
            raise EvaluateError("model: no face model given")
        embedder = Embedder(model_path)
    return names, paths, labels, embedder, detector or FaceDetector()


def _system(labels, names, fold_of, vec: dict[str, Vectors], system: str, px: int | None, top_k: int,
            head: HeadRule | None) -> dict:
    # the class head is ours: the peer is scored as face_recognition is used, by distance alone
    metric = DlibPeer.metric if system == "peer" else "cosine"
    probe = vec[f"{system}@{px}"] if px else None
    s = rounded(scores(labels, names, fold_of, vec[system], probe, metric, top_k,
                        head if system == "ours" else None))
    if system == "peer":
        s.pop("per_student")
        s = {"name": DlibPeer.name, **s}
    return s


def evaluate(photos_dir: Path, model_path: Path | None = None, folds: int = 5, peer: bool = False,
             shrink_px: int | None = None, seed: int = 0, tick: Callable[[], None] = lambda: None,
             detector: FaceDetector | None = None, embedder: EmbedsFaces | None = None, top_k: int = 0,
             head: HeadRule | None = None) -> dict:
    """The Evaluate JSON of DESIGN.md for DIR/<Name>/*; `tick()` is called once per photo.

    `embedder` (anything with .embed(N x 112 x 112 x 3 uint8) -> unit vectors) replaces the model at
    model_path; `detector` replaces the default BlazeFace. `top_k` is the scoring rule (decide.Gallery),
    the same for both systems; `head` (thresholds.json) adds the class head to ours. With shrink_px the dict also holds "shrink_px". `peer` is None unless
    asked for and dlib + face_recognition_models import.
    """
    sizes = (shrink_px,) if shrink_px is not None else ()
    names, paths, labels, embedder, detector = _setup(photos_dir, model_path, folds, sizes, embedder, detector)
    dlib_peer = DlibPeer.load() if peer else None
    vec = collect(paths, detector, embedder, dlib_peer, sizes, tick)
    fold_of = make_folds(labels, folds, seed)
    result = {"dir": Path(photos_dir).name, "identities": len(names), "photos": len(paths), "folds": folds}
    if shrink_px is not None:
        result["shrink_px"] = shrink_px
    result.update(_system(labels, names, fold_of, vec, "ours", shrink_px, top_k, head))
    result["peer"] = _system(labels, names, fold_of, vec, "peer", shrink_px, top_k, None) if dlib_peer else None
    return result


def by_face_size(photos_dir: Path, model_path: Path | None = None, sizes: tuple[int, ...] = (120, 80, 56, 40),
                 folds: int = 5, peer: bool = False, seed: int = 0, tick: Callable[[], None] = lambda: None,
                 detector: FaceDetector | None = None, embedder: EmbedsFaces | None = None,
                 top_k: int = 0, head: HeadRule | None = None) -> dict:
    """Identification by face size: evaluate(shrink_px=px) for every px in sizes, the full-size photos
    detected and embedded only once. {"dir", "identities", "photos", "folds", "full": {ours figures,
    "peer"}, "sizes": {"120": {ours figures, "peer"}, ...}}; per_student is left out."""
    sizes = tuple(sizes)
    names, paths, labels, embedder, detector = _setup(photos_dir, model_path, folds, sizes, embedder, detector)
    dlib_peer = DlibPeer.load() if peer else None
    vec = collect(paths, detector, embedder, dlib_peer, sizes, tick)
    fold_of = make_folds(labels, folds, seed)

    def row(px: int | None) -> dict:
        r = _system(labels, names, fold_of, vec, "ours", px, top_k, head)
        r.pop("per_student")
        r["peer"] = _system(labels, names, fold_of, vec, "peer", px, top_k, None) if dlib_peer else None
        return r

    return {"dir": Path(photos_dir).name, "identities": len(names), "photos": len(paths), "folds": folds,
            "full": row(None), "sizes": {str(px): row(px) for px in sizes}}


def rounded(d: dict) -> dict:
    """The figures of a result rounded for its JSON: ms to 0.1, every other float to 4 places."""
    out = {}
    for key, v in d.items():
        if isinstance(v, dict):
            out[key] = rounded(v)
        elif isinstance(v, float):
            out[key] = round(v, 1 if key == "ms_per_face" else 4)
        else:
            out[key] = v
    return out
