"""What a frame's tiles were read as: a gallery of rows x columns, a speaker or a shared screen with a
strip of tiles, or a layout that cannot be trusted (a gallery mid re-layout cut as one tile), whose
doubtful tile gets no verdict rather than being judged as one giant participant."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot import gapless
from bot.tile_tuning import TUNING
from bot.types import Box, Tile, within


@dataclass(frozen=True)
class LayoutTuning:
    """The frame layout's tuning values, each with its reason (a tile TUNING.speaker times a strip
    tile's area or more is the speaker's or the shared screen)."""
    gallery: float = 1 / 3  # a tile this share of the frame or more may be a whole gallery cut as one
    flat_page_tol: int = 4  # channel levels within which a pixel is the page's flat colour
    corner: int = 8  # a tile's corner patch: this fraction (1 / corner) of its width and height
    row_tol: float = 0.25  # tiles whose tops differ by less than this share of a tile's height share a row
    min_seam_side: int = 16  # a tile fewer pixels across holds no seam worth looking for
    min_ring: int = 16  # fewer pixels around a tile show no page (a tile filling the frame)
    flat_ring: float = 0.8  # the ring around a tile is at least this share the page's colour when a page is there
    hollow: float = 0.9  # a corner patch at least this share the page's colour shows the page through the tile


LAYOUT = LayoutTuning()


@dataclass(frozen=True)
class FrameLayout:
    """kind: "gallery", "speaker + strip", "share + strip", "none" (no tiles) or "unknown"."""
    kind: str
    rows: int = 0
    cols: int = 0

    @property
    def uncertain(self) -> bool:
        return self.kind == "unknown"

    def __str__(self) -> str:
        return f"gallery {self.rows}x{self.cols}" if self.kind == "gallery" else self.kind


UNKNOWN = FrameLayout("unknown")


def read(tiles: list[Tile]) -> FrameLayout:
    """The layout the tiles form, from their sizes and places alone (faces are looked at by
    `with_faces`)."""
    # a thumbnail floating over another tile (a self-view) is a participant but no cell of the layout
    tiles = [t for t in tiles if not t.floating and not any(o is not t and within(t.box, o.box) for o in tiles)]
    if not tiles:
        return FrameLayout("none")
    areas = np.array([t.box[2] * t.box[3] for t in tiles], np.float64)
    small = float(np.median(areas))
    if len(tiles) >= 2 and areas.max() >= TUNING.speaker * small:
        return FrameLayout("speaker + strip")
    tops = sorted(t.box[1] for t in tiles)
    th = float(np.median([t.box[3] for t in tiles]))
    rows = 1 + sum(1 for a, b in zip(tops, tops[1:]) if b - a > LAYOUT.row_tol * th)
    per_row: dict[int, int] = {}
    for t in tiles:
        r = sum(1 for a, b in zip(tops, tops[1:]) if b - a > LAYOUT.row_tol * th and b <= t.box[1])
        per_row[r] = per_row.get(r, 0) + 1
    return FrameLayout("gallery", rows, max(per_row.values()))


def with_faces(layout: FrameLayout, frame: np.ndarray, tiles: list[Tile],
               faces: list[list[Box]]) -> tuple[FrameLayout, set[int]]:
    """The layout once faces are found (face boxes in tile pixels), and the tiles that cannot be
    trusted: a tile as big as a gallery holding faces with a straight seam between them (a gallery
    mid re-layout cut as one; two people sharing a camera sit in one picture), or with the page
    showing in a corner (tiles sliding over one another). Such a tile gets no
    verdict, the rest of the frame is judged: a speaker holding up a tablet loses only their own
    tile's verdict (multiple_faces would accuse nobody either). The layout is then UNKNOWN; "share +
    strip" when the big tile of a speaker layout holds no face."""
    area = frame.shape[0] * frame.shape[1]
    # only a tile as big as a gallery: in a gallery of tiles, a student holding up a tablet beside
    # their face is multiple_faces
    doubtful = {i for i, (tile, fl) in enumerate(zip(tiles, faces))
                if len(fl) >= 2 and tile.box[2] * tile.box[3] >= LAYOUT.gallery * area
                and (_seam_between(frame, tile.box, fl) or _hollow_corner(frame, tile.box))}
    if doubtful:
        return UNKNOWN, doubtful
    if layout.kind == "speaker + strip":
        big = int(np.argmax([t.box[2] * t.box[3] for t in tiles]))
        if not faces[big] and not tiles[big].camera_off:
            return FrameLayout("share + strip"), doubtful
    return layout, doubtful


def _seam_between(frame: np.ndarray, box: Box, faces: list[Box]) -> bool:
    """Whether a straight colour step runs the tile's whole height (or width) between two of its
    faces: the edge where one video meets the next."""
    x, y, w, h = (int(v) for v in box)
    reg = frame[max(0, y):y + h, max(0, x):x + w]
    if reg.shape[0] < LAYOUT.min_seam_side or reg.shape[1] < LAYOUT.min_seam_side:
        return False
    cols = gapless.lines(reg, axis=1)
    rows = gapless.lines(reg, axis=0)
    for i, a in enumerate(faces):
        for b in faces[i + 1:]:
            lo, hi = sorted((a[0] + a[2] / 2, b[0] + b[2] / 2))
            if any(lo < c < hi and not _crosses(c, a, b, 0) for c in cols):
                return True
            lo, hi = sorted((a[1] + a[3] / 2, b[1] + b[3] / 2))
            if any(lo < r < hi and not _crosses(r, a, b, 1) for r in rows):
                return True
    return False


def _hollow_corner(frame: np.ndarray, box: Box) -> bool:
    """Whether a corner of the tile is the flat colour of the page just outside it: a video fills its
    rectangle, tiles sliding over one another mid re-layout leave the page showing in its corners."""
    x, y, w, h = (int(v) for v in box)
    H, W = frame.shape[:2]
    out = [frame[max(0, y - 3):max(0, y - 1), x:x + w], frame[y + h + 1:y + h + 3, x:x + w],
           frame[y:y + h, max(0, x - 3):max(0, x - 1)], frame[y:y + h, x + w + 1:x + w + 3]]
    ring = np.concatenate([o.reshape(-1, 3) for o in out]).astype(np.int16)
    if len(ring) < LAYOUT.min_ring:
        return False                     # a tile filling the frame: no page around it
    page = np.median(ring, axis=0)
    if (np.abs(ring - page).max(axis=1) <= LAYOUT.flat_page_tol).mean() < LAYOUT.flat_ring:
        return False                     # no flat page around the tile
    cw, ch = max(2, w // LAYOUT.corner), max(2, h // LAYOUT.corner)
    for cx, cy in ((x, y), (x + w - cw, y), (x, y + h - ch), (x + w - cw, y + h - ch)):
        patch = frame[cy:cy + ch:2, cx:cx + cw:2].reshape(-1, 3).astype(np.int16)
        if len(patch) and (np.abs(patch - page).max(axis=1) <= LAYOUT.flat_page_tol).mean() >= LAYOUT.hollow:
            return True
    return False


def _crosses(pos: float, a: Box, b: Box, axis: int) -> bool:
    """Whether the line at pos runs through either face box (then it is no seam between them)."""
    return any(f[axis] < pos < f[axis] + f[axis + 2] for f in (a, b))
