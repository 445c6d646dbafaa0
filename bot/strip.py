"""Microsoft Teams' strip under its gallery or a shared screen: audio-only participants as initials
bubbles (circles with no label), tiles of camera-off participants (an initials avatar) and of videos,
and a "+N" counter of those not shown, which is no participant. Every bubble is a camera-off
participant."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bot.gapless import modal_colour
from bot.types import Box


@dataclass(frozen=True)
class StripTuning:
    """Teams' strip's tuning values, each with its reason."""
    band: tuple[float, float] = (0.04, 0.2)  # the strip's height as a share of the frame's
    radius: tuple[float, float] = (0.012, 0.04)  # a bubble's radius as a share of the frame's height
    row: float = 0.25  # bubbles of one strip: centres within this share of a radius of one row
    same_radius: float = 0.25  # ... and radii within this share of each other (one size)
    min_bubbles: int = 3  # fewer circles on a row are a toolbar's buttons or a picture's, not a strip
    even: float = 0.85  # the first bubbles' spacings are at least this share of the widest (packed evenly)
    between: float = 1.2  # the strip's colour is sampled this many radii off each bubble's centre ...
    apart: float = 2.6  # ... between bubbles at least this many radii apart (room left between them)
    min_between: int = 16  # fewer sampled pixels between bubbles say nothing about the strip's colour
    between_flat: float = 0.9  # at least this share of them is the strip's one flat colour
    filled: float = 0.6  # a strip tile fills at least this share of the strip's height in its columns
    # (its name label's dark text is the strip's colour)
    letter: int = 5  # a break this many columns wide or narrower in such a run is a letter, no gap
    off_strip: int = 12  # channel distance from the strip's colour that is something on it
    left: float = 0.1  # the strip fills from the left: its first bubble (or the counter) is this near
    tile_aspect: float = 2.0  # a strip tile's width over the strip's height (its video and name below)
    avatar_centre: float = 0.6  # the first avatar this many strip heights or more from its block's start
    # is centred in its tile, which gives the tiles' width
    tile_row: float = 0.8  # a row of a strip tile has at least this share of its margin in the tile's grey
    counter_dark: float = 0.7  # the counter's fill is at most this share of the bubbles' brightness
    work_w: int = 1280  # circles are looked for in a copy about this wide (15 px circles survive it)
    hough: tuple[int, int] = (80, 22)  # HoughCircles' edge and centre thresholds: a bubble's clean outline


STRIP = StripTuning()


def strip_boxes(frame: np.ndarray) -> tuple[list[Box], list[Box]]:
    """The participants in a strip along the frame's bottom: (bubbles, tiles standing in the strip),
    each left to right; ([], []) when there is no such strip. Meet's and Zoom's toolbars hold round
    buttons too, but grouped in the middle, not packed from the left edge."""
    H, W = frame.shape[:2]
    y0 = int((1 - STRIP.band[1]) * H)
    circles = _circles(frame[y0:], H)
    if len(circles) < STRIP.min_bubbles:
        return [], []
    # the largest set of circles of one size on one row (a video above the strip shows circles too)
    rows = [[c for c in circles
             if abs(c[1] - a[1]) <= STRIP.row * a[2] and abs(c[2] - a[2]) <= STRIP.same_radius * a[2]]
            for a in circles]
    row = sorted(max(rows, key=len))
    cy = float(np.median([c[1] for c in row]))
    if len(row) < STRIP.min_bubbles or row[0][0] > STRIP.left * W or not _on_a_strip(frame[y0:], row):
        return [], []
    top = int(round(y0 + 2 * cy - (H - y0)))    # the bubbles sit centred in the strip's height
    band_h = H - top
    if not STRIP.band[0] * H <= band_h <= STRIP.band[1] * H:
        return [], []
    band = frame[top:H]
    row = [(x, y + y0 - top, rr) for x, y, rr in row]
    blocks, off = _blocks(band)
    tiles: list[Box] = []
    if blocks:
        # the strip's tiles stand side by side from the first block to the last (a dark video among
        # them breaks a block); a camera-off tile's avatar is centred in it, which gives their width
        x0, x1 = blocks[0][0], blocks[-1][1]
        first = [c for c in row if blocks[0][0] <= c[0] < blocks[0][1]]
        tw = 2 * (first[0][0] - x0) if first and first[0][0] - x0 >= band_h * STRIP.avatar_centre \
            else band_h * STRIP.tile_aspect
        k = max(1, int(round((x1 - x0) / tw)))
        step = (x1 - x0) / k
        t0, t1 = _tile_rows(band, x0, x0 + int(step))
        tiles = [(int(x0 + i * step), top + t0, int(step), t1 - t0) for i in range(k)]
    loose = sorted((c for c in row if not any(x0 <= c[0] < x1 for x0, x1 in blocks)), key=lambda c: c[0])
    loose = _without_counter(band, loose)
    bubbles = [(int(cx - rr), int(top + cy_ - rr), int(2 * rr), int(2 * rr)) for cx, cy_, rr in loose]
    return bubbles, tiles


def _on_a_strip(part: np.ndarray, row: list) -> bool:
    """Bubbles of a strip: the first few evenly spaced, with one flat colour between them (circles a
    video shows are not)."""
    xs = [c[0] for c in row[:4]]
    gaps = np.diff(xs)
    if gaps.min() < STRIP.even * gaps.max():
        return False
    cy, r = int(row[0][1]), row[0][2]
    off = STRIP.between * r
    between = np.concatenate([part[max(0, cy - int(r / 2)):cy + int(r / 2), int(a + off):int(b - off)].reshape(-1, 3)
                              for a, b in zip(xs, xs[1:]) if b - a > STRIP.apart * r] or [np.zeros((0, 3), np.uint8)])
    if len(between) < STRIP.min_between:
        return False
    flat = np.abs(between.astype(np.int16) - np.median(between, axis=0)).max(axis=1) <= STRIP.off_strip
    return float(flat.mean()) >= STRIP.between_flat


def _circles(part: np.ndarray, H: int) -> list[tuple[float, float, float]]:
    """Circles (x, y, r in the part's pixels) of a bubble's size."""
    k = max(1, part.shape[1] // STRIP.work_w)
    small = part[::k, ::k] if k > 1 else part
    gray = cv2.medianBlur(cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_BGR2GRAY), 3)
    lo, hi = int(STRIP.radius[0] * H / k), int(STRIP.radius[1] * H / k) + 1
    if lo < 2 or gray.shape[0] < 2 * hi:
        return []       # too small a frame to hold a strip
    found = cv2.HoughCircles(gray, cv2.HOUGH_GRADIENT, dp=1, minDist=lo * 2, param1=STRIP.hough[0],
                             param2=STRIP.hough[1], minRadius=lo, maxRadius=hi)
    return [] if found is None else [(float(x) * k, float(y) * k, float(r) * k) for x, y, r in found[0]]


def _blocks(band: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Column runs where something other than the strip's colour fills the strip's height: camera-off
    (or video) tiles standing in the strip; and the mask of what is not the strip's colour."""
    colour = modal_colour(band, step=2)
    off = np.abs(band.astype(np.int16) - colour).max(axis=2) > STRIP.off_strip
    full = cv2.morphologyEx((off.mean(axis=0) >= STRIP.filled).astype(np.uint8)[None, :], cv2.MORPH_CLOSE,
                            np.ones((1, STRIP.letter), np.uint8))[0] > 0
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


def _tile_rows(band: np.ndarray, x0: int, x1: int) -> tuple[int, int]:
    """The rows a strip tile spans (band pixels): those whose colour at the tile's right margin (its
    name label is at the left) is the tile's own grey (the band may start a few rows up, in the
    gallery above)."""
    margin = band[:, x1 - max(3, (x1 - x0) // 10):x1 - 2].astype(np.int16)
    mid = margin[len(margin) // 2]
    colour = np.median(mid.reshape(-1, 3), axis=0)
    same = (np.abs(margin - colour).max(axis=2) <= STRIP.off_strip).mean(axis=1) >= STRIP.tile_row
    c = len(band) // 2
    if not same[c]:
        return 0, len(band)
    t0, t1 = c, c
    while t0 > 0 and same[t0 - 1]:
        t0 -= 1
    while t1 < len(band) and same[t1]:
        t1 += 1
    return t0, t1


def _without_counter(band: np.ndarray, circles: list) -> list:
    """The bubbles without the "+N" counter: the first circle, when its fill is much darker than the
    other bubbles' pastel."""
    if len(circles) < STRIP.min_bubbles:
        return circles
    luma = cv2.cvtColor(band, cv2.COLOR_BGR2GRAY)
    fills = [float(np.median(luma[max(0, int(cy - r / 2)):int(cy + r / 2) + 1,
                                  max(0, int(cx - r / 2)):int(cx + r / 2) + 1])) for cx, cy, r in circles]
    rest = float(np.median(fills[1:]))
    return circles[1:] if fills[0] < STRIP.counter_dark * rest else circles
