"""A floating video on the gallery's page (Google Meet 2021's self-view, floating bottom-right over
the grid). Over a tile's corner it breaks the gap around that tile, so the tile and the thumbnail
join into one region that is neither: the tile is a cell of the gallery's tile size in one corner
of the region, lined up with a row and a column of the tiles found; the thumbnail fills the
opposite corner, and where it lies on the page its sides are the region's outline. On the page
alone it is a filled rectangle of video shape, smaller than a tile, in a corner of the frame. A
student's video of exactly the page's colour draws just that inside their own tile, so the caller
(bot/tiles.py) first takes a region lying in an empty cell of the gallery's lattice as that cell's
tile when the cell's name label shows (or the region covers the label's place)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.tile_tuning import TUNING


@dataclass(frozen=True)
class OverhangTuning:
    """The thumbnail on the page's tuning values, each with its reason (the covered tile's size
    against the gallery's is TUNING.size_tol)."""
    aspect: tuple[float, float] = (1.3, 2.1)  # the thumbnail's width / height: a 16:9 or 16:10 video
    thumb: tuple[float, float] = (0.2, 0.9)  # its width as a share of the tile's
    filled: float = 0.9  # what of the thumbnail lies beyond the tile is this much content
    empty: float = 0.05  # the rest of the region beyond the tile is this much background at most
    edge: float = 0.5  # a line beyond the tile more than this share content crosses the thumbnail
    corner: tuple[float, float] = (0.1, 0.25)  # a thumbnail alone reaches this share of the frame's width, height
    # from its edges
    lined_up: float = 0.03  # a side within this share of a tile's width of the found tiles' (2 px at least) lines up


OVERHANG = OverhangTuning()


def split(leaf: tuple, mask: np.ndarray, boxes: list[tuple], size: tuple[float, float]) -> tuple | None:
    """(tile, thumbnail) boxes (x0, y0, x1, y1, mask pixels) when the region `leaf` is a tile of
    `size` with a thumbnail hanging over one of its corners; None otherwise. `boxes` are the tiles
    found, whose rows and columns the covered tile must continue."""
    x0, y0, x1, y1 = (int(round(v)) for v in leaf)
    tw, th = (int(round(v)) for v in size)
    lw, lh = x1 - x0, y1 - y0
    tol = TUNING.size_tol
    if not (lw >= (1 - tol) * tw and lh >= (1 - tol) * th and lw <= 2 * tw and lh <= 2 * th):
        return None
    if lw <= (1 + tol) * tw and lh <= (1 + tol) * th:
        return None             # a tile alone
    m = mask[y0:y1, x0:x1]
    for fx in (False, True):    # the tile in the region's left (right) corner ...
        for fy in (False, True):    # ... and top (bottom) one
            found = _top_left_tile(m[::-1 if fy else 1, ::-1 if fx else 1], tw, th)
            if found is None:
                continue
            (cx1, cy1), (rx0, ry0) = found
            tile = (x1 - cx1, y1 - cy1, x1, y1) if fx and fy else (x1 - cx1, y0, x1, y0 + cy1) if fx else \
                (x0, y1 - cy1, x0 + cx1, y1) if fy else (x0, y0, x0 + cx1, y0 + cy1)
            thumb = (x0, y0, x1 - rx0, y1 - ry0) if fx and fy else (x0, y0 + ry0, x1 - rx0, y1) if fx else \
                (x0 + rx0, y0, x1, y1 - ry0) if fy else (x0 + rx0, y0 + ry0, x1, y1)
            if _lined_up(tile, boxes, tw):
                return tile, thumb
    return None


def _top_left_tile(m: np.ndarray, tw: int, th: int) -> tuple | None:
    """In a region turned so that the tile sits top-left: ((tile width, height), (thumbnail x0, y0)),
    the thumbnail filling the bottom-right corner and hanging past the tile's right and bottom
    sides; None when the region is not that."""
    h, w = m.shape
    cw, ch = min(w, tw), min(h, th)
    below, right = m[ch + 1:, :], m[:, cw + 1:]
    if below.shape[0] < 2 or right.shape[1] < 2:
        return None
    cols = np.flatnonzero(below.mean(axis=0) > OVERHANG.edge)
    rows = np.flatnonzero(right.mean(axis=1) > OVERHANG.edge)
    if len(cols) == 0 or len(rows) == 0:
        return None
    rx0, ry0 = int(cols[0]), int(rows[0])
    bw, bh = w - rx0, h - ry0
    aspect, thumb = OVERHANG.aspect, OVERHANG.thumb
    if not (aspect[0] <= bw / bh <= aspect[1] and thumb[0] * tw <= bw <= thumb[1] * tw):
        return None
    if rx0 >= cw or ry0 >= ch:
        return None             # it must cover the tile's corner
    if below[:, rx0:].mean() < OVERHANG.filled or right[ry0:].mean() < OVERHANG.filled:
        return None
    if rx0 > 1 and below[:, :rx0 - 1].mean() > OVERHANG.empty:
        return None
    if ry0 > 1 and right[:ry0 - 1].mean() > OVERHANG.empty:
        return None
    return (cw, ch), (rx0, ry0)


def _lined_up(tile: tuple, boxes: list[tuple], tw: float) -> bool:
    """Whether the tile continues a column and a row of the tiles found (one of its sides on theirs)."""
    tol = max(2.0, OVERHANG.lined_up * tw)
    col = any(abs(b[0] - tile[0]) <= tol or abs(b[2] - tile[2]) <= tol for b in boxes)
    row = any(abs(b[1] - tile[1]) <= tol or abs(b[3] - tile[3]) <= tol for b in boxes)
    return col and row


def alone(leaf: tuple, mask: np.ndarray, size: tuple[float, float]) -> bool:
    """Whether a region on the page (x0, y0, x1, y1, mask pixels) touching no tile is a thumbnail:
    a filled rectangle of video shape, smaller than the gallery's tile of `size`, reaching into a
    corner of the frame (the caller checks that it holds a picture, not a button or a panel)."""
    x0, y0, x1, y1 = (int(round(v)) for v in leaf)
    h, w = mask.shape
    bw, bh = x1 - x0, y1 - y0
    aspect, thumb = OVERHANG.aspect, OVERHANG.thumb
    if bh <= 0 or not (aspect[0] <= bw / bh <= aspect[1] and thumb[0] * size[0] <= bw <= thumb[1] * size[0]):
        return False
    side = x1 >= (1 - OVERHANG.corner[0]) * w or x0 <= OVERHANG.corner[0] * w
    end = y1 >= (1 - OVERHANG.corner[1]) * h or y0 <= OVERHANG.corner[1] * h
    return side and end and float(mask[y0:y1, x0:x1].mean()) >= OVERHANG.filled
