"""Typed results passed from one pipeline stage to the next (plain dataclasses, no behaviour beyond
a box test)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in frame pixels


def within(a: Box, b: Box) -> bool:
    """Whether box a lies inside box b."""
    return b[0] <= a[0] and b[1] <= a[1] and a[0] + a[2] <= b[0] + b[2] and a[1] + a[3] <= b[1] + b[3]


@dataclass
class Tile:
    """One participant tile found in a gallery frame (tiles.py)."""
    box: Box
    name_box: Box | None = None   # the strip holding the display-name label, in frame pixels
    camera_off: bool = False      # avatar, initials or name on a plain background: no live video
    covered: tuple[Box, ...] = ()  # floating thumbnails over it (another tile each), in frame pixels
    floating: bool = False        # a thumbnail floating over another tile (a self-view): no name read
    share: bool = False           # big and mostly flat colour: a shared screen, unless a face shows in it


@dataclass
class Student:
    student_id: str
    name: str
    aliases: tuple[str, ...] = ()
    email: str = ""


@dataclass
class NameMatch:
    """A tile label resolved against the roster (roster_match.py)."""
    text: str                      # the OCR text as read
    student_id: str | None         # None -> `unlabeled`
    method: str                    # "id", "exact", "fuzzy", "none"
    score: float = 0.0


@dataclass
class Face:
    """A detected face (faces.py). Coordinates are in the image the detector was given."""
    box: tuple[float, float, float, float]          # x, y, w, h
    score: float
    landmarks: np.ndarray                           # (6, 2): right eye, left eye, nose, mouth, right ear, left ear
    aligned: np.ndarray | None = None               # 112x112x3 uint8 RGB
    blur: float = 0.0                               # variance of the Laplacian on the aligned face
    in_view: float = 1.0                            # share of the inner face inside the image (faces.in_view)


class VerdictKind(StrEnum):
    """What the decision for a tile says (DESIGN.md "Verdicts"). Each member equals its string, the
    one the store, JSON, CSV and reports keep."""
    VERIFIED = "verified"
    MISMATCH = "mismatch"
    UNKNOWN_FACE = "unknown_face"
    UNLABELED = "unlabeled"
    CAMERA_OFF = "camera_off"
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    UNJUDGED = "unjudged"


# the kinds of an impersonation (they open an episode and its alert), and of a face judged against a student
BAD = (VerdictKind.MISMATCH, VerdictKind.UNKNOWN_FACE)
JUDGED = (VerdictKind.VERIFIED, *BAD)


@dataclass
class Verdict:
    """The decision for one tile of one capture (decide.py); a verdict given as a string is made a
    VerdictKind (ValueError for one that is none)."""
    verdict: VerdictKind
    similarity: float | None = None                 # to the expected student (or the best one if unlabeled)
    identified_as: str | None = None                # best-matching enrolled student, if any passes t_verify
    best_other: str | None = None
    best_other_similarity: float | None = None
    reason: str = ""
    model: str = ""                                 # who decided: "mobilenet", "verifier" ("" not judged)

    def __post_init__(self) -> None:
        self.verdict = VerdictKind(self.verdict)


@dataclass
class Observation:
    """Everything known about one tile in one capture: what the store keeps per tile."""
    tile_index: int
    box: Box
    display_name: str
    student_id: str | None
    camera_off: bool
    faces: int
    face_box: Box | None
    face_px: int
    blur: float | None
    verdict: Verdict
    # tracking key (stages.participant_keys): student_id, else the normalised name; a second tile
    # under the same one in a capture gets "#2"
    participant: str = ""
    label_box: Box | None = None  # where the display name was read (frame pixels), else the name strip
    crop: np.ndarray | None = field(default=None, repr=False)  # tile crop (BGR), only kept for evidence
