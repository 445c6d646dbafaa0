"""What lies behind or around the tiles and is no tile: a shared screen (mostly exactly flat colour,
unlike a camera's picture), the figures on a shared slide's page, the desktop around a meeting
window. Boxes are (x0, y0, x1, y1) in working pixels unless said otherwise."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class BackdropTuning:
    """What lies behind the tiles: the tuning values, each with its reason."""
    share: float = 0.25  # a tile this share of the frame or more may be a shared screen (then it is none)
    flat_share: float = 0.35  # a shared screen is at least this share of exactly flat pixels; a camera less
    page_edge: float = 0.2  # the band just outside a shared slide is at most this much content
    min_side: int = 4  # a region fewer pixels across (at half scale) says nothing about its flatness
    inside: float = 0.99  # a region this share inside another lies within it (the desktop's window)
    slide_max: float = 0.9  # a slide's box is at most this share of the frame (the window shows round it)
    on_slide: float = 0.9  # a figure lies at least this share on the slide's box ...
    figure_max: float = 0.5  # ... and is at most this share of its area


BACKDROP = BackdropTuning()


def overlap(a: tuple, b: tuple) -> float:
    """Intersection area as a share of a's area."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / ((a[2] - a[0]) * (a[3] - a[1]))


def is_video(frame: np.ndarray, r: tuple, f: int) -> bool:
    """A camera's picture rather than a shared screen (r at 1/f of the frame): a slide or a document
    is mostly flat colour (no step at all between neighbouring pixels), a camera's noise and light
    leave little of that."""
    x0, y0, x1, y1 = (int(v * f) for v in r)
    g = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1:2, x0:x1:2]), cv2.COLOR_BGR2GRAY)
    if g.shape[0] < BACKDROP.min_side or g.shape[1] < BACKDROP.min_side:
        return False
    flat = (cv2.absdiff(g[1:, 1:], g[:-1, 1:]) == 0) & (cv2.absdiff(g[1:, 1:], g[1:, :-1]) == 0)
    return float(flat.mean()) < BACKDROP.flat_share


def without_desktop(leaves: list[tuple], w: int, h: int) -> list[tuple]:
    """The leaves but a region reaching all four frame edges around another as big as a shared
    screen: the desktop around a meeting window (whose one video is the tile), not a tile."""
    def big_inside(o):
        return any(k is not o and (k[2] - k[0]) * (k[3] - k[1]) >= BACKDROP.share * w * h
                   and overlap(k, o) > BACKDROP.inside for k in leaves)

    return [o for o in leaves if not (o[0] <= 1 and o[1] <= 1 and o[2] >= w - 1 and o[3] >= h - 1 and big_inside(o))]


def on_a_slide(boxes: list[tuple], readings: list[tuple], frame: np.ndarray, f: int) -> bool:
    """Whether the tiles of one background reading all lie well inside one big tile of another
    (readings: (tiles, content mask, ...)) that is no camera's picture: figures on a shared slide's
    page, the slide itself read on the window's background, which shows all round it (not a window
    of camera-off tiles on a desktop read on the tiles' own grey, nor a reading's tile filling the
    frame)."""
    area = (frame.shape[0] // f) * (frame.shape[1] // f)

    def size(b):
        return (b[2] - b[0]) * (b[3] - b[1])

    for other, mask, *_ in readings:
        for s in other:
            if s not in boxes and BACKDROP.share * area <= size(s) <= BACKDROP.slide_max * area and \
                    all(overlap(b, s) > BACKDROP.on_slide and size(b) <= BACKDROP.figure_max * size(s)
                        for b in boxes) and \
                    _on_page(mask, s) and not is_video(frame, s, f):
                return True
    return False


def _on_page(mask: np.ndarray, box: tuple) -> bool:
    """Whether the band just outside box is background all round, where the frame leaves room."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    bands = [mask[max(0, y0 - 3):max(0, y0 - 1), x0:x1], mask[y1 + 1:y1 + 3, x0:x1],
             mask[y0:y1, max(0, x0 - 3):max(0, x0 - 1)], mask[y0:y1, x1 + 1:x1 + 3]]
    return all(b.size == 0 or b.mean() < BACKDROP.page_edge for b in bands) and any(b.size for b in bands)
