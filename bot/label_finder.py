"""Where a display-name label lies in a tile or name strip, found in its pixels without a text
detector (~1 ms): light strokes kept by a white top-hat, grouped into lines, and the line a label is."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class FinderTuning:
    """Finding a label in pixels: the tuning values, each with its reason (figures: benchmarks/HISTORY.md,
    NameReader: locating labels)."""
    # light strokes: a white top-hat keeps what is thinner than its kernel
    tophat_frac: float = 0.15       # the kernel's side, in the region's heights: wider than any stroke
    tophat_min: int = 5             # px: the kernel's least side, still wider than a low region's strokes
    stroke_contrast: int = 60       # grey a text stroke stands above what surrounds it...
    stroke_min: int = 130           # ...and the least grey it has
    # has_text: a cheap check that errs on the side of True
    text_min_side: int = 6          # px: a region lower or narrower than this holds no text
    text_edge: int = 48             # grey step (morphological gradient) of a sharp edge, as a stroke's
    text_share: float = 0.004       # least share of sharp-edge pixels...
    text_px: int = 12               # ...and least count of them: a plain background or an empty strip has fewer
    # characters, and lines of them
    lines_min_side: int = 8         # px: a region lower or narrower than this is not searched for lines
    max_components: int = 400       # more is video texture; the first (leftmost) are enough to find a label
    char_min_h: int = 2             # px: a character is at least this high...
    char_max_h: float = 0.6         # ...and not taller than this share of the region (most of it)
    char_min_px: int = 3            # pixels a character covers at least: fewer is a speck
    char_max_w: float = 0.5         # a character is at most this share of the region wide: wider is a long edge
    row_share: float = 0.4          # rows two characters share, in the lower's height, to be on one line...
    char_gap: float = 0.9           # ...the gap between them under this many heights: about a character...
    char_h_ratio: float = 2.5       # ...and neither this many times as high as the other
    name_chars: int = 2             # characters a name has at least
    name_min_h: int = 4             # px: a name is at least this high...
    name_aspect: float = 1.5        # ...and this many times as wide as high
    # a lone character a word's gap right of a name is its suffix ("Putri 3"): at most suffix_gap line
    # heights away, suffix_h of them high
    suffix_gap: float = 1.5
    suffix_h: tuple[float, float] = (0.6, 1.3)
    # a first letter that something bright joined first (a tall edge of the video took the "M" of "Mareta
    # Aliana 4"): at most first_gap away (px, or line heights if more), first_h line heights high
    first_gap: tuple[int, float] = (2, 0.25)
    first_h: tuple[float, float] = (0.6, 1.4)
    join_rows: float = 0.6          # rows a suffix or first letter shares with the name, in its own height
    # the line that is the label
    min_line: int = 4               # px: a line lower or narrower than this is a speck, an icon fragment, noise
    merge_rows: float = 0.5         # rows a box shares with the label's line, in the lower's height, to join it...
    merge_gap: float = 1.5          # ...from at most this many line heights away: a name split in words
    left_part: float = 0.5          # a bottom label starts in this left share of its region (Zoom, Meet)
    left_weight: float = 0.25       # region heights lower a bottom line must be to beat one a width further left
    # lines found in pixels include text in the video (a logo, a poster): the label is the leftmost
    bright_left_weight: float = 1.0
    band_from: float = 0.65         # a tile's bottom band, from this far down: where Zoom and Meet draw the label
    centre: tuple[float, float] = (0.2, 0.8)  # the rows where a camera-off tile shows its name, big
    label_max_x: float = 0.2        # a bottom label starts in this left fraction of the tile (Zoom, Meet)...
    label_max_h: float = 0.5        # ...and its line is at most this fraction of the bottom band high
    # margin (line heights: above and below, beside) around a line tight on its strokes: the text fills
    # ~60% of the recogniser's height, as in its training crops (0.15 read one name fewer, 0.5 three)
    fast_pad: tuple[float, float] = (0.3, 0.3)


FINDER_TUNING = FinderTuning()


def has_text(img: np.ndarray, t: FinderTuning = FINDER_TUNING) -> bool:
    """Cheap check (~0.1 ms) that a region holds anything text-like: enough small, sharp strokes.

    A plain camera-off background or an empty strip fails it; it errs on the side of True.
    """
    if img is None or img.size == 0 or min(img.shape[:2]) < t.text_min_side:
        return False
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    grad = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    strong = grad > t.text_edge
    return strong.mean() > t.text_share and strong.sum() >= t.text_px


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


def tophat_side(height: int, t: FinderTuning = FINDER_TUNING) -> int:
    """The white top-hat's kernel side for a region `height` px high: odd, wider than any stroke."""
    return max(t.tophat_min, round(height * t.tophat_frac) | 1)


def stroke_mask(gray: np.ndarray, t: FinderTuning = FINDER_TUNING) -> np.ndarray:
    """Pixels of light strokes thinner than a white top-hat of the region's height (text, not walls)."""
    k = tophat_side(gray.shape[0], t)
    hat = cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    return (hat > t.stroke_contrast) & (gray > t.stroke_min)


def _bright_lines(region: np.ndarray, t: FinderTuning = FINDER_TUNING) -> list[Line]:
    """Lines of light text in a region (Zoom: white on a dark translucent box; Meet: white with a
    shadow; a camera-off tile: light on a plain colour), by plain image processing (~1 ms).

    A white top-hat keeps strokes thinner than its kernel and drops what is wide and bright (a
    wall, a shirt, a window); its components are grouped left to right into lines of characters.
    """
    if region is None or region.size == 0 or min(region.shape[:2]) < t.lines_min_side:
        return []
    gray = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY) if region.ndim == 3 else region
    h, w = gray.shape
    mask = stroke_mask(gray, t).astype(np.uint8)
    n, _, st, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    # a character: a few px high, not taller than most of the region, not a long edge
    keep = ((st[1:, 3] >= t.char_min_h) & (st[1:, 3] <= t.char_max_h * h) & (st[1:, 4] >= t.char_min_px)
            & (st[1:, 2] <= t.char_max_w * w))
    comps = st[1:][keep]
    comps = comps[np.argsort(comps[:, 0], kind="stable")][:t.max_components]
    boxes = comps.tolist()
    lines: list[list[int]] = []  # x0, y0, x1, y1, count
    for x, y, cw, ch, _a in boxes:
        for ln in lines:
            lh = ln[3] - ln[1]
            overlap = min(ln[3], y + ch) - max(ln[1], y)
            # the same line: overlapping rows, similar height, the gap under about a character
            if (overlap > t.row_share * min(lh, ch) and x - ln[2] < t.char_gap * max(lh, ch)
                    and ch < t.char_h_ratio * lh and lh < t.char_h_ratio * ch):
                ln[:] = [min(ln[0], x), min(ln[1], y), max(ln[2], x + cw), max(ln[3], y + ch), ln[4] + 1]
                break
        else:
            lines.append([x, y, x + cw, y + ch, 1])
    # a name: at least two characters, a few pixels high, wider than high
    names = [ln for ln in lines if ln[4] >= t.name_chars and ln[3] - ln[1] >= t.name_min_h
             and ln[2] - ln[0] >= t.name_aspect * (ln[3] - ln[1])]
    # a lone character a word's gap right of a name, as tall as its letters: a suffix ("Putri 3"), which
    # the grouping above leaves out when the space reaches 0.9 letter heights
    for x0, y0, x1, y1, c in lines:
        if c != 1:
            continue
        for ln in names:
            lh = ln[3] - ln[1]
            if (0 <= x0 - ln[2] < t.suffix_gap * lh and t.suffix_h[0] * lh <= y1 - y0 <= t.suffix_h[1] * lh
                    and min(ln[3], y1) - max(ln[1], y0) > t.join_rows * (y1 - y0)):
                ln[2], ln[1], ln[3] = x1, min(ln[1], y0), max(ln[3], y1)
                break
    # a first letter a letter's gap left of a name, as tall as its letters, that something bright
    # joined first (a tall edge of the video beside the box took the "M" of "Mareta Aliana 4")
    for ln in names:
        lh = ln[3] - ln[1]
        for x, y, cw, ch, _a in boxes:
            if (0 <= ln[0] - (x + cw) <= max(t.first_gap[0], t.first_gap[1] * lh)
                    and t.first_h[0] * lh <= ch <= t.first_h[1] * lh
                    and min(ln[3], y + ch) - max(ln[1], y) > t.join_rows * ch):
                ln[0], ln[1], ln[3] = x, min(ln[1], y), max(ln[3], y + ch)
                break
    return [Line(float(x0), float(y0), float(x1), float(y1), 1.0) for x0, y0, x1, y1, _c in names]


# A located label: its crop, and whether it sits where a label goes. A badly read label in its
# place reads no better after the detector (it finds the same line: Hangul, tiny blurred text), so
# only a doubtful place earns the detector's second look.
Found = tuple[np.ndarray, bool]


def _bright_label_in_band(band: np.ndarray, t: FinderTuning = FINDER_TUNING) -> Found | None:
    # Image processing also finds text in the video (a logo on a shirt, a poster) that the detector
    # would score low; the label is the one nearest the left edge, where both apps draw it.
    line = pick_label(_bright_lines(band, t), band.shape, prefer="bottom", left_weight=t.bright_left_weight, t=t)
    if line is None:
        return None
    # a line against the bottom edge is a toolbar or a cut-off tile more often than a label; one as
    # tall as half the band is the label joined with something bright behind it (a spoon, a lamp),
    # which the detector cuts apart
    placed = (line.x0 <= t.label_max_x * band.shape[1] and line.y1 < band.shape[0] - 1
              and line.h <= t.label_max_h * band.shape[0])
    return crop_line(band, line, *t.fast_pad), placed


def bright_label_in_strip(strip: np.ndarray, t: FinderTuning = FINDER_TUNING) -> Found | None:
    return _bright_label_in_band(strip, t)


def bright_label_in_tile(tile: np.ndarray, t: FinderTuning = FINDER_TUNING) -> Found | None:
    """The label at the bottom left, else the big name in the centre of a camera-off tile."""
    th = tile.shape[0]
    found = _bright_label_in_band(tile[int(th * t.band_from):], t)
    if found is not None:
        return found
    mid = tile[int(th * t.centre[0]):int(th * t.centre[1])]
    line = pick_label(_bright_lines(mid, t), mid.shape, prefer="centre", t=t)
    # the detector's own choice in the centre is the same biggest, most central line
    return None if line is None else (crop_line(mid, line, *t.fast_pad), True)


def _merge_line(lines: list[Line], seed: Line, t: FinderTuning = FINDER_TUNING) -> Line:
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
            if overlap > t.merge_rows * min(y1 - y0, ln.h) and gap < t.merge_gap * (y1 - y0):
                x0, y0, x1, y1 = min(x0, ln.x0), min(y0, ln.y0), max(x1, ln.x1), max(y1, ln.y1)
                used.add(id(ln))
                changed = True
    return Line(x0, y0, x1, y1, seed.score)


def pick_label(lines: list[Line], shape, prefer: str, left_weight: float | None = None,
               t: FinderTuning = FINDER_TUNING) -> Line | None:
    """The line that is the label ("bottom": the lowest at the left, "centre": the biggest in the middle),
    joined with its neighbours on the same text line; `left_weight` by default the tuning's."""
    h, w = shape[:2]
    left_weight = t.left_weight if left_weight is None else left_weight
    # Too small to be a label: specks, icon fragments, compression noise.
    lines = [ln for ln in lines if ln.h >= t.min_line and ln.w >= t.min_line]
    if not lines:
        return None
    if prefer == "bottom":
        # The lowest line that starts in the left part; labels are left-aligned in Zoom and Meet.
        left = [ln for ln in lines if ln.x0 < t.left_part * w] or lines
        seed = max(left, key=lambda ln: ln.y1 - left_weight * ln.x0 * h / max(w, 1))
    else:
        # The biggest line nearest the centre.
        cy = h / 2
        seed = max(lines, key=lambda ln: ln.h * ln.w ** 0.5 - abs((ln.y0 + ln.y1) / 2 - cy))
    return _merge_line(lines, seed, t)


def crop_line(region: np.ndarray, line: Line, pad_y: float, pad_x: float) -> np.ndarray:
    """The line cut out of the region (native pixels) with a margin in line heights: pad_y above and
    below, pad_x beside."""
    h, w = region.shape[:2]
    pad_y, pad_x = pad_y * line.h, pad_x * line.h
    x0, x1 = int(max(0, line.x0 - pad_x)), int(min(w, np.ceil(line.x1 + pad_x)))
    y0, y1 = int(max(0, line.y0 - pad_y)), int(min(h, np.ceil(line.y1 + pad_y)))
    return region[y0:y1, x0:x1]
