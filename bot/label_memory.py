"""When a tile's name label may keep its last reading without the recogniser (`LabelMemory`), and
why that is safe: a renamed label must never keep the old name (`python -m benchmarks.label_memory`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from .config import NameSettings
from .label_finder import stroke_mask, tophat_side
from .places import Phases, place


@dataclass(frozen=True)
class LabelTuning:
    """LabelMemory's tuning values, each with its reason (figures: benchmarks/HISTORY.md, LabelMemory;
    `python -m benchmarks.label_memory`)."""
    max_age: int = NameSettings.reread_every  # captures a reading stands before it is read anyway (names.reread_every)
    band_from: float = 0.6      # the band compared for stillness: the tile's bottom, from this far down
    still: int = 24             # grey levels a pixel of the band may move and the band count as still
    edge: int = 3               # pixels along the tile's edges never part of a label (speaker border, neighbour)
    min_line_w: int = 8         # px: a label crop narrower than this is not compared, only read
    min_line_h: int = 4         # px: a crop or text line lower than this holds no text to compare
    min_cols: int = 4           # stroke columns a text line needs to be compared
    stroke_row: int = 2         # stroke pixels that make a row part of the text line
    line_ext: float = 1.5       # line heights right of the text where a suffix is: 1.0 holds only its digit's start
    light: int = 160            # grey above which a pixel is light: text, a box's light edge, bright video
    ground_share: float = 0.1   # least share of the text's width that is dark ground, else nothing dark to trust
    ground_pct: int = 90        # the percentile of the ground that must stay dark...
    ground_max: int = 140       # ...at most this grey: on bright video a changed glyph can hide
    box_dark: int = 130         # grey at most just left of a box's right edge: a sharp step, as a drawn box's is
    box_run: int = 3            # columns light from a box's right edge on
    lifted: int = 140           # grey over which a pixel where the old text had its dark ground is something light...
    rise: int = 40              # ...when it rose by more than this (a glyph's faint edge rises +3 to +9)...
    lifted_px: int = 2          # ...at more than this many pixels
    # (u = 255 - grey) the same text over another dark box changes u by 0.55-1.8: nearly white in one
    # crop (u under the first) stays under the second in the other, light (u under the third) under the fourth
    same_u: tuple[int, int, int, int] = (30, 60, 60, 125)
    suffix_px: int = 4          # stroke pixels right of the text that may come or go: a changed suffix made 8 or more


LABEL_TUNING = LabelTuning()


class _Reading(NamedTuple):
    """One tile's last reading, and what tells whether its label is still the same."""
    band: np.ndarray            # the bottom band, grey (int16)
    line: tuple | None          # the label's place (LabelMemory._line), None: the band alone decides
    gray: np.ndarray | None     # that place, grey (int16)
    dark: np.ndarray | None     # its pixels the text is drawn on (LabelMemory._dark)
    strokes: np.ndarray | None  # its light strokes right of the text (where a suffix would be)
    beside: np.ndarray | None   # columns of that part the label's box does not reach (LabelMemory._beside)
    text: str
    age: int                    # captures since it was read


class LabelMemory:
    """Skips OCR for a tile whose name label looks as it did at the same place when it was read.

    Two checks; either lets the last reading stand:
    - the tile's bottom band, grey, is still (no pixel moved by more than 24): a still picture, a
      camera-off tile. (A mask of its bright pixels compared by overlap would let a renamed label
      pass over a bright video: the video's pixels outweigh the text's.)
    - the label's own place (the crop the reader read it from, narrowed to the text's strokes) shows
      the same light text pixel by pixel, and 1.5 line heights to its right (a suffix's place) no
      text stroke came or went (`_same_text`), whatever the video behind its translucent box does;
      trusted only where the text stands on a dark ground (Zoom's box, a dark room), never over a
      bright video. Where the box's right edge shows (`_box_edge`), the text ends there, and strokes of
      the video beyond an edge that stayed put do not count as a suffix (a suffix widens the box).
    A renamed label, or one given or stripped of a suffix, over the same video or with the sitter
    moving, passes neither: none of over 1,000 renamed labels in rendered galleries keeps its old reading
    (tests/test_names.py, `python -m benchmarks.label_memory [--size WxH]`; figures in
    benchmarks/HISTORY.md, LabelMemory). A tile is read again anyway every `max_age` captures (by
    default the tuning's).
    """

    def __init__(self, max_age: int | None = None, tuning: LabelTuning = LABEL_TUNING):
        self.tuning = tuning if max_age is None else dataclasses.replace(tuning, max_age=max_age)
        self.max_age = self.tuning.max_age
        self._seen: dict[tuple, _Reading] = {}
        self._phases = Phases(self.max_age)
        self.counts = {"still": 0, "label": 0, "read": 0}  # how each recall went, for tests and tuning

    def _band(self, tile: np.ndarray) -> np.ndarray:
        # at full resolution: shrunk, a thin digit over a bright video averages away ("Mareta Aliana 5"
        # renamed "Mareta Aliana" on a Meet tile passed a 96-px band)
        band = tile[int(tile.shape[0] * self.tuning.band_from):]
        return (cv2.cvtColor(band, cv2.COLOR_BGR2GRAY) if band.ndim == 3 else band).astype(np.int16)

    def _line(self, tile: np.ndarray, crop_box: tuple | None) -> tuple | None:
        """The label's place in tile pixels: the crop the reader read it from, kept off the tile's
        edges and narrowed to the rows and columns that hold the text's strokes (the locator's line
        can take in a bright edge of the video above it), then widened line_ext line heights to the
        right; None without a crop or strokes. (x0, y0, x1, y1, where the text itself ends)"""
        if crop_box is None:
            return None
        t = self.tuning
        h, w = tile.shape[:2]
        e = t.edge
        x0, y0, x1, y1 = max(e, crop_box[0]), max(e, crop_box[1]), min(w - e, crop_box[2]), min(h - e, crop_box[3])
        if x1 - x0 < t.min_line_w or y1 - y0 < t.min_line_h:
            return None
        gray = cv2.cvtColor(tile[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
        strokes = stroke_mask(gray)
        # the longest run of stroke rows: the text line, not a bright edge above or below it
        edges = np.flatnonzero(np.diff(np.concatenate([[0], (strokes.sum(1) >= t.stroke_row).astype(np.int8), [0]])))
        if edges.size == 0:
            return None
        starts, ends = edges[::2], edges[1::2]
        lengths = ends - starts
        longest = len(lengths) - 1 - int(np.argmax(lengths[::-1]))  # of equal runs, the lowest
        r0, r1 = int(starts[longest]), int(ends[longest])
        cols = np.flatnonzero(strokes[r0:r1].any(0))
        if r1 - r0 < t.min_line_h or cols.size < t.min_cols:
            return None
        if r0 >= 1 and r1 < gray.shape[0]:
            # the text ends where its box does: beyond lies the video, whose bright detail the stroke
            # filter takes for text. Counted as text, that moving detail fails the recall of one benchmark
            # label over a light wall in 21 of 30 captures
            edge = _box_edge(gray[r0 - 1, cols[0]:], gray[r1, cols[0]:], t)
            if edge is not None:
                cols = cols[cols < cols[0] + edge]
                if cols.size < t.min_cols:
                    return None
        end = x0 + int(cols[-1]) + 1
        return x0 + int(cols[0]), y0 + r0, min(w - e, end + int(round(t.line_ext * (r1 - r0)))), y0 + r1, end

    def _dark(self, gray: np.ndarray, line: tuple) -> np.ndarray:
        """Pixels of the text's own width away from its strokes (beyond a pixel of anything light):
        what it is drawn on. (Right of the text lies the video, whatever it shows.)"""
        dark = ~cv2.dilate((gray > self.tuning.light).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        dark[:, line[4] - line[0]:] = False
        return dark

    def _beside(self, tile: np.ndarray, line: tuple) -> np.ndarray | None:
        """Per column right of the text (where a suffix would be): whether it lies beyond the right edge
        of the label's box (`_box_edge`), in the video. None: no box edge found, or the tile's edge."""
        x0, y0, x1, y1, end = line
        if y0 < 1 or y1 >= tile.shape[0]:
            return None
        rows = cv2.cvtColor(np.ascontiguousarray(tile[[y0 - 1, y1], x0:x1]), cv2.COLOR_BGR2GRAY)
        edge = _box_edge(rows[0], rows[1], self.tuning)
        return None if edge is None else np.arange(end - x0, x1 - x0) >= edge

    @staticmethod
    def _gray(tile: np.ndarray, r: tuple) -> np.ndarray:
        x0, y0, x1, y1 = r
        part = tile[y0:y1, x0:x1]
        return (cv2.cvtColor(part, cv2.COLOR_BGR2GRAY) if part.ndim == 3 else part).astype(np.int16)

    def recall(self, box, tile: np.ndarray) -> str | None:
        r = self._seen.get(place(box))
        if r is None or r.age >= self.max_age:
            return None
        now = self._band(tile)
        if now.shape == r.band.shape and int(np.abs(now - r.band).max()) <= self.tuning.still:
            self.counts["still"] += 1
        elif r.line is not None and r.line[3] <= tile.shape[0] and r.line[2] <= tile.shape[1] \
                and _same_text(r.gray, self._gray(tile, r.line[:4]), r.dark, r.strokes,
                               None if r.beside is None else _both(r.beside, self._beside(tile, r.line)),
                               self.tuning):
            self.counts["label"] += 1
        else:
            self.counts["read"] += 1
            return None
        self._seen[place(box)] = r._replace(age=r.age + 1)
        return r.text

    def remember(self, box, tile: np.ndarray, text: str, crop_box: tuple | None = None) -> None:
        """The reading of a tile; `crop_box` is where in it the reader found the label
        (`NameReader.read_tiles(where=...)`): without it only a still band keeps the reading."""
        line = self._line(tile, crop_box) if text and tile.ndim == 3 else None
        gray = dark = strokes = beside = None
        if line is not None:
            gray = self._gray(tile, line[:4])
            dark = self._dark(gray, line)
            # the text must stand on something dark (Zoom's box, a dark room): on a bright video a
            # changed glyph can hide in it, and only the recogniser can tell
            t = self.tuning
            if (dark[:, :line[4] - line[0]].mean() < t.ground_share
                    or np.percentile(gray[dark], t.ground_pct) > t.ground_max):
                line = gray = dark = None
            else:
                strokes = _suffix_strokes(gray, line[4] - line[0])
                beside = self._beside(tile, line)
        # a tile's first reading waits its phase (dealt in reading order) beyond max_age: the forced
        # re-reads of a gallery read at once spread evenly over a period, at most one a capture for
        # max_age tiles, instead of all falling on one (25 labels, ~0.4 s)
        key = place(box)
        age = -self._phases.deal() if key not in self._seen else 0
        self._seen[key] = _Reading(self._band(tile), line, gray, dark, strokes, beside, text, age)


def _suffix_strokes(gray: np.ndarray, text_w: int) -> np.ndarray:
    """Light strokes of a label's place (grey) right of where its text ends (text_w columns in)."""
    # the top-hat reaches less than a kernel's width: from that far left of the suffix's place on,
    # the strokes there are those of the whole place (not the text's, on every recall)
    start = max(0, text_w - tophat_side(gray.shape[0]))
    return stroke_mask(np.clip(gray[:, start:], 0, 255).astype(np.uint8))[:, text_w - start:]


def _box_edge(above: np.ndarray, below: np.ndarray, t: LabelTuning = LABEL_TUNING) -> int | None:
    """Where a label box's right edge is, from the grey rows just above and below its text (from the
    text's first column on): both dark up to it, both light from it on for t.box_run columns, the step
    sharp in both (dark to light in one column), as a drawn box's edge is. None: no such edge (Meet's
    text straight over the video: cutting its text at a light patch kept 18 of 1,093 renamed labels)."""
    light = (above > t.light) & (below > t.light)
    edge = int(np.argmax(light))
    if edge == 0 or not light[edge:edge + t.box_run].all() or (above[:edge] > t.light).any() \
            or (below[:edge] > t.light).any() or above[edge - 1] > t.box_dark or below[edge - 1] > t.box_dark:
        return None
    return edge


def _both(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """The box's edge where it was: beyond it, the video. A moved edge (a box that grew or shrank with
    its text) or no edge: None, every column counts."""
    return a if a is not None and b is not None and np.array_equal(a, b) else None


def _same_text(old: np.ndarray, new: np.ndarray, dark: np.ndarray, old_strokes: np.ndarray,
               video: np.ndarray | None = None, t: LabelTuning = LABEL_TUNING) -> bool:
    """Whether two grey crops of a label's place show the same light text, whatever lies behind it.

    With u = 255 - pixel, a text pixel of coverage a over a background b reads u = (1 - a)(255 - b): the
    same text over another background changes u by the factor (255 - b') / (255 - b), within 0.55-1.8
    for a translucent dark box (b up to ~115). So where either crop is nearly white (u < 30) the other
    stays under 60, and where either is light (u < 60) the other stays under 125. A stroke of another
    text, or a label box that grew or shrank over brighter or darker video, breaks one of the two
    (on the benchmark gallery, different labels, "Siti Zubaidah" against "Siti Zubaidah 3" included,
    broke them at 2 or more pixels; the same label over other video at none). A label over
    bright video with no box (Meet) is not trusted to this check at all (`LabelMemory.remember`), and
    nothing light may appear where the old text had its dark ground (`dark`).
    Right of where the text ends (`old_strokes`, from `_suffix_strokes`) the place can hold the video
    beside the box, whose bright pixels move from capture to capture: there a suffix is looked for as
    text strokes that came or went (a pixel of movement and t.suffix_px pixels allowed), not as pixels
    that changed (compared pixel by pixel, that part alone sends most failed checks of unchanged labels
    on the benchmark's moving webcams to the recogniser, and lets a suffix's digit change pass where
    the video behind it is bright; see benchmarks/HISTORY.md, LabelMemory). Columns beyond the label
    box's right edge when that edge stayed where it was (`video`, from LabelMemory._beside) are the
    video's alone: a suffix would have widened the box over them, so their strokes (a hijab's folds over
    a light wall) are not counted."""
    # something light where the old text had only its dark ground; a glyph's faint edge (135-142
    # grey, beside no pixel over 160) that the ground behind it lifts over 140 is not: a stroke drawn
    # there rises far more (a 2560x1440 label's "4" failed every recall on its edge, +3 to +9 grey)
    if int(((new > t.lifted) & (new - old > t.rise))[dark].sum()) > t.lifted_px:
        return False
    text_w = old.shape[1] - old_strokes.shape[1]
    uo, un = 255 - old[:, :text_w], 255 - new[:, :text_w]
    lo, hi = np.minimum(uo, un), np.maximum(uo, un)
    white, white_other, light, light_other = t.same_u
    if (((lo < white) & (hi > white_other)) | ((lo < light) & (hi > light_other))).any():
        return False
    now = _suffix_strokes(new, text_w)
    near = np.ones((3, 3), np.uint8)
    came = now & ~cv2.dilate(old_strokes.astype(np.uint8), near).astype(bool)
    went = old_strokes & ~cv2.dilate(now.astype(np.uint8), near).astype(bool)
    if video is not None:
        came[:, video] = went[:, video] = False
    return int(came.sum()) <= t.suffix_px and int(went.sum()) <= t.suffix_px
