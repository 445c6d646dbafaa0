"""A gallery's grid from the leaves the gaps left: leaves of tile shape chosen as tiles, gapless blocks
split at the modal tile size, and the lattice of the tiles found walked outwards for the tiles it
missed (bot/tiles.py, steps 3-4 of its recipe)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np

from bot import gapless
from bot.backdrop import BACKDROP, overlap
from bot.gapless import cmax
from bot.tile_tuning import TUNING
from bot.types import Box, Tile


@dataclass(frozen=True)
class GridTuning:
    """The gallery grid's tuning values, each with its reason (those shared with the other tile
    modules are TUNING's)."""
    grid_leaf: tuple[float, float] = (0.3, 0.2)  # a lone leaf this share of the frame's width, height may be a
    # whole gapless grid
    grid_tries: int = 3  # with no tile-shaped leaf, the largest this many are looked at for a gapless grid
    clipped_shows: float = 0.2  # a tile clipped by the frame's edge shows at least this share of its side
    lined_up: float = 0.03  # positions within this share of a tile (2 px at least) are on one line
    nested: float = 0.5  # a box overlapping a larger one by this share of its area is inside it
    block_tol: float = 0.06  # a gapless block's size is within this share of a whole number of tiles ...
    block_slack: float = 0.05  # ... its rows counted with this much slack ...
    toolbar: float = 0.35  # ... and it runs at most this share of a tile taller (a toolbar over its last row)
    cut_search: float = 0.08  # a block's cut line is searched this share of a tile around its even place
    line_support: float = 0.5  # a cut line (a cell's side) is a colour step along at least this share of it
    step: int = 12  # channel difference between neighbouring pixels that makes a colour step
    lone_weight: float = 0.05  # a size cluster of one leaf (a shared screen) weighs this much per pixel
    same_row: float = 0.25  # a tile's centre within this share of a tile's height of a row's is in it
    taken: float = 0.3  # a lattice cell overlapping a found tile by this share is that tile's
    neighbour: tuple[float, float] = (1.05, 0.55)  # a cell joins a found one this many pitches away in its
    # row, or in the row next to it (half a pitch: a centred last row)
    pitch_pair: float = 0.5  # tile positions closer than this share of a tile are one tile, no pitch
    pitch: tuple[float, float] = (0.97, 1.3)  # the pitch is a tile's size plus at most 30% gap
    pitch_step: float = 0.25  # the pitches tried are this many pixels apart
    pitch_tol: float = 0.015  # a pair lies a whole number of pitches apart within this share (2 px at least)
    body: float = 0.03  # a cell holding a tile has at least this share of content overall ...
    centre: tuple[int, float, float] = (3, 0.1, 0.75)  # ... and in its centre: the middle 1 / this across,
    # from this share to this share down (where the avatar or initials sit) ...
    centre_fill: float = 0.05  # ... at least this share
    gap_ring: float = 0.1  # in a grid with gaps, the gap around a cell is at most this share content
    flat_body: float = 0.5  # a cell less than this share content is mostly flat (a camera-off tile) ...
    margin: int = 3  # ... and has a background margin this many pixels wide inside ...
    margin_fill: tuple[float, float] = (0.4, 0.8)  # ... at most this share content on average, on its fullest side
    step_sides: int = 3  # a video cell has at least this many sides on colour steps (or the frame's edge)


GRID = GridTuning()


def choose(leaves: list[tuple], size: tuple[int, int], min_w: float, frame: np.ndarray, f: int,
            split: bool = True) -> list[tuple]:
    """Tile-shaped leaves, gapless blocks split at the modal tile size, clipped tiles at the frame edge."""
    w, h = size
    r = np.array(leaves, np.float64)
    lw, lh = r[:, 2] - r[:, 0], r[:, 3] - r[:, 1]
    asp = lw / np.maximum(lh, 1)
    shaped = (lw >= min_w) & (asp >= TUNING.aspect[0]) & (asp <= TUNING.aspect[1])
    if not shaped.any():
        # no tile-shaped leaf at all: a gapless grid fills one leaf; look for its lattice
        out = []
        for i in np.argsort(-(lw * lh))[:GRID.grid_tries]:
            out += _grid_split(r[i], frame, f, min_w)
            if out:
                break
        return out
    tw, th = modal_size(lw[shaped], lh[shaped])
    alike = shaped & (np.abs(lw - tw) <= TUNING.size_tol * tw) & (np.abs(lh - th) <= TUNING.size_tol * th)
    if alike.sum() == 1:
        # the tile size rests on one leaf: it may be a whole gapless grid
        i = int(np.nonzero(alike)[0][0])
        # big enough to hold a grid (the whole frame too: a gapless grid may fill it)
        big = GRID.grid_leaf[0] * w <= lw[i] and GRID.grid_leaf[1] * h <= lh[i]
        cells = _grid_split(r[i], frame, f, min_w) if split and big else []
        if cells:
            # the lattice's cells stand whatever their size (Meet's wider last row)
            rest = choose([b for k, b in enumerate(leaves) if k != i] + cells, size, min_w, frame, f, False)
            return rest + [c for c in cells if c not in rest]
    cx, cy = (r[:, 0] + r[:, 2]) / 2, (r[:, 1] + r[:, 3]) / 2
    out = []
    corner = []
    for i in range(len(r)):
        x0, y0, x1, y1 = r[i]
        kw, kh = lw[i] / tw, lh[i] / th
        same_w, same_h = abs(kw - 1) <= TUNING.size_tol, abs(kh - 1) <= TUNING.size_tol
        at_x, at_y = x0 <= 1 or x1 >= w - 1, y0 <= 1 or y1 >= h - 1
        if same_w and same_h:
            out.append((x0, y0, x1, y1))
        elif _is_block(kw, kh) and (cells := _split_block((x0, y0, x1, y1), int(round(kw)), int(round(kh)),
                                                          th, frame, f)):
            out += cells
        elif same_w and at_y and lh[i] >= GRID.clipped_shows * th:
            out.append((x0, y0, x1, y1))       # clipped by the top or bottom frame edge
        elif same_h and at_x and lw[i] >= GRID.clipped_shows * tw:
            out.append((x0, y0, x1, y1))       # clipped by the left or right frame edge
        elif at_x and at_y and GRID.clipped_shows <= kw <= 1 + TUNING.size_tol and \
                GRID.clipped_shows <= kh <= 1 + TUNING.size_tol:
            corner.append((x0, y0, x1, y1))
        elif shaped[i] and kw * kh >= TUNING.speaker and lw[i] * lh[i] >= BACKDROP.share * w * h and \
                not any(x0 < cx[k] < x1 and y0 < cy[k] < y1 for k in np.nonzero(alike)[0]):
            out.append((x0, y0, x1, y1))       # the speaker (or a shared screen) beside a strip of tiles
    # clipped by two frame edges, a piece of anything is smaller than a tile: only one whose two
    # inner sides continue a column and a row of the tiles found is a tile
    tol = max(2.0, GRID.lined_up * tw)
    for c in corner:
        xe = c[0] if c[2] >= w - 1 else c[2]
        ye = c[1] if c[3] >= h - 1 else c[3]
        xi, yi = (0 if xe == c[0] else 2), (1 if ye == c[1] else 3)
        if any(abs(b[xi] - xe) <= tol for b in out) and any(abs(b[yi] - ye) <= tol for b in out):
            out.append(c)
    return out


def in_grid(tile: Tile, tiles: list[Tile]) -> bool:
    """Whether another tile has this one's size: a cell of a gallery (a 2x2's camera-off tile is a
    quarter of the frame and flat), not a lone big region."""
    w, h = tile.box[2], tile.box[3]
    return any(t is not tile and abs(t.box[2] - w) <= TUNING.size_tol * w and abs(t.box[3] - h) <= TUNING.size_tol * h
               for t in tiles)


def corners(box: Box) -> tuple:
    """(x, y, w, h) -> (x0, y0, x1, y1)."""
    return (box[0], box[1], box[0] + box[2], box[1] + box[3])


def drop_nested(boxes: list[tuple]) -> list[tuple]:
    """Of two boxes that mostly overlap (a speaker border and the video inside it, found as two
    regions), keep the larger."""
    boxes = sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
    kept: list[tuple] = []
    for b in boxes:
        area = (b[2] - b[0]) * (b[3] - b[1])
        if all(max(0, min(b[2], k[2]) - max(b[0], k[0])) * max(0, min(b[3], k[3]) - max(b[1], k[1]))
               < GRID.nested * area for k in kept):
            kept.append(b)
    return kept


def _is_block(kw: float, kh: float) -> bool:
    """About nx x ny tiles of the modal size, nx * ny >= 2; a block may run up to a third of a tile
    taller (a toolbar overlapping its bottom row)."""
    nx, ny = round(kw), int(kh + GRID.block_slack)
    return nx >= 1 and ny >= 1 and nx * ny >= 2 and abs(kw - nx) <= GRID.block_tol * nx and \
        -GRID.block_tol <= kh - ny <= GRID.toolbar


def _split_block(r, nx: int, ny: int, modal_h: float, frame: np.ndarray, f: int) -> list[tuple]:
    """A gapless block of nx x ny tiles: cut it where each inner cut line, searched near its even
    position, is a colour step along most of its length; extra height below the last row (a toolbar
    overlapping it) is left out. [] when a cut line is not there."""
    x0, y0, x1, y1 = r
    tw, th = (x1 - x0) / nx, (y1 - y0) / ny
    if th > (1 + GRID.block_tol) * modal_h:
        th = modal_h
    xs, ys = [x0], [y0]
    for k in range(1, nx):
        sup, pos = _line_support(frame, (x0 + k * tw) * f, y0 * f, (y0 + ny * th) * f,
                                 int(GRID.cut_search * tw * f) + f, 1)
        if sup < GRID.line_support:
            return []
        xs.append(pos / f)
    for j in range(1, ny):
        sup, pos = _line_support(frame, (y0 + j * th) * f, x0 * f, x1 * f, int(GRID.cut_search * th * f) + f, 0)
        if sup < GRID.line_support:
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
        sup = (cmax(np.abs(np.diff(strip, axis=1))) > GRID.step).mean(axis=0)
    else:
        strip = frame[lo - 1:hi + 1, a:b:2].astype(np.int16)
        sup = (cmax(np.abs(np.diff(strip, axis=0))) > GRID.step).mean(axis=1)
    i = int(np.argmax(sup))
    return float(sup[i]), lo + i


def modal_size(lw: np.ndarray, lh: np.ndarray) -> tuple[float, float]:
    """The tile size of the size cluster covering the most area; a lone leaf (a shared screen, a
    document) weighs far less than repeated ones."""
    same = (np.abs(lw[:, None] - lw[None, :]) <= TUNING.size_tol * lw[:, None]) & \
           (np.abs(lh[:, None] - lh[None, :]) <= TUNING.size_tol * lh[:, None])
    n = same.sum(axis=1)
    score = (same * (lw * lh)[None, :]).sum(axis=1) * np.where(n == 1, GRID.lone_weight, np.sqrt(n))
    best = same[int(np.argmax(score))]
    return float(np.median(lw[best])), float(np.median(lh[best]))


def _grid_split(r, frame: np.ndarray, f: int, min_w: float) -> list[tuple]:
    """A gapless grid that the XY-cut leaves as one piece, cut at its lattice (bot/gapless.py)."""
    cells = gapless.lattice(tuple(v * f for v in r), frame, min_w * f)
    return [tuple(v / f for v in c) for c in cells]


def complete_lattice(boxes: list[tuple], mask: np.ndarray, frame: np.ndarray, f: int,
                     lattice: tuple | None = None) -> list[tuple]:
    """Cells of the regular grid the found tiles sit on that the XY-cut missed: camera-off tiles the
    colour of the page (Meet's navy) have no visible edge, and videos that touch each other merge
    into shapes that are no block. The modal tile size and the pitch (size + gap) fitted to the found
    tiles give the lattice; a cell is added when it holds content in its centre (an avatar, initials,
    a video) and joins the found tiles through lattice neighbours. Each row keeps its own phase, so a
    centred last row offset by half a pitch is followed."""
    r = np.array(boxes, np.float64)
    lattice = lattice or lattice_of(r)      # `lattice_of(boxes)`, when the caller has it
    if lattice is None:
        return []
    tw, th, px, py, x_ph, y_ph, cx, cy = lattice
    gapped = px - tw >= 2 and py - th >= 2
    h, w = mask.shape
    rows = np.arange(np.ceil((th / 2 - 1 - y_ph) / py), np.floor((h + 1 - th / 2 - y_ph) / py) + 1)
    if len(rows) == 0:
        return []
    fill = partial(_fill, cv2.integral(mask.view(np.uint8)), w, h)
    taken = [tuple(b) for b in r]
    cells: dict[tuple[int, int], tuple] = {}      # (row, column index) -> box, found or added
    frontier = []
    for j in rows.astype(int):
        yc = y_ph + j * py
        in_row = cx[np.abs(cy - yc) <= th * GRID.same_row]
        phases = [_phase(in_row, px)] if len(in_row) else [x_ph, (x_ph + px / 2) % px]
        best_row = max((_row_cells(ph, yc, tw, th, px, w, taken, fill, gapped, frame, f) for ph in phases),
                       key=lambda row: sum(a[3] for a in row))
        for i, c, found, ok in best_row:
            if found:
                frontier.append((j, c))
            elif ok:
                cells[(j, i)] = c
    return _joined(frontier, cells, px)


def lattice_of(r: np.ndarray) -> tuple | None:
    """The lattice the tiles of modal size sit on: (tile width, height, pitch x, y, phase x, y, and the
    centres x, y of those tiles), or None with fewer than two of them or no pitch on either axis."""
    lw, lh = r[:, 2] - r[:, 0], r[:, 3] - r[:, 1]
    tw, th = modal_size(lw, lh)
    modal = (np.abs(lw - tw) <= TUNING.size_tol * tw) & (np.abs(lh - th) <= TUNING.size_tol * th)
    if modal.sum() < 2:
        return None
    m = r[modal]
    cx, cy = (m[:, 0] + m[:, 2]) / 2, (m[:, 1] + m[:, 3]) / 2
    py = _pitch(cy, th)
    px = _pitch(cx, tw)
    if px is None and py is None:
        return None
    # one axis without a pair to measure: the gap is the same both ways in Zoom's and Meet's grids
    px = px if px is not None else tw + (py - th)
    py = py if py is not None else th + (px - tw)
    x_ph, px = _fit(cx, px)
    y_ph, py = _fit(cy, py)
    # found tiles of a gapless grid bleed a pixel or two into their neighbours
    return min(tw, px), min(th, py), px, py, x_ph, y_ph, cx, cy


def _fill(integral: np.ndarray, w: int, h: int, x0, y0, x1, y1) -> float:
    """Share of content in a box of the mask (its integral image), clipped to the mask's w x h."""
    x0, y0 = int(max(0, x0)), int(max(0, y0))
    x1, y1 = int(min(w, x1)), int(min(h, y1))
    if x1 <= x0 or y1 <= y0:
        return 0.0
    s = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return float(s) / ((x1 - x0) * (y1 - y0))


def _row_cells(ph: float, yc: float, tw: float, th: float, px: float, w: int, taken: list[tuple], fill,
               gapped: bool, frame: np.ndarray, f: int) -> list[tuple]:
    """One lattice row at phase ph: (column index, cell box, a found tile there, found or holding one)."""
    row = []
    for i in range(int(np.ceil((tw / 2 - 1 - ph) / px)), int(np.floor((w + 1 - tw / 2 - ph) / px)) + 1):
        xc = ph + i * px
        c = (xc - tw / 2, yc - th / 2, xc + tw / 2, yc + th / 2)
        found = any(overlap(c, b) > GRID.taken for b in taken)
        row.append((i, c, found, found or _holds_tile(c, fill, gapped, frame, f)))
    return row


def _joined(frontier: list, cells: dict, px: float) -> list[tuple]:
    """The candidate cells that join the found tiles (frontier: (row, box)) through horizontal or
    vertical neighbours, walked outwards."""
    added: list[tuple] = []
    while frontier:
        j, c = frontier.pop()
        for key, d in list(cells.items()):
            if (key[0] == j and abs(d[0] - c[0]) <= px * GRID.neighbour[0]) or \
                    (abs(key[0] - j) == 1 and abs(d[0] - c[0]) <= px * GRID.neighbour[1]):
                del cells[key]
                added.append(d)
                frontier.append((key[0], d))
    return added


def _pitch(pos: np.ndarray, size: float) -> float | None:
    """The spacing (a tile size plus at most 30% gap) that puts the most pairs of tile positions a
    whole number of steps apart; None without a pair to measure."""
    d = np.abs(pos[:, None] - pos[None, :]).ravel()
    d = d[d > size * GRID.pitch_pair]
    if len(d) == 0:
        return None
    ps = np.arange(size * GRID.pitch[0], size * GRID.pitch[1], GRID.pitch_step)
    k = np.maximum(1, np.round(d[None, :] / ps[:, None]))
    res = np.abs(d[None, :] - k * ps[:, None])
    hits = (res <= np.maximum(2.0, GRID.pitch_tol * ps[:, None])).sum(axis=1)
    if hits.max() == 0:
        return None     # no pair a whole number of steps apart (a centred last row's half pitch)
    score = hits - res.mean(axis=1) / size
    return float(ps[int(np.argmax(score))])


def _fit(pos: np.ndarray, p: float) -> tuple[float, float]:
    """Lattice phase and pitch refined by a least-squares line through the positions on it: one
    tile's bleeding edge moves its position, many tiles together pin the lattice."""
    ph = _phase(pos, p)
    k = np.round((pos - ph) / p)
    on = np.abs(pos - ph - k * p) <= max(2.0, GRID.lined_up * p)
    if len(np.unique(k[on])) < 2:
        return ph, p
    slope, icpt = np.polyfit(k[on], pos[on], 1)
    return float(icpt % slope), float(slope)


def _phase(pos: np.ndarray, p: float) -> float:
    """Lattice offset in [0, p) shared by most positions (the median of the largest cluster)."""
    ph = np.mod(pos, p)
    d = np.abs(ph[:, None] - ph[None, :])
    close = np.minimum(d, p - d) <= max(2.0, GRID.lined_up * p)
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
    third, top, bottom = GRID.centre
    if body < GRID.body or \
            fill(x0 + cw / third, y0 + ch * top, x1 - cw / third, y0 + ch * bottom) < GRID.centre_fill:
        return False
    if gapped and _ring(fill, (x0 - 2, y0 - 2, x1 + 2, y1 + 2), 1) > GRID.gap_ring:
        return False
    if body < GRID.flat_body:
        # ... all round: a cell whose one side is all content (a title bar, a desktop) is no tile
        inner = (x0 + 1, y0 + 1, x1 - 1, y1 - 1)
        return _ring(fill, inner, GRID.margin) <= GRID.margin_fill[0] and \
            _ring(fill, inner, GRID.margin, worst=True) <= GRID.margin_fill[1]
    H, W = frame.shape[:2]
    sides = [x0 <= 1 or _line_support(frame, x0 * f, y0 * f, y1 * f, f + 1, 1)[0] >= GRID.line_support,
             x1 * f >= W - 2 or _line_support(frame, x1 * f, y0 * f, y1 * f, f + 1, 1)[0] >= GRID.line_support,
             y0 <= 1 or _line_support(frame, y0 * f, x0 * f, x1 * f, f + 1, 0)[0] >= GRID.line_support,
             y1 * f >= H - 2 or _line_support(frame, y1 * f, x0 * f, x1 * f, f + 1, 0)[0] >= GRID.line_support]
    return sum(sides) >= GRID.step_sides


def _ring(fill, c: tuple, t: float, worst: bool = False) -> float:
    """Content share of the band t wide just inside box c (of its fullest side, if worst)."""
    x0, y0, x1, y1 = c
    sides = (fill(x0, y0, x1, y0 + t), fill(x0, y1 - t, x1, y1),
             fill(x0, y0 + t, x0 + t, y1 - t), fill(x1 - t, y0 + t, x1, y1 - t))
    return max(sides) if worst else sum(sides) / 4


def cell_around(leaf: tuple, boxes: list[tuple], lattice: tuple) -> tuple | None:
    """The empty cell of the found tiles' lattice (`lattice_of` them) that holds the region `leaf`
    (x0, y0, x1, y1, mask pixels), to within a gap; None when it lies in none (it crosses a cell's
    edge, or the cell is taken). A row's cells follow the phase of the tiles in it (a centred last row)."""
    r = np.array(boxes, np.float64)
    tw, th, px, py, x_ph, y_ph, cx, cy = lattice
    tol = max(2.0, px - tw, GRID.lined_up * tw)
    lx, ly = (leaf[0] + leaf[2]) / 2, (leaf[1] + leaf[3]) / 2
    yc = y_ph + np.round((ly - y_ph) / py) * py
    in_row = cx[np.abs(cy - yc) <= th * GRID.same_row]
    for ph in ([_phase(in_row, px)] if len(in_row) else [x_ph, (x_ph + px / 2) % px]):
        xc = ph + np.round((lx - ph) / px) * px
        c = (xc - tw / 2, yc - th / 2, xc + tw / 2, yc + th / 2)
        if leaf[0] >= c[0] - tol and leaf[1] >= c[1] - tol and leaf[2] <= c[2] + tol and leaf[3] <= c[3] + tol \
                and not any(overlap(c, tuple(b)) > GRID.taken for b in r):
            return tuple(float(v) for v in c)
    return None
