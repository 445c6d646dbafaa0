"""Where a display-name label lies in a tile or name strip, found in its pixels without a text
detector (~1 ms): light strokes kept by a white top-hat, grouped into lines, and the line a label is."""
from __future__ import annotations

import cv2
import numpy as np

_TOPHAT_FRAC = 0.15    # top-hat kernel, as a fraction of the region height: wider than any stroke
_STROKE_CONTRAST = 60  # a text stroke is this much (0-255) brighter than what surrounds it...
_STROKE_MIN = 130      # ...and at least this bright
_MAX_COMPONENTS = 400  # more is video texture; the first (leftmost) are enough to find a label
# Margin (line heights) around a line found by image processing, which is tight on the strokes:
# with 0.3 above and below the text fills ~60% of the recogniser's 48 px, as in its training crops
# (0.15: one name fewer right and 20% more width to run; 0.5: three fewer).
_FAST_PAD = (0.3, 0.3)
_LABEL_MAX_X = 0.2     # a bottom label starts in this left fraction of the tile (Zoom, Meet)
_LABEL_MAX_H = 0.5     # and its line is at most this fraction of the bottom band high


def has_text(img: np.ndarray) -> bool:
    """Cheap check (~0.1 ms) that a region holds anything text-like: enough small, sharp strokes.

    A plain camera-off background or an empty strip fails it; it errs on the side of True.
    """
    if img is None or img.size == 0 or min(img.shape[:2]) < 6:
        return False
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    grad = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    strong = grad > 48
    return strong.mean() > 0.004 and strong.sum() >= 12


class Line:
    """One text line found (by the detector or in the pixels), in the coordinates of its region."""

    def __init__(self, x0: float, y0: float, x1: float, y1: float, score: float):
        self.x0, self.y0, self.x1, self.y1, self.score = x0, y0, x1, y1, score

    @property
    def h(self) -> float:
        return self.y1 - self.y0

    @property
    def w(self) -> float:
        return self.x1 - self.x0


def tophat_side(height: int) -> int:
    """The white top-hat's kernel side for a region `height` px high: odd, wider than any stroke."""
    return max(5, round(height * _TOPHAT_FRAC) | 1)


def stroke_mask(gray: np.ndarray) -> np.ndarray:
    """Pixels of light strokes thinner than a white top-hat of the region's height (text, not walls)."""
    k = tophat_side(gray.shape[0])
    hat = cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    return (hat > _STROKE_CONTRAST) & (gray > _STROKE_MIN)


def _bright_lines(region: np.ndarray) -> list[Line]:
    """Lines of light text in a region (Zoom: white on a dark translucent box; Meet: white with a
    shadow; a camera-off tile: light on a plain colour), by plain image processing (~1 ms).

    A white top-hat keeps strokes thinner than its kernel and drops what is wide and bright (a
    wall, a shirt, a window); its components are grouped left to right into lines of characters.
    """
    if region is None or region.size == 0 or min(region.shape[:2]) < 8:
        return []
    gray = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY) if region.ndim == 3 else region
    h, w = gray.shape
    mask = stroke_mask(gray).astype(np.uint8)
    n, _, st, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    # a character: at least 2 px high, not taller than most of the region, not a long edge
    keep = (st[1:, 3] >= 2) & (st[1:, 3] <= 0.6 * h) & (st[1:, 4] >= 3) & (st[1:, 2] <= 0.5 * w)
    comps = st[1:][keep]
    comps = comps[np.argsort(comps[:, 0], kind="stable")][:_MAX_COMPONENTS]
    boxes = comps.tolist()
    lines: list[list[int]] = []  # x0, y0, x1, y1, count
    for x, y, cw, ch, _a in boxes:
        for ln in lines:
            lh = ln[3] - ln[1]
            overlap = min(ln[3], y + ch) - max(ln[1], y)
            # the same line: overlapping rows, similar height, the gap under about a character
            if (overlap > 0.4 * min(lh, ch) and x - ln[2] < 0.9 * max(lh, ch)
                    and ch < 2.5 * lh and lh < 2.5 * ch):
                ln[:] = [min(ln[0], x), min(ln[1], y), max(ln[2], x + cw), max(ln[3], y + ch), ln[4] + 1]
                break
        else:
            lines.append([x, y, x + cw, y + ch, 1])
    # a name: at least two characters, a few pixels high, wider than high
    names = [ln for ln in lines
             if ln[4] >= 2 and ln[3] - ln[1] >= 4 and ln[2] - ln[0] >= 1.5 * (ln[3] - ln[1])]
    # a lone character a word's gap right of a name, as tall as its letters: a suffix ("Putri 3"), which
    # the grouping above leaves out when the space reaches 0.9 letter heights
    for x0, y0, x1, y1, c in lines:
        if c != 1:
            continue
        for ln in names:
            lh = ln[3] - ln[1]
            if (0 <= x0 - ln[2] < 1.5 * lh and 0.6 * lh <= y1 - y0 <= 1.3 * lh
                    and min(ln[3], y1) - max(ln[1], y0) > 0.6 * (y1 - y0)):
                ln[2], ln[1], ln[3] = x1, min(ln[1], y0), max(ln[3], y1)
                break
    # a first letter a letter's gap left of a name, as tall as its letters, that something bright
    # joined first (a tall edge of the video beside the box took the "M" of "Mareta Aliana 4")
    for ln in names:
        lh = ln[3] - ln[1]
        for x, y, cw, ch, _a in boxes:
            if (0 <= ln[0] - (x + cw) <= max(2, 0.25 * lh) and 0.6 * lh <= ch <= 1.4 * lh
                    and min(ln[3], y + ch) - max(ln[1], y) > 0.6 * ch):
                ln[0], ln[1], ln[3] = x, min(ln[1], y), max(ln[3], y + ch)
                break
    return [Line(float(x0), float(y0), float(x1), float(y1), 1.0) for x0, y0, x1, y1, _c in names]


# A located label: its crop, and whether it sits where a label goes. A badly read label in its
# place reads no better after the detector (it finds the same line: Hangul, tiny blurred text), so
# only a doubtful place earns the detector's second look.
Found = tuple[np.ndarray, bool]


def _bright_label_in_band(band: np.ndarray) -> Found | None:
    # Image processing also finds text in the video (a logo on a shirt, a poster) that the detector
    # would score low; the label is the one nearest the left edge, where both apps draw it.
    line = pick_label(_bright_lines(band), band.shape, prefer="bottom", left_weight=1.0)
    if line is None:
        return None
    # a line against the bottom edge is a toolbar or a cut-off tile more often than a label; one as
    # tall as half the band is the label joined with something bright behind it (a spoon, a lamp),
    # which the detector cuts apart
    placed = (line.x0 <= _LABEL_MAX_X * band.shape[1] and line.y1 < band.shape[0] - 1
              and line.h <= _LABEL_MAX_H * band.shape[0])
    return crop_line(band, line, *_FAST_PAD), placed


def bright_label_in_strip(strip: np.ndarray) -> Found | None:
    return _bright_label_in_band(strip)


def bright_label_in_tile(tile: np.ndarray) -> Found | None:
    """The label at the bottom left, else the big name in the centre of a camera-off tile."""
    th = tile.shape[0]
    found = _bright_label_in_band(tile[int(th * 0.65):])
    if found is not None:
        return found
    mid = tile[int(th * 0.2):int(th * 0.8)]
    line = pick_label(_bright_lines(mid), mid.shape, prefer="centre")
    # the detector's own choice in the centre is the same biggest, most central line
    return None if line is None else (crop_line(mid, line, *_FAST_PAD), True)


def _merge_line(lines: list[Line], seed: Line) -> Line:
    """The seed box joined with its neighbours on the same text line (a name split in words)."""
    x0, y0, x1, y1 = seed.x0, seed.y0, seed.x1, seed.y1
    changed = True
    used = {id(seed)}
    while changed:
        changed = False
        for ln in lines:
            if id(ln) in used:
                continue
            overlap = min(y1, ln.y1) - max(y0, ln.y0)
            gap = max(ln.x0 - x1, x0 - ln.x1)
            if overlap > 0.5 * min(y1 - y0, ln.h) and gap < 1.5 * (y1 - y0):
                x0, y0, x1, y1 = min(x0, ln.x0), min(y0, ln.y0), max(x1, ln.x1), max(y1, ln.y1)
                used.add(id(ln))
                changed = True
    return Line(x0, y0, x1, y1, seed.score)


def pick_label(lines: list[Line], shape, prefer: str, left_weight: float = 0.25) -> Line | None:
    h, w = shape[:2]
    # Too small to be a label: specks, icon fragments, compression noise.
    lines = [ln for ln in lines if ln.h >= 4 and ln.w >= 4]
    if not lines:
        return None
    if prefer == "bottom":
        # The lowest line that starts in the left part; labels are left-aligned in Zoom and Meet.
        left = [ln for ln in lines if ln.x0 < 0.5 * w] or lines
        seed = max(left, key=lambda ln: ln.y1 - left_weight * ln.x0 * h / max(w, 1))
    else:
        # The biggest line nearest the centre.
        cy = h / 2
        seed = max(lines, key=lambda ln: ln.h * ln.w ** 0.5 - abs((ln.y0 + ln.y1) / 2 - cy))
    return _merge_line(lines, seed)


def crop_line(region: np.ndarray, line: Line, pad_y: float = 0.15, pad_x: float = 0.3) -> np.ndarray:
    """The line cut out of the region (native pixels) with a margin (in line heights)."""
    h, w = region.shape[:2]
    pad_y, pad_x = pad_y * line.h, pad_x * line.h
    x0, x1 = int(max(0, line.x0 - pad_x)), int(min(w, np.ceil(line.x1 + pad_x)))
    y0, y1 = int(max(0, line.y0 - pad_y)), int(min(h, np.ceil(line.y1 + pad_y)))
    return region[y0:y1, x0:x1]
