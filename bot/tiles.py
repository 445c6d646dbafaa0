"""Gallery frame -> participant tiles (box, name strip, camera-off flag).

Tiles sit on a plain gallery background (Zoom's near-black window, Meet's grey page, a light theme),
separated from it and from each other by gaps of that colour (PRIOR-ART.md, "Finding tiles"). So:
1. The background is the most frequent colour of the frame; a pixel is background when every channel
   is within a small tolerance of it (tight: Zoom's camera-off tile background is only 8 levels
   lighter than its window); a histogram bucket holding two flat colours is tried colour by colour.
   The mask is taken at full resolution and pooled to a working copy so that gaps of a few pixels
   survive.
2. Connected components of the non-background mask separate what the background separates (a Zoom
   window on a textured desktop); inside each large component a recursive XY-cut splits at rows, then
   columns, that are almost all background: rows of tiles, tiles, the toolbar, the title bar. A
   leaf of no tile shape is cut further where a stack's gap is only mostly background, or where its
   width of content steps (a centred last row whose gap a recording's blur filled in).
3. Leaves of tile shape are tiles; the modal tile size then splits gapless blocks of k tiles and
   accepts tiles clipped by the frame edge (in a corner, when they line up with a row and a
   column of tiles). A lone big leaf may be a whole gapless grid: it is cut
   on the finest even ~16:9 lattice whose inner lines are all colour steps.
4. The lattice (pitch and phase) fitted to the tiles found is walked outwards: cells holding centred
   content join the tiles (camera-off tiles the colour of the page, videos merged with neighbours).
   On a textured region around the tiles (a desktop) a floating video shows only as straight edges.
5. Each side is snapped to the strongest colour step within a few pixels at full resolution; a tile
   is camera-off when its margins are flat and what is not flat is centred (or a drawn placeholder).
6. A big tile that is neither a camera's picture nor camera-off is a shared screen and is dropped,
   and tiles found on a shared slide's page are its figures (bot/backdrop.py); Teams' strip of
   bubbles (bot/strip.py), thumbnails floating in a corner (bot/selfview.py) or on the page
   (bot/overhang.py) are added; one video filling the window is the lone speaker (bot/speaker.py).
   A recording's compressed gaps are matched on luma when exact colours explain few tiles;
   gapless grids are cut at their lattice of straight steps (bot/gapless.py). docs/layouts.md.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from bot import backdrop, gapless, overhang, selfview, speaker, strip
from bot.backdrop import SHARE as _SHARE, is_video as _is_video, overlap as _overlap
from bot.config import TileSettings
from bot.gapless import cmax as _cmax
from bot.types import Box, Tile

_WORK_W = 960          # working copy about this wide: the frame is pooled by an integer factor
_BG_TOL = 5            # max channel distance (0-255) to the background colour that still counts as
                       # background: Zoom's camera-off tile (34) against its window (26) is 8
_LOOSE_TOL = 10        # luma distance to the background in a compressed recording (JPEG/H.264 ringing)
_GAP_FILL = 0.97       # a gap row / column is at least this fraction background
_WEAK_GAP = 0.8        # ... and a broken one, trusted only where it cuts a stack into tiles
_ASPECT = (1.0, 2.3)   # tile width / height (16:9 mostly; Meet's sidebar tiles are squarer)
_SIZE_TOL = 0.12       # relative size difference still "the same tile size" (a speaker border adds ~6%)
_MAX_DEPTH = 8
_SPEAKER = 3.0         # a lone tile this many times the strip's tile area is the speaker (or a share)
_DARK = 60             # max channel value of a dark gap in a photo of a screen (no flat colour there)
_DARK_LINE = 0.75      # a gap line of that lattice is at least this fraction dark


def segment(frame: np.ndarray, settings: TileSettings, with_shares: bool = False) -> list[Tile]:
    """Cut a gallery frame (BGR) into tiles, in reading order; [] when there are none. A big tile of
    mostly flat colour (a shared screen, or a speaker before a plain virtual background) is left out
    unless `with_shares` (the pipeline keeps it when a face shows in it)."""
    frame = _usable(frame)
    return [] if frame is None else _participants(_segment(frame, settings)[0], with_shares)


def _participants(tiles: list[Tile], with_shares: bool) -> list[Tile]:
    return tiles if with_shares else [t for t in tiles if not t.share]


def _usable(frame: np.ndarray | None) -> np.ndarray | None:
    """The frame's first three channels, contiguous; None for what holds no gallery."""
    if frame is None or frame.ndim not in (2, 3) or frame.shape[0] < 16 or frame.shape[1] < 16:
        return None
    if frame.ndim == 2 or frame.shape[2] < 3:       # a grey frame: drawn as BGR like any other
        return cv2.cvtColor(np.ascontiguousarray(frame.reshape(frame.shape[:2])), cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(frame[:, :, :3])


@dataclass
class _Layout:
    """What a segmented frame's tiles stood on: enough to tell whether the next frame has the same."""
    shape: tuple
    bg: tuple               # the background the tiles were cut from: (colour, matched loosely)
    f: int                  # working scale
    tiles: list[Tile]
    gaps: np.ndarray        # working pixels outside every tile that were background
    n_gaps: int
    inner: list[tuple]      # each tile's box at 1/f
    fixed: list[Tile]       # tiles whose camera-off flag is their kind's (a Teams strip's bubbles)
    solid: list[bool]       # whether each tile is a video's rectangle (not a bubble, not a thumbnail)

    @classmethod
    def of(cls, shape: tuple, bg: tuple, f: int, mask: np.ndarray, tiles: list[Tile],
           fixed: list[Tile]) -> "_Layout":
        """From the content mask (at 1/f) the tiles were cut from."""
        gaps = ~mask
        inner = []
        for t in tiles:
            x, y, w, h = (v // f for v in t.box)
            gaps[y:y + h + 1, x:x + w + 1] = False
            inner.append((x, y, x + w, y + h))
        solid = [t not in fixed and not t.floating for t in tiles]
        return cls(shape, bg, f, tiles, gaps, int(gaps.sum()), inner, fixed, solid)


class LayoutMemory:
    """Tiles of the last frame, kept while its layout stands: `segment` costs ~20 ms on a 1080p
    gallery, the check ~5 ms, and a lecture's gallery changes only when someone joins or leaves,
    shares a screen or the window moves.

    The layout stands when nothing appeared in the gaps and chrome around the tiles (working pixels
    outside every tile that were background and are not any more: at most a clock's worth) and every
    tile is still mostly not background (one whose participant left turns into background), with no
    row or column of background across it (a strip slid in over a lone speaker). A
    reflowed grid puts tiles over the old gaps; a speaker border is drawn inside its tile.
    Camera-off flags are taken afresh on every frame; anything else, and every frame the layout
    does not stand, is segmented from scratch."""

    GAP_CHANGE = 0.002  # share of the gap pixels that may turn to content (a meeting clock, a mic icon)
    TILE_FILL = 0.5     # a tile is still there while at least this share of it is not background

    def __init__(self):
        self._last: _Layout | None = None
        self.counts = {"kept": 0, "found": 0}  # how each frame was served, for tests and tuning

    def segment(self, frame: np.ndarray, settings: TileSettings, with_shares: bool = False) -> list[Tile]:
        return _participants(self._segment(frame, settings), with_shares)

    def _segment(self, frame: np.ndarray, settings: TileSettings) -> list[Tile]:
        frame = _usable(frame)
        if frame is None:
            self._last = None
            return []
        last = self._last
        if last is not None and last.shape == frame.shape:
            mask = _content_mask(frame, last.bg, last.f)
            if self._stands(mask, last):
                self.counts["kept"] += 1
                small = _small(frame, last.f)
                return [dataclasses.replace(t, camera_off=t.camera_off if t in last.fixed else
                                            _camera_off(small, t.box, last.f)) for t in last.tiles]
        tiles, self._last = _segment(frame, settings)
        self.counts["found"] += 1
        return tiles

    def forget(self) -> None:
        """Cut the next frame afresh (this one's tiles could not be trusted)."""
        self._last = None

    def _stands(self, mask: np.ndarray, last: _Layout) -> bool:
        if int(mask[last.gaps].sum()) > self.GAP_CHANGE * last.n_gaps + 16:
            return False
        for (x0, y0, x1, y1), solid in zip(last.inner, last.solid):
            part = mask[y0:y1, x0:x1]
            if part.size and part.mean() < self.TILE_FILL:
                return False
            # a gap across a video's tile: the window re-laid (a strip over the speaker, a reflowed grid)
            core = part[3:-3, 3:-3]
            if solid and core.size and (_gap_across(core.any(axis=1)) or _gap_across(core.any(axis=0))):
                return False
        return True


def _gap_across(busy: np.ndarray) -> bool:
    """Whether two neighbouring lines with no content lie between lines with content (busy: per row
    or column): a gap; an empty band at a tile's side is its pillarbox or letterbox bar."""
    on = np.flatnonzero(busy)
    if len(on) == 0:
        return False
    idle = ~busy[on[0]:on[-1]]
    return bool((idle[1:] & idle[:-1]).any())


def _small(frame: np.ndarray, f: int) -> np.ndarray:
    H, W = frame.shape[:2]
    return cv2.resize(frame, (W // f, H // f), interpolation=cv2.INTER_AREA) if f > 1 else frame


def _segment(frame: np.ndarray, settings: TileSettings) -> tuple[list[Tile], _Layout | None]:
    """Tiles, and the layout they stand on (None when they were not cut from a flat background)."""
    H, W = frame.shape[:2]
    f = max(1, int(round(max(W, H * 16 / 9) / _WORK_W)))
    h, w = H // f, W // f
    min_w = max(8.0, settings.min_tile_px / f, w / 14)
    best, best_mask, best_leaves, best_bg = _best_reading(frame, f, min_w)
    small = _small(frame, f)
    best, hung = _add_missed(best, best_leaves, best_mask, frame, small, f)
    best, bg = _off_background(best, best_bg, frame, small, f)
    if bg is not best_bg:       # not the gap search's tiles: no thumbnails of theirs, a mask of its own
        hung, best_mask = [], None if bg is None else _content_mask(frame, bg, f)
    out = []
    for x0, y0, x1, y1 in best:
        box = _snap(frame, (x0 * f, y0 * f, x1 * f, y1 * f), f)
        if box[2] < settings.min_tile_px or box[3] < settings.min_tile_px * 0.5:
            continue
        out.append(Tile(box=box, name_box=_name_box(box), camera_off=_camera_off(small, box, f)))
    # a shared screen the search took for a tile: big, neither a camera's picture nor a camera-off tile
    # (a speaker before a flat virtual background looks the same: the pipeline keeps it if a face shows)
    area = frame.shape[0] * frame.shape[1]
    out = [dataclasses.replace(t, share=True) if t.box[2] * t.box[3] >= _SHARE * area and not _in_grid(t, out)
           and not _is_video(frame, _corners(t.box), 1) else t for t in out]
    bubbles, in_strip = strip.strip_boxes(frame)
    # what lies inside a tile found is what its video shows (a card of circles held up), never a
    # strip: a student must not make their own tile, or a neighbour's, go away
    if any(_overlap(_corners(b), _corners(t.box)) > 0 for b in bubbles + in_strip for t in out):
        bubbles, in_strip = [], []
    out += [Tile(box=b, name_box=_name_box(b), camera_off=_camera_off(small, b, f)) for b in in_strip]
    fixed = [Tile(box=b, name_box=_name_box(b), camera_off=True) for b in bubbles]
    thumbs = [_snap(frame, _corners(b), 1) for b in selfview.floating(frame, [t.box for t in out])] + \
        [_snap(frame, tuple(v * f for v in b), f) for b in hung]
    out = [dataclasses.replace(t, covered=tuple(b for b in thumbs if _overlap(_corners(b), _corners(t.box)) > 0))
           for t in out]
    out += fixed + [Tile(box=b, name_box=_name_box(b), camera_off=False, floating=True) for b in thumbs]
    out = _reading_order(out)
    if not out or bg is None:
        return out, None
    return out, _Layout.of(frame.shape, bg, f, best_mask, out, fixed)


# ---------------------------------------------------------------- background

def _best_reading(frame: np.ndarray, f: int, min_w: float) -> tuple[list[tuple], np.ndarray | None, list, tuple | None]:
    """(tiles, content mask, leaves, background) of the background reading that explains the most
    tiles. The background is not always the most frequent colour (a shared document, a white side
    panel, many camera-off tiles): the likeliest few are tried. A compressed recording's gaps ring
    and take the tiles' chroma: the likeliest colour is tried again on luma alone, with a wider
    tolerance, when the exact colours explain few tiles."""
    h, w = frame.shape[0] // f, frame.shape[1] // f
    cands = _background_candidates(frame)
    readings: list[tuple] = []
    for bg in [(c, False) for c in cands] + [(c, True) for c in cands[:1]]:
        if readings and max(len(r[0]) for r in readings) >= 4:
            break       # a gallery: a rarer colour (or a looser match) is not going to explain more of it
        mask = _content_mask(frame, bg, f)
        leaves = backdrop.without_desktop(_leaves(mask, min_w), w, h)
        boxes = _drop_nested(_choose(leaves, (w, h), min_w, frame, f) if leaves else [])
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
    b = max(2, min(H, W) // 40)
    ring = np.concatenate([frame[:b, ::4].reshape(-1, 3), frame[-b:, ::4].reshape(-1, 3),
                           frame[b:-b:4, :b].reshape(-1, 3), frame[b:-b:4, -b:].reshape(-1, 3)])
    whole = frame[::8, ::8].reshape(-1, 3)
    hr, kr = _colour_hist(ring)
    hw, kw = _colour_hist(whole)
    score = hr * hw
    # a gallery background covers a good part of the frame: rarer colours are not worth a try
    keys = [int(k) for k in np.argsort(-score)[:3] if hw[k] >= 0.05] + \
        [int(k) for k in np.argsort(-hw)[:2] if hw[k] >= 0.05]
    out: list[np.ndarray] = []
    extra: list[np.ndarray] = []
    for k in list(dict.fromkeys(keys))[:4]:
        sel = np.concatenate([ring[kr == k], whole[kw == k]])
        out.append(np.round(sel.mean(axis=0)).astype(np.uint8))
        extra += _bucket_modes(whole[kw == k], len(whole))
    # a bucket 8 levels wide can hold two flat colours (a game-bar overlay's 31 over Zoom's window,
    # 26): their mean (30) is within the tolerance of Zoom's camera-off and pillarbox colour (34) too,
    # which then reads as background; the two colours are tried on their own after the means
    for c in extra:
        if all(np.abs(c.astype(np.int16) - o).max() > 2 for o in out):
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
    for i in np.argsort(-h)[:4]:
        if h[i] < 0.05 * n_all:
            break
        c = (base + np.array([i >> 6, (i >> 3) & 7, i & 7])).astype(np.uint8)
        if all(np.abs(c.astype(np.int16) - m).max() > 2 for m in modes):
            modes.append(c)
    return modes if len(modes) >= 2 else []


def _colour_hist(px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of each 5-bit-per-channel colour, and each pixel's colour key."""
    q = (px >> 3).astype(np.int32)
    keys = (q[:, 0] << 10) | (q[:, 1] << 5) | q[:, 2]
    return np.bincount(keys, minlength=1 << 15) / max(1, len(keys)), keys


def _content_mask(frame: np.ndarray, bg: tuple[np.ndarray, bool], f: int) -> np.ndarray:
    """Non-background mask at 1/f scale; a working pixel is background if at least half the pixels
    under it are, so that a gap one or two pixels wide survives the pooling. bg is the colour and
    whether it is matched loosely: on luma alone, within _LOOSE_TOL (a compressed recording)."""
    colour, loose = bg
    if loose:
        luma = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        ref = int(cv2.cvtColor(colour.reshape(1, 1, 3), cv2.COLOR_BGR2GRAY)[0, 0])
        is_bg = cv2.inRange(luma, max(0, ref - _LOOSE_TOL), min(255, ref + _LOOSE_TOL))
    else:
        lo = np.clip(colour.astype(np.int16) - _BG_TOL, 0, 255).astype(np.uint8)
        hi = np.clip(colour.astype(np.int16) + _BG_TOL, 0, 255).astype(np.uint8)
        is_bg = cv2.inRange(frame, lo, hi)
    if f > 1:
        H, W = is_bg.shape
        is_bg = cv2.resize(is_bg[:H - H % f, :W - W % f], (W // f, H // f), interpolation=cv2.INTER_AREA)
    return is_bg < 127


def _leaves(mask: np.ndarray, min_w: float) -> list[tuple]:
    """XY-cut leaves of every connected content region large enough to hold a tile."""
    leaves: list[tuple] = []
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=4)
    for i in np.nonzero((stats[:, 2] >= min_w) & (stats[:, 3] >= min_w / _ASPECT[1] * 0.5))[0]:
        if i == 0:
            continue
        x, y, cw, ch, _area = stats[i]
        _xycut(labels[y:y + ch, x:x + cw] == i, x, y, 0, leaves)
    return leaves


# ---------------------------------------------------------------- XY-cut

def _bands(profile: np.ndarray, length: int) -> list[tuple[int, int]]:
    """Runs of rows (or columns) that are not gaps, as (start, end exclusive)."""
    busy = profile > (1 - _GAP_FILL) * length
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
            if len(rows2) <= 1 or depth >= _MAX_DEPTH:
                parts = (_weak_cut(m) or _shape_cut(m)) if depth < _MAX_DEPTH else None
                if parts is None:
                    out.append((x, y, x + w, y + h))
                    return
                for a, b in parts:
                    _xycut(m[a:b], x, y + a, depth + 1, out)
                return
            rows = rows2
        else:
            if depth >= _MAX_DEPTH:
                out.append((x, y, x + w, y + h))
                return
            for a, b in cols:
                _xycut(m[:, a:b], x + a, y, depth + 1, out)
            return
    if depth >= _MAX_DEPTH:
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
    if w >= _ASPECT[0] * h:
        return None
    p = np.concatenate([[False], m.sum(axis=1) > (1 - _WEAK_GAP) * w, [False]]).astype(np.int8)
    d = np.diff(p)
    bands = [(int(a), int(b)) for a, b in zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0])]
    if len(bands) < 2 or not all(_ASPECT[0] <= w / (b - a) <= _ASPECT[1] for a, b in bands):
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
    if w <= _ASPECT[1] * h or h < 8:
        return None
    fill = m.mean(axis=1)
    lo = max(2, int(0.25 * h))
    if h - 2 * lo < 1:
        return None
    cs = np.arange(lo, h - lo + 1)
    s1 = np.concatenate([[0.0], np.cumsum(fill)])
    s2 = np.concatenate([[0.0], np.cumsum(fill * fill)])
    n1, n2 = cs, h - cs
    m1, m2 = s1[cs] / n1, (s1[h] - s1[cs]) / n2
    sse = (s2[cs] - n1 * m1 ** 2) + (s2[h] - s2[cs] - n2 * m2 ** 2)
    k = int(np.argmin(sse))
    if abs(m1[k] - m2[k]) < 0.2:
        return None
    c = int(cs[k])
    r = max(2, h // 20)
    a, b = max(1, c - r), min(h - 1, c + r)
    c = a + int(np.argmin(fill[a:b]))
    narrow = m[c + 1:] if m1[k] > m2[k] else m[:c]
    cols = np.nonzero(narrow.mean(axis=0) > 0.5)[0]
    if len(cols) == 0 or abs((cols[0] + cols[-1] + 1) / 2 - w / 2) > 0.03 * w:
        return None
    return [(0, c), (c + 1, h)]


# ---------------------------------------------------------------- choosing tiles

def _choose(leaves: list[tuple], size: tuple[int, int], min_w: float, frame: np.ndarray, f: int,
            split: bool = True) -> list[tuple]:
    """Tile-shaped leaves, gapless blocks split at the modal tile size, clipped tiles at the frame edge."""
    w, h = size
    r = np.array(leaves, np.float64)
    lw, lh = r[:, 2] - r[:, 0], r[:, 3] - r[:, 1]
    asp = lw / np.maximum(lh, 1)
    shaped = (lw >= min_w) & (asp >= _ASPECT[0]) & (asp <= _ASPECT[1])
    if not shaped.any():
        # no tile-shaped leaf at all: a gapless grid fills one leaf; look for its lattice
        out = []
        for i in np.argsort(-(lw * lh))[:3]:
            out += _grid_split(r[i], frame, f, min_w)
            if out:
                break
        return out
    tw, th = _modal_size(lw[shaped], lh[shaped])
    alike = shaped & (np.abs(lw - tw) <= _SIZE_TOL * tw) & (np.abs(lh - th) <= _SIZE_TOL * th)
    if alike.sum() == 1:
        # the tile size rests on one leaf: it may be a whole gapless grid
        i = int(np.nonzero(alike)[0][0])
        # big enough to hold a grid (the whole frame too: a gapless grid may fill it)
        big = 0.3 * w <= lw[i] and 0.2 * h <= lh[i]
        cells = _grid_split(r[i], frame, f, min_w) if split and big else []
        if cells:
            # the lattice's cells stand whatever their size (Meet's wider last row)
            rest = _choose([b for k, b in enumerate(leaves) if k != i] + cells, size, min_w, frame, f, False)
            return rest + [c for c in cells if c not in rest]
    cx, cy = (r[:, 0] + r[:, 2]) / 2, (r[:, 1] + r[:, 3]) / 2
    out = []
    corner = []
    for i in range(len(r)):
        x0, y0, x1, y1 = r[i]
        kw, kh = lw[i] / tw, lh[i] / th
        same_w, same_h = abs(kw - 1) <= _SIZE_TOL, abs(kh - 1) <= _SIZE_TOL
        at_x, at_y = x0 <= 1 or x1 >= w - 1, y0 <= 1 or y1 >= h - 1
        if same_w and same_h:
            out.append((x0, y0, x1, y1))
        elif _is_block(kw, kh) and (cells := _split_block((x0, y0, x1, y1), int(round(kw)), int(round(kh)),
                                                          th, frame, f)):
            out += cells
        elif same_w and at_y and lh[i] >= 0.2 * th:
            out.append((x0, y0, x1, y1))       # clipped by the top or bottom frame edge
        elif same_h and at_x and lw[i] >= 0.2 * tw:
            out.append((x0, y0, x1, y1))       # clipped by the left or right frame edge
        elif at_x and at_y and 0.2 <= kw <= 1 + _SIZE_TOL and 0.2 <= kh <= 1 + _SIZE_TOL:
            corner.append((x0, y0, x1, y1))
        elif shaped[i] and kw * kh >= _SPEAKER and lw[i] * lh[i] >= _SHARE * w * h and \
                not any(x0 < cx[k] < x1 and y0 < cy[k] < y1 for k in np.nonzero(alike)[0]):
            out.append((x0, y0, x1, y1))       # the speaker (or a shared screen) beside a strip of tiles
    # clipped by two frame edges, a piece of anything is smaller than a tile: only one whose two
    # inner sides continue a column and a row of the tiles found is a tile
    tol = max(2.0, 0.03 * tw)
    for c in corner:
        xe = c[0] if c[2] >= w - 1 else c[2]
        ye = c[1] if c[3] >= h - 1 else c[3]
        xi, yi = (0 if xe == c[0] else 2), (1 if ye == c[1] else 3)
        if any(abs(b[xi] - xe) <= tol for b in out) and any(abs(b[yi] - ye) <= tol for b in out):
            out.append(c)
    return out


def _in_grid(tile: Tile, tiles: list[Tile]) -> bool:
    """Whether another tile has this one's size: a cell of a gallery (a 2x2's camera-off tile is a
    quarter of the frame and flat), not a lone big region."""
    w, h = tile.box[2], tile.box[3]
    return any(t is not tile and abs(t.box[2] - w) <= _SIZE_TOL * w and abs(t.box[3] - h) <= _SIZE_TOL * h
               for t in tiles)


def _box(c: tuple) -> tuple:
    """(x0, y0, x1, y1) -> (x, y, w, h)."""
    return (c[0], c[1], c[2] - c[0], c[3] - c[1])


def _corners(box: Box) -> tuple:
    """(x, y, w, h) -> (x0, y0, x1, y1)."""
    return (box[0], box[1], box[0] + box[2], box[1] + box[3])


def _drop_nested(boxes: list[tuple]) -> list[tuple]:
    """Of two boxes that mostly overlap (a speaker border and the video inside it, found as two
    regions), keep the larger."""
    boxes = sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
    kept: list[tuple] = []
    for b in boxes:
        area = (b[2] - b[0]) * (b[3] - b[1])
        if all(max(0, min(b[2], k[2]) - max(b[0], k[0])) * max(0, min(b[3], k[3]) - max(b[1], k[1]))
               < 0.5 * area for k in kept):
            kept.append(b)
    return kept


def _is_block(kw: float, kh: float) -> bool:
    """About nx x ny tiles of the modal size, nx * ny >= 2; a block may run up to a third of a tile
    taller (a toolbar overlapping its bottom row)."""
    nx, ny = round(kw), int(kh + 0.05)
    return nx >= 1 and ny >= 1 and nx * ny >= 2 and abs(kw - nx) <= 0.06 * nx and -0.06 <= kh - ny <= 0.35


def _split_block(r, nx: int, ny: int, modal_h: float, frame: np.ndarray, f: int) -> list[tuple]:
    """A gapless block of nx x ny tiles: cut it where each inner cut line, searched near its even
    position, is a colour step along most of its length; extra height below the last row (a toolbar
    overlapping it) is left out. [] when a cut line is not there."""
    x0, y0, x1, y1 = r
    tw, th = (x1 - x0) / nx, (y1 - y0) / ny
    if th > 1.06 * modal_h:
        th = modal_h
    xs, ys = [x0], [y0]
    for k in range(1, nx):
        sup, pos = _line_support(frame, (x0 + k * tw) * f, y0 * f, (y0 + ny * th) * f, int(0.08 * tw * f) + f, 1)
        if sup < 0.5:
            return []
        xs.append(pos / f)
    for j in range(1, ny):
        sup, pos = _line_support(frame, (y0 + j * th) * f, x0 * f, x1 * f, int(0.08 * th * f) + f, 0)
        if sup < 0.5:
            return []
        ys.append(pos / f)
    xs.append(x1)
    ys.append(y0 + ny * th)
    return [(xs[k], ys[j], xs[k + 1], ys[j + 1]) for j in range(ny) for k in range(nx)]


def _line_support(frame: np.ndarray, pos: float, a: float, b: float, r: int, axis: int) -> tuple[float, int]:
    """The line (x = pos for axis 1, y = pos for axis 0, from a to b), free to move r pixels, that
    lies on a colour step along the largest fraction of its length: (that fraction, its position)."""
    n = frame.shape[1] if axis == 1 else frame.shape[0]
    along = frame.shape[0] if axis == 1 else frame.shape[1]
    pos, a, b = int(round(pos)), max(0, int(a)), min(along, int(b))   # a cell may reach past the frame
    lo, hi = max(1, pos - r), min(n - 1, pos + r)
    if hi < lo or b - a < 4:
        return 0.0, pos
    if axis == 1:
        strip = frame[a:b:2, lo - 1:hi + 1].astype(np.int16)
        sup = (_cmax(np.abs(np.diff(strip, axis=1))) > 12).mean(axis=0)
    else:
        strip = frame[lo - 1:hi + 1, a:b:2].astype(np.int16)
        sup = (_cmax(np.abs(np.diff(strip, axis=0))) > 12).mean(axis=1)
    i = int(np.argmax(sup))
    return float(sup[i]), lo + i


def _modal_size(lw: np.ndarray, lh: np.ndarray) -> tuple[float, float]:
    """The tile size of the size cluster covering the most area; a lone leaf (a shared screen, a
    document) weighs far less than repeated ones."""
    same = (np.abs(lw[:, None] - lw[None, :]) <= _SIZE_TOL * lw[:, None]) & \
           (np.abs(lh[:, None] - lh[None, :]) <= _SIZE_TOL * lh[:, None])
    n = same.sum(axis=1)
    score = (same * (lw * lh)[None, :]).sum(axis=1) * np.where(n == 1, 0.05, np.sqrt(n))
    best = same[int(np.argmax(score))]
    return float(np.median(lw[best])), float(np.median(lh[best]))


def _grid_split(r, frame: np.ndarray, f: int, min_w: float) -> list[tuple]:
    """A gapless grid that the XY-cut leaves as one piece, cut at its lattice (bot/gapless.py)."""
    cells = gapless.lattice(tuple(v * f for v in r), frame, min_w * f)
    return [tuple(v / f for v in c) for c in cells]


# ---------------------------------------------------------------- lattice completion

def _complete_lattice(boxes: list[tuple], mask: np.ndarray, frame: np.ndarray, f: int) -> list[tuple]:
    """Cells of the regular grid the found tiles sit on that the XY-cut missed: camera-off tiles the
    colour of the page (Meet's navy) have no visible edge, and videos that touch each other merge
    into shapes that are no block. The modal tile size and the pitch (size + gap) fitted to the found
    tiles give the lattice; a cell is added when it holds content in its centre (an avatar, initials,
    a video) and joins the found tiles through lattice neighbours. Each row keeps its own phase, so a
    centred last row offset by half a pitch is followed."""
    r = np.array(boxes, np.float64)
    lw, lh = r[:, 2] - r[:, 0], r[:, 3] - r[:, 1]
    tw, th = _modal_size(lw, lh)
    modal = (np.abs(lw - tw) <= _SIZE_TOL * tw) & (np.abs(lh - th) <= _SIZE_TOL * th)
    if modal.sum() < 2:
        return []
    m = r[modal]
    cx, cy = (m[:, 0] + m[:, 2]) / 2, (m[:, 1] + m[:, 3]) / 2
    py = _pitch(cy, th)
    px = _pitch(cx, tw)
    if px is None and py is None:
        return []
    # one axis without a pair to measure: the gap is the same both ways in Zoom's and Meet's grids
    px = px if px is not None else tw + (py - th)
    py = py if py is not None else th + (px - tw)
    x_ph, px = _fit(cx, px)
    y_ph, py = _fit(cy, py)
    # found tiles of a gapless grid bleed a pixel or two into their neighbours
    tw, th = min(tw, px), min(th, py)
    gapped = px - tw >= 2 and py - th >= 2
    h, w = mask.shape
    rows = np.arange(np.ceil((th / 2 - 1 - y_ph) / py), np.floor((h + 1 - th / 2 - y_ph) / py) + 1)
    if len(rows) == 0:
        return []
    integral = cv2.integral(mask.view(np.uint8))

    def fill(x0, y0, x1, y1) -> float:
        x0, y0 = int(max(0, x0)), int(max(0, y0))
        x1, y1 = int(min(w, x1)), int(min(h, y1))
        if x1 <= x0 or y1 <= y0:
            return 0.0
        s = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
        return float(s) / ((x1 - x0) * (y1 - y0))

    taken = [tuple(b) for b in r]
    cells: dict[tuple[int, int], tuple] = {}      # (row, column index) -> box, found or added
    frontier = []
    for j in rows.astype(int):
        yc = y_ph + j * py
        in_row = cx[np.abs(cy - yc) <= th / 4]
        phases = [_phase(in_row, px)] if len(in_row) else [x_ph, (x_ph + px / 2) % px]
        best_row: list = []
        for ph in phases:
            row = []
            for i in range(int(np.ceil((tw / 2 - 1 - ph) / px)), int(np.floor((w + 1 - tw / 2 - ph) / px)) + 1):
                xc = ph + i * px
                c = (xc - tw / 2, yc - th / 2, xc + tw / 2, yc + th / 2)
                found = any(_overlap(c, b) > 0.3 for b in taken)
                row.append((i, c, found, found or _holds_tile(c, fill, gapped, frame, f)))
            if sum(a[3] for a in row) > sum(a[3] for a in best_row):
                best_row = row
        for i, c, found, ok in best_row:
            if found:
                frontier.append((j, c))
            elif ok:
                cells[(j, i)] = c
    # keep the candidate cells that join the found tiles through horizontal or vertical neighbours
    added: list[tuple] = []
    while frontier:
        j, c = frontier.pop()
        for key, d in list(cells.items()):
            if (key[0] == j and abs(d[0] - c[0]) <= px * 1.05) or \
                    (abs(key[0] - j) == 1 and abs(d[0] - c[0]) <= px * 0.55):
                del cells[key]
                added.append(d)
                frontier.append((key[0], d))
    return added


def _pitch(pos: np.ndarray, size: float) -> float | None:
    """The spacing (a tile size plus at most 30% gap) that puts the most pairs of tile positions a
    whole number of steps apart; None without a pair to measure."""
    d = np.abs(pos[:, None] - pos[None, :]).ravel()
    d = d[d > size * 0.5]
    if len(d) == 0:
        return None
    ps = np.arange(size * 0.97, size * 1.3, 0.25)
    k = np.maximum(1, np.round(d[None, :] / ps[:, None]))
    res = np.abs(d[None, :] - k * ps[:, None])
    hits = (res <= np.maximum(2.0, 0.015 * ps[:, None])).sum(axis=1)
    if hits.max() == 0:
        return None     # no pair a whole number of steps apart (a centred last row's half pitch)
    score = hits - res.mean(axis=1) / size
    return float(ps[int(np.argmax(score))])


def _fit(pos: np.ndarray, p: float) -> tuple[float, float]:
    """Lattice phase and pitch refined by a least-squares line through the positions on it: one
    tile's bleeding edge moves its position, many tiles together pin the lattice."""
    ph = _phase(pos, p)
    k = np.round((pos - ph) / p)
    on = np.abs(pos - ph - k * p) <= max(2.0, 0.03 * p)
    if len(np.unique(k[on])) < 2:
        return ph, p
    slope, icpt = np.polyfit(k[on], pos[on], 1)
    return float(icpt % slope), float(slope)


def _phase(pos: np.ndarray, p: float) -> float:
    """Lattice offset in [0, p) shared by most positions (the median of the largest cluster)."""
    ph = np.mod(pos, p)
    d = np.abs(ph[:, None] - ph[None, :])
    close = np.minimum(d, p - d) <= max(2.0, 0.03 * p)
    sel = ph[close[int(np.argmax(close.sum(axis=1)))]]
    ref = sel[0]
    return float(ref + np.median(((sel - ref + p / 2) % p) - p / 2)) % p


def _holds_tile(c: tuple, fill, gapped: bool, frame: np.ndarray, f: int) -> bool:
    """A lattice cell with tile content: some content overall and some in its centre, where Zoom
    and Meet put the avatar or initials of a camera-off tile (a video fills it). Content must not run
    across the cell's edge as a shared screen's does: in a grid with gaps the gap around the cell is
    background; a mostly flat cell has a background margin inside; a video cell's sides are colour
    steps (or the frame edge)."""
    x0, y0, x1, y1 = c
    cw, ch = x1 - x0, y1 - y0
    body = fill(x0 + 2, y0 + 2, x1 - 2, y1 - 2)
    if body < 0.03 or fill(x0 + cw / 3, y0 + ch * 0.1, x1 - cw / 3, y0 + ch * 0.75) < 0.05:
        return False
    if gapped and _ring(fill, (x0 - 2, y0 - 2, x1 + 2, y1 + 2), 1) > 0.1:
        return False
    if body < 0.5:
        # ... all round: a cell whose one side is all content (a title bar, a desktop) is no tile
        inner = (x0 + 1, y0 + 1, x1 - 1, y1 - 1)
        return _ring(fill, inner, 3) <= 0.4 and _ring(fill, inner, 3, worst=True) <= 0.8
    H, W = frame.shape[:2]
    sides = [x0 <= 1 or _line_support(frame, x0 * f, y0 * f, y1 * f, f + 1, 1)[0] >= 0.5,
             x1 * f >= W - 2 or _line_support(frame, x1 * f, y0 * f, y1 * f, f + 1, 1)[0] >= 0.5,
             y0 <= 1 or _line_support(frame, y0 * f, x0 * f, x1 * f, f + 1, 0)[0] >= 0.5,
             y1 * f >= H - 2 or _line_support(frame, y1 * f, x0 * f, x1 * f, f + 1, 0)[0] >= 0.5]
    return sum(sides) >= 3


def _ring(fill, c: tuple, t: float, worst: bool = False) -> float:
    """Content share of the band t wide just inside box c (of its fullest side, if worst)."""
    x0, y0, x1, y1 = c
    sides = (fill(x0, y0, x1, y0 + t), fill(x0, y1 - t, x1, y1),
             fill(x0, y0 + t, x0 + t, y1 - t), fill(x1 - t, y0 + t, x1, y1 - t))
    return max(sides) if worst else sum(sides) / 4


def _add_missed(best: list[tuple], leaves: list[tuple], mask: np.ndarray, frame: np.ndarray,
                small: np.ndarray, f: int) -> tuple[list[tuple], list[tuple]]:
    """The tiles the cut missed, added to those found: cells of their lattice, videos floating on a
    desktop around them, a tile joined to a thumbnail hanging over its corner (bot/overhang.py); and
    the thumbnails floating on the page, over a tile's corner or alone."""
    if len(best) < 2:
        return best, []
    best = best + _complete_lattice(best, mask, frame, f)
    best = best + _floating_videos(best, leaves, mask, small)
    r = np.array(best, np.float64)
    size = _modal_size(r[:, 2] - r[:, 0], r[:, 3] - r[:, 1])
    hung = []
    for leaf in leaves:
        if any(_overlap(leaf, b) >= 0.3 for b in best):
            continue
        if pair := overhang.split(leaf, mask, best, size):
            best, hung = best + [pair[0]], hung + [pair[1]]
        elif overhang.alone(leaf, mask, size) and selfview.photographic(small, tuple(int(v) for v in _box(leaf))):
            hung.append(leaf)
    return best, hung


# ---------------------------------------------------------------- floating videos

def _floating_videos(boxes: list[tuple], leaves: list[tuple], mask: np.ndarray,
                     small: np.ndarray) -> list[tuple]:
    """Video windows lying on textured content around the gallery: Zoom's floating speaker
    thumbnail and self view over the desktop while sharing (zoom-gallery-3plus2-desktop-01) join the
    wallpaper with no background between them, so only their edges show. Looked for only inside a
    leaf that encloses the tiles found (the desktop, not a shared screen beside them): a rectangle
    whose left and bottom sides are long straight colour steps, whose top and right are steps or
    the frame edge, of video shape (16:10 to a little over 16:9) and of about a tile's size, with content all over and
    touching no other leaf or tile."""
    r = np.array(boxes, np.float64)
    tw, th = _modal_size(r[:, 2] - r[:, 0], r[:, 3] - r[:, 1])
    cx, cy = (r[:, 0] + r[:, 2]) / 2, (r[:, 1] + r[:, 3]) / 2
    hosts = [lf for lf in leaves
             if ((cx > lf[0]) & (cx < lf[2]) & (cy > lf[1]) & (cy < lf[3])).sum() >= 2 and
             all(_overlap(lf, b) < 0.5 for b in boxes)]
    if not hosts:
        return []
    h, w = mask.shape
    sv = (_cmax(cv2.absdiff(small[:, 1:], small[:, :-1])) > 24).view(np.uint8)   # x | x+1
    sh = (_cmax(cv2.absdiff(small[1:], small[:-1])) > 24).view(np.uint8)
    # a blurred edge steps over two pixels and a busy picture breaks it here and there
    sv = cv2.morphologyEx(np.maximum(sv[:, :-1], sv[:, 1:]), cv2.MORPH_CLOSE, np.ones((5, 1), np.uint8))
    sh = cv2.morphologyEx(np.maximum(sh[:-1], sh[1:]), cv2.MORPH_CLOSE, np.ones((1, 5), np.uint8))
    min_len = int(0.4 * th)
    vs = _runs(sv, min_len, axis=0)       # (x, y0, y1): a step at x | x+1 or x+1 | x+2
    hs = _runs(sh, min_len, axis=1)
    if not vs or not hs:
        return []
    iv, ih = cv2.integral(sv), cv2.integral(sh)
    integral = cv2.integral(mask.view(np.uint8))

    def vsup(x, y0, y1):
        x = int(x)
        if x >= w - 3:
            return 1.0
        lo, hi = max(0, x - 2), min(sv.shape[1], x + 1)
        col = iv[y1, lo + 1:hi + 1] - iv[y0, lo + 1:hi + 1] - iv[y1, lo:hi] + iv[y0, lo:hi]
        return float(col.max()) / max(1, y1 - y0)

    def hsup(y, x0, x1):
        y = int(y)
        if y <= 1:
            return 1.0
        lo, hi = max(0, y - 2), min(sh.shape[0], y + 1)
        row = ih[lo + 1:hi + 1, x1] - ih[lo:hi, x1] - ih[lo + 1:hi + 1, x0] + ih[lo:hi, x0]
        return float(row.max()) / max(1, x1 - x0)

    tol = max(3, int(0.04 * tw))
    V, Hs = np.array(vs, np.float64), np.array(hs, np.float64)
    # a floating video's edges lie on the host, off the tiles: in a grid nearly every long line is a
    # tile's edge, and dropping those keeps the pairing below small
    tb = np.array([b for b in boxes], np.float64)

    def off_tiles(px, py):
        return ~((px[:, None] >= tb[None, :, 0] - 2) & (px[:, None] <= tb[None, :, 2] + 2) &
                 (py[:, None] >= tb[None, :, 1] - 2) & (py[:, None] <= tb[None, :, 3] + 2)).any(axis=1)

    V = V[off_tiles(V[:, 0], (V[:, 1] + V[:, 2]) / 2)]
    Hs = Hs[off_tiles((Hs[:, 1] + Hs[:, 2]) / 2, Hs[:, 0])]
    if len(V) == 0 or len(Hs) == 0:
        return []
    x, va, vb = V[:, 0:1], V[:, 1:2], V[:, 2:3]
    y, hc, hd = Hs[None, :, 0], Hs[None, :, 1], Hs[None, :, 2]
    bw, bh = np.minimum(w, hd + 1) - (x + 1), y + 1 - va
    # the bottom-left corner: the left side reaches down to the bottom (but for the name label,
    # which sits in that corner and breaks the edge), the bottom starts there; video shape and size
    ok = (np.abs(hc - x) <= tol) & (va + min_len <= y) & (y <= vb + 0.25 * th) & \
        (bw >= 1.6 * bh) & (bw <= 1.95 * bh) & (bw >= 0.4 * tw) & (bw <= 1.5 * tw)
    found: list[tuple] = []
    for i, j in zip(*np.nonzero(ok)):
        x0, y0, x1, y1 = int(V[i, 0]) + 1, int(V[i, 1]), min(w, int(Hs[j, 2]) + 1), int(Hs[j, 0]) + 1
        bw, bh = x1 - x0, y1 - y0
        c = (x0, y0, x1, y1)
        if not any(_overlap(c, hst) > 0.95 for hst in hosts):
            continue
        if any(_overlap(c, b) > 0.05 or _overlap(b, c) > 0.05 for b in boxes + found) or \
                any(lf not in hosts and _overlap(c, lf) > 0.05 for lf in leaves):
            continue
        s = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
        if s < 0.9 * bw * bh or hsup(y0, x0, x1) < 0.6 or vsup(x1 - 1, y0, y1) < 0.6:
            continue
        found.append(c)
    return found


def _runs(step: np.ndarray, min_len: int, axis: int) -> list[tuple]:
    """Straight runs of steps at least min_len long: (line position, start, end) down each
    column (axis 0) or along each row (axis 1); neighbouring lines repeat a run, and that is fine."""
    s = step.T if axis == 0 else step         # one line per row, padded so runs end at each line
    n, L = s.shape
    p = np.zeros((n, L + 2), np.int8)
    p[:, 1:-1] = s
    d = np.diff(p.ravel())
    starts, ends = np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]
    keep = ends - starts >= min_len
    starts, ends = starts[keep], ends[keep]
    line = starts // (L + 2)
    return list(zip(line.tolist(), (starts % (L + 2)).tolist(), (ends % (L + 2)).tolist()))


# ---------------------------------------------------------------- no flat background

def _off_background(best: list[tuple], bg: tuple | None, frame: np.ndarray, small: np.ndarray,
                    f: int) -> tuple[list[tuple], tuple | None]:
    """The tiles, and the flat background they stand on (None for none): few tiles may be blocks
    that clear gaps cut out of a grid with no flat background, or fragments of one video filling the
    window, which stands on the window's page (bot/speaker.py)."""
    if len(best) < 9:
        cells = _dark_lattice(small)
        if len(cells) > len(best) and (len(best) < 2 or all(_on_lattice(b, cells) for b in best)):
            return cells, None
    if len(best) <= 1 and (video := speaker.lone(frame)) is not None:
        box = tuple(v / f for v in video[0])
        if all(_overlap(b, box) > 0.95 and _overlap(box, b) < 0.5 for b in best):
            return [box], (video[1], False)
    return best, bg



def _dark_lattice(small: np.ndarray) -> list[tuple]:
    """Tiles of a regular grid whose gaps are dark but not one colour: a camera photo of a monitor
    (moire, vignetting, JPEG) or a noisy re-encoding. Tried only where a flat background explained
    few tiles, and kept only where it finds more, around all of them. The grid's extent is the longest
    run of rows (columns) holding content; a lattice of n equal columns (rows) counts when every inner
    line is almost all dark and no cell centre is; the finest such lattice wins (a 4-column grid also
    passes as 2). [] unless both axes find one, with at least
    4 cells of tile shape."""
    dark = _cmax(small) < _DARK
    h, w = dark.shape
    if min(h, w) < 32:
        return []       # a sliver of a frame holds no grid
    spans, lines = [], []
    for axis, n_len in ((0, w), (1, h)):
        content = (~dark).mean(axis=axis)
        k = max(3, int(0.03 * n_len) | 1)
        busy = np.convolve(content, np.ones(k) / k, "same") > 0.25
        # the longest busy run: a title bar or a taskbar beyond a dark band is not part of the grid
        edges = np.flatnonzero(np.diff(np.concatenate([[0], busy.astype(np.int8), [0]])))
        if not len(edges):
            return []
        a0, a1 = max(zip(edges[::2], edges[1::2]), key=lambda r: r[1] - r[0])
        # the smoothing spreads the run into the dark margin around the grid: trim it back
        while a1 - a0 > 2 and content[a0] < 0.2:
            a0 += 1
        while a1 - a0 > 2 and content[a1 - 1] < 0.2:
            a1 -= 1
        spans.append((int(a0), int(a1)))
    (x0, x1), (y0, y1) = spans
    sub = dark[y0:y1, x0:x1]
    if min(sub.shape) < 10:
        return []
    for a0, across in ((x0, 0), (y0, 1)):
        # a profile per fifth of the lines' length: a photo's slight tilt moves a line by a few
        # pixels from one end to the other, more than a 3-pixel gap is wide; the median of the five
        # lets a speaker's coloured border or a bright object cross a gap
        prof = np.stack([b.mean(axis=across) for b in np.array_split(sub, 5, axis=across)])
        L, best = prof.shape[1], None
        r = max(1, int(0.02 * L))
        for n in range(2, 11):
            peaks, support = [], []
            for c in (int(j * L / n) for j in range(1, n)):
                lo = max(0, c - r)
                at = lo + np.argmax(prof[:, lo:c + r + 1], axis=1)
                support.append(np.median(prof[np.arange(len(prof)), at]))
                peaks.append(int(round(np.median(at))))
            centres = prof.mean(axis=0)[[int((j + 0.5) * L / n) for j in range(n)]]
            if min(support) >= _DARK_LINE and centres.max() < 0.6:
                best = [0] + peaks + [L]
        if best is None:
            return []
        lines.append([a0 + q for q in best])
    xs, ys = lines
    cells = []
    for j in range(len(ys) - 1):
        for i in range(len(xs) - 1):
            # the line itself is gap: a cell starts one pixel after it
            cx0, cx1 = xs[i] + (i > 0), xs[i + 1] - (i + 1 < len(xs) - 1)
            cy0, cy1 = ys[j] + (j > 0), ys[j + 1] - (j + 1 < len(ys) - 1)
            cells.append((cx0, cy0, cx1, cy1))
    cw, ch = (xs[-1] - xs[0]) / (len(xs) - 1), (ys[-1] - ys[0]) / (len(ys) - 1)
    if len(cells) < 4 or not _ASPECT[0] <= cw / ch <= _ASPECT[1]:
        return []
    return cells


def _on_lattice(box: tuple, cells: list[tuple]) -> bool:
    """box is one cell or a block of cells (its sides within a quarter cell of the cells' sides): the
    few tiles a flat background found were blocks that clear gaps cut out of the grid. A box off
    the lattice (a centred last row) says the grid is not a full lattice."""
    cw = np.median([c[2] - c[0] for c in cells])
    ch = np.median([c[3] - c[1] for c in cells])

    def near(v: float, side: int, t: float) -> bool:
        return min(abs(v - c[side]) for c in cells) <= t

    return (near(box[0], 0, 0.25 * cw) and near(box[2], 2, 0.25 * cw)
            and near(box[1], 1, 0.25 * ch) and near(box[3], 3, 0.25 * ch))


# ---------------------------------------------------------------- per tile

def _snap(frame: np.ndarray, box: tuple, scale: int) -> Box:
    """Move each side to the strongest colour step within the working copy's rounding error (a side
    on the frame's edge stays there)."""
    H, W = frame.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    r = scale + 1
    x0 = x0 if x0 <= 0 else _best_step(frame, x0, y0, y1, r, axis=1)
    x1 = x1 if x1 >= W else _best_step(frame, x1, y0, y1, r, axis=1)
    y0 = y0 if y0 <= 0 else _best_step(frame, y0, x0, x1, r, axis=0)
    y1 = y1 if y1 >= H else _best_step(frame, y1, x0, x1, r, axis=0)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(W, x1), min(H, y1)
    return (x0, y0, x1 - x0, y1 - y0)


def _best_step(frame, pos: int, a: int, b: int, r: int, axis: int) -> int:
    """Boundary position in pos-r..pos+r with the largest mean step along [a, b)."""
    n = frame.shape[1] if axis == 1 else frame.shape[0]
    lo, hi = max(1, pos - r), min(n - 1, pos + r)
    if hi < lo:
        return pos
    m = max(0, a + (b - a) // 10)
    e = max(m + 1, b - (b - a) // 10)
    if axis == 1:
        strip = frame[m:e:4, lo - 1:hi + 1].astype(np.int16)
        step = _cmax(np.abs(np.diff(strip, axis=1))).mean(axis=0)
    else:
        strip = frame[lo - 1:hi + 1, m:e:4].astype(np.int16)
        step = _cmax(np.abs(np.diff(strip, axis=0))).mean(axis=1)
    if step.size == 0 or step.max() < _BG_TOL:
        return pos
    return lo + int(np.argmax(step))


def _name_box(box: Box) -> Box:
    """The bottom ~35% of the tile at full width: where Zoom and Meet put the name label."""
    x, y, w, h = box
    nh = max(1, int(round(h * 0.35)))
    return (x, y + h - nh, w, nh)


def _camera_off(small: np.ndarray, box: Box, f: int) -> bool:
    """No live video: the tile's outer ring (top and both sides, above the name label) is one flat
    colour and most of its body is that colour, with a name, initials or an avatar floating in its
    centre.
    A live video in front of a plain (virtual) background still has the person, a logo or a dark
    room's noise reaching that ring; a pillarboxed video has its picture in the top row."""
    x, y, w, h = (v // f for v in box)
    tile = small[y:y + h, x:x + w]
    if tile.size == 0:
        return False
    t = cv2.resize(tile, (64, 36), interpolation=cv2.INTER_AREA).astype(np.int16)
    t = t[2:-2, 2:-2]                         # skip a speaker border and a neighbour's bleeding edge
    body = t[:int(t.shape[0] * 0.78)]         # skip the name label strip
    ring = np.concatenate([body[:2].reshape(-1, 3), body[2:, :4].reshape(-1, 3), body[2:, -4:].reshape(-1, 3)])
    ref = np.sort(ring, axis=0)[len(ring) // 2]       # the median, without np.median's overhead
    if (np.abs(ring - ref).max(axis=1) <= 8).mean() < 0.9:
        return _placeholder(body)
    content = _cmax(np.abs(body - ref)) > 8
    if content.mean() > 0.5:
        return False
    # what is not flat is centred (Zoom and Meet centre the avatar, initials or name; Meet's mic icon
    # and name at the bottom left pull it a little): a live person on a plain wall sits anywhere
    xs = np.nonzero(content)[1]
    return bool(len(xs) == 0 or abs(xs.mean() / content.shape[1] - 0.5) <= 0.08)


def _placeholder(body: np.ndarray) -> bool:
    """A drawn placeholder (older Zoom's grey silhouette on a white card between black bars): the
    body is almost all flat, in two or three large flat colours; a dark video is flat in one."""
    g = np.maximum(_cmax(np.abs(np.diff(body, axis=0))[:, :-1]), _cmax(np.abs(np.diff(body, axis=1))[:-1]))
    flat = g <= 2
    if flat.mean() < 0.75:
        return False
    q = (body[:-1, :-1][flat] >> 5)
    share = np.sort(np.bincount((q[:, 0] << 6) | (q[:, 1] << 3) | q[:, 2], minlength=512))[::-1] / g.size
    return bool(share[1] >= 0.15 and share[:3].sum() >= 0.7)


def _reading_order(tiles: list[Tile]) -> list[Tile]:
    """Rows top to bottom (tiles whose vertical centres are within half a tile height), then x."""
    tiles = sorted(tiles, key=lambda t: t.box[1] + t.box[3] / 2)
    rows: list[list[Tile]] = []
    for t in tiles:
        cy = t.box[1] + t.box[3] / 2
        if rows and abs(cy - (rows[-1][0].box[1] + rows[-1][0].box[3] / 2)) < rows[-1][0].box[3] / 2:
            rows[-1].append(t)
        else:
            rows.append([t])
    return [t for row in rows for t in sorted(row, key=lambda t: t.box[0])]
