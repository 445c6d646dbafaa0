"""bot/tiles.py on the real captures in data/meeting-screens and on galleries rendered from seed-faces."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from bot.config import TileSettings
from bot.tiles import segment
from tests.conftest import DATA
from tests.gallery import make_specs, render_gallery, seed_photos

SETTINGS = TileSettings()

# Files the segmenter does not yet get right (count or a ground-truth box below IoU 0.9); strict, so a
# fix shows up as XPASS and this list has to shrink with it.
KNOWN_BAD = {
    "zoom-gallery-5x5-monitorphoto-01.jpg": "camera photo of a monitor (perspective, moire): stretch goal",
    "zoom-gallery-3plus2-desktop-01.png": "floating self view on the textured desktop not found",
    "zoom-gallery-clipped-01.png": "tiles clipped at the frame edge: only 2 of 4",
    "zoom-sidebyside-speaker-screenshare-01.png": "strip of 3 tiles of two sizes joined by 1-px gaps",
}
# Files whose tiles are right but whose camera-off count is not (asserted separately, strict too).
KNOWN_BAD_OFF = {
    # tile 9 (row 2, column 2) is a square profile photo centred on the grey camera-off tile, which
    # the segmenter flags like the profile-photo tile of zoom-gallery-3x3-01; index.txt counts only
    # the name-only tile: 2 flagged against 1 listed
    "zoom-gallery-5x5-vlcplayback-01.jpg": "profile-photo tile flagged; index.txt counts it as live",
}


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    i = iw * ih
    return i / (aw * ah + bw * bh - i)


def _index(data_dir: Path) -> list[list[str]]:
    lines = (data_dir / "meeting-screens" / "index.txt").read_text().splitlines()
    return [ln.split("\t") for ln in lines if ln.strip()]


def _screens(known_bad: dict[str, str], skip: tuple = ()) -> list:
    rows = [ln.split("\t") for ln in (DATA / "meeting-screens" / "index.txt").read_text().splitlines()
            if ln.strip()]
    return [pytest.param(r[0], marks=pytest.mark.xfail(reason=known_bad[r[0]], strict=True))
            if r[0] in known_bad else r[0] for r in rows if r[0] not in skip]


@pytest.mark.parametrize("name", _screens(KNOWN_BAD))
def test_real_capture(data_dir, name):
    row = next(r for r in _index(data_dir) if r[0] == name)
    frame = cv2.imread(str(data_dir / "meeting-screens" / name))
    tiles = segment(frame, SETTINGS)
    assert len(tiles) == int(row[3]), [t.box for t in tiles]
    truth = json.loads((data_dir / "meeting-screens" / "tiles.json").read_text()).get(name, [])
    boxes = [t.box for t in tiles]
    for g in truth:
        assert max(iou(g, b) for b in boxes) >= 0.9, (g, boxes)
    for t in tiles:   # name strip inside the tile, at its bottom-left
        x, y, w, h = t.box
        nx, ny, nw, nh = t.name_box
        assert x <= nx and ny >= y + h / 2 and nx + nw <= x + w and ny + nh <= y + h


@pytest.mark.parametrize("name", _screens(KNOWN_BAD_OFF, skip=tuple(KNOWN_BAD)))
def test_camera_off_count(data_dir, name):
    row = next(r for r in _index(data_dir) if r[0] == name)
    frame = cv2.imread(str(data_dir / "meeting-screens" / name))
    assert sum(t.camera_off for t in segment(frame, SETTINGS)) == int(row[4])


def test_reading_order(data_dir):
    frame = cv2.imread(str(data_dir / "meeting-screens" / "zoom-gallery-3x3-uneven7-01.png"))
    truth = json.loads((data_dir / "meeting-screens" / "tiles.json").read_text())["zoom-gallery-3x3-uneven7-01.png"]
    boxes = [t.box for t in segment(frame, SETTINGS)]
    assert [max(range(len(boxes)), key=lambda i: iou(g, boxes[i])) for g in truth] == list(range(7))


@pytest.mark.parametrize("frame", [np.zeros((1080, 1920, 3), np.uint8), np.full((720, 1280, 3), 128, np.uint8),
                                   np.zeros((5, 5, 3), np.uint8)])
def test_blank_frames_have_no_tiles(frame):
    assert segment(frame, SETTINGS) == []


RENDERED = [("zoom", 2, (1280, 720)), ("zoom", 4, (1920, 1080)), ("zoom", 7, (1920, 1080)),
            ("zoom", 13, (2560, 1440)), ("zoom", 25, (1920, 1080)), ("zoom", 49, (2560, 1440)),
            ("meet", 3, (1280, 720)), ("meet", 8, (1920, 1080)), ("meet", 16, (1920, 1080)),
            ("meet", 30, (2560, 1440))]


@pytest.mark.parametrize("theme,n,size", RENDERED)
def test_rendered_gallery(data_dir, theme, n, size):
    photos = seed_photos(data_dir)
    off = {1: "name", 3: "initials", 4: "avatar"} if n > 4 else {1: "initials"}
    specs = make_specs(photos, n, camera_off=off, speaking=0, seed=n)
    frame, truth = render_gallery(specs, size=size, theme=theme, seed=n)
    tiles = segment(frame, SETTINGS)
    boxes = [t.box for t in tiles]
    assert len(tiles) == n, boxes
    for i, g in enumerate(truth):
        j = max(range(len(boxes)), key=lambda k: iou(g, boxes[k]))
        assert iou(g, boxes[j]) >= 0.9, (i, g, boxes[j])
        assert j == i, "reading order"
        assert tiles[j].camera_off == (specs[i].camera_off != "none"), (i, specs[i].camera_off)


@pytest.mark.parametrize("n,size", [(25, (1920, 1080)), (13, (2560, 1440))])
def test_page_coloured_camera_off_tiles_are_completed_from_the_grid(data_dir, n, size):
    """Like meet-grid-extension-01: camera-off tiles painted in the page colour have no visible edge;
    the lattice of the live tiles still gives their boxes."""
    from tests.gallery import ZOOM_BG, ZOOM_TILE_BG
    photos = seed_photos(data_dir)
    off = {1: "name", 3: "initials", 4: "avatar", 7: "initials", 9: "name"}
    specs = make_specs(photos, n, camera_off=off, speaking=0, seed=n)
    frame, truth = render_gallery(specs, size=size, theme="zoom", seed=n)
    for (x, y, w, h), s in zip(truth, specs):
        if s.camera_off != "none":
            tile = frame[y:y + h, x:x + w]
            tile[(tile == ZOOM_TILE_BG).all(axis=2)] = ZOOM_BG
    tiles = segment(frame, SETTINGS)
    assert len(tiles) == n, [t.box for t in tiles]
    for g, s in zip(truth, specs):
        t = max(tiles, key=lambda t: iou(g, t.box))
        assert iou(g, t.box) >= 0.9, (g, t.box)
        assert t.camera_off == (s.camera_off != "none"), (g, s.camera_off)
