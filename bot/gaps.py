"""The gallery's background and the cuts at its gaps: the likeliest background colours of a frame, the
mask of what is not background, and the recursive XY-cut of that mask into leaves (bot/tiles.py, steps
1-2 of its recipe)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bot import backdrop
from bot.grid import choose, drop_nested
from bot.tile_tuning import TUNING


@dataclass(frozen=True)
class GapsTuning:
    """The background's and the cut's tuning values (those shared with the other tile modules are
    TUNING's), each with its reason."""
    gallery: int = 4  # a reading of this many tiles is a gallery: rarer colours are not going to explain more
    ring: int = 40  # the frame's outer ring is 1 / this of its smaller side wide
    min_share: float = 0.05  # a gallery background (or a colour of one bucket) covers at least this share
    tries: tuple[int, int, int] = (3, 2, 4)  # the likeliest colours by ring and frame, the commonest in the
    # frame, and at most this many colours in all
    modes: int = 4  # the exact colours of one bucket looked at, commonest first
    noise: int = 2  # colours this many levels apart or closer are one colour's noise
    component_h: float = 0.5  # a component lower than this share of the narrowest tile's height holds none
    min_shape_cut: int = 8  # a leaf fewer working pixels high is not cut where its width steps
    cut_margin: float = 0.25  # a width step is at least this share of the leaf's height from its ends
    width_step: float = 0.2  # the two bands' fills differ by at least this share of the width
    emptiest: int = 20  # the cut moves to the emptiest row within 1 / this of the height
    narrow_col: float = 0.5  # a column of the narrower band more than this share content is in its row
    centred: float = 0.03  # the narrower band's middle is within this share of the width of the wider's


GAPS = GapsTuning()


def best_reading(frame: np.ndarray, f: int, min_w: float) -> tuple[list[tuple], np.ndarray | None, list, tuple | None]:
    """(tiles, content mask, leaves, background) of the background reading that explains the most
    tiles. The background is not always the most frequent colour (a shared document, a white side
    panel, many camera-off tiles): the likeliest few are tried. A compressed recording's gaps ring
    and take the tiles' chroma: the likeliest colour is tried again on luma alone, with a wider
    tolerance, when the exact colours explain few tiles."""
    h, w = frame.shape[0] // f, frame.shape[1] // f
    cands = _background_candidates(frame)
    readings: list[tuple] = []
    for bg in [(c, False) for c in cands] + [(c, True) for c in cands[:1]]:
        if readings and max(len(r[0]) for r in readings) >= GAPS.gallery:
            break       # a gallery: a rarer colour (or a looser match) is not going to explain more of it
        mask = content_mask(frame, bg, f)
        leaves = backdrop.without_desktop(_leaves(mask, min_w), w, h)
        boxes = drop_nested(choose(leaves, (w, h), min_w, frame, f) if leaves else [])
        readings.append((boxes, mask, leaves, bg))
    readings.sort(key=lambda r: -len(r[0]))     # stable: of as many tiles, the likelier colour
    for r in readings:
        if r[0] and not backdrop.on_a_slide(r[0], readings, frame, f):
            return r
    return [], None, [], None


def _background_candidates(frame: np.ndarray) -> list[np.ndarray]:
    """Likely gallery background colours, best first.

    A colour scores by its share of the frame's outer ring times its share of the whole frame: the
    ring alone is fooled by title bars and white side panels, the whole frame by shared documents
    and by Zoom's camera-off tile colour; the most frequent colours overall come last (a Zoom window
    on a textured desktop touches no frame edge)."""
    H, W = frame.shape[:2]
    b = max(2, min(H, W) // GAPS.ring)
    ring = np.concatenate([frame[:b, ::4].reshape(-1, 3), frame[-b:, ::4].reshape(-1, 3),
                           frame[b:-b:4, :b].reshape(-1, 3), frame[b:-b:4, -b:].reshape(-1, 3)])
    whole = frame[::8, ::8].reshape(-1, 3)
    hr, kr = _colour_hist(ring)
    hw, kw = _colour_hist(whole)
    score = hr * hw
    # a gallery background covers a good part of the frame: rarer colours are not worth a try
    by_ring, by_frame, most = GAPS.tries
    keys = [int(k) for k in np.argsort(-score)[:by_ring] if hw[k] >= GAPS.min_share] + \
        [int(k) for k in np.argsort(-hw)[:by_frame] if hw[k] >= GAPS.min_share]
    out: list[np.ndarray] = []
    extra: list[np.ndarray] = []
    for k in list(dict.fromkeys(keys))[:most]:
        sel = np.concatenate([ring[kr == k], whole[kw == k]])
        out.append(np.round(sel.mean(axis=0)).astype(np.uint8))
        extra += _bucket_modes(whole[kw == k], len(whole))
    # a bucket 8 levels wide can hold two flat colours (a game-bar overlay's 31 over Zoom's window,
    # 26): their mean (30) is within the tolerance of Zoom's camera-off and pillarbox colour (34) too,
    # which then reads as background; the two colours are tried on their own after the means
    for c in extra:
        if all(np.abs(c.astype(np.int16) - o).max() > GAPS.noise for o in out):
            out.append(c)
    return out


def _bucket_modes(px: np.ndarray, n_all: int) -> list[np.ndarray]:
    """The exact colours of one histogram bucket that each cover at least 5% of the frame, when
    there are two or more that are not one colour's noise (more than 2 levels apart); [] otherwise."""
    if len(px) == 0:
        return []
    lo = (px & 7).astype(np.int32)
    h = np.bincount((lo[:, 0] << 6) | (lo[:, 1] << 3) | lo[:, 2], minlength=512)
    base = px[0] & 0xF8
    modes = []
    for i in np.argsort(-h)[:GAPS.modes]:
        if h[i] < GAPS.min_share * n_all:
            break
        c = (base + np.array([i >> 6, (i >> 3) & 7, i & 7])).astype(np.uint8)
        if all(np.abs(c.astype(np.int16) - m).max() > GAPS.noise for m in modes):
            modes.append(c)
    return modes if len(modes) >= 2 else []


def _colour_hist(px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of each 5-bit-per-channel colour, and each pixel's colour key."""
    q = (px >> 3).astype(np.int32)
    keys = (q[:, 0] << 10) | (q[:, 1] << 5) | q[:, 2]
    return np.bincount(keys, minlength=1 << 15) / max(1, len(keys)), keys


def content_mask(frame: np.ndarray, bg: tuple[np.ndarray, bool], f: int) -> np.ndarray:
    """Non-background mask at 1/f scale; a working pixel is background if at least half the pixels
    under it are, so that a gap one or two pixels wide survives the pooling. bg is the colour and
    whether it is matched loosely: on luma alone, within TUNING.loose_tol (a compressed recording)."""
    colour, loose = bg
    if loose:
        luma = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        ref = int(cv2.cvtColor(colour.reshape(1, 1, 3), cv2.COLOR_BGR2GRAY)[0, 0])
        is_bg = cv2.inRange(luma, max(0, ref - TUNING.loose_tol), min(255, ref + TUNING.loose_tol))
    else:
        lo = np.clip(colour.astype(np.int16) - TUNING.bg_tol, 0, 255).astype(np.uint8)
        hi = np.clip(colour.astype(np.int16) + TUNING.bg_tol, 0, 255).astype(np.uint8)
        is_bg = cv2.inRange(frame, lo, hi)
    if f > 1:
        H, W = is_bg.shape
        is_bg = cv2.resize(is_bg[:H - H % f, :W - W % f], (W // f, H // f), interpolation=cv2.INTER_AREA)
    return is_bg < 127


def _leaves(mask: np.ndarray, min_w: float) -> list[tuple]:
    """XY-cut leaves of every connected content region large enough to hold a tile."""
    leaves: list[tuple] = []
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=4)
    for i in np.nonzero((stats[:, 2] >= min_w) & (stats[:, 3] >= min_w / TUNING.aspect[1] * GAPS.component_h))[0]:
        if i == 0:
            continue
        x, y, cw, ch, _area = stats[i]
        _xycut(labels[y:y + ch, x:x + cw] == i, x, y, 0, leaves)
    return leaves


def _bands(profile: np.ndarray, length: int) -> list[tuple[int, int]]:
    """Runs of rows (or columns) that are not gaps, as (start, end exclusive)."""
    busy = profile > (1 - TUNING.gap_fill) * length
    p = np.concatenate([[False], busy, [False]]).astype(np.int8)
    d = np.diff(p)
    starts, ends = np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]
    return [(int(a), int(b)) for a, b in zip(starts, ends) if b - a >= 2]


def _xycut(m: np.ndarray, x: int, y: int, depth: int, out: list) -> None:
    """Split the mask region at background rows, then columns, recursively; leaves go to out."""
    h, w = m.shape
    rows = _bands(m.sum(axis=1), w)
    if not rows:
        return
    if len(rows) == 1:
        a, b = rows[0]
        m, y, h = m[a:b], y + a, b - a
        cols = _bands(m.sum(axis=0), h)
        if not cols:
            return
        if len(cols) == 1:
            a, b = cols[0]
            m, x, w = m[:, a:b], x + a, b - a
            rows2 = _bands(m.sum(axis=1), w)
            if len(rows2) <= 1 or depth >= TUNING.max_depth:
                parts = (_weak_cut(m) or _shape_cut(m)) if depth < TUNING.max_depth else None
                if parts is None:
                    out.append((x, y, x + w, y + h))
                    return
                for a, b in parts:
                    _xycut(m[a:b], x, y + a, depth + 1, out)
                return
            rows = rows2
        else:
            if depth >= TUNING.max_depth:
                out.append((x, y, x + w, y + h))
                return
            for a, b in cols:
                _xycut(m[:, a:b], x + a, y, depth + 1, out)
            return
    if depth >= TUNING.max_depth:
        out.append((x, y, x + w, y + h))
        return
    for a, b in rows:
        _xycut(m[a:b], x, y + a, depth + 1, out)


def _weak_cut(m: np.ndarray) -> list[tuple] | None:
    """Cuts across a leaf too tall for one tile at rows that are mostly but not all background,
    when every part is then tile-shaped: tiles of two sizes stacked with a 1-px gap (Zoom's speaker
    strip beside a shared screen, one tile in a speaker border) leave a gap row that is broken where
    the wider tile overhangs the narrower or the gap antialiases into a darker line. Only rows: a
    leaf too wide is most often a row of tiles with a toolbar over its bottom, whose column gaps
    the toolbar breaks just as much; a block split at the modal size trims that toolbar off.
    None when the leaf is no such stack."""
    h, w = m.shape
    if w >= TUNING.aspect[0] * h:
        return None
    p = np.concatenate([[False], m.sum(axis=1) > (1 - TUNING.weak_gap) * w, [False]]).astype(np.int8)
    d = np.diff(p)
    bands = [(int(a), int(b)) for a, b in zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0])]
    if len(bands) < 2 or not all(TUNING.aspect[0] <= w / (b - a) <= TUNING.aspect[1] for a, b in bands):
        return None
    return bands


def _shape_cut(m: np.ndarray) -> list[tuple] | None:
    """Two row bands of a leaf too wide for one tile, cut where its width of content steps: rows
    of tiles whose gap the video's blur filled in (a gallery inside a screen recording) join into
    one piece, and an uneven last row centred under a full one is narrower. The cut is the row that
    best splits the fill profile into two flat runs, moved to the emptiest row near it; the
    narrower band must sit centred under (or over) the wider, as Zoom and Meet centre a last row.
    None otherwise."""
    h, w = m.shape
    if w <= TUNING.aspect[1] * h or h < GAPS.min_shape_cut:
        return None
    fill = m.mean(axis=1)
    lo = max(2, int(GAPS.cut_margin * h))
    if h - 2 * lo < 1:
        return None
    cs = np.arange(lo, h - lo + 1)
    s1 = np.concatenate([[0.0], np.cumsum(fill)])
    s2 = np.concatenate([[0.0], np.cumsum(fill * fill)])
    n1, n2 = cs, h - cs
    m1, m2 = s1[cs] / n1, (s1[h] - s1[cs]) / n2
    sse = (s2[cs] - n1 * m1 ** 2) + (s2[h] - s2[cs] - n2 * m2 ** 2)
    k = int(np.argmin(sse))
    if abs(m1[k] - m2[k]) < GAPS.width_step:
        return None
    c = int(cs[k])
    r = max(2, h // GAPS.emptiest)
    a, b = max(1, c - r), min(h - 1, c + r)
    c = a + int(np.argmin(fill[a:b]))
    narrow = m[c + 1:] if m1[k] > m2[k] else m[:c]
    cols = np.nonzero(narrow.mean(axis=0) > GAPS.narrow_col)[0]
    if len(cols) == 0 or abs((cols[0] + cols[-1] + 1) / 2 - w / 2) > GAPS.centred * w:
        return None
    return [(0, c), (c + 1, h)]
