"""The capture cycle and the session loop: the one place that wires the stages together.

frame -> tiles -> names -> faces -> embed -> identity -> observations   (Pipeline.process, bot/stages.py;
                                                                       also what `inspect` runs)
      -> track -> store -> alerts                                      (Session.capture)
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterable

import numpy as np

from . import layout
from .alerts.evidence import evidence_for
from .config import Settings
from .decide import Gallery, Thresholds, VerifierGallery, load_thresholds
from .embed import Embedder
from .faces import FaceDetector
from .layout import FrameLayout
from .ocr import NameReader
from .stages import (EmbedStage, FacesStage, IdentityStage, NamesStage, ScreenStage, judged_faces,
                     observations, tile_places)
from .store import StoreError, parse_iso, utc_iso
from .track import Tracker
from .types import Observation, Student
from .verify import Verifier

log = logging.getLogger(__name__)


@dataclass
class Models:
    """Everything slow to load, loaded once before the first capture."""
    detector: FaceDetector
    embedder: Embedder
    reader: NameReader | None      # None: no OCR (every tile unlabeled)
    thresholds: Thresholds
    verifier: Verifier | None = None  # None: no verifier rule in thresholds.json (MobileNetV2 alone)


def share_cores() -> None:
    """numpy's BLAS (and OpenCV's copy of it) to one thread in this process: the pipeline's own
    threads (detection workers, the TFLite and onnxruntime pools) already keep the cores busy, and
    OpenBLAS's workers spin-wait after every product, taking turns from them (measured with
    benchmarks/cycle.py: benchmarks/HISTORY.md, "BLAS threads")."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


def load_models(settings: Settings, ocr: bool = True) -> Models:
    share_cores()
    rec = settings.recognition
    embedder = Embedder(rec.model_path())
    thresholds = load_thresholds(rec.thresholds_path(), rec.t_verify, rec.margin)
    verifier = Verifier.load() if thresholds.verifier is not None else None
    return Models(FaceDetector(), embedder, NameReader() if ocr else None, thresholds, verifier)


def enrolled_galleries(models: Models, ids, vectors, verifier_ids=(), verifier_vectors=()
                       ) -> tuple[Gallery, VerifierGallery | None]:
    """The enrolled students' galleries of both models (Pipeline's `gallery` and `vgallery`); the
    verifier's only where the models have a verifier."""
    th = models.thresholds
    gallery = Gallery.from_embeddings(np.asarray(ids), _rows(vectors), th.top_k, th.head)
    if models.verifier is None:
        return gallery, None
    return gallery, VerifierGallery.from_embeddings(np.asarray(verifier_ids), _rows(verifier_vectors),
                                                    th.verifier.nearest)


def _rows(vectors) -> np.ndarray:
    """Vectors as a float32 (N, D) array; none at all as (0, 0)."""
    return np.stack(vectors).astype(np.float32) if len(vectors) else np.zeros((0, 0), np.float32)


@dataclass
class Pipeline:
    """One gallery frame -> one Observation per tile (no storage, no alerts): the stages of
    bot/stages.py in order, each timed."""
    settings: Settings
    models: Models
    roster: list[Student]
    gallery: Gallery
    vgallery: VerifierGallery | None = None
    last_layout: FrameLayout = field(default=FrameLayout("none"), init=False)  # what the last frame was read as

    def __post_init__(self):
        s, m = self.settings, self.models
        self.screen = ScreenStage(s.tiles)
        self.names = NamesStage(m.reader, self.roster, s.names)
        self.faces = FacesStage(m.detector, s.faces)
        self.embed = EmbedStage(m.embedder, self.gallery, m.thresholds, s.recognition.vector_refresh)
        self.identity = IdentityStage(self.gallery, self.vgallery, m.thresholds, m.verifier,
                                      s.recognition.identity(), s.faces)

    def process(self, frame: np.ndarray, keep_crops: bool = False) -> tuple[list[Observation], dict]:
        ms: dict[str, float] = {}
        tiles, crops = _timed(ms, "segment", self.screen, frame)
        names = _timed(ms, "names", self.names, tiles, crops)
        tiles, faces = _timed(ms, "detect", self.faces, frame, tiles, crops)
        self.last_layout, doubtful = layout.with_faces(layout.read(tiles), frame, tiles,
                                                       [[f.box for f in fl] for fl in faces])
        if doubtful:
            # a gallery mid re-layout cut as one tile: no verdict there, and the frame cut afresh next
            self.screen.forget()
        t = time.perf_counter()
        why, judged = judged_faces(faces, doubtful, self.settings.faces)
        # the tiles with exactly one face to judge: their places and that face
        places, face_of = tile_places(tiles, judged), {i: fl[0] for i, fl in enumerate(judged) if len(fl) == 1}
        expected = [m.student_id for m in names.matches]
        vectors = self.embed(places, face_of, expected)
        ms["embed"] = _lap(t)
        verdicts = _timed(ms, "verify", self.identity, places, vectors, face_of, expected, crops,
                          sum(ms.values()))
        for i, (_, sure) in verdicts.items():
            self.embed.sure(places[i], sure)
        obs = _timed(ms, "decide", observations, tiles, names, faces, judged, why, doubtful, verdicts,
                     crops, keep_crops)
        return obs, ms


def _timed(ms: dict, stage: str, step: Callable, *args):
    """step(*args), its wall time in ms added to ms[stage]."""
    t = time.perf_counter()
    out = step(*args)
    ms[stage] = _lap(t)
    return out


def _lap(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)


def delivery_recorder(store) -> Callable[[int, str, int, bool, "str | None"], None]:
    """store.record_delivery for the alert worker: an alert the store could not keep (id 0) has no row
    to record against, and a store that refuses (locked, disk full) costs one warning line, never the
    delivery itself."""
    def record(alert_id: int, channel: str, attempt: int, ok: bool, error: str | None = None) -> None:
        if not alert_id:
            return
        try:
            store.record_delivery(alert_id, channel, attempt, ok, error or "")
        except StoreError as e:
            log.warning("delivery of alert %s via %s not recorded: %s", alert_id, channel, e)
    return record


class Session:
    """A stored session: each capture goes through the pipeline, the tracker, the store and the alerts.

    A store that refuses a write (another process holding the database past the busy timeout, a full
    disk) never stops the session or silences an alert: the capture is tracked and its alerts sent but
    not stored (one warning line, counted in `skipped`), an alert's evidence that cannot be written is
    left out, and a session that cannot be marked ended is marked interrupted at the next start."""

    def __init__(self, pipeline: Pipeline, store, dispatcher, settings: Settings, class_name: str | None,
                 source: str, interval_s: float, on_alert: Callable[[dict], None] = lambda a: None):
        self.pipeline, self.store, self.dispatcher, self.settings = pipeline, store, dispatcher, settings
        self.tracker = Tracker(settings.tracking.confirm_n, settings.tracking.window_m)
        self.class_name = class_name
        self.interval_s = interval_s
        self.on_alert = on_alert
        self.id = store.start_session(class_name, source, interval_s)
        self.captures = 0
        self.skipped = 0       # captures the store refused
        self.alerts = 0

    def capture(self, frame: np.ndarray, when: datetime) -> list[Observation]:
        obs, ms = self.pipeline.process(frame, keep_crops=True)
        t = time.perf_counter()
        capture_id = self._try(f"capture at {utc_iso(when)}",
                               lambda: self.store.add_capture(self.id, when, ms, obs))
        ms["store"] = _lap(t)
        if capture_id is None:
            self.skipped += 1
        else:
            self.captures += 1
        for o in obs:
            ev = self.tracker.update(o.participant, o.verdict.verdict, capture_id, o)
            if ev is not None and ev.type == "open":
                self._alert(ev.kind, ev.observation or o, capture_id, when)
        return obs

    def _try(self, what: str, write: Callable):
        """`write()`'s result, or None after one warning line when the store refuses it."""
        try:
            return write()
        except StoreError as e:
            log.warning("%s not stored: %s", what, e)
            return None

    def _alert(self, kind: str, o: Observation, capture_id: int | None, when: datetime) -> None:
        from .alerts import Alert
        th = self.pipeline.models.thresholds
        v = o.verdict
        # the score and threshold of the model that decided (the verifier, for every accusation it makes)
        threshold = th.verifier.t_verify if v.model == "verifier" and th.verifier else th.t_verify
        alert_id = self._try(f"{kind} alert for {o.participant!r}", lambda: self.store.add_alert(
            self.id, when, kind, capture_id=capture_id, student_id=o.student_id,
            display_name=o.display_name, identified_as=v.identified_as, similarity=v.similarity,
            threshold=threshold, participant=o.participant, model=v.model or None))
        evidence = None
        if alert_id is not None and self.settings.retention.evidence and o.crop is not None:
            evidence = self._try(f"evidence of alert {alert_id}", lambda: self.store.save_evidence(
                self.id, alert_id, evidence_for(self.store, kind, o, threshold)))
        self.alerts += 1
        # an alert the store refused still goes out on every channel, as alert 0 (it has no row)
        alert = Alert(id=alert_id or 0, session_id=self.id, time=when, kind=kind, student_id=o.student_id,
                      display_name=o.display_name, identified_as=v.identified_as, similarity=v.similarity,
                      threshold=threshold, evidence_path=self.store.home / evidence if evidence else None,
                      class_name=self.class_name or "", student_name=self._name(o.student_id),
                      identified_name=self._name(v.identified_as))
        if self.dispatcher is not None:
            self.dispatcher.submit(alert)
        self.on_alert({"id": alert_id, "kind": kind, "participant": o.participant, "evidence": evidence})

    def _name(self, student_id: str | None) -> str:
        """A roster student's name, for the lecturer's alert line."""
        return next((s.name for s in self.pipeline.roster if s.student_id == student_id), "")

    def close(self, status: str = "done") -> bool:
        """Mark the session ended with `status`; False (one warning line) when the store refuses: the
        next start marks it interrupted."""
        try:
            self.store.end_session(self.id, status)
            return True
        except StoreError as e:
            log.warning("end of session %s not stored: %s; the next start marks it interrupted", self.id, e)
            return False


def replay(session: Session, frames: Iterable, start: datetime | None = None,
           tick: Callable[[], None] = lambda: None) -> None:
    """Feed recorded frames (t_seconds, frame, label) through a session; times are start + t, from the
    session's own start by default, so a report shows t as the time into the recording."""
    start = start or parse_iso(session.store.session(session.id).started)
    for t, frame, _label in frames:
        session.capture(frame, start + timedelta(seconds=float(t)))
        tick()
