"""`rollcall inspect`: one frame's observations as the JSON of DESIGN.md and as an annotated image."""
from __future__ import annotations

import cv2
import numpy as np

from .layout import FrameLayout
from .types import Observation, VerdictKind as V

COLOURS = {  # BGR
    V.VERIFIED: (80, 200, 80), V.MISMATCH: (40, 40, 230), V.UNKNOWN_FACE: (0, 140, 255),
    V.UNLABELED: (200, 200, 0), V.CAMERA_OFF: (150, 150, 150), V.NO_FACE: (180, 120, 60),
    V.MULTIPLE_FACES: (200, 0, 200), V.UNJUDGED: (0, 220, 220),
}


def inspect_json(image: str, frame: np.ndarray, obs: list[Observation], ms: dict,
                 layout: FrameLayout | None = None) -> dict:
    """layout: what the frame was read as; an uncertain one ("unknown") has no tiles judged."""
    h, w = frame.shape[:2]
    layout = layout or FrameLayout("none")
    return {"image": image, "size": [w, h], "layout": str(layout), "layout_uncertain": layout.uncertain,
            "tiles": [{
        "box": list(o.box), "display_name": o.display_name, "student_id": o.student_id,
        "camera_off": o.camera_off, "faces": o.faces, "face_box": list(o.face_box) if o.face_box else None,
        "label_box": list(o.label_box) if o.label_box else None,
        "face_px": o.face_px, "verdict": o.verdict.verdict, "similarity": o.verdict.similarity,
        "identified_as": o.verdict.identified_as} for o in obs],
        "ms": {k: ms.get(k) for k in ("segment", "names", "detect", "embed", "decide")}}


def annotate(frame: np.ndarray, obs: list[Observation], layout: FrameLayout | None = None) -> np.ndarray:
    """Tiles outlined in their verdict's colour, label and face boxes, a label with name and verdict,
    and what the frame was read as (top left)."""
    img = frame.copy()
    if layout is not None:
        text = f"layout: {layout}" + (" (not judged)" if layout.uncertain else "")
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)
        cv2.rectangle(img, (0, 0), (tw + 12, th + 14), (40, 40, 40), -1)
        cv2.putText(img, text, (6, th + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    for o in obs:
        colour = COLOURS.get(o.verdict.verdict, (255, 255, 255))
        x, y, w, h = o.box
        cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), colour, 3)
        if o.label_box:
            lx, ly, lw, lh = o.label_box
            cv2.rectangle(img, (lx, ly), (lx + lw, ly + lh), (255, 255, 255), 1)
        if o.face_box:
            fx, fy, fw, fh = o.face_box
            cv2.rectangle(img, (fx, fy), (fx + fw, fy + fh), colour, 2)
        sim = "" if o.verdict.similarity is None else f" {o.verdict.similarity:.2f}"
        label = f"{o.tile_index}: {o.display_name or '?'} -> {o.verdict.verdict}{sim}"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(img, (x, y), (x + tw + 8, y + th + 10), colour, -1)
        cv2.putText(img, label, (x + 4, y + th + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return img
