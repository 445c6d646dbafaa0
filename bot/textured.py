"""Tiles where no flat background surrounds them: a video floating over a textured desktop shows only
as straight edges, and a photo of a screen as a lattice of dark lines (bot/tiles.py, step 4)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bot import speaker
from bot.backdrop import overlap
from bot.gapless import cmax
from bot.grid import modal_size
from bot.tile_tuning import TUNING


@dataclass(frozen=True)
class TexturedTuning:
    """Tiles on no flat background: the tuning values (the dark lattice's darkness is TUNING's), each
    with its reason."""
    step: int = 24  # channel difference between neighbouring pixels that makes an edge on a desktop
    close: int = 5  # an edge's break this long or shorter is bridged (a busy picture breaks it here and there)
    min_edge: float = 0.4  # a floating video's side is a run of steps at least this share of a tile's height
    edge_px: int = 3  # a side this close to the frame's right edge (pixels) is that edge
    corner_tol: tuple[int, float] = (3, 0.04)  # its left and bottom sides meet within this many px, or this
    # share of a tile's width
    label_gap: float = 0.25  # its left side may stop this share of a tile above its bottom (the name label)
    aspect: tuple[float, float] = (1.6, 1.95)  # its width / height: 16:10 to a little over 16:9
    size: tuple[float, float] = (0.4, 1.5)  # its width as a share of a tile's
    in_host: float = 0.95  # it lies at least this share on a leaf enclosing the tiles (the desktop)
    touch: float = 0.05  # overlapping a tile or another leaf by more than this share, it is none
    filled: float = 0.9  # content covers at least this share of it
    side: float = 0.6  # its top and right sides are steps along at least this share (or the frame's edge)
    host_overlap: float = 0.5  # a leaf overlapping a tile by this share or more is no desktop around them
    dark_try: int = 9  # with fewer tiles than this from a flat background, a lattice of dark lines is tried
    fragment: tuple[float, float] = (0.95, 0.5)  # a tile at least this share on a lone video, and at most this
    # share of it, is a fragment of it
    min_side: int = 32  # a working copy fewer pixels across holds no grid
    min_grid: int = 10  # a grid's extent fewer pixels across holds no tiles
    min_cells: int = 4  # a dark lattice of fewer cells is no grid
    smooth: float = 0.03  # the content profile is smoothed over this share of the length (3 px at least)
    busy: float = 0.25  # a line of the grid's extent is at least this share content, smoothed ...
    trim: float = 0.2  # ... and its ends are trimmed back to lines at least this share content
    pieces: int = 5  # profiles taken along this many pieces of a line's length (a photo's tilt moves it)
    line_search: float = 0.02  # a line is searched this share of the length around its even place
    max_cells: int = 10  # the finest lattice tried along an axis
    dark_centre: float = 0.6  # a cell's centre line is less than this share dark
    on_lattice: float = 0.25  # a box's sides within this share of a cell of the cells' sides are on the lattice


TEXTURED = TexturedTuning()


def floating_videos(boxes: list[tuple], leaves: list[tuple], mask: np.ndarray,
                     small: np.ndarray) -> list[tuple]:
    """Video windows lying on textured content around the gallery: Zoom's floating speaker
    thumbnail and self view over the desktop while sharing (zoom-gallery-3plus2-desktop-01) join the
    wallpaper with no background between them, so only their edges show. Looked for only inside a
    leaf that encloses the tiles found (the desktop, not a shared screen beside them): a rectangle
    whose left and bottom sides are long straight colour steps, whose top and right are steps or
    the frame edge, of video shape (16:10 to a little over 16:9) and of about a tile's size, with content all over and
    touching no other leaf or tile."""
    r = np.array(boxes, np.float64)
    tw, th = modal_size(r[:, 2] - r[:, 0], r[:, 3] - r[:, 1])
    hosts = _hosts(r, boxes, leaves)
    if not hosts:
        return []
    h, w = mask.shape
    sv, sh = _step_maps(small)
    min_len = int(TEXTURED.min_edge * th)
    # a floating video's edges lie on the host, off the tiles: in a grid nearly every long line is a
    # tile's edge, and dropping those keeps the pairing below small
    V = np.array(_runs(sv, min_len, axis=0), np.float64).reshape(-1, 3)   # (x, y0, y1): a step at x | x+1 or x+1 | x+2
    Hs = np.array(_runs(sh, min_len, axis=1), np.float64).reshape(-1, 3)
    V = V[_off_tiles(V[:, 0], (V[:, 1] + V[:, 2]) / 2, r)]
    Hs = Hs[_off_tiles((Hs[:, 1] + Hs[:, 2]) / 2, Hs[:, 0], r)]
    if len(V) == 0 or len(Hs) == 0:
        return []
    iv, ih = cv2.integral(sv), cv2.integral(sh)
    integral = cv2.integral(mask.view(np.uint8))
    found: list[tuple] = []
    for i, j in zip(*np.nonzero(_corners_of_videos(V, Hs, w, tw, th, min_len))):
        x0, y0, x1, y1 = int(V[i, 0]) + 1, int(V[i, 1]), min(w, int(Hs[j, 2]) + 1), int(Hs[j, 0]) + 1
        bw, bh = x1 - x0, y1 - y0
        c = (x0, y0, x1, y1)
        if not any(overlap(c, hst) > TEXTURED.in_host for hst in hosts):
            continue
        touch = TEXTURED.touch
        if any(overlap(c, b) > touch or overlap(b, c) > touch for b in boxes + found) or \
                any(lf not in hosts and overlap(c, lf) > touch for lf in leaves):
            continue
        s = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
        if s < TEXTURED.filled * bw * bh or _row_support(ih, sh, y0, x0, x1) < TEXTURED.side or \
                _column_support(iv, sv, x1 - 1, y0, y1, w) < TEXTURED.side:
            continue
        found.append(c)
    return found


def _hosts(r: np.ndarray, boxes: list[tuple], leaves: list[tuple]) -> list[tuple]:
    """Leaves that enclose two or more of the tiles found and are none of them (a desktop)."""
    cx, cy = (r[:, 0] + r[:, 2]) / 2, (r[:, 1] + r[:, 3]) / 2
    return [lf for lf in leaves
            if ((cx > lf[0]) & (cx < lf[2]) & (cy > lf[1]) & (cy < lf[3])).sum() >= 2 and
            all(overlap(lf, b) < TEXTURED.host_overlap for b in boxes)]


def _step_maps(small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the picture steps between neighbouring columns (x | x+1) and rows, as 0/1 maps; a blurred
    edge steps over two pixels and a busy picture breaks it here and there, so both are widened and
    closed along the edge."""
    sv = (cmax(cv2.absdiff(small[:, 1:], small[:, :-1])) > TEXTURED.step).view(np.uint8)
    sh = (cmax(cv2.absdiff(small[1:], small[:-1])) > TEXTURED.step).view(np.uint8)
    sv = cv2.morphologyEx(np.maximum(sv[:, :-1], sv[:, 1:]), cv2.MORPH_CLOSE, np.ones((TEXTURED.close, 1), np.uint8))
    sh = cv2.morphologyEx(np.maximum(sh[:-1], sh[1:]), cv2.MORPH_CLOSE, np.ones((1, TEXTURED.close), np.uint8))
    return sv, sh


def _column_support(iv: np.ndarray, sv: np.ndarray, x, y0: int, y1: int, w: int) -> float:
    """Share of rows y0..y1 where the picture steps at column x (or just left of it); 1 at the right edge
    of the frame, `w` wide."""
    x = int(x)
    if x >= w - TEXTURED.edge_px:
        return 1.0
    lo, hi = max(0, x - 2), min(sv.shape[1], x + 1)
    col = iv[y1, lo + 1:hi + 1] - iv[y0, lo + 1:hi + 1] - iv[y1, lo:hi] + iv[y0, lo:hi]
    return float(col.max()) / max(1, y1 - y0)


def _row_support(ih: np.ndarray, sh: np.ndarray, y, x0: int, x1: int) -> float:
    """Share of columns x0..x1 where the picture steps at row y (or just above it); 1 at the frame's top."""
    y = int(y)
    if y <= 1:
        return 1.0
    lo, hi = max(0, y - 2), min(sh.shape[0], y + 1)
    row = ih[lo + 1:hi + 1, x1] - ih[lo:hi, x1] - ih[lo + 1:hi + 1, x0] + ih[lo:hi, x0]
    return float(row.max()) / max(1, x1 - x0)


def _off_tiles(px: np.ndarray, py: np.ndarray, tiles: np.ndarray) -> np.ndarray:
    """Which points (px, py) lie outside every tile (x0, y0, x1, y1), with 2 px to spare."""
    return ~((px[:, None] >= tiles[None, :, 0] - 2) & (px[:, None] <= tiles[None, :, 2] + 2) &
             (py[:, None] >= tiles[None, :, 1] - 2) & (py[:, None] <= tiles[None, :, 3] + 2)).any(axis=1)


def _corners_of_videos(V: np.ndarray, Hs: np.ndarray, w: int, tw: float, th: float, min_len: int) -> np.ndarray:
    """(vertical step, horizontal step) pairs that make a video's bottom-left corner: the left side
    reaches down to the bottom (but for the name label, which sits in that corner and breaks the
    edge), the bottom starts there; of video shape (16:10 to a little over 16:9) and about a tile's size."""
    tol = max(TEXTURED.corner_tol[0], int(TEXTURED.corner_tol[1] * tw))
    x, va, vb = V[:, 0:1], V[:, 1:2], V[:, 2:3]
    y, hc, hd = Hs[None, :, 0], Hs[None, :, 1], Hs[None, :, 2]
    bw, bh = np.minimum(w, hd + 1) - (x + 1), y + 1 - va
    return (np.abs(hc - x) <= tol) & (va + min_len <= y) & (y <= vb + TEXTURED.label_gap * th) & \
        (bw >= TEXTURED.aspect[0] * bh) & (bw <= TEXTURED.aspect[1] * bh) & \
        (bw >= TEXTURED.size[0] * tw) & (bw <= TEXTURED.size[1] * tw)


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


def off_background(best: list[tuple], bg: tuple | None, frame: np.ndarray, small: np.ndarray,
                    f: int) -> tuple[list[tuple], tuple | None]:
    """The tiles, and the flat background they stand on (None for none): few tiles may be blocks
    that clear gaps cut out of a grid with no flat background, or fragments of one video filling the
    window, which stands on the window's page (bot/speaker.py)."""
    if len(best) < TEXTURED.dark_try:
        cells = _dark_lattice(small)
        if len(cells) > len(best) and (len(best) < 2 or all(_on_lattice(b, cells) for b in best)):
            return cells, None
    if len(best) <= 1 and (video := speaker.lone(frame)) is not None:
        box = tuple(v / f for v in video[0])
        on, share = TEXTURED.fragment
        if all(overlap(b, box) > on and overlap(box, b) < share for b in best):
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
    dark = cmax(small) < TUNING.dark
    h, w = dark.shape
    if min(h, w) < TEXTURED.min_side:
        return []       # a sliver of a frame holds no grid
    spans = [_busy_span(dark, axis, n_len) for axis, n_len in ((0, w), (1, h))]
    if None in spans:
        return []
    (x0, x1), (y0, y1) = spans
    sub = dark[y0:y1, x0:x1]
    if min(sub.shape) < TEXTURED.min_grid:
        return []
    lines = []
    for a0, across in ((x0, 0), (y0, 1)):
        best = _even_lines(sub, across)
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
    if len(cells) < TEXTURED.min_cells or not TUNING.aspect[0] <= cw / ch <= TUNING.aspect[1]:
        return []
    return cells


def _busy_span(dark: np.ndarray, axis: int, n_len: int) -> tuple[int, int] | None:
    """The grid's extent along one axis: the longest run of columns (axis 0) or rows holding content;
    a title bar or a taskbar beyond a dark band is not part of the grid. None: no content at all."""
    content = (~dark).mean(axis=axis)
    k = max(3, int(TEXTURED.smooth * n_len) | 1)
    busy = np.convolve(content, np.ones(k) / k, "same") > TEXTURED.busy
    edges = np.flatnonzero(np.diff(np.concatenate([[0], busy.astype(np.int8), [0]])))
    if not len(edges):
        return None
    a0, a1 = max(zip(edges[::2], edges[1::2]), key=lambda r: r[1] - r[0])
    # the smoothing spreads the run into the dark margin around the grid: trim it back
    while a1 - a0 > 2 and content[a0] < TEXTURED.trim:
        a0 += 1
    while a1 - a0 > 2 and content[a1 - 1] < TEXTURED.trim:
        a1 -= 1
    return int(a0), int(a1)


def _even_lines(sub: np.ndarray, across: int) -> list[int] | None:
    """The finest lattice of n equal cells (2 to 10) along one axis of the dark map whose inner lines
    are almost all dark and whose cell centres are not: [0, line, ..., length], or None."""
    # a profile per fifth of the lines' length: a photo's slight tilt moves a line by a few pixels
    # from one end to the other, more than a 3-pixel gap is wide; the median of the five lets a
    # speaker's coloured border or a bright object cross a gap
    prof = np.stack([b.mean(axis=across) for b in np.array_split(sub, TEXTURED.pieces, axis=across)])
    L, best = prof.shape[1], None
    r = max(1, int(TEXTURED.line_search * L))
    for n in range(2, TEXTURED.max_cells + 1):
        peaks, support = [], []
        for c in (int(j * L / n) for j in range(1, n)):
            lo = max(0, c - r)
            at = lo + np.argmax(prof[:, lo:c + r + 1], axis=1)
            support.append(np.median(prof[np.arange(len(prof)), at]))
            peaks.append(int(round(np.median(at))))
        centres = prof.mean(axis=0)[[int((j + 0.5) * L / n) for j in range(n)]]
        if min(support) >= TUNING.dark_line and centres.max() < TEXTURED.dark_centre:
            best = [0] + peaks + [L]
    return best


def _on_lattice(box: tuple, cells: list[tuple]) -> bool:
    """box is one cell or a block of cells (its sides within a quarter cell of the cells' sides): the
    few tiles a flat background found were blocks that clear gaps cut out of the grid. A box off
    the lattice (a centred last row) says the grid is not a full lattice."""
    cw = np.median([c[2] - c[0] for c in cells])
    ch = np.median([c[3] - c[1] for c in cells])

    def near(v: float, side: int, t: float) -> bool:
        return min(abs(v - c[side]) for c in cells) <= t

    tx, ty = TEXTURED.on_lattice * cw, TEXTURED.on_lattice * ch
    return near(box[0], 0, tx) and near(box[2], 2, tx) and near(box[1], 1, ty) and near(box[3], 3, ty)
