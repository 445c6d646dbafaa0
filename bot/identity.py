"""Who is in each tile: confirm with the verifier, then track with MobileNetV2.

MobileNetV2 (bot/embed.py) runs on every face every capture; its `verified` stands alone only beyond
doubt (decide.beyond_doubt). Every other face is judged by the verifier, dlib's ResNet (bot/verify.py,
~90 ms a face on two cores): when it first appears in a tile, whenever MobileNetV2's vector departs from
the one it had when the verifier last judged that tile (another person sat down), when the tile's name
changes, and every `refresh` captures; where it would accuse, it looks again at the face mirrored
and accuses only if that look does too (and an unlabelled tile's face it puts within its unsure band of
two students is named by that look). In between, the verifier's verdict is carried while MobileNetV2
sees the same face. The verifier's runs are spread over captures within a time budget, and within what
the capture's other stages left of its own; a face still waiting for it is `unjudged` ("verifier
pending"): no accusation is ever made before it has run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .config import RecognitionSettings
from .decide import Gallery, Judgement, Thresholds, VerifierGallery, cascade, wants_second_look
from .places import Phases
from .types import BAD, Face, Verdict, VerdictKind


@dataclass(frozen=True)
class IdentitySettings:
    """The identity stage's tuning values, each with its reason (measurements: benchmarks/HISTORY.md,
    "Identity"). The first four are settings.toml's recognition.same_face, verifier_refresh,
    verifier_budget_ms and capture_budget_ms (config.RecognitionSettings.identity), whose defaults they take."""
    # MobileNetV2 cosine to a face the verifier judged from which the tile shows the same person: different
    # held-out people reached 0.60 at most, one sitter between captures is mostly above it
    same_face: float = RecognitionSettings.same_face
    refresh: int = RecognitionSettings.verifier_refresh  # captures after which a tile is judged again anyway
    budget_ms: float = RecognitionSettings.verifier_budget_ms  # verifier time a capture may spend (one face at least)
    # the capture's whole time, within which the verifier's runs end after the other stages' (one face at
    # least): a capture that read every name afresh leaves it less
    capture_budget_ms: float = RecognitionSettings.capture_budget_ms
    # a tile's last vectors the verifier judged alike (an accusation keeps one), any of which a face may match:
    # a still sitter's vector jumps between alignments; each the verifier's own, so the tile cannot drift
    references: int = 4


@dataclass(frozen=True)
class FaceToJudge:
    key: tuple                 # the tile's place (places.place)
    expected: str | None       # the student the tile's name resolves to
    vector: np.ndarray         # MobileNetV2's
    scores: tuple | None       # gallery.rank of that vector, when the caller has it
    image: np.ndarray          # the tile crop the face was found in (BGR)
    face: Face


@dataclass
class _Confirmed:
    vector: np.ndarray          # (R, D): MobileNetV2's vectors where the verifier judged this verdict
    expected: str | None
    judgement: Judgement
    age: int = 0


@dataclass
class Identity:
    """The identity stage: MobileNetV2's gallery and the verifier's, and what the verifier confirmed
    in each tile."""
    gallery: Gallery
    vgallery: VerifierGallery | None
    thresholds: Thresholds
    verifier: object | None          # bot.verify.Verifier (describe_many); None: MobileNetV2 alone
    settings: IdentitySettings = field(default_factory=IdentitySettings)
    _confirmed: dict = field(default_factory=dict, init=False)
    runs: int = field(default=0, init=False)      # faces the verifier described, for the benchmark
    second_looks: int = field(default=0, init=False)  # of those, second looks at an accusation
    # a tile's first confirmation starts part-way into the refresh period (its phase, dealt in reading
    # order): a gallery confirmed in the lecture's first captures is not re-confirmed all together
    _phases: Phases = field(init=False)

    def __post_init__(self):
        self._phases = Phases(self.settings.refresh)

    def judge(self, faces: list[FaceToJudge], spent_ms: float = 0.0) -> list[Judgement]:
        """One judgement per face, in order; `spent_ms`: the capture's time before this stage."""
        out: list[Judgement | None] = [None] * len(faces)
        # (priority, index): 0 a new or changed face under a roster name, 1 one under no roster name,
        # 2 a refresh of the same face
        waiting: list[tuple[int, int]] = []
        for i, f in enumerate(faces):
            quick = cascade(f.expected, f.vector, self.gallery, self.thresholds, scores=f.scores)
            if quick.model == "mobilenet" or self.verifier is None:
                out[i] = quick
                continue
            seen = self._confirmed.get(f.key)
            same = seen is not None and seen.expected == f.expected and self._same_face(seen.vector, f.vector)
            if same and seen.age < self.settings.refresh:
                seen.age += 1
                out[i] = seen.judgement
            else:
                waiting.append((2 if same else 0 if f.expected else 1, i))
        budget = min(self.settings.budget_ms, self.settings.capture_budget_ms - spent_ms)
        self._verify(faces, sorted(waiting), out, budget)
        self._forget_all_but({f.key for f in faces})
        return out  # type: ignore[return-value]

    def _same_face(self, refs: np.ndarray, b: np.ndarray) -> bool:
        return float(np.max(np.atleast_2d(refs) @ b)) >= self.settings.same_face

    def _verify(self, faces: list[FaceToJudge], waiting: list[tuple[int, int]], out: list,
                budget_ms: float) -> None:
        """The verifier on waiting faces, most urgent first, while the next run (as long as the runs
        so far, on average) ends within `budget_ms`; one face at least. The rest wait: a refresh keeps
        its last judgement meanwhile, a new face is `unjudged`."""
        start, done = time.perf_counter(), 0  # faces judged so far this capture
        for priority, i in waiting:
            f = faces[i]
            spent_ms = (time.perf_counter() - start) * 1000
            if done and spent_ms * (done + 1) / done > budget_ms:
                seen = self._confirmed.get(f.key)
                out[i] = seen.judgement if priority == 2 and seen else _pending(f.expected)
                continue
            vvec = self.verifier.describe_many([(f.image, f.face)])[0]
            self.runs += 1
            done += 1
            vscores = self.vgallery.scores(vvec)[0]
            j = cascade(f.expected, f.vector, self.gallery, self.thresholds, vvec, self.vgallery, f.scores, vscores)
            # an accusation stands only if a second look accuses too; an unlabelled near tie is its to break
            if wants_second_look(j, vscores, self.thresholds):
                second = self.verifier.second_look(f.image, f.face, vvec)
                self.runs += 1
                self.second_looks += 1
                j = cascade(f.expected, f.vector, self.gallery, self.thresholds, vvec, self.vgallery, f.scores,
                            vscores, second)
            refs = f.vector[None]
            last = self._confirmed.get(f.key)
            if last is not None and last.expected == f.expected and _same_verdict(last.judgement, j):
                refs = np.vstack([np.atleast_2d(last.vector), refs])[-max(1, self.settings.references):]
            self._confirmed[f.key] = _Confirmed(refs, f.expected, j, 0 if last else self._phases.deal())
            out[i] = j

    def _forget_all_but(self, keys: set) -> None:
        for key in set(self._confirmed) - keys:
            del self._confirmed[key]


def _same_verdict(a: Judgement, b: Judgement) -> bool:
    """The verifier said the same of the tile, and no accusation: the same verdict about the same
    student. An accusation keeps one reference, so it is judged again whenever the face departs from it."""
    return (b.verdict.verdict not in BAD
            and (a.model, a.verdict.verdict, a.verdict.identified_as) == (b.model, b.verdict.verdict, b.verdict.identified_as))


def _pending(expected: str | None) -> Judgement:
    """A face waiting for the verifier: never an accusation; an unlabeled tile stays unlabeled."""
    if expected is None:
        return Judgement(Verdict(VerdictKind.UNLABELED), "")
    return Judgement(Verdict(VerdictKind.UNJUDGED, reason="verifier pending"), "")
