"""Name strip -> text (OCR) -> roster student (DESIGN.md "Name resolution").

`normalise` and `resolve` are pure functions over strings; `NameReader` wraps rapidocr's PP-OCR
detection and recognition models (they ship inside the rapidocr wheel; nothing is downloaded).
When a tile's last reading may stand without reading it again: bot/label_memory.py.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
from rapidfuzz import fuzz

from bot.config import NameSettings
from bot.errors import RollcallError
from bot.roster import fold
from bot.types import NameMatch, Student

# --- normalise ------------------------------------------------------------------------------------

# Words that Zoom / Meet put in parentheses after a display name; pronouns are listed so that
# "(she/her)", "(they/them)" and "(Host, me)" all disappear but "(James)" (a nickname) stays.
_DECORATION_WORDS = {
    "host", "co-host", "cohost", "co host", "me", "guest", "you", "presenter", "presenting",
    "she", "her", "hers", "he", "him", "his", "they", "them", "theirs", "ze", "zir", "xe", "xem",
    "any", "all", "pronouns",
    # Korean Zoom: 호스트 (host), 공동 호스트 (co-host), 나 (me), 게스트 (guest)
    "호스트", "공동 호스트", "공동호스트", "나", "게스트",
}
_PAREN = re.compile(r"[(\[]([^()\[\]]*)[)\]]")
_ELLIPSIS = re.compile(r"(\.{2,}|…|\u22ef)\s*$")


def _is_decoration(inner: str) -> bool:
    parts = [p.strip() for p in re.split(r"[,/|]", inner.casefold()) if p.strip()]
    return bool(parts) and all(p in _DECORATION_WORDS for p in parts)


def _fix_ocr_token(tok: str) -> str:
    # A 0 in a word that is otherwise letters is an O misread ("N0via"); a token with any other
    # digit is a student number and stays as it is.
    digits = {ch for ch in tok if ch.isdigit()}
    if digits == {"0"} and sum(ch.isalpha() for ch in tok) >= 2:
        tok = tok.replace("0", "o")
    return tok


def normalise(text: str) -> str:
    """The comparison key of a display name (DESIGN.md "Name resolution" step 1).

    `  Rizky_Putri-Pratiwi (Host, me) 🎤` -> `rizky putri pratiwi`.
    """
    if not text:
        return ""
    # OCR reads a capital I in sans-serif fonts as a bar; in a name a bar is never meant.
    text = text.replace("|", "I").replace("¦", "I")
    text = _PAREN.sub(lambda m: " " if _is_decoration(m.group(1)) else m.group(0), text)
    text = fold(text)
    # Everything that is not a letter or digit (mic glyphs, emoji, brackets, OCR specks, the
    # separators _ - .) becomes a space; an apostrophe inside a word is dropped so that
    # "O'Hare" and "OHare" meet.
    text = re.sub(r"(?<=\w)['’`](?=\w)", "", text)
    text = re.sub(r"[\W_]+", " ", text)
    tokens = [_fix_ocr_token(t) for t in text.split()]
    return " ".join(tokens)


# --- resolve --------------------------------------------------------------------------------------

_ID_CONFUSIONS = str.maketrans({"o": "0", "i": "1", "l": "1", "|": "1"})
_STUDENT_NUMBER = re.compile(r"^(?=.*\d.*\d.*\d.*\d)[a-z0-9]+$")  # a token with >= 4 digits
_MIN_PREFIX = 5  # a cut-off name must keep at least this many characters to be matched on


def _id_key(text: str) -> str:
    # OCR confuses O/0 and I/l/1 inside IDs; compare IDs through the same confusion classes.
    return re.sub(r"[^0-9a-z]", "", fold(text).translate(_ID_CONFUSIONS))


def _find_id(text: str, roster: list[Student]) -> Student | None:
    """A roster student_id written as a token of the label (`G1A021044_Rizky ...`)."""
    raw = fold(text).translate(_ID_CONFUSIONS)
    hits = []
    for s in roster:
        key = _id_key(s.student_id)
        if len(key) < 4:
            continue  # too short to tell from ordinary text
        # The ID must start at a token boundary and not run on into more digits; what follows may
        # be a letter because OCR often drops the `_` between ID and name.
        if re.search(rf"(?<![0-9a-z]){re.escape(key)}(?![0-9])", raw):
            hits.append(s)
    return hits[0] if len(hits) == 1 else None


def _name_part(norm: str) -> str:
    """The label without student-number tokens (`20200759 yang yeji` -> `yang yeji`)."""
    return " ".join(t for t in norm.split() if not _STUDENT_NUMBER.match(t))


def _keys(s: Student) -> list[str]:
    """The student's name and aliases as compared with a label (student numbers left out too)."""
    keys = []
    for k in (normalise(s.name), *(normalise(a) for a in s.aliases)):
        k = _name_part(k) or k
        if k and k not in keys:
            keys.append(k)
    return keys


def resolve(text: str, roster: list[Student], settings: NameSettings) -> NameMatch:
    """A tile label -> the roster student it names, or student_id None (`unlabeled`)."""
    if not text or not roster:
        return NameMatch(text=text or "", student_id=None, method="none")
    hit = _find_id(text, roster)
    if hit is not None:
        return NameMatch(text=text, student_id=hit.student_id, method="id", score=100.0)

    truncated = bool(_ELLIPSIS.search(text.strip()))
    norm = _name_part(normalise(text))
    if not norm:
        return NameMatch(text=text, student_id=None, method="none")

    exact = {s.student_id for s in roster if norm in _keys(s)}
    if len(exact) == 1:
        return NameMatch(text=text, student_id=exact.pop(), method="exact", score=100.0)
    if len(exact) > 1:  # two students share this name or alias: guessing would accuse the wrong one
        return NameMatch(text=text, student_id=None, method="none", score=100.0)

    def ranked(label: str, keys_of) -> tuple[float, str | None, float]:
        scores = []
        for s in roster:
            best = 0.0
            for key in keys_of(s):
                score = fuzz.token_set_ratio(label, key)
                # A cut-off label ("Rizky Putri Pr...") is compared with the same length of the name.
                if (truncated or len(label) >= 8) and _MIN_PREFIX <= len(label) < len(key):
                    score = max(score, fuzz.ratio(label, key[:len(label)]))
                best = max(best, score)
            scores.append((best, s.student_id))
        scores.sort(reverse=True)
        return scores[0][0], scores[0][1], scores[1][0] if len(scores) > 1 else 0.0

    best, sid, second = ranked(norm, _keys)
    if best >= settings.fuzzy_min and best - second >= settings.fuzzy_lead:
        return NameMatch(text=text, student_id=sid, method="fuzzy", score=float(best))
    if len(norm.replace(" ", "")) >= _LOOKALIKE_MIN:
        # small text misread letter for look-alike letter ("Novio Evionti", "Moreto Aliona 3" at 7x7
        # tiles): compared once more with those letters made one, every student's name too, so two
        # names that differ only there tie and neither is taken
        lbest, lsid, lsecond = ranked(_lookalike(norm), lambda s: [_lookalike(k) for k in _keys(s)])
        if lbest >= settings.fuzzy_min and lbest - lsecond >= settings.fuzzy_lead:
            return NameMatch(text=text, student_id=lsid, method="lookalike", score=float(lbest))
    return NameMatch(text=text, student_id=None, method="none", score=float(best))


# letters the recogniser takes for one another on small text, each group made one letter
_LOOKALIKES = str.maketrans({"a": "o", "e": "c", "i": "l", "1": "l", "j": "l"})
_LOOKALIKE_MIN = 8  # letters a label needs before it is matched through look-alikes


def _lookalike(norm: str) -> str:
    return norm.replace("rn", "m").translate(_LOOKALIKES)


# --- reading labels (OCR) -------------------------------------------------------------------------

class OcrError(RollcallError, RuntimeError):
    """The OCR models cannot be loaded; str() names what is missing."""


_DET_MODEL = "PP-OCRv6_det_small.onnx"
_REC_MODEL = "PP-OCRv6_rec_small.onnx"
_REC_H = 48          # the recogniser's input height
_DET_BAND_H = 64     # a label band is scaled to about this height before detection (64 beat 48-96)
_MAX_UPSCALE = 4.0   # labels on small tiles are ~6 px high; beyond 4x detection gains nothing
_MIN_REC_SCORE = 0.5
_REC_BATCH = 1
_FAST_MIN_SCORE = 0.9  # a read below this of a label found without the detector, in a doubtful place
                       # (see _Found), is read again after the detector
_TOPHAT_FRAC = 0.15    # top-hat kernel, as a fraction of the region height: wider than any stroke
_STROKE_CONTRAST = 60  # a text stroke is this much (0-255) brighter than what surrounds it...
_STROKE_MIN = 130      # ...and at least this bright
_MAX_COMPONENTS = 400  # more is video texture; the first (leftmost) are enough to find a label
# Margin (line heights) around a line found by image processing, which is tight on the strokes:
# with 0.3 above and below the text fills ~60% of the recogniser's 48 px, as in its training crops
# (0.15: one name fewer right and 20% more width to run; 0.5: three fewer).
_FAST_PAD = (0.3, 0.3)
_LABEL_MAX_X = 0.2     # a bottom label starts in this left fraction of the tile (Zoom, Meet)
_LABEL_MAX_H = 0.5     # and its line is at most this fraction of the bottom band high


def _rapidocr_models() -> Path:
    import rapidocr
    return Path(rapidocr.__file__).resolve().parent / "models"


class _StageConfig(dict):
    """Settings of one rapidocr stage (the keys of its config.yaml section): the stages read them
    both as cfg["key"] and as cfg.key."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _ort_session(model: Path, threads: int):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads if threads > 0 else min(2, os.cpu_count() or 1)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])


def _place(crop: np.ndarray, img: np.ndarray) -> tuple[int, int, int, int] | None:
    """Where a crop cut from `img` by slicing lies in it (x0, y0, x1, y1); None for a copy."""
    if crop.base is None or crop.ndim != img.ndim or crop.strides != img.strides:
        return None
    off = crop.__array_interface__["data"][0] - img.__array_interface__["data"][0]
    if off < 0:
        return None
    y, x = divmod(off, img.strides[0])
    x, rest = divmod(x, img.strides[1])
    if rest or y + crop.shape[0] > img.shape[0] or x + crop.shape[1] > img.shape[1]:
        return None
    return int(x), int(y), int(x + crop.shape[1]), int(y + crop.shape[0])


def _region_key(img: np.ndarray) -> bytes:
    """Cache key of a whole strip or tile: its exact pixels. A coarser key (a downsampled hash) lets
    two labels one letter apart share a key: a wrong name is worse than OCR."""
    return hashlib.blake2b(np.ascontiguousarray(img).tobytes() + repr(img.shape).encode(),
                           digest_size=16).digest()


def _label_key(crop: np.ndarray) -> bytes:
    """Cache key of a cut-out label (native pixels): the text's own mask, snapped to its extent.

    Live video behind a semi-transparent label box changes the tile every cycle, and the detector's
    box jitters by a pixel or two; the rendered text does not. The mask is exact (no downsampling),
    so two different names never share a key.
    """
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    _, mask = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if mask.mean() > 0.5:  # dark text on a light label: make the text the foreground
        mask = 1 - mask
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if cols.size:
        mask = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    packed = np.packbits(np.ascontiguousarray(mask, dtype=np.uint8))
    return b"L" + hashlib.blake2b(packed.tobytes() + repr(mask.shape).encode(), digest_size=16).digest()


def has_text(img: np.ndarray) -> bool:
    """Cheap check (~0.1 ms) that a region holds anything text-like: enough small, sharp strokes.

    A plain camera-off background or an empty strip fails it; it errs on the side of True.
    """
    if img is None or img.size == 0 or min(img.shape[:2]) < 6:
        return False
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    grad = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    strong = grad > 48
    return strong.mean() > 0.004 and strong.sum() >= 12


class _Line:
    """One text line found by the detector, in the coordinates of the region it was found in."""

    def __init__(self, x0: float, y0: float, x1: float, y1: float, score: float):
        self.x0, self.y0, self.x1, self.y1, self.score = x0, y0, x1, y1, score

    @property
    def h(self) -> float:
        return self.y1 - self.y0

    @property
    def w(self) -> float:
        return self.x1 - self.x0


class NameReader:
    """Reads display-name labels with rapidocr's PP-OCR models (loaded once, ~2-5 s).

    `read(strips)` reads the label in each name strip (the tile stage's `Tile.name_box` crops);
    `read_tiles(tiles)` reads whole tile crops: the bottom band first (Zoom and Meet put the label at
    the bottom left), then the centre (a camera-off tile shows the name big in the middle).
    Labels are located by image processing (light text lines, ~1 ms); the DB detector runs only
    for a doubtful find. Results are cached by region pixels, so an unchanged label costs no OCR in
    the next cycle.
    """

    def __init__(self, cache_size: int = 1024, threads: int = 0):
        """`threads`: onnxruntime intra-op threads per model; 0 = up to 2 (the pipeline's other
        stages and the meeting client need the rest of the CPU)."""
        models = _rapidocr_models()
        det, rec = models / _DET_MODEL, models / _REC_MODEL
        for p in (det, rec):
            if not p.is_file():
                raise OcrError(f"{p}: OCR model missing from the rapidocr wheel (reinstall rapidocr)")
        try:
            from rapidocr import EngineType, LangRec
            from rapidocr.ch_ppocr_det import TextDetector
            from rapidocr.ch_ppocr_rec import TextRecInput, TextRecognizer
        except ImportError as e:
            raise OcrError(f"rapidocr: not importable ({e}); pip install rapidocr onnxruntime") from None
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)  # rapidocr's logger says "info" per model
        # rapidocr's public stage classes, each given our own onnxruntime session (its "session"
        # setting): its sessions spin-wait their worker threads, which on a laptop that also runs the
        # meeting client makes a recogniser call 2-3x slower. The whole RapidOCR pipeline is not used:
        # it sizes and pads for documents, labels need our own sizing.
        engine = EngineType.ONNXRUNTIME
        # We size regions ourselves; "max" with a large limit only rounds to multiples of 32.
        self._det = TextDetector(_StageConfig(engine_type=engine, session=_ort_session(det, threads),
                                              limit_type="max", limit_side_len=4096, box_thresh=0.4))
        # The recogniser pads every crop of a batch to the widest one and to at least its shape's
        # width (320 px by default); on a CPU a batch saves nothing, so each label runs at its own
        # width: a short name costs a third of a padded one.
        self._rec = TextRecognizer(_StageConfig(engine_type=engine, session=_ort_session(rec, threads),
                                                lang_type=LangRec.CH, font_path=None, rec_keys_path=None,
                                                rec_batch_num=_REC_BATCH, rec_img_shape=[3, _REC_H, _REC_H]))
        self._rec_input = TextRecInput
        self._cache: OrderedDict[bytes, str] = OrderedDict()
        self._cache_size = cache_size
        # fast / slow: labels read after plain image processing found them / after the detector did
        self.stats = {"hits": 0, "misses": 0, "label_hits": 0, "fast": 0, "slow": 0}

    # public ---------------------------------------------------------------------------------------

    def read(self, strips: list[np.ndarray]) -> list[str]:
        """The label text of each name strip (BGR); "" where there is none."""
        return self._read_many(strips, _bright_label_in_strip, self._label_in_strip)

    def read_tiles(self, tiles: list[np.ndarray], where: list | None = None) -> list[str]:
        """The display name of each whole tile crop (BGR); "" where none is shown. With `where` (a
        list as long as `tiles`), each entry becomes the box (x0, y0, x1, y1, tile pixels) of the crop
        the name was read from, None where it was not read from the tile just now (a cache hit)."""
        return self._read_many(tiles, _bright_label_in_tile, self._label_in_tile, where)

    def clear_cache(self) -> None:
        """Forget every label read so far (the next read of each tile is a cold one)."""
        self._cache.clear()

    def read_tile(self, tile: np.ndarray) -> str:
        return self.read_tiles([tile])[0]

    # internals ------------------------------------------------------------------------------------

    def _read_many(self, imgs, fast, slow, where: list | None = None) -> list[str]:
        """Two passes. First the label is located by plain image processing (`fast`, ~1 ms) and
        read; a label it cannot find, or reads without confidence, goes through the DB text
        detector (`slow`, 40-90 ms per region) and is read again."""
        out: list[str | None] = [None] * len(imgs)
        keys: list[bytes | None] = [None] * len(imgs)
        todo = []
        for i, img in enumerate(imgs):
            if img is None or img.size == 0:
                out[i] = ""
                continue
            keys[i] = _region_key(img) + fast.__name__.encode()
            if keys[i] in self._cache:
                self._cache.move_to_end(keys[i])
                self.stats["hits"] += 1
                out[i] = self._cache[keys[i]]
                continue
            self.stats["misses"] += 1
            todo.append(i)
        retry, fast_keys = [], {}
        found = {i: fast(imgs[i]) for i in todo}
        located = [(i, None if f is None else f[0]) for i, f in found.items()]
        for i, text, score, ckey in self._read_labels(located, _FAST_MIN_SCORE):
            if text is None or (ckey in self._cache and not text):
                # Nothing bright and text-shaped anywhere a label goes: Zoom and Meet always draw
                # the name light on dark, so there is no name (a video tile of a face, a blank
                # camera-off tile); the detector would only read texture. Or a label already found
                # unreadable both ways.
                out[i] = ""
            elif (score >= _FAST_MIN_SCORE and text) or found[i][1]:
                out[i] = text if text and score >= _MIN_REC_SCORE else ""
                self.stats["fast"] += 1
                if where is not None and out[i]:
                    where[i] = _place(found[i][0], imgs[i])
            else:
                retry.append(i)
                fast_keys[i] = ckey
        self.stats["slow"] += len(retry)
        slow_crops = {i: slow(imgs[i]) for i in retry}
        for i, text, score, _ in self._read_labels(list(slow_crops.items()), _MIN_REC_SCORE):
            out[i] = text if text and score >= _MIN_REC_SCORE else ""
            if where is not None and out[i] and slow_crops[i] is not None:
                where[i] = _place(slow_crops[i], imgs[i])
            if not out[i] and fast_keys[i] is not None:
                # unreadable both ways (Hangul, text too small): the same label next cycle is
                # not worth the detector again
                self._remember(fast_keys[i], "")
        for key, text in zip(keys, out):
            if key is not None:
                self._remember(key, text or "")
        return [t or "" for t in out]

    def _read_labels(self, located, min_score: float):
        """(index, label crop or None) -> (index, text or None, score, the crop's label key), the
        recogniser run once for all crops that the label cache does not already know; reads of
        `min_score` are cached."""
        results, crops, owners = [], [], []
        for i, crop in located:
            if crop is None:
                results.append((i, None, 0.0, None))
                continue
            # Live video behind a label changes the region's key every cycle, but the label itself
            # stays put: a second key on the cut-out label skips the recogniser (most of the cost).
            ckey = _label_key(crop)
            if ckey in self._cache:
                self._cache.move_to_end(ckey)
                self.stats["label_hits"] += 1
                results.append((i, self._cache[ckey], 1.0, ckey))
                continue
            crops.append(_for_recogniser(crop))
            owners.append((i, ckey))
        for (i, ckey), (text, score) in zip(owners, self._recognise(crops)):
            results.append((i, text, score, ckey))
            if text and score >= min_score:
                self._remember(ckey, text)
        return results

    def _remember(self, key: bytes, text: str) -> None:
        self._cache[key] = text
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _recognise(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        if not crops:
            return []
        res = self._rec(self._rec_input(img=crops))
        return [(_clean_read(txt), float(score)) for txt, score in zip(res.txts, res.scores)]

    def _detect(self, region: np.ndarray, scale: float) -> list[_Line]:
        """Text lines in `region`, in region coordinates."""
        h, w = region.shape[:2]
        sh, sw = max(32, round(h * scale / 32) * 32), max(32, round(w * scale / 32) * 32)
        img = cv2.resize(region, (sw, sh), interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        res = self._det(img)
        if res.boxes is None:
            return []
        fx, fy = w / sw, h / sh
        lines = []
        for quad, score in zip(res.boxes, res.scores):
            xs, ys = quad[:, 0] * fx, quad[:, 1] * fy
            lines.append(_Line(xs.min(), ys.min(), xs.max(), ys.max(), float(score)))
        return lines

    def _label_in_band(self, band: np.ndarray) -> np.ndarray | None:
        """The bottom-left text line of a band (a name strip or a tile's bottom part)."""
        if not has_text(band):
            return None
        base = float(np.clip(_DET_BAND_H / band.shape[0], 1.0, _MAX_UPSCALE))
        # Labels on small tiles of a low-resolution capture are ~6 px high: if nothing is found
        # at the usual scale, look again closer.
        for scale in (base, _MAX_UPSCALE) if base < _MAX_UPSCALE / 1.5 else (base,):
            line = _pick_label(self._detect(band, scale), band.shape, prefer="bottom")
            if line is not None:
                return _crop_line(band, line)
        return None

    def _label_in_strip(self, strip: np.ndarray) -> np.ndarray | None:
        return self._label_in_band(strip)

    def _label_in_tile(self, tile: np.ndarray) -> np.ndarray | None:
        th = tile.shape[0]
        # Bottom band: Zoom and Meet both draw the label at the bottom left of the video.
        crop = self._label_in_band(tile[int(th * 0.65):])
        if crop is not None:
            return crop
        # Centre: a camera-off tile shows only the name, large, in the middle.
        mid = tile[int(th * 0.2):int(th * 0.8)]
        if not has_text(mid):
            return None
        scale = float(np.clip(2 * _DET_BAND_H / mid.shape[0], 0.5, _MAX_UPSCALE))
        line = _pick_label(self._detect(mid, scale), mid.shape, prefer="centre")
        return None if line is None else _crop_line(mid, line)


# --- locating a label without the detector ---------------------------------------------------------

def tophat_side(height: int) -> int:
    return max(5, round(height * _TOPHAT_FRAC) | 1)


def stroke_mask(gray: np.ndarray) -> np.ndarray:
    """Pixels of light strokes thinner than a white top-hat of the region's height (text, not walls)."""
    k = tophat_side(gray.shape[0])
    hat = cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    return (hat > _STROKE_CONTRAST) & (gray > _STROKE_MIN)


def _bright_lines(region: np.ndarray) -> list[_Line]:
    """Lines of light text in a region (Zoom: white on a dark translucent box; Meet: white with a
    shadow; a camera-off tile: light on a plain colour), by plain image processing (~1 ms).

    A white top-hat keeps strokes thinner than its kernel and drops what is wide and bright (a
    wall, a shirt, a window); its components are grouped left to right into lines of characters.
    """
    if region is None or region.size == 0 or min(region.shape[:2]) < 8:
        return []
    gray = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY) if region.ndim == 3 else region
    h, w = gray.shape
    mask = stroke_mask(gray).astype(np.uint8)
    n, _, st, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    # a character: at least 2 px high, not taller than most of the region, not a long edge
    keep = (st[1:, 3] >= 2) & (st[1:, 3] <= 0.6 * h) & (st[1:, 4] >= 3) & (st[1:, 2] <= 0.5 * w)
    comps = st[1:][keep]
    comps = comps[np.argsort(comps[:, 0], kind="stable")][:_MAX_COMPONENTS]
    boxes = comps.tolist()
    lines: list[list[int]] = []  # x0, y0, x1, y1, count
    for x, y, cw, ch, _a in boxes:
        for ln in lines:
            lh = ln[3] - ln[1]
            overlap = min(ln[3], y + ch) - max(ln[1], y)
            # the same line: overlapping rows, similar height, the gap under about a character
            if (overlap > 0.4 * min(lh, ch) and x - ln[2] < 0.9 * max(lh, ch)
                    and ch < 2.5 * lh and lh < 2.5 * ch):
                ln[:] = [min(ln[0], x), min(ln[1], y), max(ln[2], x + cw), max(ln[3], y + ch), ln[4] + 1]
                break
        else:
            lines.append([x, y, x + cw, y + ch, 1])
    # a name: at least two characters, a few pixels high, wider than high
    names = [ln for ln in lines
             if ln[4] >= 2 and ln[3] - ln[1] >= 4 and ln[2] - ln[0] >= 1.5 * (ln[3] - ln[1])]
    # a lone character a word's gap right of a name, as tall as its letters: a suffix ("Putri 3"), which
    # the grouping above leaves out when the space reaches 0.9 letter heights
    for x0, y0, x1, y1, c in lines:
        if c != 1:
            continue
        for ln in names:
            lh = ln[3] - ln[1]
            if (0 <= x0 - ln[2] < 1.5 * lh and 0.6 * lh <= y1 - y0 <= 1.3 * lh
                    and min(ln[3], y1) - max(ln[1], y0) > 0.6 * (y1 - y0)):
                ln[2], ln[1], ln[3] = x1, min(ln[1], y0), max(ln[3], y1)
                break
    # a first letter a letter's gap left of a name, as tall as its letters, that something bright
    # joined first (a tall edge of the video beside the box took the "M" of "Mareta Aliana 4")
    for ln in names:
        lh = ln[3] - ln[1]
        for x, y, cw, ch, _a in boxes:
            if (0 <= ln[0] - (x + cw) <= max(2, 0.25 * lh) and 0.6 * lh <= ch <= 1.4 * lh
                    and min(ln[3], y + ch) - max(ln[1], y) > 0.6 * ch):
                ln[0], ln[1], ln[3] = x, min(ln[1], y), max(ln[3], y + ch)
                break
    return [_Line(float(x0), float(y0), float(x1), float(y1), 1.0) for x0, y0, x1, y1, _c in names]


# A located label: its crop, and whether it sits where a label goes. A badly read label in its
# place reads no better after the detector (it finds the same line: Hangul, tiny blurred text), so
# only a doubtful place earns the detector's second look.
_Found = tuple[np.ndarray, bool]


def _bright_label_in_band(band: np.ndarray) -> _Found | None:
    # Image processing also finds text in the video (a logo on a shirt, a poster) that the detector
    # would score low; the label is the one nearest the left edge, where both apps draw it.
    line = _pick_label(_bright_lines(band), band.shape, prefer="bottom", left_weight=1.0)
    if line is None:
        return None
    # a line against the bottom edge is a toolbar or a cut-off tile more often than a label; one as
    # tall as half the band is the label joined with something bright behind it (a spoon, a lamp),
    # which the detector cuts apart
    placed = (line.x0 <= _LABEL_MAX_X * band.shape[1] and line.y1 < band.shape[0] - 1
              and line.h <= _LABEL_MAX_H * band.shape[0])
    return _crop_line(band, line, *_FAST_PAD), placed


def _bright_label_in_strip(strip: np.ndarray) -> _Found | None:
    return _bright_label_in_band(strip)


def _bright_label_in_tile(tile: np.ndarray) -> _Found | None:
    """The label at the bottom left, else the big name in the centre of a camera-off tile."""
    th = tile.shape[0]
    found = _bright_label_in_band(tile[int(th * 0.65):])
    if found is not None:
        return found
    mid = tile[int(th * 0.2):int(th * 0.8)]
    line = _pick_label(_bright_lines(mid), mid.shape, prefer="centre")
    # the detector's own choice in the centre is the same biggest, most central line
    return None if line is None else (_crop_line(mid, line, *_FAST_PAD), True)


def _merge_line(lines: list[_Line], seed: _Line) -> _Line:
    """The seed box joined with its neighbours on the same text line (a name split in words)."""
    x0, y0, x1, y1 = seed.x0, seed.y0, seed.x1, seed.y1
    changed = True
    used = {id(seed)}
    while changed:
        changed = False
        for ln in lines:
            if id(ln) in used:
                continue
            overlap = min(y1, ln.y1) - max(y0, ln.y0)
            gap = max(ln.x0 - x1, x0 - ln.x1)
            if overlap > 0.5 * min(y1 - y0, ln.h) and gap < 1.5 * (y1 - y0):
                x0, y0, x1, y1 = min(x0, ln.x0), min(y0, ln.y0), max(x1, ln.x1), max(y1, ln.y1)
                used.add(id(ln))
                changed = True
    return _Line(x0, y0, x1, y1, seed.score)


def _pick_label(lines: list[_Line], shape, prefer: str, left_weight: float = 0.25) -> _Line | None:
    h, w = shape[:2]
    # Too small to be a label: specks, icon fragments, compression noise.
    lines = [ln for ln in lines if ln.h >= 4 and ln.w >= 4]
    if not lines:
        return None
    if prefer == "bottom":
        # The lowest line that starts in the left part; labels are left-aligned in Zoom and Meet.
        left = [ln for ln in lines if ln.x0 < 0.5 * w] or lines
        seed = max(left, key=lambda ln: ln.y1 - left_weight * ln.x0 * h / max(w, 1))
    else:
        # The biggest line nearest the centre.
        cy = h / 2
        seed = max(lines, key=lambda ln: ln.h * ln.w ** 0.5 - abs((ln.y0 + ln.y1) / 2 - cy))
    return _merge_line(lines, seed)


def _crop_line(region: np.ndarray, line: _Line, pad_y: float = 0.15, pad_x: float = 0.3) -> np.ndarray:
    """The line cut out of the region (native pixels) with a margin (in line heights)."""
    h, w = region.shape[:2]
    pad_y, pad_x = pad_y * line.h, pad_x * line.h
    x0, x1 = int(max(0, line.x0 - pad_x)), int(min(w, np.ceil(line.x1 + pad_x)))
    y0, y1 = int(max(0, line.y0 - pad_y)), int(min(h, np.ceil(line.y1 + pad_y)))
    return region[y0:y1, x0:x1]


def _for_recogniser(crop: np.ndarray) -> np.ndarray:
    """Scaled to the recogniser's input height here: cubic beats its own bilinear on small text."""
    ch, cw = crop.shape[:2]
    s = _REC_H / max(ch, 1)
    return cv2.resize(crop, (max(1, round(cw * s)), _REC_H),
                      interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)


def _clean_read(text: str) -> str:
    """Undo the recogniser's habits on labels: stray icon glyphs at the ends, doubled spaces."""
    text = " ".join(text.split())
    # A mic or video icon left of the name reads as one stray symbol or digit.
    text = re.sub(r"^(?:[^\w\s(\[]|\d(?=\s+[^\W\d]))\s*", "", text)
    text = re.sub(r"\s+[^\w\s.)\]…]$", "", text)
    # One lone character is what video texture or an icon reads as, not a display name.
    if sum(ch.isalnum() for ch in text) < 2:
        return ""
    return text.strip()
