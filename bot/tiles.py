"""Gallery frame -> participant tiles (box, name strip, camera-off flag).

No single cue finds tiles in every real capture (PRIOR-ART.md, "Finding tiles"), so several are combined:
1. Boundary evidence: long straight runs of colour steps, on a downscaled copy (tile edges against the
   background, against a neighbour tile, or against the frame edge for clipped windows).
2. Rectangles whose four sides are mostly supported by those runs and whose shape is tile-like
   (aspect 1.1-2.1; the 16:9 prior with room for Meet's squarer sidebar tiles).
3. Grid regularity: the most frequent tile size wins; nested or merged rectangles of other sizes lose.
   The rows and columns of the tiles found then give a lattice, and lattice cells that hold something
   other than background become tiles too (camera-off tiles with no visible edge in Meet, pillarboxed
   video whose black bars merge with a black background).
4. Each side is finally snapped to the strongest step at full resolution.
"""
from __future__ import annotations

import numpy as np
import cv2

from bot.config import TileSettings
from bot.types import Box, Tile

_WORK_W = 960          # longest side of the working copy (16:9-equivalent width)
_STEP = 7              # colour step (max over channels, 0-255) that counts as an edge: Zoom's tile
                       # background (34) against its window (26) is 8
_SIDE_MIN = 0.78       # fraction of a side that must lie on edge pixels
_ASPECT = (1.1, 2.15)  # tile width / height
_SIZE_TOL = 0.09       # relative size difference inside one size cluster (a speaker border adds ~6%)


def segment(frame: np.ndarray, settings: TileSettings) -> list[Tile]:
    """Cut a gallery frame (BGR) into tiles, in reading order; [] when there are none."""
    if frame is None or frame.ndim != 3 or frame.shape[0] < 16 or frame.shape[1] < 16:
        return []
    H, W = frame.shape[:2]
    s = min(1.0, _WORK_W / max(W, H * 16 / 9))
    small = cv2.resize(frame, (max(1, round(W * s)), max(1, round(H * s))), interpolation=cv2.INTER_AREA) \
        if s < 1 else frame
    h, w = small.shape[:2]
    sx, sy = W / w, H / h
    # a gallery tile is at least a twelfth of the screen wide (9-10 columns is the densest grid)
    min_side = max(12.0, settings.min_tile_px / max(sx, sy), w / 12)

    img = small.astype(np.int16)
    bh, bv = _boundary_maps(img)
    bg = _background_colour(img)
    rects = _candidates(bh, bv, min_side)
    content = _Content(img, bg)
    rects = [r for r in rects if content(r)]
    tiles = _select(rects)
    if not tiles:
        return []
    tiles = _complete_lattice(img.shape, tiles, content)

    out = []
    for x0, y0, x1, y1 in tiles:
        box = (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
        box = _snap(frame, box, max(sx, sy))
        bx, by, bw, bhh = box
        if bw < settings.min_tile_px or bhh < settings.min_tile_px * 0.5:
            continue
        out.append(Tile(box=box, name_box=_name_box(box), camera_off=_camera_off(frame, box)))
    return _reading_order(out)


# ---------------------------------------------------------------- evidence

def _boundary_maps(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """bh[b, x]: a colour step between rows b-1 and b at column x (b = 0..h); bv likewise for columns.

    A step is looked for over two pixels (b-2 .. b, b-1 .. b+1) so that an edge the resize spread over
    two rows still counts; the frame's own edges count as boundaries (clipped windows, full-bleed tiles).
    """
    h, w = img.shape[:2]
    dy = np.abs(img[2:] - img[:-2]).max(axis=2) > _STEP        # centred on rows 1..h-2
    bh = np.zeros((h + 1, w), bool)
    bh[1:h - 1] |= dy          # boundary b between rows b-1, b: step centred at b-1 or b
    bh[2:h] |= dy
    bh[0] = bh[h] = True
    dx = np.abs(img[:, 2:] - img[:, :-2]).max(axis=2) > _STEP
    bv = np.zeros((w + 1, h), bool)
    bv[1:w - 1] |= dx.T
    bv[2:w] |= dx.T
    bv[0] = bv[w] = True
    return bh, bv


def _background_colour(img: np.ndarray) -> np.ndarray:
    """Most frequent colour among flat pixels: the window / page background."""
    q = (img[::4, ::4] // 4).reshape(-1, 3)
    keys = (q[:, 0].astype(np.int32) << 12) | (q[:, 1].astype(np.int32) << 6) | q[:, 2]
    k = np.bincount(keys).argmax()
    return np.array([(k >> 12) & 63, (k >> 6) & 63, k & 63], np.int16) * 4 + 2


def _runs(b: np.ndarray, min_len: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True along axis 1 at least min_len long: (line index, start, end exclusive)."""
    n, m = b.shape
    p = np.zeros((n, m + 2), np.int8)
    p[:, 1:-1] = b
    d = np.diff(p, axis=1)
    rs, cs = np.nonzero(d == 1)
    _, ce = np.nonzero(d == -1)
    keep = (ce - cs) >= min_len
    return rs[keep], cs[keep], ce[keep]


def _candidates(bh: np.ndarray, bv: np.ndarray, min_side: float) -> list[tuple]:
    """Rectangles (x0, y0, x1, y1, score) with four supported sides and a tile-like shape.

    Seeds are pairs of long vertical runs (left and right side) that overlap enough for a tile of that
    width; top and bottom are the rows between them whose horizontal support is a local maximum.
    Everything is vectorised over the pairs.
    """
    H1, w = bh.shape
    W1 = bv.shape[0]
    ch = np.zeros((H1, w + 1), np.int32)
    np.cumsum(bh, axis=1, out=ch[:, 1:])
    cv = np.zeros((W1, H1), np.int32)
    np.cumsum(bv, axis=1, out=cv[:, 1:])
    vx, vy0, vy1 = _dedupe_runs(*_runs(bv, min_side / _ASPECT[1]))
    if len(vx) < 2:
        return []
    dx = vx[None, :] - vx[:, None]
    oy0 = np.maximum(vy0[:, None], vy0[None, :])
    oy1 = np.minimum(vy1[:, None], vy1[None, :])
    ok = (dx >= min_side) & ((oy1 - oy0) >= dx / _ASPECT[1] - 3)
    li, ri = np.nonzero(ok)
    if len(li) == 0:
        return []
    xl, xr = vx[li], vx[ri]
    y_lo, y_hi = np.maximum(oy0[li, ri] - 3, 0), np.minimum(oy1[li, ri] + 3, H1 - 1)
    width = (xr - xl).astype(np.float32)
    sup = (ch[:, xr] - ch[:, xl]) / width            # (rows, pairs): horizontal support of each row
    pad = np.full((1, sup.shape[1]), -1.0, np.float32)
    up, down = np.vstack([pad, sup[:-1]]), np.vstack([sup[1:], pad])
    rows = np.arange(H1)[:, None]
    good = (sup >= _SIDE_MIN) & (sup >= up) & (sup > down) & (rows >= y_lo) & (rows <= y_hi)
    pp, yy = np.nonzero(good.T)                      # sorted by pair, then row
    out = []
    for lag in range(1, 12):
        i = np.arange(len(pp) - lag)
        i = i[pp[i] == pp[i + lag]]
        if len(i) == 0:
            break
        p, y0, y1 = pp[i], yy[i], yy[i + lag]
        hh = (y1 - y0).astype(np.float32)
        asp = width[p] / hh
        k = (asp >= _ASPECT[0]) & (asp <= _ASPECT[1])
        p, y0, y1, hh = p[k], y0[k], y1[k], hh[k]
        a, b = xl[p], xr[p]
        left = (cv[a, y1] - cv[a, y0]) / hh
        right = (cv[b, y1] - cv[b, y0]) / hh
        k = (left >= _SIDE_MIN) & (right >= _SIDE_MIN)
        score = (left + right + sup[y0, p] + sup[y1, p]) / 4
        out += list(zip(a[k].tolist(), y0[k].tolist(), b[k].tolist(), y1[k].tolist(), score[k].tolist()))
    return out


def _dedupe_runs(x: np.ndarray, y0: np.ndarray, y1: np.ndarray):
    """One physical edge marks two or three neighbouring columns: keep one run per edge."""
    order = np.lexsort((y0, x))
    x, y0, y1 = x[order], y0[order], y1[order]
    keep = np.ones(len(x), bool)
    last: dict[int, list[int]] = {}
    for i in range(len(x)):
        for j in last.get(int(x[i]) - 1, []) + last.get(int(x[i]) - 2, []):
            if keep[j] and min(y1[i], y1[j]) - max(y0[i], y0[j]) > 0.8 * (y1[i] - y0[i]):
                keep[i] = False
                if y1[i] - y0[i] > y1[j] - y0[j]:   # the longer run stands for the edge
                    y0[j], y1[j] = y0[i], y1[i]
                break
        last.setdefault(int(x[i]), []).append(i)
    return x[keep], y0[keep], y1[keep]


class _Content:
    """O(1) test per rectangle (integral images): does it hold more than background?

    A tile holds video, an avatar or at least a tile background lighter than the window's.
    """

    def __init__(self, img: np.ndarray, bg: np.ndarray):
        diff = np.abs(img - bg).max(axis=2)
        self.weak = cv2.integral((diff > 5).astype(np.uint8))
        self.strong = cv2.integral((diff > 30).astype(np.uint8))

    def __call__(self, r) -> bool:
        x0, y0, x1, y1 = (int(round(v)) for v in r[:4])
        mx, my = (x1 - x0) // 8, (y1 - y0) // 8
        x0, y0, x1, y1 = x0 + mx, y0 + my, x1 - mx, y1 - my
        n = (x1 - x0) * (y1 - y0)
        if n <= 0:
            return False
        weak = self.weak[y1, x1] - self.weak[y0, x1] - self.weak[y1, x0] + self.weak[y0, x0]
        strong = self.strong[y1, x1] - self.strong[y0, x1] - self.strong[y1, x0] + self.strong[y0, x0]
        return bool(weak > 0.25 * n or strong > 0.02 * n)


# ---------------------------------------------------------------- choosing a consistent set

def _select(rects: list[tuple]) -> list[tuple]:
    """Keep the tiles of the dominant size, plus strong lone tiles that overlap none of them."""
    if not rects:
        return []
    r = np.array(rects, np.float64)
    r = r[np.argsort(-r[:, 4], kind="stable")]
    r = r[~_composite(r)]
    wd, ht = r[:, 2] - r[:, 0], r[:, 3] - r[:, 1]
    # size clusters, seeded by the best-supported rectangles; a size's weight is how many
    # non-overlapping rectangles share it
    label = np.full(len(r), -1)
    best, best_key = None, (-1, -1.0)
    for i in range(len(r)):
        if label[i] >= 0:
            continue
        same = (label < 0) & (np.abs(wd - wd[i]) <= _SIZE_TOL * wd[i]) & (np.abs(ht - ht[i]) <= _SIZE_TOL * ht[i])
        label[same] = i
        chosen = _nms(r[same])
        # covered area, with a slight preference for more, smaller tiles over one block of them
        # a lone rectangle (a shared screen, a browser window) counts far less than repeated ones
        lone = 0.05 if len(chosen) == 1 else 1.0
        # each rectangle weighs its area times a steep function of its edge support, so a tight box
        # beats a looser one of similar size that reaches over a gap to some other edge
        cover = sum((c[2] - c[0]) * (c[3] - c[1]) * c[4] ** 8 for c in chosen)
        key = (lone * len(chosen) ** 0.25 * cover, len(chosen))
        if key > best_key:
            best, best_key = chosen, key
    tiles = _aligned(list(best))
    # lone tiles of another size (a floating self view): strong, 16:9-ish, not touching the grid
    area = np.median([(t[2] - t[0]) * (t[3] - t[1]) for t in tiles])
    for i in np.argsort(-r[:, 4]):
        x0, y0, x1, y1, sc = r[i]
        a = (x1 - x0) * (y1 - y0)
        if sc < 0.93 or not (1.5 <= (x1 - x0) / (y1 - y0) <= 1.9) or not (0.3 * area <= a <= 2 * area):
            continue
        if all(_overlap(r[i], t) < 0.05 for t in tiles):
            tiles.append(tuple(r[i]))
    return tiles


def _aligned(tiles: list[tuple]) -> list[tuple]:
    """In a grid of 4+ tiles, drop a tile whose left and right edges both match no other tile's
    (a box shifted onto a pillarbox bar); the lattice puts the cell back where the grid says."""
    if len(tiles) < 4:
        return tiles
    t = np.array([x[:4] for x in tiles])
    tol = 0.03 * np.median(t[:, 2] - t[:, 0])
    out = []
    for i, x in enumerate(tiles):
        others = np.delete(t, i, axis=0)
        edges = np.concatenate([others[:, 0], others[:, 2]])
        if np.min(np.abs(edges - x[0])) <= tol or np.min(np.abs(edges - x[2])) <= tol:
            out.append(x)
    return out or tiles


def _composite(r: np.ndarray) -> np.ndarray:
    """Rectangles that are blocks of smaller ones (a 2x2 block, the whole window): drop them.

    A block contains two or more disjoint candidates that cover at least 40% of it; a tile's own
    picture rarely holds such large well-bordered rectangles.
    """
    area = (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])
    t = 2
    inside = ((r[None, :, 0] >= r[:, None, 0] - t) & (r[None, :, 1] >= r[:, None, 1] - t)
              & (r[None, :, 2] <= r[:, None, 2] + t) & (r[None, :, 3] <= r[:, None, 3] + t)
              & (area[None, :] < 0.7 * area[:, None]) & (area[None, :] > area[:, None] / 100))
    out = np.zeros(len(r), bool)
    for i in np.nonzero(inside.sum(axis=1) >= 2)[0]:
        kept = _nms(r[inside[i]])
        if len(kept) >= 2 and sum((k[2] - k[0]) * (k[3] - k[1]) for k in kept) >= 0.4 * area[i]:
            out[i] = True
    return out


def _overlap(a, b) -> float:
    """Intersection over the smaller area."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def _nms(r: np.ndarray) -> list[tuple]:
    """Greedy by score; of two nested boxes both well supported keep the outer one (speaker border)."""
    order = np.argsort(-r[:, 4], kind="stable")
    kept: list[tuple] = []
    for i in order:
        c = tuple(r[i])
        clash = [k for k, t in enumerate(kept) if _overlap(c, t) > 0.2]
        if not clash:
            kept.append(c)
            continue
        if len(clash) == 1:
            t = kept[clash[0]]
            inside = c[0] < t[0] and c[1] < t[1] and c[2] > t[2] and c[3] > t[3]
            if inside and c[4] >= 0.9:
                kept[clash[0]] = c
    return kept


def _complete_lattice(shape, tiles: list[tuple], content: _Content) -> list[tuple]:
    """Fill the grid's missing cells (rows x columns of the tiles found) that are not background."""
    t = np.array([x[:4] for x in tiles], np.float64)
    tw, th = np.median(t[:, 2] - t[:, 0]), np.median(t[:, 3] - t[:, 1])
    xs = _cluster(t[:, 0], tw * 0.15)
    ys = _cluster(t[:, 1], th * 0.15)
    ys = _fill_gaps(ys, th)
    xs = _fill_gaps(xs, tw)
    out = [tuple(x[:4]) for x in tiles]
    h, w = shape[:2]
    for y in ys:
        for x in xs:
            cell = (x, y, min(w, x + tw), min(h, y + th))
            if any(_overlap(cell, o) > 0.1 for o in out):
                continue
            if content(cell):
                out.append(cell)
    return out


def _cluster(v: np.ndarray, tol: float) -> list[float]:
    v = np.sort(v)
    groups = np.split(v, np.nonzero(np.diff(v) > tol)[0] + 1)
    return [float(np.median(g)) for g in groups]


def _fill_gaps(pos: list[float], size: float) -> list[float]:
    """Positions one or more pitches apart get the missing ones in between."""
    if len(pos) < 2:
        return pos
    d = np.diff(pos)
    steps = d[(d >= size * 0.98) & (d <= size * 1.3)]
    if len(steps) == 0:
        return pos
    pitch = float(np.median(steps))
    out = [pos[0]]
    for a, b in zip(pos[:-1], pos[1:]):
        k = int(round((b - a) / pitch))
        if k >= 2 and abs((b - a) - k * pitch) < 0.1 * pitch:
            out += [a + pitch * i for i in range(1, k)]
        out.append(b)
    return out


# ---------------------------------------------------------------- per tile

def _snap(frame: np.ndarray, box: tuple, scale: float) -> Box:
    """Move each side to the strongest colour step within the working copy's rounding error."""
    H, W = frame.shape[:2]
    x0, y0, x1, y1 = box
    r = int(np.ceil(scale)) + 1
    x0, y0, x1, y1 = int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))
    x0 = _best_step(frame, x0, y0, y1, r, axis=1)
    x1 = _best_step(frame, x1, y0, y1, r, axis=1)
    y0 = _best_step(frame, y0, x0, x1, r, axis=0)
    y1 = _best_step(frame, y1, x0, x1, r, axis=0)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(W, x1), min(H, y1)
    return (x0, y0, x1 - x0, y1 - y0)


def _best_step(frame, pos: int, a: int, b: int, r: int, axis: int) -> int:
    """Boundary position in pos-r..pos+r with the largest mean step along [a, b)."""
    n = frame.shape[1 - axis] if axis == 1 else frame.shape[0]
    lo, hi = max(1, pos - r), min(n - 1, pos + r)
    if hi < lo:
        return pos
    m = max(0, a + (b - a) // 10)
    e = max(m + 1, b - (b - a) // 10)
    if axis == 1:
        strip = frame[m:e, lo - 1:hi + 1].astype(np.int16)
        step = np.abs(np.diff(strip, axis=1)).max(axis=2).mean(axis=0)
    else:
        strip = frame[lo - 1:hi + 1, m:e].astype(np.int16)
        step = np.abs(np.diff(strip, axis=0)).max(axis=2).mean(axis=1)
    if step.size == 0 or step.max() < _STEP:
        return pos
    return lo + int(np.argmax(step))


def _name_box(box: Box) -> Box:
    x, y, w, h = box
    nh = max(1, int(round(h * 0.18)))
    return (x, y + h - nh, max(1, int(round(w * 0.75))), nh)


def _camera_off(frame: np.ndarray, box: Box) -> bool:
    """No live video: the tile is mostly one flat colour, or its content floats with plain margins."""
    x, y, w, h = box
    tile = frame[y:y + h, x:x + w]
    if tile.size == 0:
        return False
    t = cv2.resize(tile, (96, 54), interpolation=cv2.INTER_AREA).astype(np.int16)
    t = t[2:-2, 2:-2]                         # skip a speaker border
    body = t[:int(t.shape[0] * 0.78)]         # skip the name label strip
    g = np.maximum(np.abs(np.diff(body, axis=0))[:, :-1].max(axis=2),
                   np.abs(np.diff(body, axis=1))[:-1].max(axis=2))
    flat = (g <= 3).mean()
    if flat > 0.8:
        return True
    # plain colour along the whole top band and both side bands: content floats in the middle
    ref = np.median(t[:4].reshape(-1, 3), axis=0)
    top = np.abs(t[:5] - ref).max(axis=2)
    left = np.abs(t[:int(t.shape[0] * 0.75), :6] - ref).max(axis=2)
    right = np.abs(t[:int(t.shape[0] * 0.75), -6:] - ref).max(axis=2)
    return bool((top <= 6).mean() > 0.97 and (left <= 6).mean() > 0.95 and (right <= 6).mean() > 0.95)


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
