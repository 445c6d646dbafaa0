"""The capture cycle and the session loop: the one place that wires the stages together.

frame -> tiles -> names -> faces -> embed -> decide   (Pipeline.process, also used by `inspect`)
      -> track -> store -> alerts                      (Session.capture)
"""
from __future__ import annotations

import logging
import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

import cv2
import numpy as np

from .config import Settings
from .decide import Gallery, Thresholds, VerifierGallery, gate, hold_back, load_thresholds, settled
from .embed import Embedder, VectorMemory, unit
from .face_memory import FaceMemory
from .identity import FaceToJudge, Identity
from .faces import FaceDetector
from . import layout
from .label_memory import LabelMemory
from .layout import FrameLayout
from .names import NameReader, normalise, resolve
from .store import StoreError, parse_iso, utc_iso
from .tiles import LayoutMemory
from .track import Tracker
from .types import Observation, Student, Tile, Verdict
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


def _crop(frame: np.ndarray, box) -> np.ndarray:
    x, y, w, h = (int(v) for v in box)
    return frame[max(0, y):y + h, max(0, x):x + w]


def _tile_crop(frame: np.ndarray, tile: Tile) -> np.ndarray:
    """The tile's pixels, with the thumbnails floating over it painted out (grey): their faces and
    labels are their own tiles', not this one's."""
    crop = _crop(frame, tile.box)
    if not tile.covered:
        return crop
    crop = crop.copy()
    x0, y0 = max(0, int(tile.box[0])), max(0, int(tile.box[1]))
    for x, y, w, h in tile.covered:
        crop[max(0, y - y0):max(0, y - y0 + h), max(0, x - x0):max(0, x - x0 + w)] = 128
    return crop


@dataclass
class Pipeline:
    """One gallery frame -> one Observation per tile (no storage, no alerts)."""
    settings: Settings
    models: Models
    roster: list[Student]
    gallery: Gallery
    _layout: LayoutMemory = field(default_factory=LayoutMemory, init=False)
    _labels: LabelMemory = field(default_factory=LabelMemory, init=False)
    _faces: FaceMemory = field(default_factory=FaceMemory, init=False)
    # label text -> its match: roster and settings are fixed for a pipeline, labels repeat every capture
    _matches: dict = field(default_factory=dict, init=False)
    vgallery: VerifierGallery | None = None
    _vectors: VectorMemory = field(default_factory=VectorMemory, init=False)
    _identity: Identity = field(init=False)
    last_layout: FrameLayout = field(default=FrameLayout("none"), init=False)  # what the last frame was read as

    def __post_init__(self):
        self._identity = Identity(self.gallery, self.vgallery, self.models.thresholds,
                                  self.models.verifier if self.vgallery is not None else None,
                                  self.settings.recognition.identity())

    def process(self, frame: np.ndarray, keep_crops: bool = False) -> tuple[list[Observation], dict]:
        ms: dict[str, float] = {}
        t = time.perf_counter()
        tiles = self._layout.segment(frame, self.settings.tiles, with_shares=True)
        ms["segment"] = _lap(t)

        t = time.perf_counter()
        crops = [_tile_crop(frame, tl) for tl in tiles]
        texts = [self._labels.recall(tl.box, crop) for tl, crop in zip(tiles, crops)]
        # a thumbnail's name is never read: the self-view is the viewer's own, and a frame drawn in a
        # student's video must not make a participant with a name of the student's choosing
        texts = ["" if tl.floating else txt for tl, txt in zip(tiles, texts)]
        todo = [i for i, txt in enumerate(texts) if txt is None]
        label_boxes = [tl.name_box for tl in tiles]
        if todo and self.models.reader:
            # whole tiles: the label sits bottom-left, or large and centred on a camera-off tile
            where: list = [None] * len(todo)
            for i, txt, at in zip(todo, self.models.reader.read_tiles([crops[i] for i in todo], where), where):
                texts[i] = txt
                self._labels.remember(tiles[i].box, crops[i], txt, at)
                if txt and at is not None:
                    label_boxes[i] = (tiles[i].box[0] + at[0], tiles[i].box[1] + at[1], at[2] - at[0], at[3] - at[1])
        texts = [t or "" for t in texts]
        for txt in set(texts) - self._matches.keys():
            self._matches[txt] = resolve(txt, self.roster, self.settings.names)
        matches = [self._matches[txt] for txt in texts]
        keys = participant_keys(matches)
        ms["names"] = _lap(t)

        t = time.perf_counter()
        tiles, faces = self._detect(frame, tiles, crops)
        ms["detect"] = _lap(t)
        self.last_layout, doubtful = layout.with_faces(layout.read(tiles), frame, tiles,
                                                       [[f.box for f in fl] for fl in faces])
        if doubtful:
            # a gallery mid re-layout cut as one tile: no verdict there, and the frame cut afresh next
            self._layout.forget()

        t = time.perf_counter()
        fs = self.settings.faces
        why = [[gate(f, fs) for f in fl] for fl in faces]
        judged = [[] if i in doubtful else [f for f, w in zip(fl, wl) if not w]
                  for i, (fl, wl) in enumerate(zip(faces, why))]
        vkeys = {i: FaceMemory.key(tiles[i].box) for i, fl in enumerate(judged) if len(fl) == 1}
        vectors = self._embed(vkeys, judged, [m.student_id for m in matches])
        ms["embed"] = _lap(t)

        t = time.perf_counter()
        th = self.models.thresholds
        # every judged face scored in one product (a face at a time: ~0.2 ms each, 44 a capture)
        order = sorted(vectors)
        scored = dict(zip(order, zip(*self.gallery.rank(np.stack([vectors[i] for i in order]))))) if order else {}
        judgements = dict(zip(order, self._identity.judge(
            [FaceToJudge(vkeys[i], matches[i].student_id, vectors[i], scored[i], crops[i], judged[i][0])
             for i in order])))
        ms["verify"] = _lap(t)

        t = time.perf_counter()
        obs = []
        for i, (tl, m, fl, jl, wl) in enumerate(zip(tiles, matches, faces, judged, why)):
            if tl.camera_off:
                v = Verdict("camera_off")
            elif i in doubtful:
                v = Verdict("unjudged", reason="layout")
            elif not fl:
                v = Verdict("no_face")
            elif len(jl) >= 2:
                v = Verdict("multiple_faces", reason=f"{len(jl)} faces")
            elif not jl:
                v = Verdict("unjudged", reason=wl[0])
            else:
                j = judgements[i]
                v = hold_back(dataclasses.replace(j.verdict, model=j.model), jl[0], fs)
                # kept for the captures to come only beyond doubt: a borderline verdict (an impostor
                # verified by a hair) kept would stand for them all, where fresh vectors of the face
                # moving a little give the tracker fresh evidence
                sure = v.verdict == "verified" and settled(m.student_id, vectors[i], self.gallery, th, scored[i])
                self._vectors.judged(vkeys[i], sure)
            face = (jl or fl or [None])[0]
            fbox = None
            if face is not None:
                x, y, w, h = face.box
                fbox = (int(tl.box[0] + x), int(tl.box[1] + y), int(w), int(h))
            obs.append(Observation(
                tile_index=i, box=tuple(int(v_) for v_ in tl.box), display_name=m.text,
                student_id=m.student_id, camera_off=tl.camera_off, faces=len(fl), face_box=fbox,
                face_px=int(round(face.box[2])) if face else 0, blur=round(face.blur, 1) if face else None,
                verdict=v, participant=keys[i], crop=crops[i] if keep_crops else None,
                label_box=tuple(int(v_) for v_ in label_boxes[i]) if label_boxes[i] else None))
        # a shared screen is no participant; a big flat tile with a face in it is (a virtual background)
        obs = [o for o, tl in zip(obs, tiles) if not (tl.share and not o.faces)]
        ms["decide"] = _lap(t)
        return obs, ms

    def _detect(self, frame: np.ndarray, tiles: list[Tile], crops: list[np.ndarray]) -> tuple[list[Tile], list[list]]:
        """The faces of each tile (crops updated in place where a tile is looked at whole), and the
        tiles with a big flat tile that shows a face made live video. Remembered per tile position:
        still tiles keep their faces, a face seen last capture is looked for near where it was with
        the small short-range model (bot/face_memory.py)."""
        # a big flat tile (a shared screen, or a speaker before a plain virtual background, which looks
        # camera-off) is looked at for a face too: with one it is a participant's live video
        live = [i for i, tl in enumerate(tiles) if not tl.camera_off or tl.share]
        found = self._faces.find_all(self.models.detector, [tiles[i].box for i in live], [crops[i] for i in live])
        faces: list[list] = [[] for _ in tiles]
        for i, fl in zip(live, found):
            faces[i] = fl
        # a tile whose face was all under a thumbnail painted out is looked at whole: what a student
        # draws in their own video must not hide their face
        bare = [i for i in live if tiles[i].covered and not faces[i]]
        for i, fl in zip(bare, self._faces.find_all(self.models.detector, [tiles[i].box for i in bare],
                                                   [_crop(frame, tiles[i].box) for i in bare])):
            faces[i], crops[i] = fl, _crop(frame, tiles[i].box)
        tiles = [dataclasses.replace(tl, camera_off=False) if tl.share and faces[i] else tl
                 for i, tl in enumerate(tiles)]
        return tiles, faces

    def _embed(self, keys: dict, judged: list[list], expected: list) -> dict[int, np.ndarray]:
        """Tile index -> vector of its one judged face (keys: those tiles' positions); a face the
        VectorMemory still trusts keeps its vector."""
        out, todo = {}, []
        for i, key in keys.items():
            last = self._vectors.recall(key, judged[i][0].aligned, expected[i])
            if last is not None:
                out[i] = last
            else:
                todo.append(i)
        if todo:
            vecs = self._vectors_of(np.stack([judged[i][0].aligned for i in todo]), [expected[i] for i in todo])
            for i, v in zip(todo, vecs):
                out[i] = v
                self._vectors.keep(keys[i], judged[i][0].aligned, v, expected[i])
        self._vectors.only(set(keys.values()))
        return out

    def _vectors_of(self, faces: np.ndarray, expected: list) -> np.ndarray:
        """The faces' vectors; a face its first view already verifies beyond doubt (decide.settled)
        keeps that view's vector and costs one view instead of all, the rest get every view. Unresolved names and no quick rule: every face every view."""
        embedder, th = self.models.embedder, self.models.thresholds
        q = th.quick
        if q is None or len(embedder.views) < 2 or embedder.views[0] != q.view \
                or not set(expected) & set(self.gallery.student_ids):
            return embedder.embed(faces)
        first = embedder.view_vectors(faces, embedder.views[:1])[0]
        sims, ranks = self.gallery.rank(first)  # every face at once: one product, not one a face
        rest = [k for k, (e, v) in enumerate(zip(expected, first))
                if not settled(e, v, self.gallery, th, (sims[k], ranks[k]))]
        if rest:
            more = embedder.view_vectors(faces[rest], embedder.views[1:])
            first[rest] = unit(first[rest] + more.sum(0))
        return first


def participant_keys(matches: list) -> list[str]:
    """Whom each tile's verdicts belong to, for the tracker (tiles in reading order): the resolved
    student, else the label's normalised text, else the tile's place. When several tiles of one capture
    share a key (a student on two devices, or someone else joined under a student's name), the second,
    third... in reading order get keys of their own ("G1A021002#2"): sharing one N-of-M window, the
    impostor's tile and the student's own took turns in it, and at 3 of 4 the impostor never alerted
    (tests/test_pipeline.py)."""
    keys, seen = [], {}
    for i, m in enumerate(matches):
        key = m.student_id or (f"name:{normalise(m.text)}" if m.text else f"tile:{i}")
        seen[key] = seen.get(key, 0) + 1
        keys.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
    return keys


def _lap(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)


def evidence_image(tile_crop: np.ndarray, references: list[tuple[str, bytes | None]], caption: str,
                   expected: str = "") -> bytes:
    """The tile crop (labelled with the student its name claims, `expected`) beside the enrolled
    reference faces it was compared with where the store keeps them (each labelled), and a caption line
    with similarity and threshold: the JPEG an alert carries."""
    h = 240
    tile = cv2.resize(tile_crop, (max(1, round(tile_crop.shape[1] * h / tile_crop.shape[0])), h))
    if expected:
        _strip_label(tile, f"expected: {expected}")
    parts = [tile]
    for label, jpeg in references:
        ref = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) if jpeg else None
        if ref is None:
            continue
        ref = cv2.resize(ref, (h, h))
        _strip_label(ref, label)
        parts.append(ref)
    body = np.hstack([np.pad(p, ((0, 0), (0, 8), (0, 0))) for p in parts])
    bar = np.full((28, body.shape[1], 3), 24, np.uint8)
    cv2.putText(bar, caption[:110], (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    ok, jpg = cv2.imencode(".jpg", np.vstack([body, bar]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return jpg.tobytes()


def _strip_label(img: np.ndarray, text: str) -> None:
    """A dark strip along the bottom of `img` with `text` on it (in place)."""
    h, w = img.shape[:2]
    cv2.rectangle(img, (0, h - 22), (w, h), (24, 24, 24), -1)
    cv2.putText(img, text[:max(4, w * 28 // 240)], (5, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                cv2.LINE_AA)


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
                self.id, alert_id, self._evidence(kind, o, threshold)))
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

    def _evidence(self, kind: str, o: Observation, threshold: float) -> bytes:
        """The alert's evidence JPEG: the tile crop labelled with the student its name claims, beside
        the enrolled faces of that student and of the one the face matched instead, where the store
        keeps enrolled faces (retention.reference_faces)."""
        v = o.verdict
        refs = [(f"enrolled: {sid}", self.store.reference_thumb(sid))
                for sid in dict.fromkeys(x for x in (o.student_id, v.identified_as) if x)]
        claimed = self.store.get_student(o.student_id) if o.student_id else None
        expected = claimed.name if claimed else (o.student_id or "no roster student")
        sim = "-" if v.similarity is None else f"{v.similarity:.2f}"
        by = f" by {v.model}" if v.model else ""
        caption = (f"{kind}{by}: tile '{o.display_name}' similarity {sim} (threshold {threshold:.2f})"
                   + (f", matches {v.identified_as}" if v.identified_as and kind == "mismatch" else ""))
        return evidence_image(o.crop, refs, caption, expected)

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
