"""An alert's evidence: the JPEG of the tile beside the enrolled faces it was compared with."""
from __future__ import annotations

import cv2
import numpy as np

from ..types import Observation, VerdictKind


def evidence_for(store, kind: str, o: Observation, threshold: float) -> bytes:
    """The alert's evidence JPEG: the tile crop labelled with the student its name claims, beside
    the enrolled faces of that student and of the one the face matched instead, where the store
    keeps enrolled faces (retention.reference_faces)."""
    v = o.verdict
    refs = [(f"enrolled: {sid}", store.reference_thumb(sid))
            for sid in dict.fromkeys(x for x in (o.student_id, v.identified_as) if x)]
    claimed = store.get_student(o.student_id) if o.student_id else None
    expected = claimed.name if claimed else (o.student_id or "no roster student")
    sim = "-" if v.similarity is None else f"{v.similarity:.2f}"
    by = f" by {v.model}" if v.model else ""
    caption = (f"{kind}{by}: tile '{o.display_name}' similarity {sim} (threshold {threshold:.2f})"
               + (f", matches {v.identified_as}" if v.identified_as and kind == VerdictKind.MISMATCH else ""))
    return evidence_image(o.crop, refs, caption, expected)


def evidence_image(tile_crop: np.ndarray, references: list[tuple[str, bytes | None]], caption: str,
                   expected: str = "") -> bytes:
    """The tile crop (labelled with the student its name claims, `expected`) beside the enrolled
    reference faces it was compared with where the store keeps them (each labelled), and a caption line
    with similarity and threshold: the JPEG an alert carries."""
    h = 240
    tile = cv2.resize(tile_crop, (max(1, round(tile_crop.shape[1] * h / tile_crop.shape[0])), h))
    if expected:
        _strip_label(tile, f"expected: {expected}")
    parts = [tile]
    for label, jpeg in references:
        ref = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) if jpeg else None
        if ref is None:
            continue
        ref = cv2.resize(ref, (h, h))
        _strip_label(ref, label)
        parts.append(ref)
    body = np.hstack([np.pad(p, ((0, 0), (0, 8), (0, 0))) for p in parts])
    bar = np.full((28, body.shape[1], 3), 24, np.uint8)
    cv2.putText(bar, caption[:110], (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    ok, jpg = cv2.imencode(".jpg", np.vstack([body, bar]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return jpg.tobytes()


def _strip_label(img: np.ndarray, text: str) -> None:
    """A dark strip along the bottom of `img` with `text` on it (in place)."""
    h, w = img.shape[:2]
    cv2.rectangle(img, (0, h - 22), (w, h), (24, 24, 24), -1)
    cv2.putText(img, text[:max(4, w * 28 // 240)], (5, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                cv2.LINE_AA)
