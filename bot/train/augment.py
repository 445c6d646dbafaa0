"""Meeting-video conditions drawn onto aligned training faces (the student sees these; the teacher's
vector stays that of the clean face)."""
from __future__ import annotations

import cv2
import numpy as np

from ..faces import INNER_FACE


def augment(batch: np.ndarray, size: int, rng: np.random.Generator, jitter: float = 0.0) -> np.ndarray:
    """Meeting-video conditions on aligned 112x112 RGB uint8 faces -> float32 (size x size) in [0, 255].

    Shrink to a 20-70 px face and back, codec artefacts, motion/defocus blur, exposure and white
    balance, sensor noise, occlusion, flips: what a gallery tile does to a face. And another colour of
    hijab, clothes and background around the face (`_recolour_surround`). With `jitter` (a share of
    the faces) the alignment itself is moved a little (`_misalign`).
    """
    out = np.empty((len(batch), size, size, 3), np.float32)
    for i, img in enumerate(batch):
        im = img
        if jitter and rng.random() < jitter:
            im = _misalign(im, rng)
        if rng.random() < 0.5:
            im = im[:, ::-1]
        if rng.random() < 0.5:
            im = _recolour_surround(im, rng)
        if rng.random() < 0.15:
            im = _cut_off(im, rng)
        if rng.random() < 0.6:  # the face spans ~70 of the 112 px: a 20-70 px face is 32-112 px here
            s = int(rng.integers(32, 100))
            im = cv2.resize(np.ascontiguousarray(im), (s, s), interpolation=cv2.INTER_AREA)
            im = cv2.resize(im, (112, 112), interpolation=cv2.INTER_LINEAR)
        r = rng.random()
        if r < 0.15:
            k = int(rng.choice([3, 5, 7]))
            kern = np.zeros((k, k), np.float32)
            kern[k // 2] = 1.0 / k
            m = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
            im = cv2.filter2D(np.ascontiguousarray(im), -1, cv2.warpAffine(kern, m, (k, k)))
        elif r < 0.3:
            im = cv2.GaussianBlur(np.ascontiguousarray(im), (0, 0), float(rng.uniform(0.5, 1.8)))
        f = np.ascontiguousarray(im).astype(np.float32)
        if rng.random() < 0.8:  # exposure, contrast, white balance, gamma
            f = f * rng.uniform(0.5, 1.3) + rng.uniform(-30, 30)
            f = f * rng.uniform(0.85, 1.15, size=3)
            f = 255.0 * (np.clip(f, 0, 255) / 255.0) ** rng.uniform(0.7, 1.5)
        if rng.random() < 0.3:
            f = f + rng.normal(0, rng.uniform(2, 10), f.shape)
        if rng.random() < 0.15:  # a hand, a mug or a microphone over part of the face
            h, w = int(rng.integers(20, 55)), int(rng.integers(20, 60))
            y, x = int(rng.integers(40, 112 - h + 1)), int(rng.integers(0, 112 - w + 1))
            f[y:y + h, x:x + w] = rng.uniform(40, 230, size=3)
        if rng.random() < 0.12:
            f = _glasses(f, rng)
        f = np.clip(f, 0, 255).astype(np.uint8)
        if rng.random() < 0.5:  # video codec / JPEG blocks
            ok, enc = cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 75))])
            f = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)
        if size != 112:
            f = cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA)
        out[i] = f
    return out


def _misalign(im: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The aligned face moved as landmark noise moves it: shifted ~1.5 px, scaled by up to 4%, turned by
    ~3 degrees. On a meeting tile BlazeFace's landmarks wander from capture to capture (the short- and
    full-range models part by 0.07 eye distances at the median, ~2.5 px on the template), and the
    model's vector moves with them (see models/README.md, "Alignment jitter"). The teacher's vector stays
    that of the face as aligned."""
    m = cv2.getRotationMatrix2D((56.0, 56.0), float(np.clip(rng.normal(0, 3), -8, 8)), float(rng.uniform(0.96, 1.04)))
    m[:, 2] += np.clip(rng.normal(0, 1.5, 2), -4, 4)
    return cv2.warpAffine(np.ascontiguousarray(im), m, (112, 112), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def _inner_face_mask() -> np.ndarray:
    """1 over the template's brows-to-chin, cheek-to-cheek ellipse, 0 around it, a soft edge between."""
    cx, cy, rx, ry = INNER_FACE
    yy, xx = np.mgrid[0:112, 0:112].astype(np.float32)
    inside = (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1).astype(np.float32)
    return cv2.GaussianBlur(inside, (0, 0), 3)[..., None]


_INNER_FACE = _inner_face_mask()


def _recolour_surround(im: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hue, saturation and brightness changed outside the inner face. Our students are mostly in hijab,
    which the aligned crop holds as much of as the face: a student in a pink hijab one day must not
    look like the classmate who usually wears pink (measured on seed-faces: Mareta Aliana and Novia
    Evianti, both often in pink, were the model's most confused pair, and a pink-hijab photo of
    Mareta matched Novia in the demo). The teacher's vector is of the unchanged face."""
    hsv = cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(20, 160)) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.3, 1.6), 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * rng.uniform(0.6, 1.3), 0, 255)
    other = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    return (im * _INNER_FACE + other * (1 - _INNER_FACE)).astype(np.uint8)


def _cut_off(im: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The face running off the tile's edge as alignment renders it: beyond a line across the top (the
    forehead, most often) or one side, every row or column repeats the last one inside (the aligner's
    replicated border). Cut as far as the brows or a third of the width: faces.in_view 0.72-0.98."""
    out = np.ascontiguousarray(im).copy()
    side = rng.random()
    if side < 0.6:
        k = int(rng.integers(24, 47))
        out[:k] = out[k]
    else:
        k = int(rng.integers(28, 45))
        if side < 0.8:
            out[:, :k] = out[:, k:k + 1]
        else:
            out[:, 112 - k:] = out[:, 111 - k:112 - k]
    return out


# Eye centres of the ArcFace 112x112 template (bot/faces.py aligns onto it), where glasses sit.
_EYES = ((38.29, 51.70), (73.53, 51.50))


def _glasses(f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Spectacle frames (and sometimes tinted lenses) drawn over the template's eyes."""
    img = np.ascontiguousarray(f)
    colour = tuple(float(c) for c in rng.uniform(0, 90, size=3))
    rx, ry = int(rng.integers(12, 17)), int(rng.integers(8, 12))
    thick = int(rng.integers(1, 4))
    dy = float(rng.uniform(-3, 3))
    centres = [(int(round(x)), int(round(y + dy))) for x, y in _EYES]
    if rng.random() < 0.3:
        tint = img.copy()
        for c in centres:
            cv2.ellipse(tint, c, (rx, ry), 0, 0, 360, colour, -1)
        img = cv2.addWeighted(img, 0.45, tint, 0.55, 0)
    for c in centres:
        cv2.ellipse(img, c, (rx, ry), 0, 0, 360, colour, thick)
    cv2.line(img, (centres[0][0] + rx, centres[0][1]), (centres[1][0] - rx, centres[1][1]), colour, thick)
    return img
