"""Synthetic meeting galleries rendered from real face photos, with the true tile boxes.

Used by the tile, pipeline and end-to-end tests and by the benchmark: every frame is generated here
from `seed-faces` photos, so the identity and the box behind each tile are known exactly.

Two themes imitate the real captures in `data/meeting-screens`:
- "zoom": near-black window (26,26,26), 16:9 tiles with small gaps, a lighter tile background (34) for
  pillarboxed / camera-off tiles, name label bottom-left (white text on a translucent dark box), green
  active-speaker border, a centred uneven last row, and optional window chrome (title bar, top strip,
  toolbar, Windows-like taskbar).
- "meet": dark grey-blue page (32,33,36), rounded tiles, camera-off tile = coloured circle with the
  initial on a grey tile, name bottom-left in plain white text, a bottom control bar.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

Box = tuple[int, int, int, int]

CAMERA_OFF_KINDS = ("none", "name", "initials", "avatar")

# BGR colours measured on the real captures in data/meeting-screens.
ZOOM_BG = (26, 26, 26)
ZOOM_TILE_BG = (34, 34, 34)
ZOOM_SPEAKER = (89, 217, 35)        # Zoom's green active-speaker border (RGB 35,217,89)
MEET_BG = (36, 33, 32)              # RGB 32,33,36
MEET_TILE_BG = (67, 64, 60)         # RGB 60,64,67
MEET_SPEAKER = (248, 180, 138)      # light blue outline
AVATAR_COLOURS = [(96, 56, 200), (40, 150, 230), (160, 110, 40), (70, 160, 60), (150, 60, 150),
                  (60, 80, 200), (180, 140, 60), (90, 90, 200)]


@dataclass
class TileSpec:
    """One participant to draw: `face` is a BGR photo (None draws a plain placeholder)."""
    name: str
    face: np.ndarray | None = None
    camera_off: str = "none"        # "none" (live video), "name", "initials", "avatar"
    speaking: bool = False


def seed_photos(data_dir: Path) -> dict[str, list[Path]]:
    """seed-faces/<Name>/*.jpg -> {name: sorted photo paths}."""
    root = Path(data_dir) / "seed-faces"
    return {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
            for d in sorted(root.iterdir()) if d.is_dir()}


def load_photo(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{path}: cannot read image")
    return img


def iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes: how tests hold a found tile to a drawn one."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    i = iw * ih
    return i / (aw * ah + bw * bh - i)


# ---------------------------------------------------------------- layout

def zoom_grid(n: int) -> tuple[int, int]:
    """Zoom's gallery: cols = ceil(sqrt(n)), rows as needed (3 -> 2+1, 5 -> 3+2, 7 -> 3+3+1)."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return cols, math.ceil(n / cols)


def best_grid(n: int, area_w: int, area_h: int, gap: int, aspect: float = 16 / 9) -> tuple[int, int]:
    """Meet-style: try every column count, keep the one giving the largest tile (izzy-crop's rule)."""
    best, best_w = (1, n), -1.0
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        tw = min((area_w - gap * (cols + 1)) / cols, (area_h - gap * (rows + 1)) / rows * aspect)
        if tw > best_w + 1e-6:
            best, best_w = (cols, rows), tw
    return best


def layout(n: int, area: Box, cols: int, rows: int, gap: int, aspect: float = 16 / 9) -> list[Box]:
    """Boxes of n equal tiles in `area`, grid centred, last row centred, reading order."""
    ax, ay, aw, ah = area
    tw = min((aw - gap * (cols + 1)) / cols, (ah - gap * (rows + 1)) / rows * aspect)
    th = tw / aspect
    tw_i, th_i = int(tw), int(th)
    grid_h = rows * th_i + (rows - 1) * gap
    y0 = ay + (ah - grid_h) // 2
    boxes = []
    for r in range(rows):
        k = min(cols, n - r * cols)
        row_w = k * tw_i + (k - 1) * gap
        x0 = ax + (aw - row_w) // 2
        for c in range(k):
            boxes.append((x0 + c * (tw_i + gap), y0 + r * (th_i + gap), tw_i, th_i))
    return boxes


# ---------------------------------------------------------------- drawing helpers

def _cover(img: np.ndarray, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Scale and crop `img` to fill w x h, like a webcam stream filling its tile."""
    ih, iw = img.shape[:2]
    s = max(w / iw, h / ih) * rng.uniform(1.0, 1.15)
    nw, nh = max(w, int(round(iw * s))), max(h, int(round(ih * s)))
    scaled = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    x = int(rng.integers(0, nw - w + 1))
    # faces sit at about 30-45% of a selfie's height: centre the crop there (a crop from the very top
    # of a tall photo scaled to a wide tile shows only hair or a hijab)
    y = int(min(nh - h, max(0, nh * rng.uniform(0.3, 0.45) - h / 2)))
    return scaled[y:y + h, x:x + w]


def _contain(img: np.ndarray, w: int, h: int) -> np.ndarray:
    ih, iw = img.shape[:2]
    s = min(w / iw, h / ih)
    return cv2.resize(img, (max(1, int(iw * s)), max(1, int(ih * s))), interpolation=cv2.INTER_AREA)


def _text_size(text: str, scale: float, thick: int, font=cv2.FONT_HERSHEY_SIMPLEX) -> tuple[int, int, int]:
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    return tw, th, base


def _fit_text(text: str, max_w: int, scale: float, thick: int, font=cv2.FONT_HERSHEY_SIMPLEX) -> str:
    """Cut a name with an ellipsis to fit, as Zoom and Meet do."""
    if _text_size(text, scale, thick, font)[0] <= max_w:
        return text
    while len(text) > 1 and _text_size(text + "...", scale, thick, font)[0] > max_w:
        text = text[:-1]
    return text.rstrip() + "..."


def _blend_rect(img: np.ndarray, x: int, y: int, w: int, h: int, colour, alpha: float) -> None:
    roi = img[y:y + h, x:x + w]
    roi[:] = (roi.astype(np.float32) * (1 - alpha) + np.array(colour, np.float32) * alpha).astype(np.uint8)


def _initials(name: str) -> str:
    parts = [p for p in name.replace("_", " ").split() if p[:1].isalpha()]
    return "".join(p[0].upper() for p in parts[:2]) or "?"


def _rounded_mask(h: int, w: int, r: int) -> np.ndarray:
    m = np.full((h, w), 255, np.uint8)
    if r <= 0:
        return m
    m[:r, :r] = m[:r, -r:] = m[-r:, :r] = m[-r:, -r:] = 0
    for cx, cy in ((r, r), (w - r - 1, r), (r, h - r - 1), (w - r - 1, h - r - 1)):
        cv2.circle(m, (cx, cy), r, 255, -1, cv2.LINE_AA)
    return m


def _paste_masked(img: np.ndarray, x: int, y: int, patch: np.ndarray, mask: np.ndarray) -> None:
    h, w = patch.shape[:2]
    roi = img[y:y + h, x:x + w]
    a = (mask.astype(np.float32) / 255.0)[..., None]
    roi[:] = (patch.astype(np.float32) * a + roi.astype(np.float32) * (1 - a)).astype(np.uint8)


# ---------------------------------------------------------------- tiles

def _camera(tile: np.ndarray, background, spec: TileSpec, rng) -> str:
    """Fills a tile with its background, and with the student's video where the camera is on; returns
    "live" for a video, else what the camera-off tile shows (CAMERA_OFF_KINDS, or "none": a silhouette)."""
    h, w = tile.shape[:2]
    tile[:] = background
    kind = spec.camera_off if spec.camera_off in CAMERA_OFF_KINDS else "none"
    if kind == "none" and spec.face is not None:
        tile[:] = _cover(spec.face, w, h, rng)
        return "live"
    return kind


def _square_photo(face: np.ndarray, side: int) -> np.ndarray:
    """A profile picture: the photo's upper square, resized to side x side."""
    ph, pw = face.shape[:2]
    s = min(ph, pw)
    photo = face[(ph - s) // 4:(ph - s) // 4 + s, (pw - s) // 2:(pw - s) // 2 + s]
    return cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)


def _zoom_tile(canvas, box: Box, spec: TileSpec, rng) -> None:
    x, y, w, h = box
    tile = canvas[y:y + h, x:x + w]
    kind = _camera(tile, ZOOM_TILE_BG, spec, rng)
    if kind == "name":
        scale = max(0.4, h / 200)
        thick = max(1, int(round(scale * 2)))
        text = _fit_text(spec.name, int(w * 0.85), scale, thick, cv2.FONT_HERSHEY_DUPLEX)
        tw, th, _ = _text_size(text, scale, thick, cv2.FONT_HERSHEY_DUPLEX)
        cv2.putText(tile, text, ((w - tw) // 2, (h + th) // 2), cv2.FONT_HERSHEY_DUPLEX, scale,
                    (255, 255, 255), thick, cv2.LINE_AA)
    elif kind == "initials":
        side = int(h * 0.3)
        colour = AVATAR_COLOURS[int(rng.integers(len(AVATAR_COLOURS)))]
        sx, sy = (w - side) // 2, (h - side) // 2 - int(h * 0.04)
        cv2.rectangle(tile, (sx, sy), (sx + side, sy + side), colour, -1)
        text = _initials(spec.name)
        scale = side / 60
        thick = max(1, int(round(scale * 2)))
        tw, th, _ = _text_size(text, scale, thick)
        cv2.putText(tile, text, (sx + (side - tw) // 2, sy + (side + th) // 2), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (255, 255, 255), thick, cv2.LINE_AA)
    elif kind != "live":  # avatar: the profile picture, square, centred on the plain tile (not a live video)
        side = int(h * 0.75)
        if spec.face is not None:
            photo = _square_photo(spec.face, side)
        else:
            photo = np.full((side, side, 3), 235, np.uint8)
            cv2.circle(photo, (side // 2, int(side * 0.38)), side // 5, (200, 200, 200), -1, cv2.LINE_AA)
            cv2.ellipse(photo, (side // 2, side), (side // 3, side // 3), 0, 180, 360, (200, 200, 200), -1)
        sx, sy = (w - side) // 2, (h - side) // 2 - int(h * 0.03)
        tile[sy:sy + side, sx:sx + side] = photo
    # name label: bottom-left, white text on a translucent dark box
    scale = min(0.6, max(0.33, h / 380))
    thick = 1
    text = _fit_text(spec.name, int(w * 0.7), scale, thick)
    tw, th, base = _text_size(text, scale, thick)
    pad = max(2, int(h * 0.012))
    lh = th + base + 2 * pad
    lx, ly = max(2, int(h * 0.012)), h - lh - max(2, int(h * 0.012))
    _blend_rect(tile, lx, ly, tw + 2 * pad + 2, lh, (0, 0, 0), 0.55)
    cv2.putText(tile, text, (lx + pad + 1, ly + pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thick, cv2.LINE_AA)
    if spec.speaking:
        t = max(2, int(round(h / 110)))
        cv2.rectangle(tile, (0, 0), (w - 1, h - 1), ZOOM_SPEAKER, t)


def _meet_tile(canvas, box: Box, spec: TileSpec, rng) -> None:
    x, y, w, h = box
    tile = np.empty((h, w, 3), np.uint8)
    kind = _camera(tile, MEET_TILE_BG, spec, rng)
    if kind == "name":
        scale = max(0.4, h / 220)
        text = _fit_text(spec.name, int(w * 0.85), scale, 1)
        tw, th, _ = _text_size(text, scale, 1)
        cv2.putText(tile, text, ((w - tw) // 2, (h + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), 1, cv2.LINE_AA)
    elif kind != "live":  # initials or avatar: a circle in the centre
        r = int(h * 0.2)
        cx, cy = w // 2, h // 2 - int(h * 0.03)
        if kind == "avatar" and spec.face is not None:
            photo = _square_photo(spec.face, 2 * r)
            mask = np.zeros((2 * r, 2 * r), np.uint8)
            cv2.circle(mask, (r, r), r - 1, 255, -1, cv2.LINE_AA)
            _paste_masked(tile, cx - r, cy - r, photo, mask)
        else:
            colour = AVATAR_COLOURS[int(rng.integers(len(AVATAR_COLOURS)))]
            cv2.circle(tile, (cx, cy), r, colour, -1, cv2.LINE_AA)
            text = _initials(spec.name)[:1]
            scale = r / 22
            thick = max(1, int(round(scale * 1.5)))
            tw, th, _ = _text_size(text, scale, thick)
            cv2.putText(tile, text, (cx - tw // 2, cy + th // 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), thick, cv2.LINE_AA)
    scale = min(0.6, max(0.33, h / 380))
    text = _fit_text(spec.name, int(w * 0.7), scale, 1)
    tw, th, base = _text_size(text, scale, 1)
    m = max(4, int(h * 0.04))
    # a soft shadow keeps white text readable on bright video, as Meet does
    cv2.putText(tile, text, (m + 1, h - m - base + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2,
                cv2.LINE_AA)
    cv2.putText(tile, text, (m, h - m - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)
    if spec.speaking:
        t = max(2, int(round(h / 90)))
        cv2.rectangle(tile, (0, 0), (w - 1, h - 1), MEET_SPEAKER, t)
    _paste_masked(canvas, x, y, tile, _rounded_mask(h, w, max(4, int(h * 0.05))))


# ---------------------------------------------------------------- chrome

def _zoom_chrome(canvas, W: int, H: int, u: float, participants: int) -> Box:
    """Title bar, top strip, toolbar and taskbar; returns the area left for the gallery."""
    title_h, top_h, tool_h, task_h = int(30 * u), int(40 * u), int(64 * u), int(40 * u)
    cv2.rectangle(canvas, (0, 0), (W, title_h), (250, 250, 250), -1)
    cv2.rectangle(canvas, (int(8 * u), int(8 * u)), (int(22 * u), int(22 * u)), (230, 140, 45), -1)
    cv2.putText(canvas, "Zoom Meeting", (int(30 * u), int(21 * u)), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * u,
                (30, 30, 30), 1, cv2.LINE_AA)
    for i, sym in enumerate(("x", "o", "-")):
        cv2.putText(canvas, sym, (W - int((30 + 46 * i) * u), int(21 * u)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45 * u, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.circle(canvas, (int(18 * u), title_h + int(20 * u)), int(7 * u), (90, 200, 60), -1, cv2.LINE_AA)
    cv2.putText(canvas, "View", (W - int(60 * u), title_h + int(25 * u)), cv2.FONT_HERSHEY_SIMPLEX,
                0.45 * u, (230, 230, 230), 1, cv2.LINE_AA)
    ty = H - task_h - tool_h
    labels = ["Mute", "Stop Video", "", f"Participants {participants}", "Chat", "Share Screen", "Record",
              "Reactions"]
    for i, lab in enumerate(labels):
        if not lab:
            continue
        cx = int(W * (0.03 + 0.1 * i if i < 2 else 0.3 + 0.07 * i))
        colour = (90, 200, 60) if lab == "Share Screen" else (200, 200, 200)
        cv2.rectangle(canvas, (cx - int(10 * u), ty + int(12 * u)), (cx + int(10 * u), ty + int(30 * u)),
                      colour, -1)
        cv2.putText(canvas, lab, (cx - int(25 * u), ty + int(50 * u)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * u,
                    (220, 220, 220), 1, cv2.LINE_AA)
    cv2.rectangle(canvas, (W - int(80 * u), ty + int(18 * u)), (W - int(20 * u), ty + int(44 * u)),
                  (40, 40, 200), -1)
    cv2.putText(canvas, "Leave", (W - int(72 * u), ty + int(36 * u)), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * u,
                (255, 255, 255), 1, cv2.LINE_AA)
    y = H - task_h
    cv2.rectangle(canvas, (0, y), (W, H), (48, 32, 24), -1)
    for i in range(12):
        cx = int(60 * u + i * 44 * u)
        cv2.rectangle(canvas, (cx, y + int(10 * u)), (cx + int(20 * u), y + int(30 * u)),
                      AVATAR_COLOURS[i % len(AVATAR_COLOURS)], -1)
    cv2.putText(canvas, "10:45", (W - int(70 * u), y + int(26 * u)), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * u,
                (240, 240, 240), 1, cv2.LINE_AA)
    return (0, title_h + top_h, W, H - title_h - top_h - tool_h - task_h)


def _meet_chrome(canvas, W: int, H: int, u: float) -> Box:
    bar_h = int(80 * u)
    y = H - bar_h
    cv2.putText(canvas, "10:45 | abc-defg-hij", (int(24 * u), y + int(46 * u)), cv2.FONT_HERSHEY_SIMPLEX,
                0.5 * u, (230, 230, 230), 1, cv2.LINE_AA)
    cx = W // 2
    for i in range(-3, 4):
        colour = (48, 48, 220) if i == 3 else (74, 67, 60)
        r = int(20 * u)
        cv2.circle(canvas, (cx + int(i * 52 * u), y + int(40 * u)), r, colour, -1, cv2.LINE_AA)
    return (0, int(16 * u), W, H - bar_h - int(16 * u))


# ---------------------------------------------------------------- public

def render_gallery(tiles: list[TileSpec], size: tuple[int, int] = (1920, 1080), theme: str = "zoom",
                   chrome: bool = True, seed: int = 0) -> tuple[np.ndarray, list[Box]]:
    """Draw a meeting gallery; returns (BGR frame, tile boxes in reading order)."""
    if theme not in ("zoom", "meet"):
        raise ValueError(f"theme: unknown theme {theme!r} (zoom or meet)")
    if not tiles:
        raise ValueError("tiles: at least one tile is needed")
    W, H = size
    u = H / 1080  # chrome scales with the screen like a HiDPI desktop
    rng = np.random.default_rng(seed)
    canvas = np.empty((H, W, 3), np.uint8)
    n = len(tiles)
    if theme == "zoom":
        canvas[:] = ZOOM_BG
        area = _zoom_chrome(canvas, W, H, u, n) if chrome else (0, 0, W, H)
        gap = max(3, int(round(6 * u)))
        cols, rows = zoom_grid(n)
        pad = int(10 * u)
        area = (area[0] + pad, area[1], area[2] - 2 * pad, area[3])
        boxes = layout(n, area, cols, rows, gap)
        for box, spec in zip(boxes, tiles):
            _zoom_tile(canvas, box, spec, rng)
    else:
        canvas[:] = MEET_BG
        area = _meet_chrome(canvas, W, H, u) if chrome else (0, 0, W, H)
        gap = max(4, int(round(8 * u)))
        pad = int(8 * u)
        area = (area[0] + pad, area[1], area[2] - 2 * pad, area[3])
        cols, rows = best_grid(n, area[2], area[3], gap)
        boxes = layout(n, area, cols, rows, gap)
        for box, spec in zip(boxes, tiles):
            _meet_tile(canvas, box, spec, rng)
    return canvas, boxes


def make_specs(photos: dict[str, list[Path]], n: int, camera_off: dict[int, str] | None = None,
               speaking: int | None = None, seed: int = 0) -> list[TileSpec]:
    """n tiles cycling over the seed students (photo i of each), names suffixed when they repeat."""
    names = sorted(photos)
    rng = np.random.default_rng(seed)
    camera_off = camera_off or {}
    specs = []
    for i in range(n):
        name = names[i % len(names)]
        paths = photos[name]
        face = load_photo(paths[int(rng.integers(len(paths)))])
        label = name if i < len(names) else f"{name} {i // len(names) + 1}"
        specs.append(TileSpec(label, face, camera_off.get(i, "none"), speaking == i))
    return specs
