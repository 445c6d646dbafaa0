"""A synthetic lecture recording rendered from real class photos, with a known impersonation.

Five students on camera plus one camera-off tile; each student keeps one photo for a few captures
(a person on video changes little between two captures) and moves to another now and then. From
capture `swap[0]` to `swap[1]` the tile labelled `impostor_tile` shows `impostor_face`'s face instead.
`ENROLL_PHOTOS` photos of each student, spread over the folder as `rollcall enroll --max-photos` picks
them, are for enrollment; the recording shows only the others, never an enrolled photo.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bot.enroll import spread

from .gallery import TileSpec, load_photo, render_gallery, seed_photos

ENROLL_PHOTOS = 40


@dataclass
class Recording:
    path: Path
    frames: int
    every_s: float
    impostor_tile: str        # display name whose tile is taken over
    impostor_face: str        # whose face appears there
    swap: tuple[int, int]     # captures [start, end) of the impersonation
    names: list[str]


def enrollment_folder(data_dir: Path, out: Path, per_student: int = ENROLL_PHOTOS) -> Path:
    """out/<Student Name>/ with `per_student` seed photos of each student, spread over the folder as
    `enroll --max-photos` picks them (links, no copies)."""
    for name, paths in seed_photos(data_dir).items():
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        for p in spread(paths, per_student):
            target = d / p.name
            if not target.exists():
                try:
                    target.symlink_to(p.resolve())
                except OSError:
                    shutil.copyfile(p, target)
    return out


def webcam_view(photo: np.ndarray, detector, rng: np.random.Generator) -> np.ndarray | None:
    """A 16:9 crop of the photo framed like a webcam: the whole face in view, ideally 22-35% of the
    width, never padded (padding leaves streaks no camera makes); a tight photo gives a closer view."""
    from bot.faces import find_faces
    faces = find_faces(detector, photo)
    if not faces:
        return None
    x, y, w, h = faces[0].box
    H, W = photo.shape[:2]
    cw = min(w / rng.uniform(0.22, 0.35), W, H * 16 / 9)
    ch = cw * 9 / 16
    if cw < w * 1.2 or ch < h * 1.1:
        return None  # the photo is too tight around the face to look like a webcam frame
    cx = x + w / 2 + rng.uniform(-0.15, 0.15) * cw
    cy = y + h / 2 + rng.uniform(-0.05, 0.1) * ch
    x0 = int(np.clip(cx - cw / 2, 0, W - cw))
    y0 = int(np.clip(cy - ch / 2, 0, H - ch))
    return photo[y0:y0 + int(ch), x0:x0 + int(cw)]


def moved_view(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A webcam's view a few seconds on: moved up to 4 px, rescaled up to 2%, fresh sensor noise."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 0, rng.uniform(0.98, 1.02))
    m[:, 2] += rng.uniform(-4, 4, 2)
    out = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    return np.clip(out + rng.normal(0, 2, out.shape), 0, 255).astype(np.uint8)


def make_recording(data_dir: Path, out: Path, frames: int = 14, every_s: float = 2.0,
                   size: tuple[int, int] = (1280, 720), theme: str = "zoom", seed: int = 7,
                   impostor_tile: str = "Mareta Aliana", impostor_face: str = "Siti Zubaidah",
                   swap: tuple[int, int] = (5, 10), hold: int = 5,
                   labels: dict[str, str] | None = None) -> Recording:
    """Write an mp4 (one frame per capture at 1/every_s fps) and return what it shows; `labels` gives
    a student's tile another display name than their own."""
    from bot.faces import FaceDetector
    detector = FaceDetector()
    photos = seed_photos(data_dir)
    names = sorted(photos)
    rng = np.random.default_rng(seed)
    enrolled = {n: set(spread(p, ENROLL_PHOTOS)) for n, p in photos.items()}
    probes = {n: [x for x in p if x not in enrolled[n]] for n, p in photos.items()}
    current: dict[str, np.ndarray] = {}

    def pick(name: str, index: int | None = None) -> np.ndarray:
        while True:
            i = int(rng.integers(len(probes[name]))) if index is None else index
            view = webcam_view(load_photo(probes[name][i]), detector, rng)
            if view is not None:
                return view
            index = None

    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 1.0 / every_s, size)
    if not writer.isOpened():
        raise RuntimeError(f"{out}: cannot open a video writer")
    intruder = pick(impostor_face, len(probes[impostor_face]) - 1)
    for f in range(frames):
        for n in names:
            if f % hold == 0 or n not in current:
                current[n] = pick(n)
        specs = []
        for n in names:
            face = intruder if (n == impostor_tile and swap[0] <= f < swap[1]) else current[n]
            specs.append(TileSpec((labels or {}).get(n, n), face, "none",
                                  speaking=(f % len(names) == names.index(n))))
        specs.append(TileSpec("Dosen Pengampu", None, "initials"))
        frame, _ = render_gallery(specs, size=size, theme=theme, seed=seed + f)
        writer.write(frame)
    writer.release()
    return Recording(out, frames, every_s, impostor_tile, impostor_face, swap, names + ["Dosen Pengampu"])
