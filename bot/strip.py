"""Microsoft Teams' strip under its gallery: audio-only participants as initials bubbles (circles with
no label), camera-off participants as tiles with an initials avatar, and a "+N" counter of those not
shown, which is no participant. Every bubble and strip tile is a camera-off participant."""
from __future__ import annotations

import cv2
import numpy as np

from bot.types import Box

BAND = (0.04, 0.2)      # the strip's height as a share of the frame's
RADIUS = (0.18, 0.45)   # a bubble's radius as a share of the strip's height
FILLED = 0.6            # a strip tile fills at least this share of the strip's height in its columns
                        # (its name label's dark text is the strip's colour)
OFF_STRIP = 12          # channel distance from the strip's colour that is something on it
LEFT = 0.1              # the strip fills from the left: its first bubble (or the counter) is this near
COUNTER_DARK = 0.7      # the counter's fill is at most this share of the bubbles' brightness


def strip_boxes(frame: np.ndarray, gallery: list[Box]) -> list[Box]:
    """Boxes of the participants in a strip below the gallery (bubbles and camera-off tiles), left to
    right; [] when there is no such strip."""
    H, W = frame.shape[:2]
    if len(gallery) < 2:
        return []
    top = max(y + h for _, y, _, h in gallery)
    band_h = H - top
    left, right = min(x for x, _, _, _ in gallery), max(x + w for x, _, w, _ in gallery)
    # Teams' gallery runs edge to edge above its strip; Meet's and Zoom's toolbars hold round
    # buttons too, but grouped in the middle, under a gallery with margins
    if not BAND[0] * H <= band_h <= BAND[1] * H or right - left < 0.9 * W:
        return []
    band = frame[top:H]
    circles = _circles(band)
    if len(circles) < 2 or min(c[0] for c in circles) > LEFT * W:
        return []
    blocks, off = _blocks(band)
    out: list[Box] = []
    for x0, x1 in blocks:
        inside = [c for c in circles if x0 <= c[0] < x1]
        k = len(inside) or max(1, int(round((x1 - x0) / (band_h * 2.1))))
        step = (x1 - x0) / k
        rows = np.nonzero(off[:, x0:x1].mean(axis=1) >= FILLED)[0]
        y0, y1 = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, band_h)
        out += [(int(x0 + i * step), top + y0, int(step), y1 - y0) for i in range(k)]
    loose = sorted((c for c in circles if not any(x0 <= c[0] < x1 for x0, x1 in blocks)), key=lambda c: c[0])
    loose = _without_counter(band, loose)
    out += [(int(cx - r), int(top + cy - r), int(2 * r), int(2 * r)) for cx, cy, r in loose]
    return sorted(out)


def _circles(band: np.ndarray) -> list[tuple[float, float, float]]:
    """Circles (x, y, r in band pixels) of a bubble's size, centred in the strip's height."""
    h = band.shape[0]
    gray = cv2.medianBlur(cv2.cvtColor(band, cv2.COLOR_BGR2GRAY), 3)
    found = cv2.HoughCircles(gray, cv2.HOUGH_GRADIENT, dp=1, minDist=h * 0.6, param1=80, param2=22,
                             minRadius=int(RADIUS[0] * h), maxRadius=int(RADIUS[1] * h) + 1)
    if found is None:
        return []
    return [(float(x), float(y), float(r)) for x, y, r in found[0] if abs(y - h / 2) <= 0.2 * h]


def _blocks(band: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Column runs where something other than the strip's colour fills the strip's height: camera-off
    (or video) tiles standing in the strip; and the mask of what is not the strip's colour."""
    px = band[::2, ::2].reshape(-1, 3) >> 3
    keys = (px[:, 0].astype(np.int32) << 10) | (px[:, 1].astype(np.int32) << 5) | px[:, 2]
    k = int(np.argmax(np.bincount(keys, minlength=1 << 15)))
    colour = np.array([k >> 10, (k >> 5) & 31, k & 31], np.int16) * 8 + 4
    off = np.abs(band.astype(np.int16) - colour).max(axis=2) > OFF_STRIP
    full = cv2.morphologyEx((off.mean(axis=0) >= FILLED).astype(np.uint8)[None, :], cv2.MORPH_CLOSE,
                            np.ones((1, 5), np.uint8))[0] > 0    # a letter's column is no gap
    h = band.shape[0]
    runs, start = [], None
    for x, v in enumerate(np.append(full, False)):
        if v and start is None:
            start = x
        elif not v and start is not None:
            if x - start >= h:
                runs.append((start, x))
            start = None
    return runs, off


def _without_counter(band: np.ndarray, circles: list) -> list:
    """The bubbles without the "+N" counter: the first circle, when its fill is much darker than the
    other bubbles' pastel."""
    if len(circles) < 3:
        return circles
    luma = cv2.cvtColor(band, cv2.COLOR_BGR2GRAY)
    fills = [float(np.median(luma[int(cy - r / 2):int(cy + r / 2), int(cx - r / 2):int(cx + r / 2)]))
             for cx, cy, r in circles]
    rest = float(np.median(fills[1:]))
    return circles[1:] if fills[0] < COUNTER_DARK * rest else circles
