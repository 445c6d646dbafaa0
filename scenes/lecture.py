"""The benchmark's lecture (benchmarks/cycle.py, tests/test_names.py): a 1920x1080 Zoom gallery of 25
tiles of the seed class, three camera-off, framed like webcams, the same sitters moving a little from
frame to frame or other photos of them, and fresh sensor noise on every capture."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.enroll import spread
from scenes.gallery import TileSpec, load_photo, render_gallery, seed_photos
from scenes.recording import moved_view, webcam_view

TILES = 25
SIZE = (1920, 1080)
ENROLL_PHOTOS = 10           # photos of each student enrol (spread); the tiles show the others
CAMERA_OFF = {6: "initials", 13: "name", 22: "avatar"}


class SceneError(Exception):
    """The photos cannot make the lecture; str() names the folder."""


def render_frames(data: Path, detector, n_frames: int, seed: int = 0,
                  same_sitters: bool = False) -> tuple[list[np.ndarray], list]:
    """`n_frames` galleries: same names, layout and camera-off tiles; other webcam views each frame, or
    (same_sitters) the first frame's views each moved a few pixels, rescaled by up to 2% and given fresh
    sensor noise, as one webcam's frames a few seconds apart. Returns the frames and the true tile
    boxes (the same in every frame)."""
    photos = seed_photos(data)
    names = sorted(photos)
    enrolled = {n: set(spread(p, ENROLL_PHOTOS)) for n, p in photos.items()}
    probes = {n: [x for x in p if x not in enrolled[n]] for n, p in photos.items()}
    rng = np.random.default_rng(seed)

    def view(name: str) -> np.ndarray:
        for _ in range(20):
            v = webcam_view(load_photo(probes[name][int(rng.integers(len(probes[name])))]), detector, rng)
            if v is not None:
                return v
        raise SceneError(f"{data / 'seed-faces' / name}: no probe photo with a detectable face")

    labels = [names[i % len(names)] if i < len(names) else f"{names[i % len(names)]} {i // len(names) + 1}"
              for i in range(TILES)]
    avatars = {i: load_photo(probes[names[i % len(names)]][0]) for i in CAMERA_OFF}
    live = [i for i in range(TILES) if i not in CAMERA_OFF]
    first = {i: view(names[i % len(names)]) for i in live} if same_sitters else {}

    frames, boxes = [], []
    for f in range(n_frames):
        if not same_sitters:
            faces = {i: view(names[i % len(names)]) for i in live}
        else:
            faces = first if f == 0 else {i: moved_view(v, rng) for i, v in first.items()}
        specs = [TileSpec(labels[i], avatars[i] if i in CAMERA_OFF else faces[i],
                          CAMERA_OFF.get(i, "none"), speaking=(i == f % len(names)))
                 for i in range(TILES)]
        frame, boxes = render_gallery(specs, size=SIZE, theme="zoom", seed=seed + f)
        frames.append(frame)
    return frames, boxes


def live(frame: np.ndarray, boxes: list, rng: np.random.Generator, sigma: float = 1.5) -> np.ndarray:
    """The frame with fresh sensor noise over every live tile (camera-off tiles and the window around
    them are drawn by the app, the same pixels each time): no two cycles see the same video."""
    out = frame.copy()
    for i, (x, y, w, h) in enumerate(boxes):
        if i in CAMERA_OFF:
            continue
        tile = out[y:y + h, x:x + w].astype(np.int16) + np.round(rng.normal(0, sigma, (h, w, 3))).astype(np.int16)
        out[y:y + h, x:x + w] = np.clip(tile, 0, 255)
    return out
