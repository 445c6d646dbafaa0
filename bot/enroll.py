"""Photo folders -> faces -> embeddings -> store. Photos themselves are never stored."""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .config import FaceSettings
from .decide import gate
from .display import hidden_characters
from .embed import Embedder
from .errors import RollcallError
from .faces import FaceDetector, find_faces
from .roster import slug
from .sources import IMAGE_SUFFIXES
from .types import Student


class EnrollError(RollcallError, ValueError):
    """PHOTOS_DIR is missing or holds no student folder; str() names it."""


@dataclass
class StudentEnrollment:
    name: str
    student_id: str
    photos: int = 0
    usable: int = 0
    skipped: Counter = field(default_factory=Counter)
    vectors: list[np.ndarray] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    qualities: list[float] = field(default_factory=list)
    thumbs: list[bytes] = field(default_factory=list)
    verifier_vectors: list[np.ndarray] = field(default_factory=list)  # one a usable photo, with a verifier


def mean_similarity(vectors: list[np.ndarray]) -> float | None:
    """Mean cosine between every two of a student's enrolled vectors; None for fewer than 3.

    Photos of one sitting (same room, clothes, light) are near copies of each other: a student enrolled
    from them is recognised in that look only. On seed-faces, 40 photos of one selfie sitting give
    0.60 where a student's whole folder gives 0.30 (see models/README.md, "Enrollment photos")."""
    if len(vectors) < 3:
        return None
    v = np.stack(vectors)
    sims = v @ v.T
    n = len(v)
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))


def student_folders(photos_dir: Path) -> list[Path]:
    photos_dir = Path(photos_dir)
    if not photos_dir.is_dir():
        raise EnrollError(f"{photos_dir}: not a folder of student photo folders")
    folders = sorted(p for p in photos_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise EnrollError(f"{photos_dir}: no student folders (expected PHOTOS_DIR/<Student Name>/*.jpg)")
    return folders


def match_folder(folder_name: str, roster: list[Student]) -> Student | None:
    """The roster student a folder is named after (student_id, exact name or alias, case-insensitive)."""
    key = folder_name.strip().casefold().replace("_", " ")
    for s in roster:
        if key in {s.student_id.casefold(), s.name.casefold(), *(a.casefold() for a in s.aliases)}:
            return s
    return None


def embed_photo(path: Path, detector: FaceDetector, embedder: Embedder, faces_cfg: FaceSettings,
                verifier=None):
    """(vector, quality, thumbnail JPEG, verifier vector or None) of the one face in a photo, or the
    reason it is unusable. `verifier`: bot.verify.Verifier, whose vector of the face is enrolled too."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError:
        return "unreadable"
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        return "unreadable"
    faces = find_faces(detector, img)
    if not faces:
        return "no face"
    # a second face at least half as large makes the photo ambiguous (group photo)
    if len(faces) > 1 and faces[1].box[2] >= 0.5 * faces[0].box[2]:
        return "several faces"
    face = faces[0]
    why = gate(face, faces_cfg)
    if why:
        return {"small": "face too small", "cut": "face cut off", "blur": "too blurred"}[why]
    vec = embedder.embed(face.aligned[None])[0]
    ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(face.aligned, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    vvec = verifier.describe(img, face, enrol=True) if verifier is not None else None
    return vec, float(face.score), jpg.tobytes(), vvec


def spread(paths: list, k: int | None) -> list:
    """k of the items spread evenly from first to last (all of them when k is None or >= their number).

    Photos in name order are mostly in the order they were taken: the first k of them can all be one
    sitting, and a student enrolled on one sitting is recognised in that look only (see models/README.md,
    "Enrollment photos")."""
    if k is None or k >= len(paths):
        return list(paths)
    return [paths[i] for i in np.round(np.linspace(0, len(paths) - 1, k)).astype(int)]


def photos_of(folder: Path, max_photos: int | None = None) -> list[Path]:
    """A student's photos in name order; with `max_photos`, that many spread over the folder. Only
    regular files: a FIFO or a device named `p.jpg` would block or never end the read."""
    return spread(sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), max_photos)


def enroll_folder(folder: Path, student: Student, detector: FaceDetector, embedder: Embedder,
                  faces_cfg: FaceSettings, tick: Callable[[], None] = lambda: None,
                  max_photos: int | None = None, verifier=None) -> StudentEnrollment:
    result = StudentEnrollment(name=student.name, student_id=student.student_id)
    for path in photos_of(folder, max_photos):
        result.photos += 1
        out = embed_photo(path, detector, embedder, faces_cfg, verifier)
        tick()
        if isinstance(out, str):
            result.skipped[out] += 1
            continue
        vec, quality, thumb, vvec = out
        result.usable += 1
        result.vectors.append(vec)
        if vvec is not None:
            result.verifier_vectors.append(vvec)
        result.hashes.append(hashlib.sha256(path.read_bytes()).hexdigest())
        result.qualities.append(quality)
        result.thumbs.append(thumb)
    return result


def plan(photos_dir: Path, roster: list[Student] | None) -> list[tuple[Path, Student]]:
    """Which folder enrolls which student; without a roster, students come from the folder names."""
    pairs = []
    for folder in student_folders(photos_dir):
        if roster:
            s = match_folder(folder.name, roster)
            if s is None:
                raise EnrollError(f"{folder}: folder matches no roster student (name, id or alias)")
        else:
            name = folder.name.replace("_", " ").strip()
            hidden = hidden_characters(name)
            if hidden:
                raise EnrollError(f"{folder}: the folder name holds control characters ({', '.join(hidden)}); "
                                  "rename it to the student's name")
            try:
                s = Student(student_id=slug(name), name=name)
            except ValueError:
                raise EnrollError(f"{folder}: no student id can be made from this folder name; name the folder "
                                  "after the student, or give --roster with the student's id") from None
        pairs.append((folder, s))
    return pairs


