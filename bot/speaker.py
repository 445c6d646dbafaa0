"""One video filling the window: Zoom's speaker view with nobody else on camera (or the filmstrip
hidden). The gap search finds no tile in it, or only fragments of its picture (a white wall reads
as background). It is a rectangle of video shape over most of the frame whose sides are straight
colour steps along their whole length, each with the window's flat background just outside it (or
the frame's edge)."""
from __future__ import annotations

import cv2
import numpy as np

from bot import gapless

ASPECT = (1.2, 2.4)     # width / height of the video (4:3 to 21:9, a name bar or letterbox aside)
AREA = 0.5              # share of the frame it covers at least
SIDE = 0.6              # each side is a colour step along at least this share of its length
EDGE = 2                # a side this close to the frame's edge is that edge
BAND = 3                # the band just outside a side that must be the window's flat colour
INSIDE = 0.6            # a side's inner band is at most this share page-coloured (a dark picture may be), or a step
PAGE_TOL = 10           # the bands' colours differ by at most this (channel levels)
MAX_LINES = 6           # candidate lines kept at each end of each axis


def lone(frame: np.ndarray) -> tuple | None:
    """(the video's box (x0, y0, x1, y1, frame pixels), the page's colour (B, G, R)), or None when the
    frame holds no such video."""
    H, W = frame.shape[:2]
    if H < 64 or W < 64:
        return None
    margins = _margins(frame)
    xs = _candidates(gapless.lines(frame, axis=1), W, margins[0::2])
    ys = _candidates(gapless.lines(frame, axis=0), H, margins[1::2])
    best, best_area = None, AREA * W * H
    for x0 in xs[0]:
        for x1 in xs[1]:
            for y0 in ys[0]:
                for y1 in ys[1]:
                    w, h = x1 - x0, y1 - y0
                    if w * h <= best_area or not ASPECT[0] <= w / h <= ASPECT[1]:
                        continue
                    if (page := _framed(frame, (x0, y0, x1, y1))) is not None:
                        best, best_area = ((x0, y0, x1, y1), page), w * h
    return best


def _margins(frame: np.ndarray) -> tuple:
    """Where the content starts from each edge of a frame whose outer ring is one flat colour (the
    window's page): (left, top, right, bottom), the median over sampled lines; () without a page."""
    ring = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]])
    page = np.median(ring, axis=0)
    if _page_share(ring, page) < 0.8:
        return ()
    out = []
    for lines in (np.ascontiguousarray(frame[::8]), np.ascontiguousarray(frame[:, ::8].transpose(1, 0, 2))):
        content = _is_page(lines, page) == 0
        out.append((content.argmax(axis=1), content.shape[1] - content[:, ::-1].argmax(axis=1), content.any(axis=1)))
    (l, r, kx), (t, b, ky) = out
    if not kx.any() or not ky.any():
        return ()
    return (int(np.median(l[kx])), int(np.median(t[ky])), int(np.median(r[kx])), int(np.median(b[ky])))


def _candidates(lines: list[int], n: int, margins: tuple) -> tuple[list[int], list[int]]:
    """Where the video's near and far sides may lie along an axis of length n: the frame's edges,
    where the page ends (margins: near, far) and the outermost step lines in each half."""
    near = [0] + list(margins[:1]) + [p for p in lines if EDGE < p < n / 2][:MAX_LINES]
    far = [n] + list(margins[1:]) + [p for p in lines if n / 2 < p < n - EDGE][::-1][:MAX_LINES]
    return list(dict.fromkeys(near)), list(dict.fromkeys(far))


def _framed(frame: np.ndarray, box: tuple) -> np.ndarray | None:
    """The page's colour when every side of box is the frame's edge or the picture's edge, with a
    flat band of one colour just outside (the page) and the picture just inside: a straight step
    along SIDE of its length, or a band mostly unlike the page; at least two sides are the picture's
    edge. None otherwise."""
    H, W = frame.shape[:2]
    x0, y0, x1, y1 = box
    sides, edges = [], []
    # a step line is placed within a pixel of the boundary: the bands start two pixels off it
    for pos, n, axis, out, inside in (
            (x0, W, 1, frame[y0:y1, max(0, x0 - 2 - BAND):max(0, x0 - 2)], frame[y0:y1, x0 + 2:x0 + 2 + BAND]),
            (x1, W, 1, frame[y0:y1, x1 + 2:x1 + 2 + BAND], frame[y0:y1, max(0, x1 - 2 - BAND):max(0, x1 - 2)]),
            (y0, H, 0, frame[max(0, y0 - 2 - BAND):max(0, y0 - 2), x0:x1], frame[y0 + 2:y0 + 2 + BAND, x0:x1]),
            (y1, H, 0, frame[y1 + 2:y1 + 2 + BAND, x0:x1], frame[max(0, y1 - 2 - BAND):max(0, y1 - 2), x0:x1])):
        if pos <= EDGE or pos >= n - EDGE:
            # the frame's own edge line there: the picture's, not the window's background
            edges.append(frame[y0:y1, min(pos, n - 1)] if axis == 1 else frame[min(pos, n - 1), x0:x1])
        elif out.size == 0 or inside.size == 0:
            return None
        else:
            sides.append((pos, axis, out.reshape(-1, 3), inside.reshape(-1, 3)))
    if len(sides) < 2:
        return None
    px = np.concatenate([o for _, _, o, _ in sides])
    page = np.median(px, axis=0)
    if _page_share(px, page) < 0.95 or any(_page_share(e, page) >= 0.5 for e in edges):
        return None
    for pos, axis, _, inside in sides:
        a, b = (y0, y1) if axis == 1 else (x0, x1)
        if _page_share(inside, page) > INSIDE and gapless.side_support(frame, pos, a, b, axis) < SIDE:
            return None
    return page.astype(np.uint8)


def _is_page(px: np.ndarray, page: np.ndarray) -> np.ndarray:
    """255 where a pixel (an image or n x 3) is within PAGE_TOL of the page colour in every channel."""
    lo = np.clip(page - PAGE_TOL, 0, 255).astype(np.uint8)
    hi = np.clip(page + PAGE_TOL, 0, 255).astype(np.uint8)
    img = np.ascontiguousarray(px).reshape(-1, 1, 3) if px.ndim == 2 else np.ascontiguousarray(px)
    out = cv2.inRange(img, lo, hi)
    return out.reshape(px.shape[:-1]) if px.ndim == 2 else out


def _page_share(px: np.ndarray, page: np.ndarray) -> float:
    """Share of the pixels (an image or n x 3) within PAGE_TOL of the page colour."""
    if px.size == 0:
        return 0.0
    return cv2.countNonZero(_is_page(px, page).reshape(-1, 1)) / (px.size // 3)
