"""Embeddings + enrolled gallery -> one verdict per tile (the table in DESIGN.md)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import FaceSettings
from .errors import RollcallError
from .types import BAD, Face, Verdict, VerdictKind


class ThresholdError(RollcallError, ValueError):
    """thresholds.json is missing or malformed; str() names the file."""


@dataclass(frozen=True)
class DecideTuning:
    """decide's own tuning values, each with its reason (the verdicts' thresholds are calibrated:
    thresholds.json, Thresholds)."""
    min_students: int = 3  # students needed to fit the class head and standardise scores: fewer have no spread


DECIDE_TUNING = DecideTuning()


@dataclass(frozen=True)
class Thresholds:
    t_verify: float
    margin: float
    far: float | None = None
    top_k: int = 0  # the scoring rule the thresholds were calibrated for (Gallery)
    # mean similarity between one person's photos above which they look taken at one sitting (enroll
    # warns): few held-out identities' photos are that alike. None: the file predates it
    alike: float | None = None
    # the per-class head (Gallery): None where thresholds.json has no "head" (the nearest-faces rule alone)
    head: "HeadRule | None" = None
    # when the first view alone settles a face (settled): None, every face is embedded in every view
    quick: "QuickRule | None" = None
    # the strong verifier's decision and when MobileNetV2's own verdict stands (cascade): None, the
    # file predates the verifier and MobileNetV2 decides alone (decide)
    verifier: "VerifierRule | None" = None


@dataclass(frozen=True)
class HeadRule:
    """How the class head's scores join the nearest-faces scores, and the margin calibrated for the sum.

    lam: the ridge penalty; weight: the head's share of the sum; margin: how far another student's
    summed score must lead the expected one's to count as ahead (it replaces `margin`, which is in
    cosine units)."""
    lam: float
    weight: float
    margin: float


@dataclass(frozen=True)
class QuickRule:
    """When one view of a face settles its verdict, so the embedder's other views are not made.

    view: the view embedded first (bot/embed.py VIEWS); gap: how far the expected student's similarity
    must lead every other student's, and t_verify, on that view alone (settle_lead). Calibrated on
    held-out classes (bot/train/calibrate.py quick_gap): past the largest lead at which the other views still
    changed a verdict, with room."""
    view: str
    gap: float


@dataclass(frozen=True)
class VerifierRule:
    """The verifier's thresholds (bot/verify.py vectors) and MobileNetV2's lead beyond doubt.

    A student's verifier score is 1 - the mean Euclidean distance of the `nearest` enrolled vectors of
    theirs nearest the face (verifier_scores). t_verify: the score the expected student must reach;
    margin: how far another student's score must lead to be ahead (decide_verifier). lead: the
    settle_lead at which MobileNetV2's `verified` stands without the verifier (beyond_doubt).
    dispute: where MobileNetV2 verifies the face as the expected student (not beyond doubt) and the
    verifier would accuse, the accusation stands only as a mismatch whose other student leads the
    expected one by `dispute` or more; else the models disagree and the face is `unjudged` (None: no
    such rule, the verifier's accusation stands as it is).
    unsure_lead, unsure_score: how far a lead between two students, and a score, move when the same face
    is described again mirrored (1.96 sigma). With them, a mismatch needs another student ahead by
    `unsure_lead` (and margin), an unknown face a score `unsure_score` under t_verify, and `verified` the
    expected student first of all; a face between is `unjudged`, reason "verifier unsure" (None: no
    band, DESIGN.md's table as before).
    Calibrated on few-shot classes of held-out identities (bot/train/calibrate.py calibrate_verifier)."""
    t_verify: float
    margin: float
    nearest: int
    lead: float
    dispute: float | None = None
    unsure_lead: float | None = None
    unsure_score: float | None = None


def load_thresholds(path: Path, t_verify: float = -1.0, margin: float = -1.0) -> Thresholds:
    """The calibrated thresholds shipped with the model; a value >= 0 from settings overrides each
    (margin: the one in effect, the head's where the file has a head)."""
    try:
        data = json.loads(Path(path).read_text())
        t, m = float(data["t_verify"]), float(data["margin"])
        top_k = int(data.get("top_k", 0))
        alike = float(data["alike"]) if data.get("alike") is not None else None
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
        h = data.get("head")
        head = HeadRule(float(h["lambda"]), float(h["weight"]), float(h["margin"])) if h else None
        if head and head.lam <= 0:
            raise ValueError(f"head lambda must be > 0, got {head.lam}")
        q = data.get("quick")
        quick = QuickRule(str(q["view"]), float(q["gap"])) if q else None
        if quick and quick.gap <= 0:
            raise ValueError(f"quick gap must be > 0, got {quick.gap}")
        verifier = _verifier_rule(data.get("verifier"))
    except FileNotFoundError:
        raise ThresholdError(f"{path}: thresholds file not found") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ThresholdError(f"{path}: not a valid thresholds file ({e})") from None
    if head and margin != -1:
        head = HeadRule(head.lam, head.weight, margin)
    return Thresholds(t_verify=t if t_verify == -1 else t_verify, margin=m if margin == -1 else margin,
                      far=data.get("far"), top_k=top_k, alike=alike, head=head, quick=quick, verifier=verifier)


def _verifier_rule(v: dict | None) -> VerifierRule | None:
    """thresholds.json's "verifier" block; ValueError where a value is out of its range."""
    if not v:
        return None
    unsure = v.get("unsure") or {}
    optional = {"dispute": v.get("dispute"), "unsure_lead": unsure.get("lead"), "unsure_score": unsure.get("score")}
    rule = VerifierRule(float(v["t_verify"]), float(v["margin"]), int(v["nearest"]), float(v["lead"]),
                        **{k: float(x) for k, x in optional.items() if x is not None})
    if (rule.nearest < 1 or rule.margin < 0 or rule.lead <= 0
            or (rule.dispute is not None and rule.dispute < rule.margin)
            or any(x is not None and x < 0 for x in (rule.unsure_lead, rule.unsure_score))):
        raise ValueError(f"verifier needs nearest >= 1, margin >= 0, lead > 0, dispute >= margin, unsure >= 0, got {v}")
    return rule


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


def fit_head(vectors: np.ndarray, owner: np.ndarray, n_owners: int, lam: float) -> np.ndarray:
    """Ridge regression of the enrolled vectors onto +1 (their student) / -1 (everyone else), in its
    dual form: (N, n_owners) coefficients A with head scores = (probe . vectors) @ A. The dual needs
    only the N x N similarities of the enrolled photos (a class of 30 x 40 photos: ~0.1 s, once).

    A face near few of a student's photos still leans toward what sets that student apart from the
    rest of the class; the nearest-faces score alone sees only how near."""
    vectors = np.asarray(vectors, np.float64)
    y = -np.ones((len(vectors), n_owners))
    y[np.arange(len(vectors)), owner] = 1.0
    return np.linalg.solve(vectors @ vectors.T + lam * np.eye(len(vectors)), y).astype(np.float32)


def standardise(scores: np.ndarray) -> np.ndarray:
    """Each row to mean 0, spread 1 across the students (scores of two kinds become addable)."""
    scores = np.atleast_2d(scores)
    return (scores - scores.mean(1, keepdims=True)) / (scores.std(1, keepdims=True) + 1e-9)


def class_scores(sims: np.ndarray, owner: np.ndarray, n_owners: int, top_k: int, alpha: np.ndarray | None,
                 weight: float) -> tuple[np.ndarray, np.ndarray]:
    """(similarity, ranking) per probe and student from the probe-to-enrolled similarities (P, N):
    the mean of the top_k nearest (what t_verify is calibrated on), and what decides who is ahead:
    that similarity standardised plus `weight` x the head's scores standardised (alpha None, or
    fewer than DECIDE_TUNING.min_students students to standardise over: the similarity itself)."""
    sim = top_k_scores(sims, owner, n_owners, top_k)
    if alpha is None or n_owners < DECIDE_TUNING.min_students:
        return sim, sim
    return sim, standardise(sim) + weight * standardise(np.atleast_2d(sims) @ alpha)


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
    head: HeadRule | None = None
    alpha: np.ndarray | None = None    # (N, S) the head's dual coefficients (fit_head)

    @classmethod
    def from_embeddings(cls, student_ids: np.ndarray, vectors: np.ndarray, top_k: int = 0,
                        head: HeadRule | None = None) -> "Gallery":
        student_ids = np.asarray(student_ids)
        ids = sorted(set(student_ids.tolist())) if len(student_ids) else []
        protos = []
        for sid in ids:
            p = vectors[student_ids == sid].mean(0)
            protos.append(p / max(np.linalg.norm(p), 1e-12))
        dim = vectors.shape[1] if vectors.ndim == 2 else 0
        owner = np.searchsorted(np.array(ids), student_ids) if ids else np.zeros(0, np.int64)
        vectors = np.asarray(vectors, np.float32).reshape(len(student_ids), dim)
        use_head = head is not None and top_k > 0 and len(ids) >= DECIDE_TUNING.min_students
        alpha = fit_head(vectors, owner, len(ids), head.lam) if use_head else None
        return cls(ids, np.array(protos, np.float32).reshape(len(ids), dim), vectors, owner, top_k,
                   head if use_head else None, alpha)

    def similarities(self, emb: np.ndarray) -> np.ndarray:
        return self.scores(emb)[0]

    def scores(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(similarity, ranking) of one face against each student (rank)."""
        sim, rank = self.rank(np.asarray(emb)[None])
        return sim[0], rank[0]

    def rank(self, embs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(similarity, ranking), each (P, S), of P faces against each student (class_scores); with
        the prototype rule both are the cosine to the prototype."""
        embs = np.atleast_2d(embs)
        if not len(self.student_ids):
            empty = np.zeros((len(embs), 0), np.float32)
            return empty, empty
        if self.top_k <= 0 or self.vectors is None:
            sim = embs @ self.prototypes.T
            return sim, sim
        return class_scores(embs @ self.vectors.T, self.owner, len(self.student_ids), self.top_k,
                            self.alpha, self.head.weight if self.head else 0.0)

    def margin(self, th: "Thresholds") -> float:
        """The lead that makes another student ahead, in the units of the ranking."""
        return self.head.margin if self.alpha is not None else th.margin


def best_other(values: np.ndarray, k: int) -> int | None:
    """The index of the highest of `values` other than index k's; None when k's is the only one."""
    if len(values) < 2:
        return None
    j = int(np.argmax(np.delete(values, k)))
    return j + (j >= k)


def gate(face: Face, fs: FaceSettings) -> str:
    """Why a face cannot be judged ("" when it can): too small, too much of it outside the tile
    (faces.in_view), or too blurred to accuse anyone."""
    if face.box[2] < fs.min_face_px:
        return "small"
    if face.in_view < fs.min_in_view:
        return "cut"
    if face.blur < fs.blur_min:
        return "blur"
    return ""


def hold_back(verdict: Verdict, face: Face, fs: FaceSettings) -> Verdict:
    """A face partly outside its tile (in view under `flag_in_view`) may be verified but never accused:
    a `mismatch` or `unknown_face` of such a face becomes `unjudged` (reason "cut"), its scores kept.

    Alignment fills the missing part with edge pixels, and a cut face is taken for another student
    several times as often as a whole one (docs/how-it-decides.md, "Names, gates and MobileNetV2's own rule")."""
    if verdict.verdict not in BAD or face.in_view >= fs.flag_in_view:
        return verdict
    return dataclasses.replace(verdict, verdict=VerdictKind.UNJUDGED, identified_as=None, reason="cut")


def identify(emb: np.ndarray, gallery: Gallery, th: Thresholds) -> tuple[str | None, float]:
    """The student ranked first if their similarity passes t_verify, else None; with that similarity."""
    sims, rank = gallery.scores(emb)
    if not len(sims):
        return None, 0.0
    best = int(np.argmax(rank))
    return (gallery.student_ids[best] if sims[best] >= th.t_verify else None), float(sims[best])


def decide(expected: str | None, emb: np.ndarray, gallery: Gallery, th: Thresholds,
           scores: tuple[np.ndarray, np.ndarray] | None = None) -> Verdict:
    """Verdict for one judged face whose tile is labelled `expected` (None: the name did not resolve).

    Similarities (the cosine rule t_verify is calibrated on) say whether a face is someone known; the
    ranking (with the class head, gallery.scores) says who is ahead of whom, by gallery.margin.
    `scores`: gallery.scores(emb) when the caller has it already."""
    ids = gallery.student_ids
    if expected is None:
        who, sim = identify(emb, gallery, th)
        return Verdict(VerdictKind.UNLABELED, similarity=round(sim, 4), identified_as=who)
    if expected not in ids:
        # a roster student with no enrolled photo: we can only say whether the face is someone else's
        who, sim = identify(emb, gallery, th)
        if who is not None:
            return Verdict(VerdictKind.MISMATCH, similarity=None, identified_as=who, best_other=who,
                           best_other_similarity=round(sim, 4), reason="expected student not enrolled")
        return Verdict(VerdictKind.UNJUDGED, reason="not enrolled")
    sims, rank = gallery.scores(emb) if scores is None else scores
    k = ids.index(expected)
    s_exp = float(sims[k])
    j = best_other(rank, k)
    if j is not None:
        other_id, s_other, lead = ids[j], float(sims[j]), float(rank[j] - rank[k])
    else:
        other_id, s_other, lead = None, -1.0, -np.inf
    common = dict(similarity=round(s_exp, 4), best_other=other_id,
                  best_other_similarity=round(s_other, 4) if other_id else None)
    ahead = lead >= gallery.margin(th)
    if ahead and s_other >= th.t_verify:
        return Verdict(VerdictKind.MISMATCH, identified_as=other_id, **common)
    if s_exp >= th.t_verify and not ahead:
        return Verdict(VerdictKind.VERIFIED, identified_as=expected, **common)
    return Verdict(VerdictKind.UNKNOWN_FACE, identified_as=None, **common)


def settle_lead(expected: str | None, emb: np.ndarray, gallery: Gallery, th: Thresholds,
                scores: tuple[np.ndarray, np.ndarray] | None = None) -> float | None:
    """How far beyond doubt one view's vector `emb` verifies the face as `expected`: the lesser of the
    expected student's lead in similarity over every other student and over t_verify; None when it
    is not verified at all (a mismatch, an unknown face, no other student to be ahead of).
    `scores`: gallery.scores(emb) when the caller has it already."""
    ids = gallery.student_ids
    if expected not in ids or len(ids) < 2:
        return None
    if scores is None:
        scores = gallery.scores(emb)
    if decide(expected, emb, gallery, th, scores).verdict != VerdictKind.VERIFIED:
        return None
    sims = scores[0]
    k = ids.index(expected)
    return min(float(sims[k] - np.delete(sims, k).max()), float(sims[k]) - th.t_verify)


def settled(expected: str | None, emb: np.ndarray, gallery: Gallery, th: Thresholds,
            scores: tuple[np.ndarray, np.ndarray] | None = None) -> bool:
    """Whether one view's vector already verifies the face beyond what the other views could change:
    its settle_lead reaches th.quick's gap. Anything short of that is decided on every view."""
    if th.quick is None:
        return False
    lead = settle_lead(expected, emb, gallery, th, scores)
    return lead is not None and lead >= th.quick.gap


# ---------------------------------------------------------------- the cascade: MobileNetV2, then the verifier
def verifier_scores(vecs: np.ndarray, enrolled: np.ndarray, owner: np.ndarray, n_owners: int,
                    nearest: int) -> np.ndarray:
    """(P, n_owners) verifier scores: per owner, 1 - the mean Euclidean distance of the `nearest` of
    its enrolled vectors nearest each face (all of them when it has fewer); -inf for an owner with none.
    dlib's vectors are compared by distance, as dlib was trained; 1 - d puts it the way decide reads
    similarities (higher: more alike)."""
    vecs = np.atleast_2d(np.asarray(vecs, np.float32))
    enrolled = np.asarray(enrolled, np.float32).reshape(-1, vecs.shape[1])
    d2 = (vecs * vecs).sum(1)[:, None] + (enrolled * enrolled).sum(1)[None, :] - 2.0 * vecs @ enrolled.T
    return top_k_scores(1.0 - np.sqrt(np.maximum(d2, 0.0)), owner, n_owners, nearest)


@dataclass
class VerifierGallery:
    """The enrolled students' verifier vectors (bot/verify.py), every photo's kept."""
    student_ids: list[str]
    vectors: np.ndarray  # (N, 128)
    owner: np.ndarray    # (N,) index into student_ids
    nearest: int = 1

    @classmethod
    def from_embeddings(cls, student_ids: np.ndarray, vectors: np.ndarray, nearest: int = 1) -> "VerifierGallery":
        student_ids = np.asarray(student_ids)
        ids = sorted(set(student_ids.tolist())) if len(student_ids) else []
        owner = np.searchsorted(np.array(ids), student_ids) if ids else np.zeros(0, np.int64)
        vecs = np.asarray(vectors, np.float32)
        vecs = vecs.reshape(len(student_ids), -1) if vecs.size else np.zeros((0, 0), np.float32)
        return cls(ids, vecs, owner, nearest)

    def scores(self, vecs: np.ndarray) -> np.ndarray:
        """(P, S) verifier scores of P faces against each student."""
        vecs = np.atleast_2d(vecs)
        if not len(self.student_ids):
            return np.zeros((len(vecs), 0), np.float32)
        return verifier_scores(vecs, self.vectors, self.owner, len(self.student_ids), self.nearest)


UNSURE = "verifier unsure"  # the reason of a face within the verifier's own noise of a decision


def decide_verifier(expected: str | None, vvec: np.ndarray, vgallery: VerifierGallery, rule: VerifierRule,
                    scores: np.ndarray | None = None) -> Verdict:
    """DESIGN.md's verdict table on the verifier's scores alone (decide's rules, rule's thresholds).
    With the rule's unsure band (VerifierRule), another student just ahead, or a score just under
    t_verify, is `unjudged` (UNSURE): a mirrored description of the same face moves leads and scores
    that much; and a face is verified only as the student the verifier ranks first.
    `scores`: vgallery.scores(vvec)[0] when the caller has it already."""
    ids = vgallery.student_ids
    sims = vgallery.scores(vvec)[0] if scores is None else np.asarray(scores)
    best = int(np.argmax(sims)) if len(sims) else -1
    who = ids[best] if best >= 0 and sims[best] >= rule.t_verify else None
    top = round(float(sims[best]), 4) if best >= 0 else 0.0
    if expected is None:
        return Verdict(VerdictKind.UNLABELED, similarity=top, identified_as=who)
    if expected not in ids:
        if who is not None:
            return Verdict(VerdictKind.MISMATCH, similarity=None, identified_as=who, best_other=who,
                           best_other_similarity=top, reason="expected student not enrolled")
        return Verdict(VerdictKind.UNJUDGED, reason="not enrolled")
    k = ids.index(expected)
    s_exp = float(sims[k])
    j = best_other(sims, k)
    other_id, s_other = (ids[j], float(sims[j])) if j is not None else (None, -np.inf)
    common = dict(similarity=round(s_exp, 4), best_other=other_id,
                  best_other_similarity=round(s_other, 4) if other_id else None)
    lead, t = s_other - s_exp, rule.t_verify
    if rule.unsure_lead is None:  # no band: DESIGN.md's table as it stands
        if lead >= rule.margin and s_other >= t:
            return Verdict(VerdictKind.MISMATCH, identified_as=other_id, **common)
        if s_exp >= t and lead < rule.margin:
            return Verdict(VerdictKind.VERIFIED, identified_as=expected, **common)
        return Verdict(VerdictKind.UNKNOWN_FACE, identified_as=None, **common)
    if lead >= max(rule.margin, rule.unsure_lead) and s_other >= t:
        return Verdict(VerdictKind.MISMATCH, identified_as=other_id, **common)
    if s_exp >= t and lead < 0:
        return Verdict(VerdictKind.VERIFIED, identified_as=expected, **common)
    if s_exp < t - (rule.unsure_score or 0.0) and s_other < t:
        return Verdict(VerdictKind.UNKNOWN_FACE, identified_as=None, **common)
    return Verdict(VerdictKind.UNJUDGED, reason=UNSURE, **common)


@dataclass(frozen=True)
class Judgement:
    """A cascade verdict and who gave it: model "mobilenet" (beyond doubt), "verifier", or "" (the
    verifier is needed and has not run: the verdict is `unjudged`, reason "verifier pending", never an
    accusation); score: that model's score for the expected (or identified) student, and its threshold."""
    verdict: Verdict
    model: str
    score: float | None = None
    threshold: float | None = None


def beyond_doubt(expected: str | None, emb: np.ndarray, gallery: Gallery, th: Thresholds,
                 scores: tuple[np.ndarray, np.ndarray] | None = None) -> bool:
    """Whether MobileNetV2's vector verifies the face as `expected` beyond doubt: its settle_lead (the
    lesser of its lead over every other student and over t_verify) reaches th.verifier.lead. Without a
    verifier rule nothing is beyond doubt."""
    if th.verifier is None:
        return False
    lead = settle_lead(expected, emb, gallery, th, scores)
    return lead is not None and lead >= th.verifier.lead


def mobilenet_identity(emb: np.ndarray, gallery: Gallery, th: Thresholds,
                       scores: tuple[np.ndarray, np.ndarray] | None = None) -> str | None:
    """The student MobileNetV2 ranks first when it verifies the face as them beyond doubt, else None."""
    if not len(gallery.student_ids):
        return None
    scores = gallery.scores(emb) if scores is None else scores
    first = gallery.student_ids[int(np.argmax(scores[1]))]
    return first if beyond_doubt(first, emb, gallery, th, scores) else None


def cascade(expected: str | None, emb: np.ndarray, gallery: Gallery, th: Thresholds,
            vvec: np.ndarray | None = None, vgallery: VerifierGallery | None = None,
            scores: tuple[np.ndarray, np.ndarray] | None = None,
            vscores: np.ndarray | None = None, second: np.ndarray | None = None) -> Judgement:
    """The verdict of one judged face: MobileNetV2's `verified` stands where it is beyond doubt
    (beyond_doubt); everything else (doubtful, mismatch, unknown face, unlabeled) is the verifier's
    (decide_verifier on `vvec`, its vector of the face). Without `vvec` such a face is `unjudged`
    (`unlabeled` with no identity for an unlabelled tile), reason "verifier pending": no accusation is
    made before the verifier has run. Without a verifier rule
    in th, decide alone (model "mobilenet"), as before the verifier.

    `second`: the face's second look (Verifier.second_look: its plain and mirrored descriptions
    averaged), asked for where the first accuses, or names an unlabelled tile's face within the unsure
    band of another student (wants_second_look). An accusation stands only if the second look accuses
    too (its verdict is the one kept); else the face is `unjudged` (UNSURE): a second look never
    verifies what the first did not. An unlabelled tile's face is identified by the second look.
    `scores`, `vscores`: gallery.scores(emb) and vgallery.scores(vvec)[0] when the caller has them."""
    scores = gallery.scores(emb) if scores is None and len(gallery.student_ids) else scores
    if th.verifier is None:
        v = decide(expected, emb, gallery, th, scores)
        return Judgement(v, "mobilenet", v.similarity, th.t_verify)
    if expected is None:
        who = mobilenet_identity(emb, gallery, th, scores)
        if who is not None:
            sim = float(scores[0][gallery.student_ids.index(who)])
            v = Verdict(VerdictKind.UNLABELED, similarity=round(sim, 4), identified_as=who)
            return Judgement(v, "mobilenet", round(sim, 4), th.t_verify)
    elif beyond_doubt(expected, emb, gallery, th, scores):
        v = decide(expected, emb, gallery, th, scores)
        return Judgement(v, "mobilenet", v.similarity, th.t_verify)
    if vvec is None or vgallery is None:
        pending = VerdictKind.UNLABELED if expected is None else VerdictKind.UNJUDGED
        return Judgement(Verdict(pending, reason="verifier pending"), "")
    vscores = vgallery.scores(vvec)[0] if vscores is None else vscores
    v = decide_verifier(expected, vvec, vgallery, th.verifier, vscores)
    if second is not None and expected is None and wants_second_identity(vscores, th):
        v = decide_verifier(None, second, vgallery, th.verifier)  # a near tie: the first by the second look
    if second is not None and v.verdict in BAD:
        again = decide_verifier(expected, second, vgallery, th.verifier)
        v = again if again.verdict in BAD else _withheld(again, UNSURE)
    if disputed(v, expected, emb, gallery, th, scores):
        v = _withheld(v, "models disagree")
    score = v.similarity if v.similarity is not None else v.best_other_similarity
    return Judgement(v, "verifier", score, th.verifier.t_verify)


def _withheld(v: Verdict, reason: str) -> Verdict:
    """`v` made `unjudged` for `reason`, its scores kept (what the evidence and report show)."""
    return Verdict(VerdictKind.UNJUDGED, similarity=v.similarity, best_other=v.best_other,
                   best_other_similarity=v.best_other_similarity, reason=reason)


def wants_second_look(j: Judgement, vscores: np.ndarray | None = None, th: Thresholds | None = None) -> bool:
    """Whether the face is to be described again (cascade's `second`): the verifier accused on its first
    look, or (given its scores `vscores` and `th`) put an unlabelled tile's face within its unsure band
    of two students (wants_second_identity)."""
    if j.model != "verifier":
        return False
    if j.verdict.verdict in BAD:
        return True
    return (j.verdict.verdict == VerdictKind.UNLABELED and vscores is not None and th is not None
            and wants_second_identity(vscores, th))


def disputed(v: Verdict, expected: str | None, emb: np.ndarray, gallery: Gallery, th: Thresholds,
             scores: tuple[np.ndarray, np.ndarray] | None = None) -> bool:
    """Whether the verifier's accusation `v` of a face named `expected` is withheld: MobileNetV2 verifies
    the face as `expected` (decide's `verified`, short of beyond doubt) and the verifier's case is no
    clear lead of another student by th.verifier.dispute (an unknown face, or a near tie). On
    held-out classes no own face was accused where MobileNetV2 verified it; the accusations this
    withholds are impostors' faces MobileNetV2 took for the named student, the few the verifier
    caught by less than `dispute` (models/README.md, "The verifier")."""
    rule = th.verifier
    if rule is None or rule.dispute is None or v.verdict not in BAD:
        return False
    if expected is None or expected not in gallery.student_ids or v.similarity is None:
        return False
    if settle_lead(expected, emb, gallery, th, scores) is None:
        return False
    lead = (v.best_other_similarity - v.similarity) if v.best_other_similarity is not None else -np.inf
    return not (v.verdict == VerdictKind.MISMATCH and lead >= rule.dispute)


def cascade_identify(emb: np.ndarray, gallery: Gallery, th: Thresholds, vvec: np.ndarray | None,
                     vgallery: VerifierGallery | None, scores: tuple[np.ndarray, np.ndarray] | None = None,
                     vscores: np.ndarray | None = None, second: np.ndarray | None = None) -> tuple[str | None, str]:
    """(student, model) the face is most like, closed set: MobileNetV2's first where beyond doubt, else
    the verifier's first (None, "" without a verifier vector); where its first two are within the
    unsure band of each other (wants_second_identity), the first by its `second` look when given."""
    who = mobilenet_identity(emb, gallery, th, scores)
    if who is not None:
        return who, "mobilenet"
    if vvec is None or vgallery is None or not len(vgallery.student_ids):
        return None, ""
    sims = vgallery.scores(vvec)[0] if vscores is None else vscores
    if second is not None and wants_second_identity(sims, th):
        sims = vgallery.scores(second)[0]
    return vgallery.student_ids[int(np.argmax(sims))], "verifier"


def wants_second_identity(vscores: np.ndarray, th: Thresholds) -> bool:
    """Whether the verifier's first two students for a face are within its unsure band of each other:
    the face's second look (Verifier.second_look) is to say which is first."""
    rule = th.verifier
    if rule is None or rule.unsure_lead is None or len(vscores) < 2:
        return False
    top = np.sort(np.asarray(vscores))[-2:]
    return float(top[1] - top[0]) < rule.unsure_lead
