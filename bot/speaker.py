"""One video filling the window: Zoom's speaker view with nobody else on camera (or the filmstrip
hidden). The gap search finds no tile in it, or only fragments of its picture (a white wall reads
as background). It is a rectangle of video shape over most of the frame whose sides are straight
colour steps along their whole length, each with the window's flat background just outside it (or
the frame's edge)."""
from __future__ import annotations

import numpy as np

from bot import gapless

ASPECT = (1.2, 2.4)     # width / height of the video (4:3 to 21:9, a name bar or letterbox aside)
AREA = 0.5              # share of the frame it covers at least
SIDE = 0.6              # each side is a colour step along at least this share of its length
EDGE = 2                # a side this close to the frame's edge is that edge
BAND = 3                # the band just outside a side that must be the window's flat colour
PAGE_TOL = 10           # the bands' colours differ by at most this (channel levels)
MAX_LINES = 6           # candidate lines kept at each end of each axis


def lone(frame: np.ndarray) -> tuple | None:
    """The video's box (x0, y0, x1, y1, frame pixels), or None when the frame holds no such video."""
    H, W = frame.shape[:2]
    if H < 64 or W < 64:
        return None
    xs = _candidates(gapless.lines(frame, axis=1), W)
    ys = _candidates(gapless.lines(frame, axis=0), H)
    best, best_area = None, AREA * W * H
    for x0 in xs[0]:
        for x1 in xs[1]:
            for y0 in ys[0]:
                for y1 in ys[1]:
                    w, h = x1 - x0, y1 - y0
                    if w * h <= best_area or not ASPECT[0] <= w / h <= ASPECT[1]:
                        continue
                    if _framed(frame, (x0, y0, x1, y1)):
                        best, best_area = (x0, y0, x1, y1), w * h
    return best


def _candidates(lines: list[int], n: int) -> tuple[list[int], list[int]]:
    """Where the video's near and far sides may lie along an axis of length n: the frame's edges and
    the outermost step lines in each half."""
    near = [0] + [p for p in lines if EDGE < p < n / 2][:MAX_LINES]
    far = [n] + [p for p in lines if n / 2 < p < n - EDGE][::-1][:MAX_LINES]
    return near, far


def _framed(frame: np.ndarray, box: tuple) -> bool:
    """Every side of box is the frame's edge or a straight step along SIDE of its length, with a
    flat band of one colour just outside; at least two sides are such steps."""
    H, W = frame.shape[:2]
    x0, y0, x1, y1 = box
    bands, edges = [], []
    # a step line is placed within a pixel of the boundary: the band starts two pixels off it
    for pos, n, axis, band in ((x0, W, 1, frame[y0:y1, max(0, x0 - 2 - BAND):max(0, x0 - 2)]),
                               (x1, W, 1, frame[y0:y1, x1 + 2:x1 + 2 + BAND]),
                               (y0, H, 0, frame[max(0, y0 - 2 - BAND):max(0, y0 - 2), x0:x1]),
                               (y1, H, 0, frame[y1 + 2:y1 + 2 + BAND, x0:x1])):
        if pos <= EDGE or pos >= n - EDGE:
            # the frame's own edge line there: the picture's, not the window's background
            edges.append(frame[y0:y1, min(pos, n - 1)] if axis == 1 else frame[min(pos, n - 1), x0:x1])
            continue
        a, b = (y0, y1) if axis == 1 else (x0, x1)
        if gapless.side_support(frame, pos, a, b, axis) < SIDE:
            return False
        if band.size == 0:
            return False
        bands.append(band.reshape(-1, 3))
    if len(bands) < 2:
        return False
    px = np.concatenate(bands).astype(np.int16)
    ref = np.median(px, axis=0)
    if float((np.abs(px - ref).max(axis=1) <= PAGE_TOL).mean()) < 0.95:
        return False
    return all(float((np.abs(e.astype(np.int16) - ref).max(axis=1) <= PAGE_TOL).mean()) < 0.5 for e in edges)
