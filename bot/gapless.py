"""Gapless grids: videos edge to edge (Google Meet's 2020 tiles, Teams' gallery, a Zoom recording)
leave no gap of background to cut at, only the straight colour steps where one video meets the next.

The grid is a lattice of equal cells: along each axis, a run of step lines at one pitch. The lines are
found where a colour step sits on the same pixel column (or row) along most of the grid's length (a
doorframe or a window in a video wanders or stops; a tile's edge does neither); the lattice may fill
only part of the region it is looked for in (a browser's tabs above it, a toolbar or a taskbar below).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class GaplessTuning:
    """The gapless lattice's tuning values, each with its reason."""
    step: int = 16  # channel difference across two pixels that makes a colour step (JPEG noise is below)
    line: float = 0.45  # a lattice line is a step along at least this share of the grid's length
    side: float = 0.25  # ... and along each cell's side (two similar walls meet without a step in places)
    texture: float = 0.02  # share of steps along a line above which the strip is content, not flat colour
    page_colour_tol: int = 12  # channel levels within which a strip (or an end row) is the page's colour:
    # a smooth cheek is flat too, but not of the page's colour
    aspect: tuple[float, float] = (1.0, 2.3)  # cell width / height: 16:9, Meet's wider cells, Teams' squarer
    wide_last_row: float = 2.0  # a last row's fewer tiles are up to this many times the widest cell's shape
    max_lines: int = 40  # the strongest lines kept along an axis (more is texture, and a slow search)
    max_cells: int = 10  # per axis: finer lattices are blinds and bookshelves, not tiles
    min_height: int = 16  # a region lower than this (pixels) holds no lattice of tiles
    cover: float = 0.5  # a lattice covers at least this share of the region (along an axis, of its length)
    empty_end: float = 0.5  # a clipped end row or column more than this share page colour is a toolbar or margin
    clipped: float = 0.98  # an end cell shorter than this share of the pitch (the cell before) is clipped
    clipped_shows: float = 0.5  # ... and counts as a cell when at least this share of it shows
    samples: int = 240  # sample lines across a region: plenty to measure a share
    pitch_tol: float = 0.015  # a line lies on a run when within this share of the pitch of its place (2 px at least)
    gap_pair: tuple[int, float] = (3, 0.1)  # two lines this many px to this share of the pitch apart are a gap's edges
    gap_flat: float = 0.12  # ... with no line between them a step along more than this share of the length: a
    # gap is a band of one colour (a speaker's border too; a real capture's compressed gap ~0.09), a row of name
    # labels or a video's pattern beside a tile's edge is not (0.14 and up)


GAPLESS = GaplessTuning()


def lattice(region: tuple, frame: np.ndarray, min_w: float) -> list[tuple]:
    """The cells (x0, y0, x1, y1, in frame pixels) of the finest regular lattice of tile-shaped cells
    inside region (x0, y0, x1, y1) whose inner lines are all colour steps along the lattice; [] when
    there is no lattice of two cells or more covering at least half the region."""
    x0, y0, x1, y1 = (int(round(v)) for v in region)
    reg = frame[y0:y1, x0:x1]
    H, W = reg.shape[:2]
    if W < 2 * min_w or H < GAPLESS.min_height:
        return []
    xs, ys = None, (0, H)
    for _ in range(2):              # columns over the rows found, rows over the columns found
        xs = _progression(_profile(reg, ys[0], ys[-1], axis=1), W, min_w)
        if xs is None:
            return _rows_first(reg, x0, y0, min_w)
        ys = _progression(_profile(reg, xs[0], xs[-1], axis=0), H, min_w / GAPLESS.aspect[1])
        if ys is None:
            return _rows_first(reg, x0, y0, min_w)
    xs, ys = _without_empty_ends(reg, xs, ys)
    n, m = len(xs) - 1, len(ys) - 1
    if n < 1 or m < 1:
        return []
    cw, ch = (xs[-1] - xs[0]) / n, (ys[-1] - ys[0]) / m
    if n * m < 2 or not GAPLESS.aspect[0] <= cw / ch <= GAPLESS.aspect[1]:
        return []
    if (xs[-1] - xs[0]) * (ys[-1] - ys[0]) < GAPLESS.cover * W * H:
        return []
    if not _every_side(reg, xs, ys):
        return _rows_first(reg, x0, y0, min_w)
    return [(x0 + xs[i], y0 + ys[j], x0 + xs[i + 1], y0 + ys[j + 1]) for j in range(m) for i in range(n)]


def _rows_first(reg: np.ndarray, x0: int, y0: int, min_w: float) -> list[tuple]:
    """Rows of equal height across the whole region, each cut at its own columns: Meet's 2020 grid
    whose last row holds fewer, wider tiles. [] unless every row is a run of two tiles or more."""
    H, W = reg.shape[:2]
    ys = _progression(_profile(reg, 0, W, axis=0), H, min_w / GAPLESS.aspect[1])
    if ys is None or len(ys) < 3:
        return []
    page = modal_colour(reg)
    pitch = max(ys[k + 1] - ys[k] for k in range(len(ys) - 1))   # a clipped row keeps its tiles' shape
    bands = [reg[ys[j]:ys[j + 1]] for j in range(len(ys) - 1)]
    profs = [_profile(band, 0, len(band), axis=1) for band in bands]
    cols = _full_rows([_progression(prof, W, min_w, row=True) for prof in profs], profs, bands, page)
    cells = []
    for j, xs in enumerate(cols):
        if xs is None or not _sides(profs[j], bands[j], xs, page):
            return []
        for i in range(len(xs) - 1):
            cw = xs[i + 1] - xs[i]
            if not GAPLESS.aspect[0] <= cw / pitch <= GAPLESS.aspect[1] * GAPLESS.wide_last_row:
                return []
            cells.append((x0 + xs[i], y0 + ys[j], x0 + xs[i + 1], y0 + ys[j + 1]))
    return cells


def _full_rows(cols: list, profs: list, bands: list, page: np.ndarray) -> list:
    """Each row's columns, where a row above the last that reads fewer tiles than the fullest (two
    dark videos meeting with a step too faint to be found) is cut at the fullest row's columns when
    they are its tiles' sides: only the last row holds fewer tiles."""
    full = max((xs for xs in cols[:-1] if xs is not None), key=len, default=None)
    if full is None:
        return cols
    return [full if j < len(cols) - 1 and xs is not None and len(xs) < len(full) and
            _sides(profs[j], bands[j], full, page) else xs for j, xs in enumerate(cols)]


def _sides(prof: np.ndarray, band: np.ndarray, xs: list[int], page: np.ndarray) -> bool:
    """Whether each inner column line of a row is a colour step along its side (GAPLESS.side of the
    row's height) or runs through flat page colour there."""
    return all(prof[max(0, x - 2):x + 3].max() >= GAPLESS.side or _flat_page(band[:, max(0, x - 3):x + 3], page)
               for x in xs[1:-1])


def _without_empty_ends(reg: np.ndarray, xs: list[int], ys: list[int]) -> tuple[list[int], list[int]]:
    """The lattice without a clipped end row or column that is mostly page colour: a toolbar or the
    margin under a gallery, not a row of tiles cut by it."""
    page = modal_colour(reg)
    xs, ys = list(xs), list(ys)

    def empty(part: np.ndarray) -> bool:
        if part.size == 0:
            return False
        near = np.abs(part.astype(np.int16) - page).max(axis=2) <= GAPLESS.page_colour_tol
        return float(near.mean()) > GAPLESS.empty_end

    def last_clipped(v: list[int]) -> bool:
        return len(v) >= 4 and v[-1] - v[-2] < GAPLESS.clipped * (v[-2] - v[-3])

    def first_clipped(v: list[int]) -> bool:
        return len(v) >= 4 and v[1] - v[0] < GAPLESS.clipped * (v[2] - v[1])

    for _ in range(2):
        if last_clipped(ys) and empty(reg[ys[-2]:ys[-1]:2, xs[0]:xs[-1]:2]):
            ys.pop()
        if first_clipped(ys) and empty(reg[ys[0]:ys[1]:2, xs[0]:xs[-1]:2]):
            ys.pop(0)
        if last_clipped(xs) and empty(reg[ys[0]:ys[-1]:2, xs[-2]:xs[-1]:2]):
            xs.pop()
        if first_clipped(xs) and empty(reg[ys[0]:ys[-1]:2, xs[0]:xs[1]:2]):
            xs.pop(0)
    return xs, ys


def lines(reg: np.ndarray, axis: int) -> list[int]:
    """Positions of the straight colour steps that run along at least GAPLESS.line of the whole region:
    vertical ones (x) for axis 1, horizontal ones (y) for axis 0."""
    n = reg.shape[0] if axis == 1 else reg.shape[1]
    return [p for p, _ in _lines(_profile(reg, 0, n, axis))]


def side_support(frame: np.ndarray, pos: int, a: int, b: int, axis: int) -> float:
    """Share of a..b along which a boundary within two pixels of pos is a colour step: x = pos
    along rows a..b (axis 1), y = pos along columns a..b (axis 0)."""
    lo = max(0, pos - 3)
    reg = frame[:, lo:pos + 3] if axis == 1 else frame[lo:pos + 3]
    return float(_profile(reg, a, b, axis).max()) if reg.shape[axis] >= 3 else 0.0


def _every_side(reg: np.ndarray, xs: list[int], ys: list[int]) -> bool:
    """Every inner line is a step along each cell it bounds, or runs there through flat page colour
    (a pillarbox bar beside a camera-off tile of the same grey): a line through a face or a room is
    no tile edge (a centred last row under a two-tile row continues no column line)."""
    page = modal_colour(reg)
    for j in range(len(ys) - 1):
        prof = _profile(reg, ys[j], ys[j + 1], axis=1)
        for x in xs[1:-1]:
            strip = reg[ys[j]:ys[j + 1], max(0, x - 3):x + 3]
            if prof[max(0, x - 2):x + 3].max() < GAPLESS.side and not _flat_page(strip, page):
                return False
    for i in range(len(xs) - 1):
        prof = _profile(reg, xs[i], xs[i + 1], axis=0)
        for y in ys[1:-1]:
            strip = reg[max(0, y - 3):y + 3, xs[i]:xs[i + 1]].swapaxes(0, 1)
            if prof[max(0, y - 2):y + 3].max() < GAPLESS.side and not _flat_page(strip, page):
                return False
    return True


def modal_colour(reg: np.ndarray, step: int = 4) -> np.ndarray:
    """The region's most frequent colour (5 bits a channel, every `step`-th pixel each way): the page,
    the bars' grey, a strip's background."""
    px = reg[::step, ::step].reshape(-1, 3) >> 3
    keys = (px[:, 0].astype(np.int32) << 10) | (px[:, 1].astype(np.int32) << 5) | px[:, 2]
    k = int(np.argmax(np.bincount(keys, minlength=1 << 15)))
    return (np.array([k >> 10, (k >> 5) & 31, k & 31]) * 8 + 4).astype(np.int16)


def _flat_page(strip: np.ndarray, page: np.ndarray) -> bool:
    """Whether a thin strip along a line (lengthwise on axis 0) is flat and of the page colour:
    no steps along it, and its median colour within GAPLESS.page_colour_tol of the page."""
    s = np.ascontiguousarray(strip[::2])
    if len(s) < 3:
        return True
    if float((cmax(cv2.absdiff(s[1:], s[:-1])) > GAPLESS.step).mean()) > GAPLESS.texture:
        return False
    return int(np.abs(np.median(s.reshape(-1, 3), axis=0) - page).max()) <= GAPLESS.page_colour_tol


def _profile(reg: np.ndarray, a: int, b: int, axis: int) -> np.ndarray:
    """Share of the lines a..b across which each boundary k | k + 1 is a colour step (axis 1: vertical
    boundaries, measured along rows a..b; axis 0: horizontal ones along columns a..b). The step is
    taken over two pixels so that a blurred or compressed edge still shows."""
    stride = max(2, (b - a) // GAPLESS.samples)
    if axis == 1:
        s = np.ascontiguousarray(reg[a:b:stride])
        prof = (cmax(cv2.absdiff(s[:, 2:], s[:, :-2])) > GAPLESS.step).mean(axis=0)
    else:
        s = np.ascontiguousarray(reg[:, a:b:stride])
        prof = (cmax(cv2.absdiff(s[2:], s[:-2])) > GAPLESS.step).mean(axis=1)
    # d[k] compares k and k + 2: the boundary is k | k + 1 or k + 1 | k + 2; report it at k + 1
    return np.concatenate([[0.0], prof, [0.0]])


def _flat_between(prof: np.ndarray, u: int, v: int) -> bool:
    """Whether the band between two step lines is flat along its length (a gap, a border): no line
    inside it, two pixels in from each, is a step along more than GAPLESS.gap_flat of it. A band too
    narrow to look inside counts as flat."""
    inside = prof[min(u, v) + 3:max(u, v) - 2]
    return inside.size == 0 or float(inside.max()) <= GAPLESS.gap_flat


def cmax(a: np.ndarray) -> np.ndarray:
    """Largest of the three channels (numpy's reduce over a length-3 last axis is many times slower)."""
    return np.maximum(np.maximum(a[..., 0], a[..., 1]), a[..., 2])


def _lines(prof: np.ndarray) -> list[tuple[int, float]]:
    """Positions of step lines (local maxima at least GAPLESS.line), with their support."""
    out: list[tuple[int, float]] = []
    for i in np.nonzero(prof >= GAPLESS.line)[0]:
        lo, hi = max(0, i - 2), min(len(prof), i + 3)
        if prof[i] == prof[lo:hi].max() and not (out and i - out[-1][0] <= 2):
            out.append((int(i), float(prof[i])))
    return out


def _progression(prof: np.ndarray, length: int, min_size: float, row: bool = False) -> list[int] | None:
    """The longest run of lines at one pitch (the region's own edges count as lines): its positions,
    or None when no run of two cells or more is there, or when its lines come in pairs (the two
    edges of a gap: a grid with gaps is cut at its gaps, not here). In one row of a gapless grid
    (`row`) the run is two equal cells or more from edge to edge, without gaps: the rows meet without
    one, so their tiles do too, and a line beside a tile's edge is in a video (a row's short band
    shows a patterned wall's or a photo's own edges almost as strongly as the tiles')."""
    inner = [c for c in _lines(prof) if 2 < c[0] < length - 2]
    # stripes or a bookshelf make hundreds of lines: the grid's are among the strongest (the search
    # tries every pair, so it stays small)
    inner = sorted(sorted(inner, key=lambda c: -c[1])[:GAPLESS.max_lines])
    cand = [(0, 1.0)] + inner + [(length, 1.0)]
    pos = np.array([c[0] for c in cand], np.float64)
    sup = {c[0]: c[1] for c in cand}
    best, best_key = None, (1, -2, 0, 0.0)
    for i in range(len(cand)):
        for j in range(i + 1, len(cand)):
            p = pos[j] - pos[i]
            if p < min_size or p * GAPLESS.max_cells < length * GAPLESS.cover:
                continue
            run = [int(pos[i]), int(pos[j])]
            for step in (1, -1):
                while len(run) <= GAPLESS.max_cells:
                    want = (run[-1] if step > 0 else run[0]) + step * p
                    k = int(np.argmin(np.abs(pos - want)))
                    if abs(pos[k] - want) > max(2.0, GAPLESS.pitch_tol * p):
                        break
                    if step > 0:
                        run.append(int(pos[k]))
                    else:
                        run.insert(0, int(pos[k]))
            # a last row cut by a toolbar, a first one by the window's top: a cell clipped by the
            # region's edge, when at least half of it shows
            clipped = 0
            if GAPLESS.clipped_shows * p <= length - run[-1] < p * GAPLESS.clipped:
                run.append(length)
                clipped -= 1
            if GAPLESS.clipped_shows * p <= run[0] < p * GAPLESS.clipped:
                run.insert(0, 0)
                clipped -= 1
            if row and (clipped or len(run) < 3 or run[0] != 0 or run[-1] != length):
                continue
            key = (len(run) - 1, clipped, run[-1] - run[0], float(np.mean([sup[v] for v in run])))
            if key > best_key:
                best, best_key = run, key
    if best is not None and not row:
        p = (best[-1] - best[0]) / (len(best) - 1)
        inner = [v for v in best if 0 < v < length]
        paired = [v for v in inner if any(GAPLESS.gap_pair[0] <= abs(u - v) <= GAPLESS.gap_pair[1] * p
                                          and _flat_between(prof, int(u), v) for u in pos[1:-1])]
        if inner and len(paired) * 2 > len(inner):
            return None
    return best
