"""Floating videos over a tile: Zoom's self-view over the speaker, Google Meet's "You" thumbnail over a
corner of the grid. They lie on the video below with no gap, so only their straight edges show: an
inner corner of two straight colour steps (one down from the tile's edge, one across from it) that
closes a rectangle of video shape in a corner of the tile."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bot.gapless import cmax
from bot.tile_tuning import TUNING
from bot.types import Box


@dataclass(frozen=True)
class SelfViewTuning:
    """The floating thumbnail's tuning values, each with its reason."""
    step: int = 24  # channel difference across two pixels that makes an edge
    size: tuple[float, float] = (0.1, 0.45)  # the thumbnail's width as a share of the tile's it floats over
    aspect: tuple[float, float] = (1.3, 2.1)  # width / height: a 16:9 or 16:10 video, or one with a name bar
    margin: float = 0.06  # its outer sides at most this share of the speaker's tile from its edges
    corner: float = 0.02  # ... and of a gallery's corner tile (Meet's "You" sits in the very corner)
    at_edge: float = 0.02  # an outer side this share of the tile or nearer its edge is on the edge (no side of its own)
    host: tuple[int, int] = (160, 90)  # a tile narrower or lower than this (pixels) holds no thumbnail to find
    min_px: int = 48  # narrower than this it is an icon, a badge or a button
    min_pixels: int = 16  # fewer pixels inside a box say nothing about its colours
    flat: float = 0.5  # a badge or a panel has at least this share in its two commonest colours (4 bits)
    first_run: float = 0.5  # an inner side's first unbroken run is at least this share of the shortest thumbnail
    runs_on: float = 0.6  # an inner side that goes on past the inner corner along this share is content
    side: float = 0.9  # each inner side is an edge along at least this share of its length
    close: int = 5  # a side's break this long or shorter is bridged (its colour matches what lies beside it)
    panel_step: int = 6  # a step beside an exactly flat panel
    panel_flat: int = 6  # a flat panel's pixels (but a tenth) are within this of its median colour
    line_even: int = 2  # a 1-px border line's shade changes at most this much from pixel to pixel
    line_apart: int = 4  # ... and is at least this much darker (lighter) than both pixels beside it


SELFVIEW = SelfViewTuning()


def floating(frame: np.ndarray, tiles: list[Box]) -> list[Box]:
    """Thumbnails floating over the outer corners of the gallery's corner tiles, or over a right corner
    of a tile far larger than the others (the speaker): frame pixels, at most one per tile."""
    if not tiles:
        return []
    out: list[Box] = []
    for box, corners, margin in _hosts(tiles):
        x, y, w, h = (int(v) for v in box)
        if w < SELFVIEW.host[0] or h < SELFVIEW.host[1]:
            continue
        for corner in corners:
            found = _in_corner(frame[y:y + h, x:x + w], corner, margin)
            if found is None or found[2] < SELFVIEW.min_px:
                continue
            thumb = (x + found[0], y + found[1], found[2], found[3])
            if photographic(frame, thumb):
                out.append(thumb)
                break
    return out


def photographic(frame: np.ndarray, box: Box) -> bool:
    """A camera's picture, not a REC badge, a panel or a button: those are mostly two colours (their
    fill and their text or icon)."""
    x, y, w, h = box
    px = frame[y + 2:y + h - 2, x + 2:x + w - 2].reshape(-1, 3) >> 4
    if len(px) < SELFVIEW.min_pixels:
        return False
    keys = (px[:, 0].astype(np.int32) << 8) | (px[:, 1].astype(np.int32) << 4) | px[:, 2]
    counts = np.sort(np.bincount(keys))[::-1]
    return float(counts[:2].sum()) / len(px) < SELFVIEW.flat


def _hosts(tiles: list[Box]) -> list[tuple[Box, tuple[str, ...], float]]:
    """(tile, corners to search, margin allowed): the speaker's right corners, the thumbnail floating a
    little inside them; the gallery's top-right corner on its tile, the thumbnail in the very corner
    (Meet's "You"): a window or a picture on a wall in a corner tile is not taken for one."""
    areas = [w * h for _, _, w, h in tiles]
    med = float(np.median(areas))
    hosts: dict[int, set[str]] = {}
    speakers = {i for i, a in enumerate(areas) if len(tiles) == 1 or a >= TUNING.speaker * med}
    # the speaker's right corners only, where Zoom and Meet float the self-view: a framed picture
    # in a left corner is part of the speaker's video (two faces there are multiple_faces)
    for i in speakers:
        hosts[i] = {"tr", "br"}
    # the gallery's top-right corner, on the tile nearest it
    top, right = min(b[1] for b in tiles), max(b[0] + b[2] for b in tiles)
    i = int(np.argmin([abs(b[0] + b[2] - right) + abs(b[1] - top) for b in tiles]))
    hosts.setdefault(i, set()).add("tr")
    return [(tiles[i], tuple(sorted(c)), SELFVIEW.margin if i in speakers else SELFVIEW.corner)
            for i, c in hosts.items()]


def _in_corner(tile: np.ndarray, corner: str, margin: float) -> Box | None:
    """The largest thumbnail in one corner of the tile (tile pixels), or None."""
    h, w = tile.shape[:2]
    zone = tile[:h // 2, :w // 2] if corner == "tl" else \
        tile[:h // 2, w - w // 2:] if corner == "tr" else \
        tile[h - h // 2:, :w // 2] if corner == "bl" else tile[h - h // 2:, w - w // 2:]
    # turned so that the tile's corner is the zone's top-left
    if "r" in corner:
        zone = zone[:, ::-1]
    if "b" in corner:
        zone = zone[::-1]
    found = _top_left(np.ascontiguousarray(zone), w, h, margin)
    if found is None:
        return None
    fx, fy, fw, fh = found
    zx = 0 if "l" in corner else w - w // 2
    zy = 0 if "t" in corner else h - h // 2
    zw, zh = zone.shape[1], zone.shape[0]
    x = zx + (fx if "l" in corner else zw - fx - fw)
    y = zy + (fy if "t" in corner else zh - fy - fh)
    return (x, y, fw, fh)


def _top_left(zone: np.ndarray, w: int, h: int, margin: float) -> Box | None:
    """A rectangle whose top-left lies within the margin of the zone's top-left corner, whose right
    side runs down and bottom side runs left as straight edges, of thumbnail size and shape."""
    z = zone.astype(np.int16)
    zh, zw = z.shape[:2]
    vert, horiz = _edges(zone)
    down = _run(vert, axis=0)                 # rows of edge from (y, x) downwards
    left = _run(horiz[:, ::-1], axis=1)[:, ::-1]   # columns of edge from (y, x) leftwards
    cover = np.zeros((zh + 1, zw), np.int32)      # edge rows above each row, down each column
    np.cumsum(vert, axis=0, out=cover[1:])
    mx, my = int(margin * w) + 2, int(margin * h) + 2
    best, best_area = None, 0
    for x in range(int(SELFVIEW.size[0] * w), min(zw - 1, int(SELFVIEW.size[1] * w) + mx)):
        s = int(np.argmax(down[:my, x]))
        if down[s, x] < SELFVIEW.first_run * SELFVIEW.size[0] * w / SELFVIEW.aspect[1]:
            continue
        e = _bottom_side(left, cover[:, x], x, s, int(down[s, x]), mx, w)
        if e is None:
            continue
        x0 = x - int(left[e, x]) + 1
        bw, bh = x - x0 + 1, e - s + 1
        edge_x, edge_y = x0 <= SELFVIEW.at_edge * w, s <= SELFVIEW.at_edge * h
        if (not edge_x and (down[s:e, max(0, x0 - 1):x0 + 2] > 0).any(axis=1).mean() < SELFVIEW.side) or \
                (not edge_y and left[max(0, s - 1):s + 2, x].max() < SELFVIEW.side * bw):
            continue        # inset from the tile's edge: its outer sides must be edges too
        # a thumbnail's inner sides end at its inner corner; a wall's or a bench's edge runs on
        # (unless what it runs along is a flat panel of the meeting app: Meet's beside "You")
        beyond_x = horiz[max(0, e - 1):e + 2, x + 3:x + 3 + bw // 3].any(axis=0)
        beyond_y = vert[e + 3:e + 3 + bh // 3, max(0, x - 1):x + 2].any(axis=1)
        if (beyond_x.size and beyond_x.mean() > SELFVIEW.runs_on
                and not _flat(z[max(0, e - 8):e - 2, x + 3:x + 3 + bw // 3])) or \
                (beyond_y.size and beyond_y.mean() > SELFVIEW.runs_on
                 and not _flat(z[e + 3:e + 3 + bh // 3, max(0, x - 8):x - 2])):
            continue
        if bw * bh > best_area:
            best, best_area = (x0, s, bw, bh), bw * bh
    return best


def _bottom_side(left: np.ndarray, cover: np.ndarray, x: int, s: int, run: int, mx: int, w: int) -> int | None:
    """The row of a thumbnail's bottom side, its inner side running down column x from row s: the
    row from which an edge reaches furthest left, to within mx of the outer side (of those, the one
    nearest the end of the side's first unbroken `run`), closing a rectangle of thumbnail size and
    shape whose inner side is an edge along SELFVIEW.side of its length (a stretch where the thumbnail's
    border matches the picture beside it shows none); None if there is none."""
    size, aspect = SELFVIEW.size, SELFVIEW.aspect
    rows = np.arange(s + 1, min(left.shape[0], s + int(size[1] * w / aspect[0]) + 2))
    bw = left[rows, x]
    bh = rows - s + 1
    ok = (x - bw + 1 <= mx) & (bw >= size[0] * w) & (bw <= size[1] * w) & \
        (bw >= aspect[0] * bh) & (bw <= aspect[1] * bh) & (cover[rows + 1] - cover[s] >= SELFVIEW.side * bh)
    idx = np.flatnonzero(ok)
    if not len(idx):
        return None
    far = rows[idx[bw[idx] == bw[idx].max()]]     # of the furthest reach, the row nearest the run's end
    return int(far[np.argmin(np.abs(far - (s + run - 1)))])


def _edges(zone: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where a vertical (horizontal) side may run: a colour step (a small one beside the app's flat
    panel), or a thin border line of one shade (a thumbnail's frame over a picture of about its own
    brightness)."""
    zh, zw = zone.shape[:2]
    vert = np.zeros((zh, zw), bool)      # an edge between x - 1 and x + 1
    vert[:, 1:-1] = _steps(zone)
    horiz = np.zeros((zh, zw), bool)
    horiz[1:-1] = _steps(np.ascontiguousarray(zone.transpose(1, 0, 2))).T
    g = cv2.cvtColor(zone, cv2.COLOR_BGR2GRAY)
    vert[1:-1, 1:-1] |= _border(g)
    horiz[1:-1, 1:-1] |= _border(np.ascontiguousarray(g.T)).T
    # a line that wobbles by a pixel, or steps on either side of a thumbnail's 1-px border
    vert = vert | np.roll(vert, 1, axis=1) | np.roll(vert, -1, axis=1)
    horiz = horiz | np.roll(horiz, 1, axis=0) | np.roll(horiz, -1, axis=0)
    # ... and has a few pixels' break where what lies beside it matches its colour
    vert = cv2.morphologyEx(vert.view(np.uint8), cv2.MORPH_CLOSE, np.ones((SELFVIEW.close, 1), np.uint8)).view(bool)
    horiz = cv2.morphologyEx(horiz.view(np.uint8), cv2.MORPH_CLOSE, np.ones((1, SELFVIEW.close), np.uint8)).view(bool)
    return vert, horiz


def _steps(z: np.ndarray) -> np.ndarray:
    """Colour steps between x - 1 and x + 1 at each inner column: over SELFVIEW.step, or over SELFVIEW.panel_step where
    one side is a patch of exactly one colour (the meeting app's own panel beside a pale video)."""
    d = cmax(cv2.absdiff(z[:, 2:], z[:, :-2]))
    same = np.zeros(z.shape[:2], bool)          # a pixel equal to its left and upper neighbours
    same[1:, 1:] = (cmax(cv2.absdiff(z[1:, 1:], z[1:, :-1])) == 0) & (cmax(cv2.absdiff(z[1:, 1:], z[:-1, 1:])) == 0)
    flat_side = same[:, :-2].copy()              # x - 1 equal to x - 2 ...
    flat_side[:, :-1] |= same[:, 3:]             # ... or x + 1 equal to x + 2
    return (d > SELFVIEW.step) | ((d >= SELFVIEW.panel_step) & flat_side)


def _border(g: np.ndarray) -> np.ndarray:
    """Inner pixels of a grey image on a vertical line of one shade: even along the line (within
    SELFVIEW.line_even of the pixels above and below) and a ridge across it (SELFVIEW.line_apart or
    more darker, or lighter, than both pixels beside it)."""
    c = g[1:-1, 1:-1].astype(np.int16)
    even_tol, apart = SELFVIEW.line_even, SELFVIEW.line_apart
    even = (cv2.absdiff(g[1:-1, 1:-1], g[:-2, 1:-1]) <= even_tol) & \
        (cv2.absdiff(g[1:-1, 1:-1], g[2:, 1:-1]) <= even_tol)
    left, right = c - g[1:-1, :-2], c - g[1:-1, 2:]
    ridge = ((left >= apart) & (right >= apart)) | ((left <= -apart) & (right <= -apart))
    return even & ridge


def _flat(part: np.ndarray) -> bool:
    """Whether a patch (int16 BGR) is one flat colour: a panel, not a room."""
    if part.size == 0:
        return False
    spread = np.abs(part - np.median(part.reshape(-1, 3), axis=0)).max(axis=2)
    return int(np.percentile(spread, 90)) <= SELFVIEW.panel_flat


def _run(edge: np.ndarray, axis: int) -> np.ndarray:
    """Length of the run of edge pixels starting at each pixel and going down (axis 0) or right
    (axis 1)."""
    out = np.zeros(edge.shape, np.int32)
    n = edge.shape[axis]
    if axis == 0:
        out[-1] = edge[-1]
        for i in range(n - 2, -1, -1):
            out[i] = (out[i + 1] + 1) * edge[i]
    else:
        out[:, -1] = edge[:, -1]
        for i in range(n - 2, -1, -1):
            out[:, i] = (out[:, i + 1] + 1) * edge[:, i]
    return out
