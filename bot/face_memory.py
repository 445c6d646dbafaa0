"""Faces per tile position across captures (`FaceMemory`): which tiles keep last capture's faces, which
are searched with the short-range model near the face they held, and which get the full-range model.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from .config import FaceSettings
from .faces import Detection, FaceDetector, faces_of, roll_degrees
from .places import Phases, place
from .types import Face


@dataclass(frozen=True)
class FaceMemoryTuning:
    """FaceMemory's tuning values, each with its reason (measurements: benchmarks/HISTORY.md, FaceMemory)."""
    full_every: int = FaceSettings.full_pass_every  # captures between a tile's full passes (faces.full_pass_every)
    still_diff: float = 1.5     # mean grey change of the thumbnail under which a tile is still
    thumb: tuple[int, int] = (32, 18)  # the still check's thumbnail (w, h): still ~20 pixels averaged into each
    thumb_min_side: int = 8     # px: a tile narrower than this gets a blank thumbnail
    roi_min_score: float = 0.7  # the face found near: a region the face has left can hold a weak false one (0.51)
    roi_agree: float = 0.1      # the models' landmarks this near (in eye distances): the tile may use the short range
    roi_size: tuple[float, float] = (0.5, 2.0)  # the face found near, in last widths: else perhaps another face
    turned: float = 0.35        # sine of the tilt (~20 degrees) past which the two models' landmarks part most


FACE_MEMORY_TUNING = FaceMemoryTuning()


def thumbnail(tile_bgr: np.ndarray, size: tuple[int, int] = FACE_MEMORY_TUNING.thumb) -> np.ndarray:
    """The grey thumbnail (float32, `size` wide and high) that `FaceMemory` compares to tell a still tile."""
    # grey first, then every other pixel: a quarter of the work on one channel (see
    # benchmarks/HISTORY.md, FaceMemory), and still ~20 pixels averaged into each one
    gray = cv2.cvtColor(tile_bgr, cv2.COLOR_BGR2GRAY)
    return cv2.resize(gray[::2, ::2], size, interpolation=cv2.INTER_AREA).astype(np.float32)


@dataclass
class _Seen:
    thumb: np.ndarray
    faces: list[Face]
    age: int  # captures since the last full-range detection
    trusted: bool = False  # the short-range model agreed with the full one on this tile last full pass


class FaceMemory:
    """Faces per tile position across captures, so most captures skip the full-range detector.

    A tile whose thumbnail barely changed keeps last capture's faces; a tile that held exactly one face,
    on which the short-range model agreed with the full one at the last full pass (`_agrees`), is
    searched with the short-range model in a square around that face (`FaceDetector.detect_near`; turned
    upright first when the head was tilted, so `upright` costs no full-range pass), accepted when it
    finds exactly one whole face, confidently, of a similar size, head not tilted in that square (a
    head that tilted or straightened since the last look gets one more look, turned as it is now):
    fewer full-range passes, the same verdicts (see benchmarks/HISTORY.md, FaceMemory).
    Anything else (no face last time, two faces, the region finds none or several, a tile moved or
    resized) and every `full_every` captures runs the full detector over the whole tile, so a person
    joining a tile is seen within `full_every` captures. Tiles get staggered ages (dealt in reading order,
    `places.Phases`), so their full passes are spread evenly over the captures.

    The keyword arguments full_every, still_diff, roi_min_score and roi_agree override `tuning`'s.
    """

    def __init__(self, full_every: int | None = None, still_diff: float | None = None, roi: bool = True,
                 roi_min_score: float | None = None, roi_agree: float | None = None, threads: int = 2,
                 tuning: FaceMemoryTuning = FACE_MEMORY_TUNING):
        given = dict(full_every=full_every, still_diff=still_diff, roi_min_score=roi_min_score,
                     roi_agree=roi_agree)
        self.tuning = dataclasses.replace(tuning, **{k: v for k, v in given.items() if v is not None})
        self.full_every, self.still_diff, self.roi = self.tuning.full_every, self.tuning.still_diff, roi
        self.roi_agree = self.tuning.roi_agree
        # 2 threads on a 2-core laptop: a little faster when the machine is otherwise idle, no slower
        # with one core kept busy by another program (see benchmarks/HISTORY.md, FaceMemory)
        self.threads = threads
        self.roi_min_score = self.tuning.roi_min_score
        self._seen: dict[tuple, _Seen] = {}
        self._phases = Phases(self.full_every)
        self._dealt: dict[tuple, int] = {}  # new places' phases, dealt before the threads look at them
        self.counts = {"still": 0, "roi": 0, "full": 0}  # how each tile was served, for tests and tuning

    def find(self, detector: FaceDetector, box, tile_bgr: np.ndarray) -> list[Face]:
        """The faces in one tile (tile coordinates), as `faces_of` gives them."""
        self._deal([box])
        faces, how = self._find(detector, box, tile_bgr)
        self.counts[how] += 1
        return faces

    def find_all(self, detector: FaceDetector, boxes: list, tiles: list[np.ndarray]) -> list[list[Face]]:
        """`find` over many tiles, shared out between `threads` threads, each with its own copy of the
        detector (a TFLite interpreter runs one invoke at a time; invoke releases the GIL). Each thread
        takes the next tile when it is free, the tiles likely to need the full model first: a full
        pass costs ~4 short-range ones, and tiles dealt out in turn left one thread idle while the
        other ran the capture's full passes."""
        self._deal(boxes)
        detectors = detector.workers(self.threads)
        if len(detectors) <= 1 or len(tiles) <= 1:
            return [self.find(detectors[0], b, t) for b, t in zip(boxes, tiles)]
        from concurrent.futures import ThreadPoolExecutor

        order = iter(sorted(range(len(tiles)), key=lambda i: not self._full_due(boxes[i])))
        lock = threading.Lock()

        def work(k: int) -> list[tuple]:
            done = []
            while True:
                with lock:
                    i = next(order, None)
                if i is None:
                    return done
                done.append((i, *self._find(detectors[k], boxes[i], tiles[i])))

        with ThreadPoolExecutor(len(detectors)) as pool:
            done = [r for part in pool.map(work, range(len(detectors))) for r in part]
        out: list[list[Face]] = [[] for _ in tiles]
        for i, faces, how in done:
            out[i] = faces
            self.counts[how] += 1
        return out

    def _deal(self, boxes: list) -> None:
        """A phase for each place not met before, in the order given (reading order)."""
        for box in boxes:
            key = place(box)
            if key not in self._seen and key not in self._dealt:
                self._dealt[key] = self._phases.deal()

    def _full_due(self, box) -> bool:
        """Whether this tile's next look is sure to run the full model: new, its full pass due, or not
        searched with the short-range model (a still tile may yet be spared)."""
        seen = self._seen.get(place(box))
        return (seen is None or seen.age + 1 >= self.full_every
                or not (self.roi and seen.trusted and len(seen.faces) == 1))

    def _find(self, detector: FaceDetector, box, tile_bgr: np.ndarray) -> tuple[list[Face], str]:
        # one tile position is only ever handled by one thread at a time: no lock needed on _seen
        key = place(box)
        t = self.tuning
        thumb = (thumbnail(tile_bgr, t.thumb) if min(tile_bgr.shape[:2]) >= t.thumb_min_side
                 else np.zeros(t.thumb[::-1], np.float32))
        seen = self._seen.get(key)
        faces = None
        if seen is not None and seen.age + 1 < self.full_every:
            if float(np.abs(thumb - seen.thumb).mean()) < self.still_diff:
                # still picture: keep the faces (and the thumbnail it was compared with, so a slow drift
                # adds up to a change instead of creeping past the threshold)
                seen.age += 1
                return seen.faces, "still"
            if self.roi and seen.trusted and len(seen.faces) == 1:
                faces = self._near(detector, tile_bgr, seen.faces[0])
        if faces is not None:
            self._seen[key] = _Seen(thumb, faces, seen.age + 1, True)
            return faces, "roi"
        # the plain full-range pass: find_faces' second search inside a border is for photos (a head
        # against a tile's edge is cut, never judged, so a tile without a face would pay it for nothing)
        faces = faces_of(detector, tile_bgr, detector.detect(tile_bgr))
        age = 0 if seen is not None else -self._dealt.pop(key, 0)
        # a tile seen for the first time is not checked: the check costs a short-range pass, and a fresh
        # pipeline (a cold start) pays for a full pass on every tile already; it is made next capture
        trusted = seen is not None and self.roi and len(faces) == 1 and self._agrees(detector, tile_bgr, faces[0])
        self._seen[key] = _Seen(thumb, faces, age, trusted)
        return faces, "full"

    def _agrees(self, detector: FaceDetector, tile_bgr: np.ndarray, face: Face) -> bool:
        """Whether the short-range model puts this face's eyes, nose and mouth where the full one does.
        On some faces (pose, glasses, lighting) the two part by a fifth of the eye distance, and the
        embedding of the face aligned on either differs a lot (cosine down to 0.3 on the benchmark):
        such a tile stays on the full model. A sitter's face stays alike from capture to capture, so
        one check per full pass holds for the captures in between."""
        near = self._near(detector, tile_bgr, face)
        if not near:
            return False
        eye = float(np.linalg.norm(face.landmarks[1] - face.landmarks[0]))
        return float(np.abs(near[0].landmarks[:4] - face.landmarks[:4]).max()) <= self.roi_agree * max(eye, 1e-6)

    def _near(self, detector: FaceDetector, tile_bgr: np.ndarray, last: Face) -> list[Face] | None:
        x, y, w, h = last.box
        # a head tilted at the last look is searched turned upright (its landmarks straight away level)
        roll = roll_degrees(last.landmarks)
        min_roll = detector.tuning.upright_min_roll
        roll = roll if abs(roll) >= min_roll else 0.0
        dets = detector.detect_near(tile_bgr, (x, y, x + w, y + h), roll=roll)
        if dets is not None and len(dets) == 1 and dets[0].cut:
            # the face moved towards the region's edge: one more look, centred where it is now
            dets = detector.detect_near(tile_bgr, dets[0].box, roll=roll)
        if dets and len(dets) == 1 and not dets[0].cut and _turned(dets[0], roll, self.tuning.turned):
            # the head tilted (or straightened) since the last look: one more look, turned as it is
            # now, instead of a full pass and its upright pass (a short-range pass against two full
            # ones; see benchmarks/HISTORY.md, FaceMemory)
            now = roll_degrees(dets[0].landmarks)
            roll = now if abs(now) >= min_roll else 0.0
            dets = detector.detect_near(tile_bgr, dets[0].box, roll=roll)
        if not dets or len(dets) != 1 or dets[0].cut:
            return None  # none, several, or only part of one: the full pass judges
        if dets[0].score < self.roi_min_score:
            # a region the face has left can hold a weak false face
            return None
        nw = float(dets[0].box[2] - dets[0].box[0])
        lo, hi = self.tuning.roi_size
        if not lo < nw / max(w, 1e-6) < hi:
            return None  # far from the size it had: perhaps not the same face
        if _turned(dets[0], roll, self.tuning.turned):
            return None
        return faces_of(detector, tile_bgr, dets)


def _turned(det: Detection, roll: float, past: float = FACE_MEMORY_TUNING.turned) -> bool:
    """Whether the head is tilted past ~20 degrees (sine `past`) in a square searched turned by `roll`:
    there the two models' landmarks part most (cosine of the embeddings 0.70 on the benchmark's one
    such face), and alignment rests on them."""
    return abs(np.sin(np.radians(roll_degrees(det.landmarks) - roll))) > past
