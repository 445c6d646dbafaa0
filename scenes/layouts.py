"""Every real meeting layout rendered from real face photos, with the truth behind each tile.

`scenes/gallery.py` draws the plain Zoom and Meet galleries the pipeline tests run on; this module draws
the layouts seen in `data/meeting-screens` and `data/meeting-screens-more` that those do not cover, so the
tile finder can be held to all of them (issue 29):
- Zoom, dark (classic, 2022 rounded, a deep-black variant) and light: galleries with any partial last
  row (centred), pillarboxed portrait and 4:3 videos on the tile's own grey, camera-off tiles (name,
  initials, profile photo, the old white silhouette), green / yellow speaker borders, window chrome or
  a window on a desktop; speaker view with its filmstrip and a floating self-view; screen share with a
  strip of tiles on top, at the side or at the bottom; side-by-side share + gallery.
- Google Meet 2020: gapless edge-to-edge grids whose last row holds fewer, wider tiles, the floating
  "You" thumbnail top-right, the white bottom toolbar cutting the last row, a browser or a taskbar
  around. Meet 2021+: rounded tiles with gaps, unequal rows (4+3), a pinned large tile.
- Microsoft Teams 2020: a gapless grid of videos without names over a bottom strip holding a "+N"
  counter, initials bubbles and camera-off tiles with an avatar and a small label; screen share with
  the same strip.
- Zoom mid re-layout: tiles sliding between two layouts, or two frames blended ("unknown" layout).

Truth boxes are what a viewer sees of a tile: a tile cut by a toolbar or the frame edge is cut too.
Non-participants (the "+N" counter, the shared screen, toolbars, chrome) are not in `Scene.tiles`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from scenes.gallery import (AVATAR_COLOURS, MEET_BG, MEET_TILE_BG, ZOOM_BG, ZOOM_SPEAKER, ZOOM_TILE_BG,
                           _blend_rect, _fit_text, _initials, _paste_masked, _rounded_mask, _text_size,
                           best_grid, layout, load_photo, seed_photos, zoom_grid)

Box = tuple[int, int, int, int]
SIZES = ((1280, 720), (1920, 1080), (2560, 1440), (3840, 2160))
PARTICIPANT_KINDS = ("video", "camera_off", "bubble", "self_view")
FONT = cv2.FONT_HERSHEY_SIMPLEX
ZOOM_YELLOW = (120, 235, 235)       # Zoom's yellow speaker frame (zoom-gallery-2plus1-01)
TEAMS_COUNTER = (126, 91, 88)       # the "+N" circle, measured on teams-gallery-2x2-plus-bottomstrip-01
TEAMS_TILE = (55, 55, 55)
BUBBLE_COLOURS = [(237, 231, 220), (228, 222, 217), (231, 220, 236), (221, 237, 250), (226, 236, 246),
                  (222, 236, 224), (206, 240, 250), (240, 226, 214)]
__all__ = ["Scene", "TruthTile", "SIZES", "scenes", "scene_names", "seed_photos"]


@dataclass
class TruthTile:
    """One participant as drawn: its box (x, y, w, h) in frame pixels, its kind and its label."""
    box: Box
    kind: str       # "video" | "camera_off" | "bubble" | "self_view"
    name: str
    plate: bool     # a name label is drawn on it


@dataclass
class Scene:
    """A rendered frame (BGR uint8) with its participants and what layout it shows."""
    image: np.ndarray
    tiles: list[TruthTile]
    layout: str     # "gallery RxC", "speaker + strip", "share + strip", "share + gallery RxC", "unknown"
    platform: str   # "zoom" | "meet" | "teams"
    name: str


@dataclass
class Person:
    """Who sits in a tile and how their tile looks.

    look: "video" (fills the tile), "portrait" (a phone's 9:16 video, pillarboxed), "4:3" (narrow side
    bars), "wide" (a 21:9 stream, letterboxed), "name", "initials", "avatar" (profile photo),
    "silhouette" (old Zoom's white placeholder); the last four are camera-off."""
    name: str
    photo: Path
    look: str = "video"
    plate: bool = True
    speaking: str = ""      # "" or a border colour name: "green", "yellow", "blue"
    band: float = 0.38      # where the face sits in the photo (share of its height)
    colour: int = 0         # avatar colour index

    @property
    def kind(self) -> str:
        return "video" if self.look in ("video", "portrait", "4:3", "wide") else "camera_off"


@dataclass(frozen=True)
class Look:
    """A platform theme: page (gutter) colour, the tile's own colour, camera-off ink, avatar and label style."""
    page: tuple
    tile: tuple
    ink: tuple
    avatar: str     # "square" (Zoom) or "circle"
    plate: str      # "zoom", "zoom2022", "meet", "teams", "none"
    radius: float   # corner radius as a share of the tile height


ZOOM_CLASSIC = Look(ZOOM_BG, ZOOM_TILE_BG, (255, 255, 255), "square", "zoom", 0.0)
ZOOM_2022 = Look((19, 17, 17), (34, 34, 34), (255, 255, 255), "circle", "zoom2022", 0.025)
ZOOM_DEEP = Look((8, 11, 9), (29, 32, 30), (255, 255, 255), "square", "zoom", 0.0)
ZOOM_LIGHT = Look((246, 245, 245), (228, 226, 225), (45, 45, 45), "square", "zoom", 0.0)
MEET_2020 = Look((37, 33, 32), (37, 33, 32), (255, 255, 255), "circle", "meet", 0.0)
MEET_2021 = Look(MEET_BG, MEET_TILE_BG, (255, 255, 255), "circle", "meet", 0.05)
TEAMS = Look((0, 0, 0), TEAMS_TILE, (255, 255, 255), "circle", "teams", 0.0)
SPEAKER_COLOURS = {"green": ZOOM_SPEAKER, "yellow": ZOOM_YELLOW, "blue": (248, 180, 138)}


# ---------------------------------------------------------------- people and photos

def cast(photos: dict[str, list[Path]], n: int, seed: int, looks: dict[int, str] | None = None,
         plates: bool | set[int] = True, speaking: dict[int, str] | None = None) -> list[Person]:
    """n people cycling over the seed students, each with a random photo of theirs (seeded)."""
    rng = np.random.default_rng(seed)
    names = sorted(photos)
    looks, speaking = looks or {}, speaking or {}
    people = []
    for i in range(n):
        name = names[i % len(names)]
        label = name if i < len(names) else f"{name} {i // len(names) + 1}"
        paths = photos[name]
        plate = plates if isinstance(plates, bool) else i in plates
        people.append(Person(label, paths[int(rng.integers(len(paths)))], looks.get(i, "video"), plate,
                             speaking.get(i, ""), float(rng.choice((0.33, 0.38, 0.43))),
                             int(rng.integers(len(AVATAR_COLOURS)))))
    return people


@lru_cache(maxsize=None)
def _photo(path: Path) -> np.ndarray:
    return load_photo(path)


@lru_cache(maxsize=2048)
def _fitted(path: Path, w: int, h: int, fit: str, band: float) -> np.ndarray:
    """The photo as a camera stream shows it in a w x h tile, cached: "cover" fills the tile, the other
    fits ("portrait" 9:16, "4:3", "wide" 21:9) are contained whole (the caller centres them)."""
    img = _photo(path)
    ih, iw = img.shape[:2]
    ratio = w / h if fit == "cover" else {"portrait": 9 / 16, "4:3": 4 / 3, "wide": 21 / 9}[fit]
    cw, ch = (int(ih * ratio), ih) if iw / ih > ratio else (iw, int(iw / ratio))
    y0 = min(ih - ch, max(0, int(ih * band) - ch // 2))
    crop = img[y0:y0 + ch, (iw - cw) // 2:(iw - cw) // 2 + cw]
    if fit == "cover":
        tw, th = w, h
    else:
        s = min(w / cw, h / ch)
        tw, th = max(1, int(round(cw * s))), max(1, int(round(ch * s)))
    return cv2.resize(crop, (tw, th), interpolation=cv2.INTER_AREA if tw < cw else cv2.INTER_LINEAR)


@lru_cache(maxsize=512)
def _square_photo(path: Path, side: int) -> np.ndarray:
    img = _photo(path)
    ih, iw = img.shape[:2]
    s = min(ih, iw)
    y0 = max(0, int(ih * 0.38) - s // 2)
    return cv2.resize(img[y0:y0 + s, (iw - s) // 2:(iw - s) // 2 + s], (side, side), interpolation=cv2.INTER_AREA)


# ---------------------------------------------------------------- tiles
def _canvas(h: int, w: int, colour) -> np.ndarray:
    """A new h x w image of one colour (cv2 fills many times faster than numpy's broadcast)."""
    img = np.empty((h, w, 3), np.uint8)
    return _fill(img, (0, 0, w, h), colour)


def _fill(img: np.ndarray, box: Box, colour) -> np.ndarray:
    x, y, w, h = box
    if w > 0 and h > 0:
        cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), tuple(int(c) for c in colour), -1)
    return img


@lru_cache(maxsize=256)
def _corner_mask(r: int) -> np.ndarray:
    """Alpha (0-1) of a rounded top-left corner r x r."""
    m = _rounded_mask(2 * r + 2, 2 * r + 2, r)[:r, :r]
    return (m.astype(np.float32) / 255.0)[..., None]


def _paste_rounded(canvas: np.ndarray, x: int, y: int, tile: np.ndarray, r: int, full_h: int) -> None:
    """Paste `tile` with its corners rounded (radius r); only the corners are blended. A tile cut
    short of `full_h` keeps square bottom corners (its rounded bottom is hidden)."""
    h, w = tile.shape[:2]
    r = min(r, h // 2, w // 2)
    roi = canvas[y:y + h, x:x + w]
    under = {k: roi[sl].copy() for k, sl in _corners(h, w, r).items()}
    roi[:] = tile
    a = _corner_mask(r)
    for k, sl in _corners(h, w, r).items():
        if k[0] == "b" and h < full_h:
            continue
        m = a[::-1 if k[0] == "b" else 1, ::-1 if k[1] == "r" else 1]
        roi[sl] = (tile[sl] * m + under[k] * (1 - m)).astype(np.uint8)


def _corners(h: int, w: int, r: int) -> dict[str, tuple[slice, slice]]:
    return {"tl": (slice(0, r), slice(0, r)), "tr": (slice(0, r), slice(w - r, w)),
            "bl": (slice(h - r, h), slice(0, r)), "br": (slice(h - r, h), slice(w - r, w))}



def _paint(canvas: np.ndarray, box: Box, p: Person, look: Look, clip_h: int | None = None) -> None:
    """Draw one participant tile at `box`; `clip_h` keeps only its top rows (a toolbar covers the rest)."""
    x, y, w, h = box
    tile = _canvas(h, w, look.tile)
    if p.look == "video":
        tile[:] = _fitted(p.photo, w, h, "cover", p.band)
    elif p.look in ("portrait", "4:3", "wide"):
        v = _fitted(p.photo, w, h, p.look, p.band)
        vy, vx = (h - v.shape[0]) // 2, (w - v.shape[1]) // 2
        tile[vy:vy + v.shape[0], vx:vx + v.shape[1]] = v
    elif p.look == "name":
        _centred_text(tile, p.name, max(0.45, h / 220), look.ink)
    elif p.look == "initials":
        _avatar(tile, p, look.avatar, int(h * (0.3 if look.avatar == "square" else 0.4)))
    elif p.look == "avatar":
        _avatar(tile, p, look.avatar, int(h * 0.6), photo=True)
    elif p.look == "silhouette":
        _silhouette(tile)
    if p.plate:
        _plate(tile, p.name, look.plate)
    if p.speaking:
        t = max(2, int(round(h / 100)))
        cv2.rectangle(tile, (t // 2, t // 2), (w - 1 - t // 2, h - 1 - t // 2), SPEAKER_COLOURS[p.speaking], t)
    if clip_h is not None:
        tile, h = tile[:clip_h], clip_h
    if look.radius > 0:
        _paste_rounded(canvas, x, y, tile, max(3, int(box[3] * look.radius)), box[3])
    else:
        canvas[y:y + h, x:x + w] = tile


def _centred_text(tile: np.ndarray, text: str, scale: float, colour) -> None:
    h, w = tile.shape[:2]
    thick = max(1, int(round(scale * 1.6)))
    text = _fit_text(text, int(w * 0.85), scale, thick)
    tw, th, _ = _text_size(text, scale, thick)
    cv2.putText(tile, text, ((w - tw) // 2, (h + th) // 2), FONT, scale, colour, thick, cv2.LINE_AA)


def _avatar(tile: np.ndarray, p: Person, shape: str, side: int, photo: bool = False) -> None:
    """Initials on a coloured square (Zoom) or circle (Meet, Teams), or the profile photo, centred."""
    h, w = tile.shape[:2]
    side = max(8, side)
    sx, sy = (w - side) // 2, (h - side) // 2 - int(h * 0.03)
    if photo:
        patch = _square_photo(p.photo, side)
    else:
        patch = np.empty((side, side, 3), np.uint8)
        patch[:] = AVATAR_COLOURS[p.colour]
        text = _initials(p.name) if shape == "square" or side > 30 else _initials(p.name)[:1]
        scale = side / 70
        thick = max(1, int(round(scale * 2)))
        tw, th, _ = _text_size(text, scale, thick)
        cv2.putText(patch, text, ((side - tw) // 2, (side + th) // 2), FONT, scale, (255, 255, 255), thick,
                    cv2.LINE_AA)
    mask = np.full((side, side), 255, np.uint8)
    if shape == "circle":
        mask[:] = 0
        cv2.circle(mask, (side // 2, side // 2), side // 2 - 1, 255, -1, cv2.LINE_AA)
    _paste_masked(tile, sx, sy, patch, mask)


def _silhouette(tile: np.ndarray) -> None:
    """Old Zoom's camera-off placeholder: a white portrait panel with a grey person (zoom-gallery-5x4-01)."""
    h, w = tile.shape[:2]
    pw = int(h * 0.56)
    x0 = (w - pw) // 2
    tile[:, x0:x0 + pw] = (250, 250, 250)
    cx = x0 + pw // 2
    cv2.circle(tile, (cx, int(h * 0.42)), int(h * 0.16), (200, 205, 205), -1, cv2.LINE_AA)
    cv2.ellipse(tile, (cx, h), (int(pw * 0.42), int(h * 0.3)), 0, 180, 360, (200, 205, 205), -1, cv2.LINE_AA)


def _plate(tile: np.ndarray, name: str, style: str) -> None:
    """The display-name label, bottom-left, as each platform draws it."""
    h, w = tile.shape[:2]
    if style == "none":
        return
    if style in ("zoom", "zoom2022"):
        big = style == "zoom2022"
        scale = min(0.9 if big else 0.6, max(0.35, h / (260 if big else 380)))
        text = _fit_text(name, int(w * 0.7), scale, 1)
        tw, th, base = _text_size(text, scale, 1)
        pad = max(2, int(h * 0.012))
        lh = th + base + 2 * pad
        lx, ly = (0, h - lh) if big else (max(2, pad), h - lh - max(2, pad))
        _blend_rect(tile, lx, ly, tw + 2 * pad + 2, lh, (0, 0, 0), 0.6)
        cv2.putText(tile, text, (lx + pad + 1, ly + pad + th), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
        return
    scale = min(0.6, max(0.33, h / (380 if style == "meet" else 520)))
    text = _fit_text(name, int(w * 0.8), scale, 1)
    _, th, base = _text_size(text, scale, 1)
    m = max(4, int(h * 0.04))
    org = (m, h - m - base)
    cv2.putText(tile, text, (org[0] + 1, org[1] + 1), FONT, scale, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(tile, text, org, FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _truth(box: Box, p: Person, kind: str | None = None) -> TruthTile:
    return TruthTile(tuple(int(v) for v in box), kind or p.kind, p.name, p.plate)


def _draw_all(canvas, boxes: list[Box], people: list[Person], look: Look) -> list[TruthTile]:
    for box, p in zip(boxes, people):
        _paint(canvas, box, p, look)
    return [_truth(b, p) for b, p in zip(boxes, people)]


# ---------------------------------------------------------------- surroundings

def _u(H: int) -> float:
    """Chrome scale: desktops scale their chrome with the screen (HiDPI)."""
    return H / 1080


def _desktop(canvas: np.ndarray, rng: np.random.Generator) -> None:
    """A textured wallpaper (a sky with hills and noise) and a menu bar: no flat colour to cut on."""
    H, W = canvas.shape[:2]
    u = _u(H)
    top = np.array([120, 60, 20], np.float32) + rng.uniform(-20, 20, 3)
    bot = np.array([200, 150, 90], np.float32) + rng.uniform(-20, 20, 3)
    t = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    canvas[:] = np.clip(top * (1 - t) + bot * t, 0, 255).astype(np.uint8)
    clouds = cv2.resize(rng.normal(0, 12, (max(2, H // 40), max(2, W // 40))).astype(np.float32), (W, H),
                        interpolation=cv2.INTER_CUBIC)[..., None]
    grain = np.tile(rng.normal(0, 3, (64, 64, 1)).astype(np.float32), (H // 64 + 1, W // 64 + 1, 1))[:H, :W]
    canvas[:] = np.clip(canvas.astype(np.float32) + clouds + grain, 0, 255).astype(np.uint8)
    pts = [(0, H)] + [(int(x), int(H * (0.62 + 0.12 * math.sin(x / W * 7 + rng.uniform(0, 6)))))
                      for x in np.linspace(0, W, 24)] + [(W, H)]
    hills = canvas.copy()
    cv2.fillPoly(hills, [np.array(pts, np.int32)], (70, 60, 40))
    cv2.addWeighted(hills, 0.6, canvas, 0.4, 0, canvas)
    mb = int(24 * u)
    _blend_rect(canvas, 0, 0, W, mb, (240, 235, 230), 0.8)
    for i, word in enumerate(("zoom.us", "Meeting", "View", "Edit", "Window", "Help")):
        cv2.putText(canvas, word, (int((40 + 80 * i) * u), int(17 * u)), FONT, 0.45 * u, (20, 20, 20), 1,
                    cv2.LINE_AA)


def _taskbar(canvas: np.ndarray) -> int:
    """A Windows taskbar along the bottom; returns its height."""
    H, W = canvas.shape[:2]
    u = _u(H)
    th = int(40 * u)
    y = H - th
    canvas[y:] = (38, 30, 28)
    for i in range(11):
        cx = int((60 + i * 44) * u)
        cv2.rectangle(canvas, (cx, y + int(10 * u)), (cx + int(20 * u), y + int(30 * u)),
                      AVATAR_COLOURS[i % len(AVATAR_COLOURS)], -1)
    cv2.putText(canvas, "19:09", (W - int(70 * u), y + int(26 * u)), FONT, 0.45 * u, (240, 240, 240), 1,
                cv2.LINE_AA)
    return th


def _browser(canvas: np.ndarray, x: int, y: int, w: int) -> int:
    """Chrome's tab strip, address bar and bookmarks bar; returns their height."""
    u = _u(canvas.shape[0])
    tab_h, bar_h, bm_h = int(36 * u), int(36 * u), int(30 * u)
    canvas[y:y + tab_h, x:x + w] = (230, 225, 224)
    for i, title in enumerate(("Inbox (535)", "WhatsApp", "Contacts", "Meet - hua-ddsq")):
        tx = x + int((8 + 210 * i) * u)
        if i == 3:
            canvas[y + int(6 * u):y + tab_h, tx:tx + int(205 * u)] = (255, 255, 255)
        cv2.putText(canvas, title, (tx + int(30 * u), y + int(24 * u)), FONT, 0.42 * u, (60, 60, 60), 1,
                    cv2.LINE_AA)
    canvas[y + tab_h:y + tab_h + bar_h + bm_h, x:x + w] = (255, 255, 255)
    cv2.rectangle(canvas, (x + int(90 * u), y + tab_h + int(5 * u)), (x + w - int(200 * u), y + tab_h + int(31 * u)),
                  (243, 241, 241), -1)
    cv2.putText(canvas, "meet.google.com/hua-ddsq-qub", (x + int(120 * u), y + tab_h + int(23 * u)), FONT, 0.45 * u,
                (40, 40, 40), 1, cv2.LINE_AA)
    for i, mark in enumerate(("Apps", "YouTube", "Maps", "News", "Gmail", "Attachment")):
        cv2.putText(canvas, mark, (x + int((20 + 95 * i) * u), y + tab_h + bar_h + int(20 * u)), FONT, 0.4 * u,
                    (70, 70, 70), 1, cv2.LINE_AA)
    canvas[y + tab_h + bar_h + bm_h - max(1, int(u)):y + tab_h + bar_h + bm_h, x:x + w] = (218, 218, 218)
    return tab_h + bar_h + bm_h


def _zoom_window(canvas: np.ndarray, rect: Box, look: Look, n: int) -> Box:
    """A Zoom meeting window (title bar, top strip, toolbar) filling `rect`; returns the area inside."""
    x, y, w, h = rect
    u = _u(canvas.shape[0])
    title_h, top_h, tool_h = int(28 * u), int(36 * u), int(60 * u)
    _fill(canvas, rect, look.page)
    _fill(canvas, (x, y, w, title_h), (236, 236, 236))
    for i, c in enumerate(((95, 95, 255), (80, 190, 255), (80, 200, 40))):
        cv2.circle(canvas, (x + int((16 + 20 * i) * u), y + title_h // 2), int(6 * u), c, -1, cv2.LINE_AA)
    cv2.putText(canvas, "Zoom Meeting", (x + w // 2 - int(50 * u), y + int(19 * u)), FONT, 0.45 * u, (50, 50, 50),
                1, cv2.LINE_AA)
    ink = (225, 225, 225) if look.page[0] < 128 else (60, 60, 60)
    cv2.putText(canvas, "Gallery View", (x + w - int(120 * u), y + title_h + int(24 * u)), FONT, 0.42 * u, ink, 1,
                cv2.LINE_AA)
    ty = y + h - tool_h
    bar = (24, 24, 24) if look.page[0] < 128 else (232, 232, 232)
    _fill(canvas, (x, ty, w, tool_h), bar)
    labels = ("Mute", "Stop Video", "Security", f"Participants {n}", "Chat", "Share Screen", "Record", "Reactions")
    for i, lab in enumerate(labels):
        cx = x + int(w * (0.05 + 0.105 * i))
        colour = (90, 200, 60) if lab == "Share Screen" else ink
        cv2.rectangle(canvas, (cx - int(9 * u), ty + int(10 * u)), (cx + int(9 * u), ty + int(28 * u)), colour, -1)
        cv2.putText(canvas, lab, (cx - int(24 * u), ty + int(48 * u)), FONT, 0.38 * u, ink, 1, cv2.LINE_AA)
    cv2.rectangle(canvas, (x + w - int(80 * u), ty + int(16 * u)), (x + w - int(16 * u), ty + int(42 * u)),
                  (40, 40, 210), -1)
    return (x, y + title_h + top_h, w, h - title_h - top_h - tool_h)


def _zoom_frame(size, look: Look, chrome: str, n: int, rng) -> tuple[np.ndarray, Box]:
    """A Zoom frame: bare gallery ("none"), full-screen window with a taskbar ("window"), or a smaller
    window on a desktop ("desktop"); returns the canvas and the area left for tiles."""
    W, H = size
    canvas = _canvas(H, W, look.page)
    if chrome == "none":
        return canvas, (0, 0, W, H)
    if chrome == "window":
        tb = _taskbar(canvas)
        return canvas, _zoom_window(canvas, (0, 0, W, H - tb), look, n)
    _desktop(canvas, rng)
    rect = (int(W * 0.11), int(H * 0.075), int(W * 0.73), int(H * 0.86))
    return canvas, _zoom_window(canvas, rect, look, n)


def _inset(area: Box, px: int) -> Box:
    x, y, w, h = area
    return (x + px, y + px, w - 2 * px, h - 2 * px)


# ---------------------------------------------------------------- Zoom

def zoom_gallery(photos, n: int = 9, size=(1920, 1080), theme: str = "dark", looks: dict[int, str] | None = None,
                 plates: bool | set[int] = True, speaking: dict[int, str] | None = None, chrome: str = "none",
                 cols: int | None = None, floating: bool = False, seed: int = 0, name: str = "") -> Scene:
    """Zoom's gallery view: cols = ceil(sqrt(n)) (or `cols` for a narrow window), a partial last row
    centred; theme "dark" (classic), "2022" (rounded, bigger labels), "deep" (near-black gutter with a
    barely lighter tile grey) or "light". `floating` adds Zoom's active-speaker thumbnail on the desktop
    (zoom-gallery-3plus2-desktop-01), a floating video outside the window."""
    look = {"dark": ZOOM_CLASSIC, "2022": ZOOM_2022, "deep": ZOOM_DEEP, "light": ZOOM_LIGHT}[theme]
    rng = np.random.default_rng(seed)
    people = cast(photos, n, seed, looks, plates, speaking)
    canvas, area = _zoom_frame(size, look, chrome, n, rng)
    u = _u(size[1])
    c, r = zoom_grid(n)
    if cols:
        c, r = cols, math.ceil(n / cols)
    gap = max(3, int(round((8 if theme == "2022" else 6) * u)))
    boxes = layout(n, _inset(area, int(10 * u)), c, r, gap)
    truth = _draw_all(canvas, boxes, people, look)
    if floating:
        W, H = size
        fw, fh = int(W * 0.12), int(W * 0.12 * 9 / 16)
        box = (W - fw - int(25 * u), int(30 * u), fw, fh)
        who = next((p for p in people if p.speaking), people[0])
        self_p = Person(who.name, who.photo, "video", True, band=who.band)
        _paint(canvas, box, self_p, ZOOM_CLASSIC)
        truth.append(_truth(box, self_p, "self_view"))
    return Scene(canvas, truth, f"gallery {r}x{c}", "zoom", name)


def _strip(area: Box, k: int, along: str, thick: int, gap: int, aspect: float = 16 / 9) -> list[Box]:
    """k equal tiles in a row (along="x") or a column (along="y") centred in `area`, `thick` across."""
    x, y, w, h = area
    if along == "x":
        th = thick
        tw = int(min(th * aspect, (w - gap * (k - 1)) / k))
        th = int(tw / aspect)
        x0 = x + (w - (k * tw + (k - 1) * gap)) // 2
        return [(x0 + i * (tw + gap), y + (h - th) // 2, tw, th) for i in range(k)]
    tw = thick
    th = int(min(tw / aspect, (h - gap * (k - 1)) / k))
    tw = int(th * aspect)
    y0 = y + (h - (k * th + (k - 1) * gap)) // 2
    return [(x + (w - tw) // 2, y0 + i * (th + gap), tw, th) for i in range(k)]


def _fit_box(area: Box, aspect: float) -> Box:
    """The largest box of `aspect` centred in `area`."""
    x, y, w, h = area
    bw = min(w, int(h * aspect))
    bh = int(bw / aspect)
    return (x + (w - bw) // 2, y + (h - bh) // 2, bw, bh)


def zoom_speaker(photos, n: int = 5, size=(1920, 1080), theme: str = "dark", self_view: bool = True,
                 chrome: str = "window", looks: dict[int, str] | None = None, seed: int = 0, name: str = "") -> Scene:
    """Zoom's speaker view: the speaker large, a filmstrip of the others above it (none when n = 1), and
    your own video floating over the speaker's bottom-right corner."""
    look = {"dark": ZOOM_CLASSIC, "2022": ZOOM_2022, "light": ZOOM_LIGHT}[theme]
    rng = np.random.default_rng(seed)
    people = cast(photos, n, seed, looks, True)
    canvas, area = _zoom_frame(size, look, chrome, n + int(self_view), rng)
    u = _u(size[1])
    x, y, w, h = _inset(area, int(8 * u))
    truth = []
    if n > 1:
        sh = int(h * 0.16)
        strip = _strip((x, y, w, sh), n - 1, "x", sh, max(3, int(5 * u)))
        truth += _draw_all(canvas, strip, people[1:], look)
        y, h = y + sh + int(10 * u), h - sh - int(10 * u)
    big = _fit_box((x, y, w, h), 16 / 9)
    _paint(canvas, big, people[0], look)
    truth.insert(0, _truth(big, people[0]))
    if self_view:
        me = cast(photos, n + 1, seed + 1)[-1]
        sw = int(big[2] * 0.2)
        sh = int(sw * 9 / 16)
        box = (big[0] + big[2] - sw - int(16 * u), big[1] + big[3] - sh - int(16 * u), sw, sh)
        _paint(canvas, box, me, look)
        cv2.rectangle(canvas, box[:2], (box[0] + box[2] - 1, box[1] + box[3] - 1), (90, 90, 90), 1)
        truth.append(_truth(box, me, "self_view"))
    return Scene(canvas, truth, "speaker + strip", "zoom", name)


def _slide(w: int, h: int, rng: np.random.Generator, title: str = "Automatic 3D Reconstruction") -> np.ndarray:
    """A shared lecture slide: a title, bullet lines and a few coloured figures on white."""
    img = np.full((h, w, 3), 252, np.uint8)
    s = h / 600
    cv2.rectangle(img, (0, 0), (w, int(70 * s)), (60, 40, 20), -1)
    cv2.putText(img, title, (int(30 * s), int(48 * s)), FONT, 1.1 * s, (255, 255, 255), max(1, int(2 * s)), cv2.LINE_AA)
    for i in range(6):
        yy = int((120 + 40 * i) * s)
        cv2.circle(img, (int(40 * s), yy - int(6 * s)), max(2, int(4 * s)), (40, 40, 40), -1)
        words = " ".join(rng.choice(["room", "segmentation", "surface", "model", "indoor", "object",
                                     "detection", "visual", "data", "lecture"], 5))
        cv2.putText(img, words, (int(60 * s), yy), FONT, 0.7 * s, (40, 40, 40), max(1, int(1.4 * s)), cv2.LINE_AA)
    for i in range(3):
        fx = int(w * (0.55 + 0.14 * i))
        colour = tuple(int(v) for v in rng.integers(40, 220, 3))
        cv2.rectangle(img, (fx, int(h * 0.35)), (fx + int(w * 0.1), int(h * 0.75)), colour, -1)
    return img


def zoom_share(photos, n: int = 4, size=(1920, 1080), strip: str = "side", theme: str = "dark",
               chrome: str = "window", looks: dict[int, str] | None = None, seed: int = 0, name: str = "") -> Scene:
    """Zoom viewing a shared screen with the participants in a strip: "top", "side" (a column at the
    right, zoom-sidebyside-speaker-screenshare-01), "bottom", or "gallery" (side-by-side: a grid of two
    columns beside the share, zoom-sidebyside-gallery-screenshare-01)."""
    look = {"dark": ZOOM_CLASSIC, "2022": ZOOM_2022, "light": ZOOM_LIGHT}[theme]
    rng = np.random.default_rng(seed)
    people = cast(photos, n, seed, looks, True)
    canvas, area = _zoom_frame(size, look, chrome, n, rng)
    u = _u(size[1])
    x, y, w, h = _inset(area, int(8 * u))
    gap = max(3, int(6 * u))
    label = "share + strip"
    if strip in ("top", "bottom"):
        sh = int(h * 0.15)
        sy = y if strip == "top" else y + h - sh
        boxes = _strip((x, sy, w, sh), n, "x", sh, gap)
        share = (x, y + sh + gap, w, h - sh - gap) if strip == "top" else (x, y, w, h - sh - gap)
    elif strip == "side":
        sw = int(w * 0.2)
        boxes = _strip((x + w - sw, y, sw, h), n, "y", sw, gap)
        share = (x, y, w - sw - 3 * gap, h)
    else:
        gw = int(w * 0.36)
        gc = 2 if n > 2 else 1
        gr = math.ceil(n / gc)
        boxes = layout(n, (x + w - gw, y, gw, h), gc, gr, gap)
        share = (x, y, w - gw - 3 * gap, h)
        label = f"share + gallery {gr}x{gc}"
        cv2.line(canvas, (x + w - gw - gap, y), (x + w - gw - gap, y + h), (70, 70, 70), max(1, int(2 * u)))
    sb = _fit_box(share, 16 / 10)
    canvas[sb[1]:sb[1] + sb[3], sb[0]:sb[0] + sb[2]] = _slide(sb[2], sb[3], rng)
    truth = _draw_all(canvas, boxes, people, look)
    return Scene(canvas, truth, label, "zoom", name)


# ---------------------------------------------------------------- Google Meet

def _row_boxes(area: Box, counts: list[int]) -> list[Box]:
    """Edge-to-edge rows: each row spans the full width, its tiles share it equally (Meet 2020 tiled)."""
    x, y, w, h = area
    rows = len(counts)
    boxes = []
    for r, k in enumerate(counts):
        y0, y1 = y + r * h // rows, y + (r + 1) * h // rows
        for c in range(k):
            x0, x1 = x + c * w // k, x + (c + 1) * w // k
            boxes.append((x0, y0, x1 - x0, y1 - y0))
    return boxes


def _meet_rows(n: int) -> list[int]:
    """Meet 2020 tiled: ceil(sqrt(n)) columns, the remainder in a last row of fewer, wider tiles."""
    cols = max(1, math.ceil(math.sqrt(n)))
    full, rest = divmod(n, cols)
    return [cols] * full + ([rest] if rest else [])


def _meet_toolbar(canvas: np.ndarray, y: int, x: int, w: int) -> None:
    """Meet 2020's white bottom toolbar: meeting details, three round buttons, captions, present."""
    u = _u(canvas.shape[0])
    h = canvas.shape[0] - y if y + int(80 * u) > canvas.shape[0] else int(80 * u)
    canvas[y:y + h, x:x + w] = (255, 255, 255)
    cv2.putText(canvas, "Meeting details", (x + int(20 * u), y + int(45 * u)), FONT, 0.55 * u, (50, 50, 50), 1,
                cv2.LINE_AA)
    for i, colour in ((-1, (230, 230, 230)), (0, (40, 40, 220)), (1, (230, 230, 230))):
        cv2.circle(canvas, (x + w // 2 + int(i * 64 * u), y + h // 2), int(25 * u), colour, 1 if i else -1,
                   cv2.LINE_AA)
    for i, lab in enumerate(("Turn on captions", "Present now")):
        cv2.putText(canvas, lab, (x + w - int((330 - 150 * i) * u), y + int(60 * u)), FONT, 0.42 * u, (60, 60, 60),
                    1, cv2.LINE_AA)


def meet_2020_tiled(photos, n: int = 6, size=(1280, 800), looks: dict[int, str] | None = None,
                    plates: bool | set[int] = True, self_view: bool = True, frame: str = "browser",
                    toolbar: bool = True, seed: int = 0, name: str = "") -> Scene:
    """Google Meet's 2020 tiled layout: gapless rows from edge to edge (the last row's fewer tiles are
    wider), the white panel with the "You" thumbnail top-right over the top-right tile, and the white
    toolbar cutting the last row (meet-tiled-3x2-selfpip-whitebar-browser-01); frame "browser" puts
    Chrome's bars above, "taskbar" a Windows taskbar below (meet-tiled-4x4-selfpip-pillarbox-taskbar-01)."""
    W, H = size
    u = _u(H)
    people = cast(photos, n, seed, looks, plates)
    canvas = _canvas(H, W, MEET_2020.page)
    top = _browser(canvas, 0, 0, W) if frame == "browser" else 0
    bottom = H - (_taskbar(canvas) if frame == "taskbar" else 0)
    counts = _meet_rows(n)
    boxes = _row_boxes((0, top, W, bottom - top), counts)
    cut = bottom - int(80 * u) if toolbar else bottom
    truth = []
    for box, p in zip(boxes, people):
        clip = None if box[1] + box[3] <= cut else cut - box[1]
        _paint(canvas, box, p, MEET_2020, clip)
        truth.append(_truth((box[0], box[1], box[2], clip or box[3]), p))
    if toolbar:
        _meet_toolbar(canvas, cut, 0, W)
    if self_view:
        truth.append(_meet_panel(canvas, photos, top, seed))
    return Scene(canvas, truth, f"gallery {len(counts)}x{max(counts)}", "meet", name)


def _meet_panel(canvas: np.ndarray, photos, top: int, seed: int) -> TruthTile:
    """The white top-right panel (people, chat, clock) ending in your own video, labelled "You"."""
    H, W = canvas.shape[:2]
    u = W / 1280
    ph = int(42 * u)
    sw = int(77 * u)
    px = W - int(308 * u)
    cv2.rectangle(canvas, (px, top), (W, top + ph), (253, 254, 255), -1)
    for i, lab in enumerate(("7", "=", "7:10 PM")):
        cv2.putText(canvas, lab, (px + int((30 + 60 * i) * u), top + int(27 * u)), FONT, 0.5 * u, (70, 70, 70), 1,
                    cv2.LINE_AA)
    me = cast(photos, 1, seed + 7)[0]
    me = Person("You", me.photo, "video", True, band=me.band)
    box = (W - sw, top, sw, ph)
    _paint(canvas, box, me, Look((0, 0, 0), (0, 0, 0), (255, 255, 255), "circle", "meet", 0.0))
    return _truth(box, me, "self_view")


def meet_2021(photos, n: int = 7, size=(1920, 1080), looks: dict[int, str] | None = None,
              plates: bool | set[int] = True, pinned: bool = False, self_view: bool = False,
              aspect: float = 16 / 9, seed: int = 0, name: str = "") -> Scene:
    """Google Meet 2021+: rounded tiles with gaps on the dark page, rows of unequal size (7 -> 4+3),
    or one pinned tile large with the others in a column beside it; `self_view` floats your own tile
    in the bottom-right corner, over whatever tile is there."""
    W, H = size
    u = _u(H)
    people = cast(photos, n, seed, looks, plates)
    canvas = _canvas(H, W, MEET_BG)
    bar_h = int(80 * u)
    _meet_bar(canvas, bar_h)
    gap = max(4, int(round(8 * u)))
    area = (int(16 * u), int(16 * u), W - int(32 * u), H - bar_h - int(24 * u))
    if pinned:
        side = int(area[2] * 0.22)
        big_area = (area[0], area[1], area[2] - side - gap, area[3])
        big = _fit_box(big_area, aspect)
        boxes = [big] + _strip((area[0] + area[2] - side, area[1], side, area[3]), n - 1, "y", side, gap, aspect)
        label = "speaker + strip"
    else:
        cols, rows = best_grid(n, area[2], area[3], gap, aspect)
        boxes = layout(n, area, cols, rows, gap, aspect)
        label = f"gallery {rows}x{cols}"
    truth = _draw_all(canvas, boxes, people, MEET_2021)
    if self_view:
        me = cast(photos, 1, seed + 11)[0]
        me = Person("You", me.photo, "video", True, band=me.band)
        sw = int(W * 0.14)
        box = (W - sw - int(16 * u), H - bar_h - int(sw / aspect) - int(8 * u), sw, int(sw / aspect))
        _paint(canvas, box, me, MEET_2021)
        truth.append(_truth(box, me, "self_view"))
    return Scene(canvas, truth, label, "meet", name)


def _meet_bar(canvas: np.ndarray, bar_h: int) -> None:
    """Meet 2021's dark bottom bar: clock and code at the left, round buttons in the middle."""
    H, W = canvas.shape[:2]
    u = _u(H)
    y = H - bar_h
    cv2.putText(canvas, "10:45 | abc-defg-hij", (int(24 * u), y + int(46 * u)), FONT, 0.5 * u, (230, 230, 230), 1,
                cv2.LINE_AA)
    for i in range(-3, 4):
        colour = (48, 48, 220) if i == 3 else (74, 67, 60)
        cv2.circle(canvas, (W // 2 + int(i * 52 * u), y + int(40 * u)), int(20 * u), colour, -1, cv2.LINE_AA)


# ---------------------------------------------------------------- Microsoft Teams

def _bubble(canvas: np.ndarray, c: tuple[int, int], r: int, text: str, fill, ink) -> None:
    cv2.circle(canvas, c, r, fill, -1, cv2.LINE_AA)
    scale = r / 30
    thick = max(1, int(round(scale * 1.4)))
    tw, th, _ = _text_size(text, scale, thick)
    cv2.putText(canvas, text, (c[0] - tw // 2, c[1] + th // 2), FONT, scale, ink, thick, cv2.LINE_AA)


def _teams_strip(canvas: np.ndarray, y: int, sh: int, photos, extra: int, bubbles: int, off: int,
                 videos: int, seed: int) -> list[TruthTile]:
    """Teams 2020's bottom strip, left to right: the "+N" counter (not a participant), initials
    bubbles (camera-off participants without a label), camera-off tiles (avatar, small label) and
    video tiles without labels, the last cut by the frame edge when they run out of room."""
    H, W = canvas.shape[:2]
    r = int(sh * 0.24)
    pitch = int(sh * 0.93)
    cy = y + sh // 2 - int(sh * 0.03)
    x = int(sh * 0.27) + r
    _bubble(canvas, (x, cy), r, f"+{extra}", TEAMS_COUNTER, (255, 255, 255))
    people = cast(photos, bubbles + off + videos, seed + 3)
    truth = []
    for i, p in enumerate(people[:bubbles]):
        x += pitch
        fill = BUBBLE_COLOURS[(i + seed) % len(BUBBLE_COLOURS)]
        _bubble(canvas, (x, cy), r, _initials(p.name), fill, tuple(int(v * 0.55) for v in fill))
        truth.append(TruthTile((x - r, cy - r, 2 * r, 2 * r), "bubble", p.name, False))
    tw = int(sh * 1.9)
    tx = x + r + int(sh * 0.2)
    ty, th = y + int(sh * 0.065), sh - int(sh * 0.065) - int(sh * 0.04)
    for i, p in enumerate(people[bubbles:]):
        if tx >= W - 8:
            break
        w = min(tw, W - tx)
        cam_off = i < off
        q = Person(p.name, p.photo, "initials" if cam_off else "video", cam_off, band=p.band, colour=p.colour)
        if cam_off:
            tile = _canvas(th, tw, TEAMS_TILE if i % 2 == 0 else (50, 50, 50))
            rr = int(th * 0.25)
            _bubble(tile, (tw // 2, int(th * 0.45)), rr, _initials(p.name), BUBBLE_COLOURS[i % len(BUBBLE_COLOURS)],
                    (90, 60, 60))
            _plate(tile, p.name, "teams")
        else:
            tile = _fitted(p.photo, tw, th, "cover", p.band)
        canvas[ty:ty + th, tx:tx + w] = tile[:, :w]
        truth.append(_truth((tx, ty, w, th), q))
        tx += tw
    return truth


def teams_2020_gallery(photos, size=(1920, 1080), grid: tuple[int, int] = (2, 2), extra: int = 15,
                       bubbles: int = 10, off: int = 4, plates: set[int] | None = None, seed: int = 0,
                       name: str = "") -> Scene:
    """Teams 2020's gallery (teams-gallery-2x2-plus-bottomstrip-01): a gapless rows x cols grid of
    videos touching each other and the frame, no names (Teams showed them on hover; `plates` labels a
    few), over a black bottom strip of bubbles and camera-off tiles."""
    W, H = size
    rows, cols = grid
    canvas = np.zeros((H, W, 3), np.uint8)
    sh = int(H * 0.098)
    people = cast(photos, rows * cols, seed, None, plates or set())
    boxes = _row_boxes((0, 0, W, H - sh), [cols] * rows)
    truth = _draw_all(canvas, boxes, people, TEAMS)
    truth += _teams_strip(canvas, H - sh, sh, photos, extra, bubbles, off, 0, seed)
    return Scene(canvas, truth, f"gallery {rows}x{cols}", "teams", name)


def teams_share(photos, size=(1920, 1080), extra: int = 20, bubbles: int = 10, off: int = 1, videos: int = 3,
                seed: int = 0, name: str = "") -> Scene:
    """Teams 2020 viewing a shared slide (teams-screenshare-bottomstrip-avatars-01): the slide on black,
    the strip below with bubbles, a camera-off tile and unlabelled videos running off the right edge."""
    W, H = size
    rng = np.random.default_rng(seed)
    canvas = np.zeros((H, W, 3), np.uint8)
    sh = int(H * 0.098)
    share = _fit_box((int(W * 0.05), int(H * 0.02), int(W * 0.9), H - sh - int(H * 0.06)), 16 / 9)
    canvas[share[1]:share[1] + share[3], share[0]:share[0] + share[2]] = _slide(share[2], share[3], rng)
    truth = _teams_strip(canvas, H - sh, sh, photos, extra, bubbles, off, videos, seed)
    return Scene(canvas, truth, "share + strip", "teams", name)


# ---------------------------------------------------------------- re-layout

def relayout(photos, n: int = 4, size=(1920, 1080), mode: str = "slide", t: float = 0.5, seed: int = 0,
             name: str = "") -> Scene:
    """Zoom re-laying its gallery as someone joins: "slide" draws the n tiles part way (t) from their
    n-person boxes to their (n+1)-person boxes with the newcomer fading in; "blend" mixes the two
    whole frames, as a capture taken during the cross-fade does. Truth: every tile as drawn, both
    layouts' tiles for a blend; the layout is "unknown"."""
    W, H = size
    u = _u(H)
    people = cast(photos, n + 1, seed)
    gap = max(3, int(round(6 * u)))
    area = _inset((0, 0, W, H), int(10 * u))
    before = layout(n, area, *zoom_grid(n), gap)
    after = layout(n + 1, area, *zoom_grid(n + 1), gap)
    if mode == "blend":
        a, b = _canvas(H, W, ZOOM_BG), _canvas(H, W, ZOOM_BG)
        ta = _draw_all(a, before, people[:n], ZOOM_CLASSIC)
        tb = _draw_all(b, after, people, ZOOM_CLASSIC)
        canvas = cv2.addWeighted(a, 1 - t, b, t, 0)
        return Scene(canvas, ta + tb, "unknown", "zoom", name)
    canvas = _canvas(H, W, ZOOM_BG)
    boxes = [tuple(int(round(p + (q - p) * t)) for p, q in zip(bx, ax)) for bx, ax in zip(before, after)]
    truth = _draw_all(canvas, boxes, people[:n], ZOOM_CLASSIC)
    ghost = canvas.copy()
    _paint(ghost, after[n], people[n], ZOOM_CLASSIC)
    cv2.addWeighted(ghost, t, canvas, 1 - t, 0, canvas)
    truth.append(_truth(after[n], people[n]))
    return Scene(canvas, truth, "unknown", "zoom", name)


# ---------------------------------------------------------------- the matrix

def _matrix() -> list[tuple[str, object, dict, tuple[tuple[int, int], ...]]]:
    """(name stem, family, arguments, sizes): every layout at two sizes or more, every size often."""
    s720, s1080, s1440, s2160 = SIZES
    pb = {1: "portrait", 4: "4:3"}
    return [
        ("zoom-2plus1-yellow", zoom_gallery, dict(n=3, looks={0: "portrait"}, speaking={0: "yellow"}), (s720, s1440)),
        ("zoom-2x2-pillarbox-2022", zoom_gallery, dict(n=4, theme="2022", looks={2: "portrait", 3: "portrait"},
                                                       speaking={1: "green"}), (s1080, s2160)),
        ("zoom-2x2-pillarbox-deep", zoom_gallery, dict(n=4, theme="deep", looks={2: "portrait", 3: "portrait"}),
         (s720, s1440)),
        ("zoom-3plus2-camoff-window", zoom_gallery, dict(n=5, looks={4: "name"}, chrome="window"), (s1080, s2160)),
        ("zoom-3x3-uneven7", zoom_gallery, dict(n=7, looks={3: "4:3"}, speaking={0: "green"}), (s720, s2160)),
        ("zoom-3x3-avatar", zoom_gallery, dict(n=9, looks={4: "avatar", 7: "initials"}, speaking={4: "green"}),
         (s1080, s1440)),
        ("zoom-4x4-uneven13-window", zoom_gallery, dict(n=13, looks=pb, chrome="window", speaking={2: "green"}),
         (s1440, s2160)),
        ("zoom-4x4-uneven10-noplates", zoom_gallery, dict(n=10, plates=False, looks={5: "portrait"}), (s720, s1080)),
        ("zoom-5x4-silhouettes", zoom_gallery, dict(n=20, plates=False, looks={10: "portrait", 13: "silhouette",
                                                                                14: "silhouette", 15: "silhouette"}),
         (s1080, s2160)),
        ("zoom-5x5-names", zoom_gallery, dict(n=25, looks={3: "name", 8: "name", 17: "initials", 21: "portrait"}),
         (s1440, s2160)),
        ("zoom-2x3-narrow-initials", zoom_gallery, dict(n=6, cols=2, looks={5: "initials"}), (s720, s1080)),
        ("zoom-3plus2-desktop", zoom_gallery, dict(n=5, chrome="desktop", floating=True, speaking={1: "yellow"}),
         (s1080, s1440)),
        ("zoom-3x3-desktop", zoom_gallery, dict(n=8, chrome="desktop", looks={2: "portrait"}), (s720, s2160)),
        ("zoom-light-2x2", zoom_gallery, dict(n=4, theme="light", looks={1: "initials", 3: "portrait"}), (s720, s1440)),
        ("zoom-light-4x3-window", zoom_gallery, dict(n=11, theme="light", chrome="window",
                                                     looks={2: "name", 6: "4:3"}), (s1080, s2160)),
        ("zoom-speaker-strip", zoom_speaker, dict(n=5), (s1080, s2160)),
        ("zoom-speaker-alone", zoom_speaker, dict(n=1, chrome="none"), (s720, s1440)),
        ("zoom-speaker-2022", zoom_speaker, dict(n=4, theme="2022", chrome="none", looks={2: "portrait"}),
         (s1440, s720)),
        ("zoom-share-top", zoom_share, dict(n=5, strip="top"), (s1080, s1440)),
        ("zoom-share-side", zoom_share, dict(n=3, strip="side", looks={2: "silhouette"}), (s720, s2160)),
        ("zoom-share-bottom", zoom_share, dict(n=6, strip="bottom", theme="light"), (s1080, s2160)),
        ("zoom-share-gallery", zoom_share, dict(n=6, strip="gallery", looks={1: "name"}), (s1440, s720)),
        ("meet2020-3x2-browser", meet_2020_tiled, dict(n=6, plates={0, 1, 2}), (s720, s1080)),
        ("meet2020-4x4-taskbar", meet_2020_tiled, dict(n=16, frame="taskbar", toolbar=False, plates={12},
                                                       looks={1: "portrait", 9: "portrait", 11: "portrait",
                                                              14: "portrait", 15: "initials"}), (s720, s1440)),
        ("meet2020-3plus2", meet_2020_tiled, dict(n=5, frame="none", self_view=False), (s1080, s2160)),
        ("meet2020-4x3-wide-last", meet_2020_tiled, dict(n=10, frame="browser", looks={6: "portrait"}),
         (s1440, s2160)),
        ("meet2021-4plus3", meet_2021, dict(n=7, looks={5: "initials"}), (s1080, s2160)),
        ("meet2021-12-selfview", meet_2021, dict(n=12, self_view=True, looks={3: "avatar", 8: "portrait"}),
         (s720, s1440)),
        ("meet2021-squarer-letterbox", meet_2021, dict(n=5, aspect=4 / 3, looks={1: "wide", 3: "portrait"}),
         (s1080, s1440)),
        ("meet2021-pinned", meet_2021, dict(n=4, pinned=True, looks={2: "initials"}), (s720, s2160)),
        ("teams2020-2x2-strip", teams_2020_gallery, dict(), (s1080, s2160)),
        ("teams2020-3x3-strip", teams_2020_gallery, dict(grid=(3, 3), extra=4, bubbles=6, off=2, plates={4}),
         (s720, s1440)),
        ("teams-share-strip", teams_share, dict(), (s1080, s2160)),
        ("teams-share-few", teams_share, dict(extra=3, bubbles=4, off=2, videos=2), (s720, s1440)),
        ("relayout-slide-4to5", relayout, dict(n=4, mode="slide", t=0.5), (s1080, s2160)),
        ("relayout-slide-9to10", relayout, dict(n=9, mode="slide", t=0.35), (s720, s1440)),
        ("relayout-blend-4to5", relayout, dict(n=4, mode="blend"), (s1440, s720)),
        ("relayout-blend-9to10", relayout, dict(n=9, mode="blend", t=0.6), (s1080, s2160)),
    ]


def scene_names(sizes=SIZES) -> list[str]:
    """The names `scenes` gives, without rendering (for test parametrisation)."""
    return [f"{stem}-{w}x{h}" for stem, _, _, ss in _matrix() for (w, h) in ss if (w, h) in sizes]


def scenes(photos: dict[str, list[Path]], sizes=SIZES) -> list[Scene]:
    """Render the whole deterministic matrix (seeded by position), in `scene_names` order."""
    out = []
    for i, (stem, family, kwargs, ss) in enumerate(_matrix()):
        for j, (w, h) in enumerate(ss):
            if (w, h) in sizes:
                out.append(family(photos, size=(w, h), seed=100 * i + j, name=f"{stem}-{w}x{h}", **kwargs))
    return out
