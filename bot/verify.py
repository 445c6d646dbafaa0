"""The strong verifier: dlib's face-recognition ResNet (128-d) over a face our detector found.

MobileNetV2 (bot/embed.py) is the cheap per-capture model; this one confirms what it cannot settle
(decide.cascade). It runs on the box and landmarks of a bot/faces.py Face: dlib's 5-point shape
predictor is fitted in a square from our landmarks (VERIFIER_TUNING), the 150x150 chip is cut from the
shape, and the ResNet describes it. The weights ship in the `face_recognition_models` wheel and dlib in
`dlib-bin` (a prebuilt wheel): nothing compiles, nothing downloads. Without them `Verifier.load` raises
VerifierError, one line naming what to install.

Vectors are dlib's as they come (not unit length); decide.VerifierGallery compares them by Euclidean
distance, as dlib was trained to be used.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .errors import RollcallError
from .faces import roll_degrees
from .types import Face

DIM = 128
CHIP_SIZE = 150
INSTALL = "pip install dlib-bin face_recognition_models"


class VerifierError(RollcallError, RuntimeError):
    """The verifier's library or weights are missing; str() says what to install."""


@dataclass(frozen=True)
class BoxFit:
    """dlib's HOG box as a function of ours: its centre moved by (dx, dy) face widths and its side
    `scale` x our box's width. The shape predictor was trained on HOG boxes; fed ours it lands the
    points a little off, and the chip (hence the vector) moves with them."""
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0


@dataclass(frozen=True)
class FrameFit:
    """The square dlib's predictor is run in, from our detector's landmarks: its centre `down` x the
    eye-to-mouth distance d below the eyes' midpoint (towards the mouth) and `across` x d across, its
    side `scale` x d. The defaults are the full-range box's medians in these terms over labelled
    training photos (models/README.md, "The verifier"). The two BlazeFace models' boxes of one face
    differ by up to ~20%; their landmarks do not, so the chip is the same whichever found the face."""
    down: float = 0.404
    across: float = 0.0
    scale: float = 2.337


@dataclass(frozen=True)
class VerifierTuning:
    """The verifier's tuning values, each with its reason (measurements: models/README.md, "The verifier")."""
    # our box as it is (a box-only Face): moved to where dlib's HOG box sits, vectors came no nearer dlib's own
    box_fit: BoxFit = BoxFit()
    frame_fit: FrameFit = FrameFit()  # the square from our landmarks: the same whichever model found the face
    chip_padding: float = 0.25      # dlib's default for its ResNet chips
    crop_reach: float = 1.5         # the crop reaches this many sides of the square from the face: room to turn it
    landmarks_min: float = 0.1      # eye-to-mouth under this share of the box's width: a box-only Face
    # dlib's jitters of an enrolled photo: ~12% fewer own faces accused, ~5x the time at enrolment only
    enrol_jitter: int = 5
    enrol_mirror: bool = False      # mirroring an enrolled photo as well gained nothing over jitter alone


VERIFIER_TUNING = VerifierTuning()


class Verifier:
    """dlib's 5-point shape predictor and face-recognition ResNet, loaded once.

    Two recipes: a run-time face (`describe`) is one plain description unless `jitter`/`mirror` say
    otherwise; an enrolled photo (`describe(..., enrol=True)`) is described by `enrol_jitter` and
    `enrol_mirror`, which cost only at enrolment (VERIFIER_TUNING's; models/README.md, "The
    verifier", has what each gained). jitter N: dlib's own, the mean of N randomly jittered copies of the
    chip (`compute_face_descriptor(chip, N)`); mirror: the chip described again mirrored, the two averaged."""

    name = "dlib_resnet"
    dim = DIM

    def __init__(self, box_fit: BoxFit = VERIFIER_TUNING.box_fit, jitter: int = 0, mirror: bool = False,
                 enrol_jitter: int | None = None, enrol_mirror: bool | None = None,
                 frame_fit: FrameFit | None = VERIFIER_TUNING.frame_fit, upright: bool = True):
        try:
            import dlib
            import face_recognition_models as frm
        except ImportError as e:
            raise VerifierError(f"verifier: {e.name or 'dlib'} is not installed ({INSTALL})") from None
        try:
            self._pose = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
            self._net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
        except RuntimeError as e:
            raise VerifierError(f"verifier: face_recognition_models' weights do not load ({e}; {INSTALL})") from None
        self._dlib = dlib
        self.box_fit = box_fit
        # the predictor's square from the landmarks (None: from the box, as before 2026-12-07's evening),
        # and the crop turned upright by the eye line's roll first
        self.frame_fit = frame_fit
        self.upright = bool(upright)
        # the run-time recipe: each face described jittered and/or mirrored too costs N or 2x the time a
        # capture (off by default)
        self.jitter = int(jitter)
        self.mirror = bool(mirror)
        self.enrol_jitter = VERIFIER_TUNING.enrol_jitter if enrol_jitter is None else int(enrol_jitter)
        self.enrol_mirror = VERIFIER_TUNING.enrol_mirror if enrol_mirror is None else bool(enrol_mirror)
        # what an enrolled verifier vector was made with (store: its kind starts "verifier:"); vectors of
        # another enrolment recipe are not mixed with these
        self.fingerprint = fingerprint(self.enrol_jitter, self.enrol_mirror, self.chip_recipe)
        self.made = 0  # faces described so far, for the benchmark and tests

    @property
    def chip_recipe(self) -> str:
        """How the chip is cut: "" from the box (the old recipe), "lm" from the landmarks, "lmu" from the
        landmarks on the face turned upright."""
        if self.frame_fit is None:
            return "up" if self.upright else ""
        return "lmu" if self.upright else "lm"

    @property
    def enrol_differs(self) -> bool:
        """Whether an enrolled photo's vector is made otherwise than a run-time face's."""
        return (self.enrol_jitter, self.enrol_mirror) != (self.jitter, self.mirror)

    @classmethod
    def load(cls, box_fit: BoxFit = VERIFIER_TUNING.box_fit) -> "Verifier":
        """The verifier; VerifierError (one line) when dlib or its weights are not installed."""
        return cls(box_fit)

    @classmethod
    def available(cls) -> bool:
        try:
            import dlib  # noqa: F401
            import face_recognition_models  # noqa: F401
        except ImportError:
            return False
        return True

    def frame(self, face: Face) -> tuple[float, float, float, float]:
        """(centre x, centre y, side, roll) of the square dlib's predictor is run in, in image pixels
        and degrees: from our detector's landmarks where it has them (frame_fit; the eyes' midpoint
        and the mouth, which both BlazeFace models place alike whatever box they draw), else from the
        box (box_fit). roll: the eye line's tilt, by which the chip's crop is turned upright first."""
        lm = None if face.landmarks is None else np.asarray(face.landmarks, np.float64).reshape(-1, 2)
        x, y, w, h = face.box
        if self.frame_fit is not None and lm is not None and len(lm) >= 4:
            eyes, mouth = (lm[0] + lm[1]) / 2, lm[3]
            down = mouth - eyes
            d = float(np.hypot(*down))
            if d > VERIFIER_TUNING.landmarks_min * max(w, 1.0):  # landmarks present (not a box-only Face)
                f = self.frame_fit
                down = down / d
                across = np.array([-down[1], down[0]])
                cx, cy = eyes + f.down * d * down + f.across * d * across
                return float(cx), float(cy), f.scale * d, roll_degrees(lm) if self.upright else 0.0
        f = self.box_fit
        return x + w / 2 + f.dx * w, y + h / 2 + f.dy * w, f.scale * w, 0.0

    def rect(self, face: Face) -> tuple[float, float, float]:
        """(centre x, centre y, side) of the square dlib's predictor is run in (frame without the roll)."""
        return self.frame(face)[:3]

    def chip(self, image_bgr: np.ndarray, face: Face) -> np.ndarray:
        """The 150x150 RGB chip dlib's ResNet describes: the shape predictor run inside `frame`'s square,
        on a crop around the face turned upright about its centre (a whole 1080p frame is never
        converted)."""
        cx, cy, side, roll = self.frame(face)
        reach = int(np.ceil(side * VERIFIER_TUNING.crop_reach))
        n = 2 * reach
        # image -> crop: turned by roll about the face's centre, which lands at the crop's centre
        turn = cv2.getRotationMatrix2D((cx, cy), roll, 1.0)
        turn[:, 2] += [reach - cx, reach - cy]
        crop = cv2.warpAffine(image_bgr, turn, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        crop = np.ascontiguousarray(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        half = side / 2
        r = self._dlib.rectangle(int(round(reach - half)), int(round(reach - half)),
                                 int(round(reach + half)), int(round(reach + half)))
        shape = self._pose(crop, r)
        return np.asarray(self._dlib.get_face_chip(crop, shape, CHIP_SIZE, VERIFIER_TUNING.chip_padding))

    def describe(self, image_bgr: np.ndarray, face: Face, enrol: bool = False) -> np.ndarray:
        """The 128-d float32 vector of one face our detector found in a BGR image; `enrol`: by the
        enrolment recipe (an enrolled photo), else the run-time one."""
        return self.describe_many([(image_bgr, face)], enrol)[0]

    def describe_many(self, items: Sequence[tuple[np.ndarray, Face]], enrol: bool = False) -> np.ndarray:
        """(N, 128) float32 for N (BGR image, face) pairs, the chips described as one batch; `enrol`: by
        the enrolment recipe."""
        if not len(items):
            return np.zeros((0, DIM), np.float32)
        chips = [self.chip(img, face) for img, face in items]
        self.made += len(chips)
        jitter, mirror = (self.enrol_jitter, self.enrol_mirror) if enrol else (self.jitter, self.mirror)
        if mirror:
            chips += [np.ascontiguousarray(c[:, ::-1]) for c in chips]
        if jitter:
            vecs = [self._net.compute_face_descriptor(c, jitter) for c in chips]
        else:
            vecs = self._net.compute_face_descriptor(chips)
        out = np.array([np.asarray(v) for v in vecs], np.float32).reshape(len(chips), DIM)
        return (out[:len(items)] + out[len(items):]) / 2 if mirror else out

    def second_look(self, image_bgr: np.ndarray, face: Face, first: np.ndarray) -> np.ndarray:
        """The face's second look: `first` (its run-time description) averaged with a description of
        its chip mirrored. Asked for only where the first look accuses or an unlabelled tile's face is a
        near tie (decide.wants_second_look): a mirrored face carries no new identity, so what it moves
        is the description's own noise."""
        chip = np.ascontiguousarray(self.chip(image_bgr, face)[:, ::-1])
        self.made += 1
        mirrored = np.asarray(self._net.compute_face_descriptor(chip), np.float32)
        return ((np.asarray(first, np.float32) + mirrored) / 2).astype(np.float32)


def fingerprint(enrol_jitter: int = 0, enrol_mirror: bool = False, chip: str = "") -> str:
    """What made an enrolled verifier vector: "verifier:dlib_resnet:5pt" for a plain description of the
    chip fitted in our box, with ":<chip>" for another way of cutting the chip (Verifier.chip_recipe:
    "lmu", the landmarks' square on the face turned upright), ":j<N>" / ":m" for the jittered / mirrored
    enrolment recipes."""
    return ("verifier:dlib_resnet:5pt" + (f":{chip}" if chip else "") + (f":j{enrol_jitter}" if enrol_jitter else "")
            + (":m" if enrol_mirror else ""))
