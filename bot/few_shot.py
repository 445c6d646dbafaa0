"""The few-shot protocol of `rollcall evaluate DIR --enroll K [--draws N]` (see bot/evaluate.py's
docstring): K photos with a face per identity enrolled at random, every other photo judged by the bot's
cascade under its own name and under every other identity's, pooled over N seeded draws."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .config import FaceSettings
from .decide import (Gallery, Thresholds, VerifierGallery, cascade, cascade_identify, gate, hold_back,
                     wants_second_look)
from .embed import Embedder
from .evaluate import (DlibPeer, EmbedsFaces, EvaluateError, Vectors, identity_scores, list_photos, peer_one,
                       per_identity, rounded, tar_at_far)
from .faces import FaceDetector, find_faces
from .types import Face, VerdictKind

RATES = (VerdictKind.VERIFIED, VerdictKind.MISMATCH, VerdictKind.UNKNOWN_FACE, VerdictKind.UNJUDGED)


@dataclass
class Photos:
    """Per photo, what the cascade needs: both models' vectors of our largest face (the verifier's ms
    apart, it runs only where MobileNetV2 leaves doubt), the face's gates, and the peer's result."""
    ours: Vectors
    verifier: Vectors
    blur: np.ndarray      # (N,) nan where no face
    in_view: np.ndarray   # (N,)
    peer: Vectors | None = None
    # the verifier's vectors of the photos enrolled in some draw, by its enrolment recipe where that is
    # not its run-time one (verify.Verifier.enrol_differs); None: `verifier` serves both
    enrolled: Vectors | None = None
    # the verifier's second look at each face (Verifier.second_look), taken where its first accuses;
    # None: no second looks (a verifier without them)
    second: Vectors | None = None
    # per photo, how many of its faces pass the bot's gates (decide.gate): two or more are a tile's
    # `multiple_faces`, never judged; None: one each
    judged: np.ndarray | None = None


def collect_cascade(paths: list[Path], detector: FaceDetector, embedder: EmbedsFaces, verifier,
                    peer: DlibPeer | None = None, tick: Callable[[], None] = lambda: None,
                    faces: FaceSettings | None = None) -> Photos:
    """Detect and embed every photo once with each model: ours (detection + alignment + MobileNetV2)
    and the verifier (bot/verify.py) on the face the bot would judge in a tile showing the photo (the
    one face passing its gates; the largest where none or several do), and the peer on its own when
    given."""
    fs = faces or FaceSettings()
    n = len(paths)
    judged = np.zeros(n, np.int64)
    ours = Vectors.empty(n, getattr(embedder, "dim", None) or 0)
    ver = Vectors.empty(n, verifier.dim)
    second = Vectors.empty(n, verifier.dim) if hasattr(verifier, "second_look") else None
    blur, view = np.full(n, np.nan), np.full(n, np.nan)
    got = Vectors.empty(n, 128) if peer else None
    first = True
    for i, path in enumerate(paths):
        img = cv2.imread(str(path))
        if img is not None:
            t0 = time.perf_counter()
            found = find_faces(detector, img)
            if found:
                passing = [f for f in found if not gate(f, fs)]
                judged[i] = len(passing)
                face = passing[0] if len(passing) == 1 else found[0]
                vec = embedder.embed(face.aligned[None])[0]
                t1 = time.perf_counter()
                if first:  # the vectors' size is the model's: known once it has run
                    ours, first = Vectors.empty(n, len(vec)), False
                ours.put(i, vec, face.box[2], (t1 - t0) * 1000.0)
                t1 = time.perf_counter()
                ver.put(i, verifier.describe(img, face), face.box[2], (time.perf_counter() - t1) * 1000.0)
                if second is not None:  # asked for by some judgement of most photos under every name
                    t1 = time.perf_counter()
                    second.put(i, verifier.second_look(img, face, ver.vecs[i]), face.box[2],
                               (time.perf_counter() - t1) * 1000.0)
                blur[i], view[i] = face.blur, face.in_view
            if peer:
                r = peer_one(peer, img)
                if r is not None:
                    got.put(i, *r)
        tick()
    return Photos(ours, ver, blur, view, got, second=second, judged=judged)


def describe_enrolled(paths: list[Path], rows: np.ndarray, detector: FaceDetector, verifier,
                      tick: Callable[[], None] = lambda: None) -> Vectors:
    """The verifier's vectors of our largest face in the photos at `rows` by its enrolment recipe
    (Verifier.describe(..., enrol=True)), as bot/enroll.py makes them; the other rows are left empty."""
    out = Vectors.empty(len(paths), verifier.dim)
    for i in rows:
        img = cv2.imread(str(paths[i]))
        faces = find_faces(detector, img) if img is not None else []
        if faces:
            t0 = time.perf_counter()
            out.put(i, verifier.describe(img, faces[0], enrol=True), faces[0].box[2],
                    (time.perf_counter() - t0) * 1000.0)
        tick()
    return out


def draw_enrolled(labels: np.ndarray, usable: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Mask of the photos enrolled in draw `seed`: k photos drawn at random among each identity's
    usable ones (a face found), all of them where it has fewer."""
    enrolled = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        idx = np.flatnonzero((labels == c) & usable)
        pick = np.random.default_rng([seed, int(c)]).permutation(len(idx))[:k]
        enrolled[idx[pick]] = True
    return enrolled


def _judged(verdict, face: Face, fs: FaceSettings, judged: int = 1) -> VerdictKind:
    """The verdict the bot would record: a tile of two faces or more passing the gates is
    `multiple_faces` (counted here as unjudged: no verdict on anyone), then the gates, then a partly
    hidden face never accused."""
    if judged >= 2 or gate(face, fs):
        return VerdictKind.UNJUDGED
    return hold_back(verdict, face, fs).verdict


class _Tally:
    """What score_enrolled pools over the draws: per probe, the truth and the predictions; per judged
    face, its verdicts, whether the verifier ran and the cascade's ms; the verifier's and the peer's
    genuine and impostor scores."""

    def __init__(self):
        self.truth, self.preds, self.peer_preds, self.ran, self.ms = [], [], [], [], []
        self.gen, self.imp, self.pgen, self.pimp = [], [], [], []
        self.own, self.other = dict.fromkeys(RATES, 0), dict.fromkeys(RATES, 0)
        self.found = self.peer_found = self.n_probes = 0


def score_enrolled(names: list[str], labels: np.ndarray, photos: Photos, th: Thresholds, k: int, draws: int,
                   faces: FaceSettings | None = None) -> tuple[dict, dict | None]:
    """The --enroll figures from the collected vectors (pure numpy): identification by the cascade,
    verdict rates under the photo's own name and under every other identity's, the verifier's share
    and the cascade's ms, TAR at FAR on the verifier's scores; the peer beside it (top_k nearest by
    Euclidean distance, as face_recognition is used). Counts are pooled over the draws."""
    if th.verifier is None:
        raise EvaluateError("thresholds: no \"verifier\" in thresholds.json (python -m bot.train calibrate-verifier)")
    fs = faces or FaceSettings()
    t = _Tally()
    for d in range(draws):
        enrolled = draw_enrolled(labels, photos.ours.ok, k, d)
        probes = np.flatnonzero(~enrolled)
        t.n_probes += len(probes)
        t.preds.append(_cascade_draw(t, names, labels, photos, th, fs, enrolled, probes))
        t.truth.append(labels[probes])
        if photos.peer is not None:
            t.peer_preds.append(_peer_draw(t, labels, photos.peer, th, enrolled, probes))
    return _figures(t, names, photos)


def _probe_face(photos: Photos, i: int) -> Face:
    """The face of photo `i` as the gates see it: its width, blur and share in view."""
    px = float(photos.ours.face_px[i])
    return Face(box=(0.0, 0.0, px, px), score=1.0, landmarks=np.zeros((6, 2), np.float32),
                blur=float(photos.blur[i]), in_view=float(photos.in_view[i]))


def _cascade_draw(t: _Tally, names: list[str], labels: np.ndarray, photos: Photos, th: Thresholds,
                  fs: FaceSettings, enrolled: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """One draw judged by the cascade: each probe with a face identified, judged under its own name and
    every other enrolled identity's (tallied in `t`); returns the identity predicted per probe (-1: none)."""
    ours, ver = photos.ours, photos.verifier
    venrol = photos.enrolled if photos.enrolled is not None else ver
    ids = np.array(names)
    gallery = Gallery.from_embeddings(ids[labels[enrolled]], ours.vecs[enrolled], th.top_k, th.head)
    vgallery = VerifierGallery.from_embeddings(ids[labels[enrolled]], venrol.vecs[enrolled], th.verifier.nearest)
    seen = probes[ours.ok[probes]]
    t.found += len(seen)
    sims, rank = gallery.rank(ours.vecs[seen]) if len(seen) else (None, None)
    vs = vgallery.scores(ver.vecs[seen]) if len(seen) else None
    col_of = {sid: n for n, sid in enumerate(vgallery.student_ids)}
    enrolled_ids = np.unique(labels[enrolled])
    pred = np.full(len(probes), -1)
    for n, i in enumerate(seen):
        sc, vsc = (sims[n], rank[n]), vs[n]
        looked = photos.second is not None and photos.second.ok[i]
        who, _ = cascade_identify(ours.vecs[i], gallery, th, ver.vecs[i], vgallery, sc, vsc,
                                  photos.second.vecs[i] if looked else None)
        pred[np.searchsorted(probes, i)] = names.index(who) if who is not None else -1
        face = _probe_face(photos, i)
        judge = _judge_with(photos, i, gallery, th, vgallery, sc, vsc)
        j, looked_again = judge(names[labels[i]])
        n_judged = 1 if photos.judged is None else int(photos.judged[i])
        t.own[_judged(j.verdict, face, fs, n_judged)] += 1
        t.ran.append(j.model == "verifier")
        t.ms.append(ours.ms[i] + (ver.ms[i] if j.model == "verifier" else 0.0)
                    + (photos.second.ms[i] if looked_again else 0.0))
        for c in enrolled_ids:
            if c != labels[i]:
                t.other[_judged(judge(names[c])[0].verdict, face, fs, n_judged)] += 1
        col = col_of.get(names[labels[i]])
        if col is not None:
            t.gen.append(vsc[col])
            t.imp.extend(np.delete(vsc, col).tolist())
    return pred


def _judge_with(photos: Photos, i: int, gallery: Gallery, th: Thresholds, vgallery: VerifierGallery,
                sc: tuple, vsc: np.ndarray) -> Callable[[str], tuple]:
    """Photo i's judge under a name, as bot/identity.py judges a face: the cascade, and where the
    verifier accuses, again with its second look. Returns (judgement, whether it looked again)."""
    ours, ver, second = photos.ours, photos.verifier, photos.second

    def judge(name: str):
        j = cascade(name, ours.vecs[i], gallery, th, ver.vecs[i], vgallery, sc, vsc)
        if second is None or not second.ok[i] or not wants_second_look(j):
            return j, False
        return cascade(name, ours.vecs[i], gallery, th, ver.vecs[i], vgallery, sc, vsc, second=second.vecs[i]), True
    return judge


def _peer_draw(t: _Tally, labels: np.ndarray, peer: Vectors, th: Thresholds, enrolled: np.ndarray,
               probes: np.ndarray) -> np.ndarray:
    """One draw for the peer: each probe it found a face in identified by its own metric (its scores
    tallied in `t`); returns the identity predicted per probe (-1: none)."""
    pe = enrolled & peer.ok
    pseen = probes[peer.ok[probes]]
    t.peer_found += len(pseen)
    pp = np.full(len(probes), -1)
    if len(pseen) and pe.any():
        pid, s = identity_scores(peer.vecs[pseen], labels[pe], peer.vecs[pe], DlibPeer.metric, th.top_k)
        pp[np.searchsorted(probes, pseen)] = pid[np.argmax(s, axis=1)]
        for n, i in enumerate(pseen):
            hit = pid == labels[i]
            t.pgen.extend(s[n][hit].tolist())
            t.pimp.extend(s[n][~hit].tolist())
    return pp


def _figures(t: _Tally, names: list[str], photos: Photos) -> tuple[dict, dict | None]:
    """Our figures and the peer's (None without it) from what the draws tallied."""
    truth, preds = np.concatenate(t.truth), np.concatenate(t.preds)
    n_own, n_other = max(1, sum(t.own.values())), max(1, sum(t.other.values()))
    result = {"faces_found": t.found / max(1, t.n_probes),
              "identification_accuracy": float((preds == truth).mean()) if len(truth) else 0.0,
              "per_student": per_identity(truth, preds, names),
              "tar_at_far": tar_at_far(np.array(t.gen), np.array(t.imp)),
              "ms_per_face": float(np.mean(t.ms)) if t.ms else None,
              "verifier_share": float(np.mean(t.ran)) if t.ran else 0.0,
              "own_face": {r: t.own[r] / n_own for r in RATES},
              "other_face": {r: t.other[r] / n_other for r in RATES}}
    peer = None
    if photos.peer is not None:
        pp = np.concatenate(t.peer_preds)
        pms = photos.peer.ms[photos.peer.ok]
        peer = {"name": DlibPeer.name, "faces_found": t.peer_found / max(1, t.n_probes),
                "identification_accuracy": float((pp == truth).mean()) if len(truth) else 0.0,
                "tar_at_far": tar_at_far(np.array(t.pgen), np.array(t.pimp)),
                "ms_per_face": float(np.median(pms)) if len(pms) else None}
    return result, peer


def evaluate_enrolled(photos_dir: Path, k: int, th: Thresholds, model_path: Path | None = None, draws: int = 5,
                      peer: bool = False, tick: Callable[[], None] = lambda: None,
                      detector: FaceDetector | None = None, embedder: EmbedsFaces | None = None,
                      verifier=None, faces: FaceSettings | None = None) -> dict:
    """`rollcall evaluate DIR --enroll K [--draws N]`: the Evaluate JSON of DESIGN.md for the few-shot
    protocol (score_enrolled), each photo detected and described once per model. `verifier` replaces
    bot/verify.py's (loaded here otherwise: VerifierError when dlib is missing); th must hold the
    verifier's rule (thresholds.json "verifier")."""
    if k < 1:
        raise EvaluateError(f"--enroll: needs at least 1 enrolled photo per identity, got {k}")
    if draws < 1:
        raise EvaluateError(f"--draws: needs at least 1 draw, got {draws}")
    if th.verifier is None:
        raise EvaluateError("thresholds: no \"verifier\" in thresholds.json (python -m bot.train calibrate-verifier)")
    names, paths, labels = list_photos(photos_dir)
    counts = np.bincount(labels)
    if (counts <= k).any():
        short = names[int(np.argmin(counts))]
        raise EvaluateError(f"--enroll: {short} has {int(counts.min())} photos; enrolling {k} leaves none to probe")
    if embedder is None:
        if model_path is None:
            raise EvaluateError("model: no face model given")
        embedder = Embedder(model_path)
    if verifier is None:
        from .verify import Verifier
        verifier = Verifier.load()
    dlib_peer = DlibPeer.load() if peer else None
    detector = detector or FaceDetector()
    photos = collect_cascade(paths, detector, embedder, verifier, dlib_peer, tick, faces)
    if getattr(verifier, "enrol_differs", False):
        # an enrolled photo is described as `rollcall enroll` describes it: only those some draw enrols
        rows = np.flatnonzero(np.any([draw_enrolled(labels, photos.ours.ok, k, d) for d in range(draws)], axis=0))
        photos.enrolled = describe_enrolled(paths, rows, detector, verifier)
    mine, theirs = score_enrolled(names, labels, photos, th, k, draws, faces)
    result = {"dir": Path(photos_dir).name, "identities": len(names), "photos": len(paths), "enroll": k,
              "draws": draws}
    result.update(rounded(mine))
    result["peer"] = rounded(theirs) if theirs is not None else None
    return result
