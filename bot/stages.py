"""The capture's stages, each an object that owns its memory across captures and its settings:

    frame -> ScreenStage -> tiles and their pixels          (bot/tiles.py, LayoutMemory)
          -> NamesStage  -> each tile's name and student     (bot/ocr.py, bot/roster_match.py, LabelMemory)
          -> FacesStage  -> each tile's faces                (bot/faces.py, FaceMemory)
          -> EmbedStage  -> MobileNetV2's vector of a face   (bot/embed.py, VectorMemory)
          -> IdentityStage -> a verdict per judged face      (bot/identity.py: the verifier's cascade)
          -> observations() -> one Observation per tile

`session.Pipeline.process` calls them in that order and times each.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .config import FaceSettings, NameSettings, TileSettings
from .decide import Gallery, Thresholds, VerifierGallery, gate, hold_back, settled
from .embed import Embedder, VectorMemory, unit
from .face_memory import FaceMemory
from .faces import FaceDetector
from .identity import FaceToJudge, Identity, IdentitySettings
from .label_memory import LabelMemory
from .ocr import NameReader
from .places import place
from .roster_match import normalise, resolve
from .tiles import LayoutMemory
from .types import Face, NameMatch, Observation, Student, Tile, Verdict, VerdictKind
from .verify import Verifier


def crop(frame: np.ndarray, box) -> np.ndarray:
    """The frame's pixels under a box (x, y, w, h), clipped to the frame: a view, not a copy."""
    x, y, w, h = (int(v) for v in box)
    return frame[max(0, y):y + h, max(0, x):x + w]


def tile_crop(frame: np.ndarray, tile: Tile) -> np.ndarray:
    """The tile's pixels, with the thumbnails floating over it painted out (grey): their faces and
    labels are their own tiles', not this one's."""
    out = crop(frame, tile.box)
    if not tile.covered:
        return out
    out = out.copy()
    x0, y0 = max(0, int(tile.box[0])), max(0, int(tile.box[1]))
    for x, y, w, h in tile.covered:
        out[max(0, y - y0):max(0, y - y0 + h), max(0, x - x0):max(0, x - x0 + w)] = 128
    return out


class ScreenStage:
    """Frame -> tiles (a shared screen marked, not dropped) and each tile's pixels; the layout found
    stands while the frame still fits it."""

    def __init__(self, settings: TileSettings):
        self.settings = settings
        self.memory = LayoutMemory()

    def __call__(self, frame: np.ndarray) -> tuple[list[Tile], list[np.ndarray]]:
        tiles = self.memory.segment(frame, self.settings, with_shares=True)
        return tiles, [tile_crop(frame, tl) for tl in tiles]

    def forget(self) -> None:
        """Cut the next frame afresh (a layout that could not be trusted)."""
        self.memory.forget()


@dataclass
class Names:
    """What the names stage made of each tile (in tile order)."""
    matches: list[NameMatch]    # the label's text and the roster student it resolves to
    keys: list[str]             # whom the tile's verdicts belong to (participant_keys)
    label_boxes: list           # the label's box in the frame (x, y, w, h), or None


class NamesStage:
    """Tiles -> each one's display name and the roster student it resolves to. A label that has not
    changed since the last capture keeps its reading (LabelMemory); a thumbnail's name is never read."""

    def __init__(self, reader: NameReader | None, roster: list[Student], settings: NameSettings):
        self.reader, self.roster, self.settings = reader, roster, settings
        self.memory = LabelMemory(settings.reread_every)
        # label text -> its match: roster and settings are fixed, labels repeat every capture
        self._matches: dict[str, NameMatch] = {}

    def __call__(self, tiles: list[Tile], crops: list[np.ndarray]) -> Names:
        texts = [self.memory.recall(tl.box, c) for tl, c in zip(tiles, crops)]
        # the self-view is the viewer's own, and a frame drawn in a student's video must not make a
        # participant with a name of the student's choosing
        texts = ["" if tl.floating else txt for tl, txt in zip(tiles, texts)]
        todo = [i for i, txt in enumerate(texts) if txt is None]
        boxes = [tl.name_box for tl in tiles]
        if todo and self.reader:
            # whole tiles: the label sits bottom-left, or large and centred on a camera-off tile
            where: list = [None] * len(todo)
            for i, txt, at in zip(todo, self.reader.read_tiles([crops[i] for i in todo], where), where):
                texts[i] = txt
                self.memory.remember(tiles[i].box, crops[i], txt, at)
                if txt and at is not None:
                    boxes[i] = (tiles[i].box[0] + at[0], tiles[i].box[1] + at[1], at[2] - at[0], at[3] - at[1])
        texts = [t or "" for t in texts]
        for txt in set(texts) - self._matches.keys():
            self._matches[txt] = resolve(txt, self.roster, self.settings)
        matches = [self._matches[txt] for txt in texts]
        return Names(matches, participant_keys(matches), boxes)


def participant_keys(matches: list[NameMatch]) -> list[str]:
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


class FacesStage:
    """Tiles -> the faces in each (tile coordinates). Remembered per tile place: still tiles keep their
    faces, a face seen last capture is looked for near where it was with the short-range model
    (bot/face_memory.py)."""

    def __init__(self, detector: FaceDetector, settings: FaceSettings):
        self.detector = detector
        self.memory = FaceMemory(full_every=settings.full_pass_every)

    def __call__(self, frame: np.ndarray, tiles: list[Tile], crops: list[np.ndarray]
                 ) -> tuple[list[Tile], list[list[Face]]]:
        """The faces of each tile (crops updated in place where a tile is looked at whole), and the
        tiles, with a big flat tile that shows a face made live video."""
        # a big flat tile (a shared screen, or a speaker before a plain virtual background, which looks
        # camera-off) is looked at for a face too: with one it is a participant's live video
        live = [i for i, tl in enumerate(tiles) if not tl.camera_off or tl.share]
        faces: list[list[Face]] = [[] for _ in tiles]
        for i, fl in zip(live, self.memory.find_all(self.detector, [tiles[i].box for i in live],
                                                    [crops[i] for i in live])):
            faces[i] = fl
        # a tile whose face was all under a thumbnail painted out is looked at whole: what a student
        # draws in their own video must not hide their face
        bare = [i for i in live if tiles[i].covered and not faces[i]]
        for i, fl in zip(bare, self.memory.find_all(self.detector, [tiles[i].box for i in bare],
                                                    [crop(frame, tiles[i].box) for i in bare])):
            faces[i], crops[i] = fl, crop(frame, tiles[i].box)
        tiles = [dataclasses.replace(tl, camera_off=False) if tl.share and faces[i] else tl
                 for i, tl in enumerate(tiles)]
        return tiles, faces


def judged_faces(faces: list[list[Face]], doubtful: set[int], fs: FaceSettings
                 ) -> tuple[list[list[str]], list[list[Face]]]:
    """Per tile: why each face is not judged ("" where it is: decide.gate) and the faces judged (none
    in a tile whose layout is in doubt)."""
    why = [[gate(f, fs) for f in fl] for fl in faces]
    judged = [[] if i in doubtful else [f for f, w in zip(fl, wl) if not w]
              for i, (fl, wl) in enumerate(zip(faces, why))]
    return why, judged


class EmbedStage:
    """A tile's one judged face -> MobileNetV2's vector. A face the VectorMemory still trusts keeps its
    vector; a face its first view verifies beyond doubt (decide.settled) costs that one view."""

    def __init__(self, embedder: Embedder, gallery: Gallery, thresholds: Thresholds, refresh_every: int):
        self.embedder, self.gallery, self.thresholds = embedder, gallery, thresholds
        self.memory = VectorMemory(refresh_every=refresh_every)

    def __call__(self, keys: dict[int, tuple], faces: dict[int, Face], expected: list
                 ) -> dict[int, np.ndarray]:
        """Tile index -> vector of its face (keys: those tiles' places)."""
        out, todo = {}, []
        for i, key in keys.items():
            last = self.memory.recall(key, faces[i].aligned, expected[i])
            if last is not None:
                out[i] = last
            else:
                todo.append(i)
        if todo:
            vecs = self._vectors_of(np.stack([faces[i].aligned for i in todo]), [expected[i] for i in todo])
            for i, v in zip(todo, vecs):
                out[i] = v
                self.memory.keep(keys[i], faces[i].aligned, v, expected[i])
        self.memory.only(set(keys.values()))
        return out

    def sure(self, key: tuple, verified: bool) -> None:
        """A tile's verdict this capture: its vector is kept for the captures to come only when it
        verified the face beyond doubt."""
        self.memory.judged(key, verified)

    def _vectors_of(self, faces: np.ndarray, expected: list) -> np.ndarray:
        """Every view for a face the first view does not settle; unresolved names and no quick rule:
        every face every view."""
        embedder, th, gallery = self.embedder, self.thresholds, self.gallery
        q = th.quick
        if q is None or len(embedder.views) < 2 or embedder.views[0] != q.view \
                or not set(expected) & set(gallery.student_ids):
            return embedder.embed(faces)
        first = embedder.view_vectors(faces, embedder.views[:1])[0]
        sims, ranks = gallery.rank(first)  # every face at once: one product, not one a face
        rest = [k for k, (e, v) in enumerate(zip(expected, first))
                if not settled(e, v, gallery, th, (sims[k], ranks[k]))]
        if rest:
            more = embedder.view_vectors(faces[rest], embedder.views[1:])
            first[rest] = unit(first[rest] + more.sum(0))
        return first


class IdentityStage:
    """Vectors of judged faces -> each face's verdict, and whether it is beyond doubt (verified, and
    settled on MobileNetV2's vector alone). The verifier's cascade and its memory: bot/identity.py."""

    def __init__(self, gallery: Gallery, vgallery: VerifierGallery | None, thresholds: Thresholds,
                 verifier: Verifier | None, settings: IdentitySettings, faces: FaceSettings):
        self.gallery, self.thresholds, self.faces = gallery, thresholds, faces
        # the cascade and its memory of what the verifier confirmed per tile
        self.cascade = Identity(gallery, vgallery, thresholds, verifier if vgallery is not None else None,
                                settings)

    def __call__(self, keys: dict[int, tuple], vectors: dict[int, np.ndarray], faces: dict[int, Face],
                 expected: list, crops: list[np.ndarray], spent_ms: float = 0.0) -> dict[int, tuple[Verdict, bool]]:
        """`spent_ms`: the capture's time before this stage (the verifier gets what is left of its budget)."""
        order = sorted(vectors)
        if not order:
            return {}
        # every judged face scored in one product (a face at a time: ~0.2 ms each, 44 a capture)
        scored = dict(zip(order, zip(*self.gallery.rank(np.stack([vectors[i] for i in order])))))
        judgements = self.cascade.judge([FaceToJudge(keys[i], expected[i], vectors[i], scored[i], crops[i],
                                                      faces[i]) for i in order], spent_ms)
        out = {}
        for i, j in zip(order, judgements):
            v = hold_back(dataclasses.replace(j.verdict, model=j.model), faces[i], self.faces)
            # beyond doubt only: a borderline verdict (an impostor verified by a hair) kept would stand
            # for every capture to come, where fresh vectors of the face moving a little give the
            # tracker fresh evidence
            sure = v.verdict == VerdictKind.VERIFIED and settled(expected[i], vectors[i], self.gallery,
                                                                 self.thresholds, scored[i])
            out[i] = (v, sure)
        return out


def tile_verdict(tile: Tile, doubtful: bool, faces: list[Face], judged: list[Face], why: list[str],
                 verdict: Verdict | None) -> Verdict:
    """A tile's verdict: the identity stage's where it judged one face, else why it judged none."""
    if tile.camera_off:
        return Verdict(VerdictKind.CAMERA_OFF)
    if doubtful:
        return Verdict(VerdictKind.UNJUDGED, reason="layout")
    if not faces:
        return Verdict(VerdictKind.NO_FACE)
    if len(judged) >= 2:
        return Verdict(VerdictKind.MULTIPLE_FACES, reason=f"{len(judged)} faces")
    if not judged:
        return Verdict(VerdictKind.UNJUDGED, reason=why[0])
    return verdict


def observations(tiles: list[Tile], names: Names, faces: list[list[Face]], judged: list[list[Face]],
                 why: list[list[str]], doubtful: set[int], verdicts: dict[int, tuple[Verdict, bool]],
                 crops: list[np.ndarray], keep_crops: bool) -> list[Observation]:
    """One Observation per participant's tile; a shared screen (a big flat tile without a face) is
    no participant, one with a face in it is (a virtual background)."""
    obs = []
    for i, (tl, m, fl, jl) in enumerate(zip(tiles, names.matches, faces, judged)):
        v = tile_verdict(tl, i in doubtful, fl, jl, why[i], verdicts[i][0] if i in verdicts else None)
        face = (jl or fl or [None])[0]
        fbox = None
        if face is not None:
            x, y, w, h = face.box
            fbox = (int(tl.box[0] + x), int(tl.box[1] + y), int(w), int(h))
        lb = names.label_boxes[i]
        obs.append(Observation(
            tile_index=i, box=tuple(int(v_) for v_ in tl.box), display_name=m.text,
            student_id=m.student_id, camera_off=tl.camera_off, faces=len(fl), face_box=fbox,
            face_px=int(round(face.box[2])) if face else 0, blur=round(face.blur, 1) if face else None,
            verdict=v, participant=names.keys[i], crop=crops[i] if keep_crops else None,
            label_box=tuple(int(v_) for v_ in lb) if lb else None))
    return [o for o, tl in zip(obs, tiles) if not (tl.share and not o.faces)]


def tile_places(tiles: list[Tile], judged: list[list[Face]]) -> dict[int, tuple]:
    """Tile index -> its place, for the tiles with exactly one face to judge."""
    return {i: place(tiles[i].box) for i, fl in enumerate(judged) if len(fl) == 1}
