"""One video filling the window: Zoom's speaker view with nobody else on camera (or the filmstrip
hidden). The gap search finds no tile in it, or only fragments of its picture (a white wall reads
as background). It is a rectangle of video shape over most of the frame whose sides are straight
colour steps along their whole length, each with the window's flat background just outside it (or
the frame's edge)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bot import gapless


@dataclass(frozen=True)
class SpeakerTuning:
    """The lone speaker's tuning values, each with its reason."""
    aspect: tuple[float, float] = (1.2, 2.4)  # width / height of the video (4:3 to 21:9, a name bar or letterbox aside)
    area: float = 0.5  # share of the frame it covers at least
    side: float = 0.6  # each side is a colour step along at least this share of its length
    edge: int = 2  # a side this close to the frame's edge (pixels) is that edge
    band: int = 3  # the band just outside a side (pixels) that must be the window's flat colour
    inside: float = 0.6  # a side's inner band is at most this share page-coloured (a dark picture may be), or a step
    window_page_tol: int = 10  # channel levels within which a pixel is the window's page colour (bands, ring)
    max_lines: int = 6  # candidate lines kept at each end of each axis
    min_side: int = 64  # a frame narrower or lower than this (pixels) holds no window with a video
    ring_page: float = 0.8  # the frame's outer ring is at least this share one colour when a page surrounds it
    outside_page: float = 0.95  # the bands outside the video's sides are at least this share the page
    edge_page: float = 0.5  # a frame edge side this share page-coloured or more is the window's, not the picture's


SPEAKER = SpeakerTuning()


def lone(frame: np.ndarray) -> tuple | None:
    """(the video's box (x0, y0, x1, y1, frame pixels), the page's colour (B, G, R)), or None when the
    frame holds no such video."""
    H, W = frame.shape[:2]
    if H < SPEAKER.min_side or W < SPEAKER.min_side:
        return None
    margins = _margins(frame)
    xs = _candidates(gapless.lines(frame, axis=1), W, margins[0::2])
    ys = _candidates(gapless.lines(frame, axis=0), H, margins[1::2])
    best, best_area = None, SPEAKER.area * W * H
    for x0 in xs[0]:
        for x1 in xs[1]:
            for y0 in ys[0]:
                for y1 in ys[1]:
                    w, h = x1 - x0, y1 - y0
                    if w * h <= best_area or not SPEAKER.aspect[0] <= w / h <= SPEAKER.aspect[1]:
                        continue
                    if (page := _framed(frame, (x0, y0, x1, y1))) is not None:
                        best, best_area = ((x0, y0, x1, y1), page), w * h
    return best


def _margins(frame: np.ndarray) -> tuple:
    """Where the content starts from each edge of a frame whose outer ring is one flat colour (the
    window's page): (left, top, right, bottom), the median over sampled lines; () without a page."""
    ring = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]])
    page = np.median(ring, axis=0)
    if _page_share(ring, page) < SPEAKER.ring_page:
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
    near = [0] + list(margins[:1]) + [p for p in lines if SPEAKER.edge < p < n / 2][:SPEAKER.max_lines]
    far = [n] + list(margins[1:]) + [p for p in lines if n / 2 < p < n - SPEAKER.edge][::-1][:SPEAKER.max_lines]
    return list(dict.fromkeys(near)), list(dict.fromkeys(far))


def _framed(frame: np.ndarray, box: tuple) -> np.ndarray | None:
    """The page's colour when every side of box is the frame's edge or the picture's edge, with a
    flat band of one colour just outside (the page) and the picture just inside: a straight step
    along SPEAKER.side of its length, or a band mostly unlike the page; at least two sides are the picture's
    edge. None otherwise."""
    H, W = frame.shape[:2]
    x0, y0, x1, y1 = box
    band = SPEAKER.band
    sides, edges = [], []
    # a step line is placed within a pixel of the boundary: the bands start two pixels off it
    for pos, n, axis, out, inside in (
            (x0, W, 1, frame[y0:y1, max(0, x0 - 2 - band):max(0, x0 - 2)], frame[y0:y1, x0 + 2:x0 + 2 + band]),
            (x1, W, 1, frame[y0:y1, x1 + 2:x1 + 2 + band], frame[y0:y1, max(0, x1 - 2 - band):max(0, x1 - 2)]),
            (y0, H, 0, frame[max(0, y0 - 2 - band):max(0, y0 - 2), x0:x1], frame[y0 + 2:y0 + 2 + band, x0:x1]),
            (y1, H, 0, frame[y1 + 2:y1 + 2 + band, x0:x1], frame[max(0, y1 - 2 - band):max(0, y1 - 2), x0:x1])):
        if pos <= SPEAKER.edge or pos >= n - SPEAKER.edge:
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
    if _page_share(px, page) < SPEAKER.outside_page or any(_page_share(e, page) >= SPEAKER.edge_page for e in edges):
        return None
    for pos, axis, _, inside in sides:
        a, b = (y0, y1) if axis == 1 else (x0, x1)
        if _page_share(inside, page) > SPEAKER.inside and gapless.side_support(frame, pos, a, b, axis) < SPEAKER.side:
            return None
    return page.astype(np.uint8)


def _is_page(px: np.ndarray, page: np.ndarray) -> np.ndarray:
    """255 where a pixel (an image or n x 3) is within SPEAKER.window_page_tol of the page colour in every
    channel."""
    lo = np.clip(page - SPEAKER.window_page_tol, 0, 255).astype(np.uint8)
    hi = np.clip(page + SPEAKER.window_page_tol, 0, 255).astype(np.uint8)
    img = np.ascontiguousarray(px).reshape(-1, 1, 3) if px.ndim == 2 else np.ascontiguousarray(px)
    out = cv2.inRange(img, lo, hi)
    return out.reshape(px.shape[:-1]) if px.ndim == 2 else out


def _page_share(px: np.ndarray, page: np.ndarray) -> float:
    """Share of the pixels (an image or n x 3) within SPEAKER.window_page_tol of the page colour."""
    if px.size == 0:
        return 0.0
    return cv2.countNonZero(_is_page(px, page).reshape(-1, 1)) / (px.size // 3)
