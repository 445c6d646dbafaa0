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

from bot import grid, overhang, selfview, strip
from bot.backdrop import BACKDROP, is_video, overlap
from bot.config import TileSettings
from bot.gapless import cmax
from bot.gaps import best_reading, content_mask
from bot.grid import complete_lattice, corners, in_grid, modal_size
from bot.label_finder import has_text
from bot.textured import floating_videos, off_background
from bot.tile_tuning import TUNING
from bot.types import Box, Tile


@dataclass(frozen=True)
class SegmentTuning:
    """The cut's own tuning values (those it shares with the modules it cuts with are TUNING's), each
    with its reason."""
    min_frame: int = 16  # a frame fewer pixels across holds no gallery
    min_tile: tuple[float, int] = (8.0, 14)  # a tile is at least this many working pixels wide, and 1 / this
    # of the working width (finer pieces are icons and text)
    min_tile_h: float = 0.5  # a tile is at least this share of min_tile_px high (tiles are wider than high)
    found_overlap: float = 0.3  # a region overlapping a found tile this much is part of it, not a missed one
    label_band: tuple[float, float] = (0.5, 0.3)  # a tile's name label lies in this share of its width,
    # height from its bottom-left
    label_room: float = 0.15  # a region leaving less than this share of its cell's width left of it covers
    # the label's place
    name_band: float = 0.35  # the name box is the bottom this share of the tile, at full width
    memory_gap_change: float = 0.002  # share of the gap pixels that may turn to content (a clock, a mic icon)
    memory_gap_px: int = 16  # ... plus this many (a small frame's few gap pixels allow a clock too)
    memory_tile_fill: float = 0.5  # a tile is still there while at least this share of it is not background
    off_thumb: tuple[int, int] = (64, 36)  # a tile is judged camera-off on a copy this small (layout, not detail)
    off_body: float = 0.78  # the body above the name label is this share of the tile's height
    off_flat_tol: int = 8  # channel levels within which a pixel is the tile's flat colour
    off_ring: float = 0.9  # the ring of a camera-off tile is at least this share flat colour
    off_content: float = 0.5  # ... and at most this share of its body is not (a live video's is more)
    off_centred: float = 0.08  # ... whose middle is within this share of the width of the tile's centre
    placeholder_flat: float = 0.75  # a drawn placeholder's body is at least this share flat
    placeholder_colours: tuple[float, float] = (0.15, 0.7)  # its second colour covers this share at least, its
    # three largest this share together (a dark video is flat in one)


SEGMENT = SegmentTuning()


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
    if frame is None or frame.ndim not in (2, 3) or min(frame.shape[:2]) < SEGMENT.min_frame:
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
    # ... with no gap across it when it was cut: a video that already had one (a band of the page's
    # colour in a student's own picture) must not make every frame be cut afresh

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
        solid = [t not in fixed and not t.floating and not _gapped(mask[y0:y1, x0:x1])
                 for t, (x0, y0, x1, y1) in zip(tiles, inner)]
        return cls(shape, bg, f, tiles, gaps, int(gaps.sum()), inner, fixed, solid)


class LayoutMemory:
    """Tiles of the last frame, kept while its layout stands: `segment` costs ~20 ms on a 1080p
    gallery, the check ~5 ms, and a lecture's gallery changes only when someone joins or leaves,
    shares a screen or the window moves.

    The layout stands when nothing appeared in the gaps and chrome around the tiles (working pixels
    outside every tile that were background and are not any more: at most a clock's worth) and every
    tile is still mostly not background (one whose participant left turns into background), with no
    row or column of background across it (a strip slid in over a lone speaker; a tile whose own video
    showed such a band of the page's colour when it was cut is let off this check, so a student cannot
    force a fresh cut on every frame). A
    reflowed grid puts tiles over the old gaps; a speaker border is drawn inside its tile.
    Camera-off flags are taken afresh on every frame; anything else, and every frame the layout
    does not stand, is segmented from scratch."""

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
            mask = content_mask(frame, last.bg, last.f)
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
        if int(mask[last.gaps].sum()) > SEGMENT.memory_gap_change * last.n_gaps + SEGMENT.memory_gap_px:
            return False
        for (x0, y0, x1, y1), solid in zip(last.inner, last.solid):
            part = mask[y0:y1, x0:x1]
            if part.size and part.mean() < SEGMENT.memory_tile_fill:
                return False
            # a gap across a video's tile: the window re-laid (a strip over the speaker, a reflowed grid)
            if solid and _gapped(part):
                return False
        return True


def _gapped(part: np.ndarray) -> bool:
    """Whether a tile's content mask (at 1/f) has a gap across it, a few pixels in from its sides."""
    core = part[3:-3, 3:-3]
    return bool(core.size) and (_gap_across(core.any(axis=1)) or _gap_across(core.any(axis=0)))


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
    f = max(1, int(round(max(W, H * 16 / 9) / TUNING.work_w)))
    h, w = H // f, W // f
    min_w = max(SEGMENT.min_tile[0], settings.min_tile_px / f, w / SEGMENT.min_tile[1])
    best, best_mask, best_leaves, best_bg = best_reading(frame, f, min_w)
    small = _small(frame, f)
    best, hung = _add_missed(best, best_leaves, best_mask, frame, small, f)
    best, bg = off_background(best, best_bg, frame, small, f)
    if bg is not best_bg:       # not the gap search's tiles: no thumbnails of theirs, a mask of its own
        hung, best_mask = [], None if bg is None else content_mask(frame, bg, f)
    out = []
    for x0, y0, x1, y1 in best:
        box = _snap(frame, (x0 * f, y0 * f, x1 * f, y1 * f), f)
        if box[2] < settings.min_tile_px or box[3] < settings.min_tile_px * SEGMENT.min_tile_h:
            continue
        out.append(Tile(box=box, name_box=_name_box(box), camera_off=_camera_off(small, box, f)))
    # a shared screen the search took for a tile: big, neither a camera's picture nor a camera-off tile
    # (a speaker before a flat virtual background looks the same: the pipeline keeps it if a face shows)
    area = frame.shape[0] * frame.shape[1]
    out = [dataclasses.replace(t, share=True) if t.box[2] * t.box[3] >= BACKDROP.share * area and not in_grid(t, out)
           and not is_video(frame, corners(t.box), 1) else t for t in out]
    bubbles, in_strip = strip.strip_boxes(frame)
    # what lies inside a tile found is what its video shows (a card of circles held up), never a
    # strip: a student must not make their own tile, or a neighbour's, go away
    if any(overlap(corners(b), corners(t.box)) > 0 for b in bubbles + in_strip for t in out):
        bubbles, in_strip = [], []
    out += [Tile(box=b, name_box=_name_box(b), camera_off=_camera_off(small, b, f)) for b in in_strip]
    fixed = [Tile(box=b, name_box=_name_box(b), camera_off=True) for b in bubbles]
    thumbs = [_snap(frame, corners(b), 1) for b in selfview.floating(frame, [t.box for t in out])] + \
        [_snap(frame, tuple(v * f for v in b), f) for b in hung]
    out = [dataclasses.replace(t, covered=tuple(b for b in thumbs if overlap(corners(b), corners(t.box)) > 0))
           for t in out]
    out += fixed + [Tile(box=b, name_box=_name_box(b), camera_off=False, floating=True) for b in thumbs]
    out = _reading_order(out)
    if not out or bg is None:
        return out, None
    return out, _Layout.of(frame.shape, bg, f, best_mask, out, fixed)


def _box(c: tuple) -> tuple:
    """(x0, y0, x1, y1) -> (x, y, w, h)."""
    return (c[0], c[1], c[2] - c[0], c[3] - c[1])


def _add_missed(best: list[tuple], leaves: list[tuple], mask: np.ndarray, frame: np.ndarray,
                small: np.ndarray, f: int) -> tuple[list[tuple], list[tuple]]:
    """The tiles the cut missed, added to those found: cells of their lattice, videos floating on a
    desktop around them, a tile joined to a thumbnail hanging over its corner (bot/overhang.py); and
    the thumbnails floating on the page, over a tile's corner or alone."""
    if len(best) < 2:
        return best, []
    lattice = grid.lattice_of(np.array(best, np.float64))
    best = best + complete_lattice(best, mask, frame, f, lattice)
    best = best + floating_videos(best, leaves, mask, small)
    r = np.array(best, np.float64)
    size = modal_size(r[:, 2] - r[:, 0], r[:, 3] - r[:, 1])
    hung = []
    for leaf in leaves:
        if any(overlap(leaf, b) >= SEGMENT.found_overlap for b in best):
            continue
        if pair := overhang.split(leaf, mask, best, size):
            best, hung = best + [pair[0]], hung + [pair[1]]
        elif leaf[2] - leaf[0] >= overhang.OVERHANG.thumb[0] * size[0]:
            # a student whose video is the page's colour shows only a picture somewhere in their cell:
            # a cell of the grid with a name label is their tile, never a thumbnail on the page
            cell = _labelled_cell(leaf, best, lattice, frame, mask.shape, f)
            if (cell is not None or overhang.alone(leaf, mask, size)) and \
                    selfview.photographic(small, tuple(int(v) for v in _box(leaf))):
                best, hung = (best + [cell], hung) if cell is not None else (best, hung + [leaf])
    return best, hung


def _labelled_cell(leaf: tuple, best: list[tuple], lattice: tuple | None, frame: np.ndarray, shape: tuple,
                   f: int) -> tuple | None:
    """The empty cell of the gallery's lattice around a region on the page, when the cell is a
    tile: its name label's place (the bottom-left band, left of the region) holds text, or the
    region covers that place. Meet's self-view alone on the page has no label beside it."""
    c = None if lattice is None else grid.cell_around(leaf, best, lattice)
    if c is None:
        return None
    x0, y0, x1, y1 = c
    h, w = shape
    if x0 < -2 or y0 < -2 or x1 > w + 2 or y1 > h + 2:
        return None
    cw, ch = x1 - x0, y1 - y0
    right = min(x0 + SEGMENT.label_band[0] * cw, leaf[0] - 2)
    if right - x0 < SEGMENT.label_room * cw:
        return c                # the region reaches the label's place: the label lies on it
    top = max(0, y1 - SEGMENT.label_band[1] * ch)
    band = frame[int(top * f):int(min(h, y1) * f), int(max(0, x0) * f):int(right * f)]
    return c if has_text(band) else None


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
        step = cmax(np.abs(np.diff(strip, axis=1))).mean(axis=0)
    else:
        strip = frame[lo - 1:hi + 1, m:e:4].astype(np.int16)
        step = cmax(np.abs(np.diff(strip, axis=0))).mean(axis=1)
    if step.size == 0 or step.max() < TUNING.bg_tol:
        return pos
    return lo + int(np.argmax(step))


def _name_box(box: Box) -> Box:
    """The bottom ~35% of the tile at full width: where Zoom and Meet put the name label."""
    x, y, w, h = box
    nh = max(1, int(round(h * SEGMENT.name_band)))
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
    t = cv2.resize(tile, SEGMENT.off_thumb, interpolation=cv2.INTER_AREA).astype(np.int16)
    t = t[2:-2, 2:-2]                         # skip a speaker border and a neighbour's bleeding edge
    body = t[:int(t.shape[0] * SEGMENT.off_body)]     # skip the name label strip
    ring = np.concatenate([body[:2].reshape(-1, 3), body[2:, :4].reshape(-1, 3), body[2:, -4:].reshape(-1, 3)])
    ref = np.sort(ring, axis=0)[len(ring) // 2]       # the median, without np.median's overhead
    if (np.abs(ring - ref).max(axis=1) <= SEGMENT.off_flat_tol).mean() < SEGMENT.off_ring:
        return _placeholder(body)
    content = cmax(np.abs(body - ref)) > SEGMENT.off_flat_tol
    if content.mean() > SEGMENT.off_content:
        return False
    # what is not flat is centred (Zoom and Meet centre the avatar, initials or name; Meet's mic icon
    # and name at the bottom left pull it a little): a live person on a plain wall sits anywhere
    xs = np.nonzero(content)[1]
    return bool(len(xs) == 0 or abs(xs.mean() / content.shape[1] - 0.5) <= SEGMENT.off_centred)


def _placeholder(body: np.ndarray) -> bool:
    """A drawn placeholder (older Zoom's grey silhouette on a white card between black bars): the
    body is almost all flat, in two or three large flat colours; a dark video is flat in one."""
    g = np.maximum(cmax(np.abs(np.diff(body, axis=0))[:, :-1]), cmax(np.abs(np.diff(body, axis=1))[:-1]))
    flat = g <= 2
    if flat.mean() < SEGMENT.placeholder_flat:
        return False
    q = (body[:-1, :-1][flat] >> 5)
    share = np.sort(np.bincount((q[:, 0] << 6) | (q[:, 1] << 3) | q[:, 2], minlength=512))[::-1] / g.size
    second, three = SEGMENT.placeholder_colours
    return bool(share[1] >= second and share[:3].sum() >= three)


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
