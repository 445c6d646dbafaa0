"""Reading display-name labels with rapidocr's PP-OCR models (`NameReader`; they ship inside the
rapidocr wheel, nothing is downloaded): a label found in the pixels (bot/label_finder.py) is read
at once, a doubtful one after the DB text detector; reads are cached by pixels.
When a tile's last reading may stand without reading it again: bot/label_memory.py."""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bot.errors import RollcallError
from bot.label_finder import (FINDER_TUNING, FinderTuning, Line, bright_label_in_strip, bright_label_in_tile,
                              crop_line, has_text, pick_label)


class OcrError(RollcallError, RuntimeError):
    """The OCR models cannot be loaded; str() names what is missing."""


_DET_MODEL = "PP-OCRv6_det_small.onnx"
_REC_MODEL = "PP-OCRv6_rec_small.onnx"
_REC_H = 48          # the recogniser's input height


@dataclass(frozen=True)
class OcrTuning:
    """NameReader's tuning values, each with its reason; where labels are looked for in pixels is the
    finder's (`finder`)."""
    finder: FinderTuning = FINDER_TUNING  # the finder's, whose band and centre the detector searches too
    cache_size: int = 1024          # reads kept by pixels (two keys a tile): some captures of a full gallery
    auto_threads: int = 2           # onnxruntime threads a model takes unless told: the meeting client needs CPU
    det_band_h: int = 64            # px a label band is scaled to about before detection (64 beat 48-96)
    max_upscale: float = 4.0        # labels on small tiles are ~6 px high; beyond 4x detection gains nothing
    closer: float = 1.5             # a band found empty is searched again at max_upscale if this much closer
    centre_bands: int = 2           # band heights a tile's centre is scaled to about: a camera-off name is big...
    centre_min_scale: float = 0.5   # ...and the least it is scaled to
    det_limit: int = 4096           # px: rapidocr's "max" side set beyond any region, which we size ourselves
    det_box_min: float = 0.4        # a text box's least score, under rapidocr's 0.5: small faint labels score low
    det_pad: tuple[float, float] = (0.15, 0.3)  # margin (line heights: above and below, beside): a DB box has one
    rec_batch: int = 1              # crops a recogniser run takes: on a CPU a batch saves nothing, pads them all
    # crops a read needs for them to be recognised side by side, a one-thread run each: one run split over
    # two threads waits for the other thread at each of the model's ~200 steps (its threads do not spin)
    side_by_side: int = 2
    min_score: float = 0.5          # a read's least score: below it the label counts as unread
    # a read below this of a label found without the detector, in a doubtful place (label_finder.Found),
    # is read again after the detector
    fast_min_score: float = 0.9
    min_alnum: int = 2              # letters and digits a read needs: one lone character is texture or an icon


OCR_TUNING = OcrTuning()


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


# the detector's pre- and post-processing as rapidocr's own config.yaml gives them for its model (its
# classes fall back to the same values when one is left out); named here so that no release of it can
# change them unseen (tests/test_names.py checks them)
_DET_MODEL_SETTINGS = dict(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5], thresh=0.3, max_candidates=1000,
                           unclip_ratio=1.6, use_dilation=True, score_mode="fast")


def _ort_session(model: Path, threads: int):
    """An onnxruntime session on the CPU with `threads` intra-op threads that do not spin-wait."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
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


class NameReader:
    """Reads display-name labels with rapidocr's PP-OCR models (loaded once, ~2-5 s).

    `read(strips)` reads the label in each name strip (the tile stage's `Tile.name_box` crops);
    `read_tiles(tiles)` reads whole tile crops: the bottom band first (Zoom and Meet put the label at
    the bottom left), then the centre (a camera-off tile shows the name big in the middle).
    Labels are located by image processing (light text lines, ~1 ms); the DB detector runs only
    for a doubtful find. Results are cached by region pixels, so an unchanged label costs no OCR in
    the next cycle.
    """

    def __init__(self, cache_size: int | None = None, threads: int = 0, tuning: OcrTuning = OCR_TUNING):
        """`threads`: onnxruntime intra-op threads per model; 0 = up to the tuning's (the pipeline's
        other stages and the meeting client need the rest of the CPU). `cache_size` overrides the
        tuning's."""
        self.tuning = t = tuning if cache_size is None else dataclasses.replace(tuning, cache_size=cache_size)
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
        threads = threads if threads > 0 else min(t.auto_threads, os.cpu_count() or 1)
        det_session, rec_session = (_ort_session(m, threads) for m in (det, rec))
        # We size regions ourselves; "max" with a large limit only rounds to multiples of 32.
        self._det = TextDetector(_StageConfig(engine_type=engine, session=det_session, limit_type="max",
                                              limit_side_len=t.det_limit, box_thresh=t.det_box_min,
                                              **_DET_MODEL_SETTINGS))
        # The recogniser pads every crop of a batch to the widest one and to at least its shape's
        # width (320 px by default); on a CPU a batch saves nothing, so each label runs at its own
        # width: a short name costs a third of a padded one.
        self._rec = TextRecognizer(_StageConfig(engine_type=engine, session=rec_session,
                                                lang_type=LangRec.CH, font_path=None, rec_keys_path=None,
                                                rec_batch_num=t.rec_batch, rec_img_shape=[3, _REC_H, _REC_H]))
        self._rec_input = TextRecInput
        # several crops (a cold capture's 25) are dealt to `threads` one-thread runs of one more session,
        # side by side (onnxruntime's runs are thread-safe); a lone crop keeps both threads of the first
        self._side = None
        if threads > 1:
            self._side = TextRecognizer(_StageConfig(self._rec.cfg, session=_ort_session(rec, 1)))
            self._pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="rollcall-ocr")
        self._threads = threads
        self._cache: OrderedDict[bytes, str] = OrderedDict()
        self._cache_size = t.cache_size
        # fast / slow: labels read after plain image processing found them / after the detector did
        self.stats = {"hits": 0, "misses": 0, "label_hits": 0, "fast": 0, "slow": 0}

    # public ---------------------------------------------------------------------------------------

    def read(self, strips: list[np.ndarray]) -> list[str]:
        """The label text of each name strip (BGR); "" where there is none."""
        return self._read_many(strips, bright_label_in_strip, self._label_in_strip)

    def read_tiles(self, tiles: list[np.ndarray], where: list | None = None) -> list[str]:
        """The display name of each whole tile crop (BGR); "" where none is shown. With `where` (a
        list as long as `tiles`), each entry becomes the box (x0, y0, x1, y1, tile pixels) of the crop
        the name was read from, None where it was not read from the tile just now (a cache hit)."""
        return self._read_many(tiles, bright_label_in_tile, self._label_in_tile, where)

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
        t = self.tuning
        found = {i: fast(imgs[i], t.finder) for i in todo}
        located = [(i, None if f is None else f[0]) for i, f in found.items()]
        for i, text, score, ckey in self._read_labels(located, t.fast_min_score):
            if text is None or (ckey in self._cache and not text):
                # Nothing bright and text-shaped anywhere a label goes: Zoom and Meet always draw
                # the name light on dark, so there is no name (a video tile of a face, a blank
                # camera-off tile); the detector would only read texture. Or a label already found
                # unreadable both ways.
                out[i] = ""
            elif (score >= t.fast_min_score and text) or found[i][1]:
                out[i] = text if text and score >= t.min_score else ""
                self.stats["fast"] += 1
                if where is not None and out[i]:
                    where[i] = _place(found[i][0], imgs[i])
            else:
                retry.append(i)
                fast_keys[i] = ckey
        self.stats["slow"] += len(retry)
        slow_crops = {i: slow(imgs[i]) for i in retry}
        for i, text, score, _ in self._read_labels(list(slow_crops.items()), t.min_score):
            out[i] = text if text and score >= t.min_score else ""
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
        """(text, score) of each crop: one run of the recogniser a crop, several side by side."""
        if not crops:
            return []
        if self._side is None or len(crops) < self.tuning.side_by_side:
            res = self._rec(self._rec_input(img=crops))
            reads = list(zip(res.txts, res.scores))
        else:
            reads = self._side_by_side(crops)
        least = self.tuning.min_alnum
        return [(_clean_read(txt, least), float(score)) for txt, score in reads]

    def _side_by_side(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """The crops dealt to the worker threads and this one by width (a run's cost grows with it),
        each share recognised on the one-thread session; the same reads as one by one."""
        shares = _deal([c.shape[1] for c in crops], self._threads)
        runs = [self._pool.submit(self._side, self._rec_input(img=[crops[i] for i in share]))
                for share in shares[1:]]
        mine = self._side(self._rec_input(img=[crops[i] for i in shares[0]]))
        reads: list = [None] * len(crops)
        for share, res in zip(shares, [mine] + [r.result() for r in runs]):
            for i, txt, score in zip(share, res.txts, res.scores):
                reads[i] = (txt, score)
        return reads

    def _detect(self, region: np.ndarray, scale: float) -> list[Line]:
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
            lines.append(Line(xs.min(), ys.min(), xs.max(), ys.max(), float(score)))
        return lines

    def _label_in_band(self, band: np.ndarray) -> np.ndarray | None:
        """The bottom-left text line of a band (a name strip or a tile's bottom part)."""
        t = self.tuning
        if not has_text(band, t.finder):
            return None
        base = float(np.clip(t.det_band_h / band.shape[0], 1.0, t.max_upscale))
        # Labels on small tiles of a low-resolution capture are ~6 px high: if nothing is found
        # at the usual scale, look again closer.
        for scale in (base, t.max_upscale) if base < t.max_upscale / t.closer else (base,):
            line = pick_label(self._detect(band, scale), band.shape, prefer="bottom", t=t.finder)
            if line is not None:
                return crop_line(band, line, *t.det_pad)
        return None

    def _label_in_strip(self, strip: np.ndarray) -> np.ndarray | None:
        return self._label_in_band(strip)

    def _label_in_tile(self, tile: np.ndarray) -> np.ndarray | None:
        t, th = self.tuning, tile.shape[0]
        # Bottom band: Zoom and Meet both draw the label at the bottom left of the video.
        crop = self._label_in_band(tile[int(th * t.finder.band_from):])
        if crop is not None:
            return crop
        # Centre: a camera-off tile shows only the name, large, in the middle.
        mid = tile[int(th * t.finder.centre[0]):int(th * t.finder.centre[1])]
        if not has_text(mid, t.finder):
            return None
        scale = float(np.clip(t.centre_bands * t.det_band_h / mid.shape[0], t.centre_min_scale, t.max_upscale))
        line = pick_label(self._detect(mid, scale), mid.shape, prefer="centre", t=t.finder)
        return None if line is None else crop_line(mid, line, *t.det_pad)


def _deal(widths: list[int], n: int) -> list[list[int]]:
    """Indices of `widths` dealt into `n` shares of about equal total width, the widest first, each to
    the lightest share so far (its runs' time grows with width; `_REC_H` px a run costs at least)."""
    shares: list[list[int]] = [[] for _ in range(n)]
    load = [0] * n
    for i in sorted(range(len(widths)), key=lambda j: -widths[j]):
        k = load.index(min(load))
        shares[k].append(i)
        load[k] += max(widths[i], _REC_H)
    return [s for s in shares if s]


def _for_recogniser(crop: np.ndarray) -> np.ndarray:
    """Scaled to the recogniser's input height here: cubic beats its own bilinear on small text."""
    ch, cw = crop.shape[:2]
    s = _REC_H / max(ch, 1)
    return cv2.resize(crop, (max(1, round(cw * s)), _REC_H),
                      interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)


def _clean_read(text: str, min_alnum: int = OCR_TUNING.min_alnum) -> str:
    """Undo the recogniser's habits on labels: stray icon glyphs at the ends, doubled spaces."""
    text = " ".join(text.split())
    # A mic or video icon left of the name reads as one stray symbol or digit.
    text = re.sub(r"^(?:[^\w\s(\[]|\d(?=\s+[^\W\d]))\s*", "", text)
    text = re.sub(r"\s+[^\w\s.)\]…]$", "", text)
    # One lone character is what video texture or an icon reads as, not a display name.
    if sum(ch.isalnum() for ch in text) < min_alnum:
        return ""
    return text.strip()
