"""The tile finder's shared tuning values (bot/tiles.py and the modules it cuts with), each with its
reason. Each module's own values are in the frozen dataclass beside its code: SegmentTuning (tiles),
GapsTuning, GridTuning, TexturedTuning, GaplessTuning, StripTuning, SpeakerTuning, SelfViewTuning,
OverhangTuning, BackdropTuning, LayoutTuning."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TileTuning:
    work_w: int = 960  # working copy about this wide: the frame is pooled by an integer factor
    bg_tol: int = 5  # max channel distance (0-255) to the background colour that still counts as
    # background: Zoom's camera-off tile (34) against its window (26) is 8
    loose_tol: int = 10  # luma distance to the background in a compressed recording (JPEG/H.264 ringing)
    gap_fill: float = 0.97  # a gap row / column is at least this fraction background
    weak_gap: float = 0.8  # ... and a broken one, trusted only where it cuts a stack into tiles
    aspect: tuple[float, float] = (1.0, 2.3)  # tile width / height (16:9 mostly; Meet's sidebar tiles are squarer)
    size_tol: float = 0.12  # relative size difference still "the same tile size" (a speaker border adds ~6%)
    max_depth: int = 8  # XY-cut's nesting: window, gallery, rows, tiles, and a few cuts inside them
    speaker: float = 3.0  # a lone tile this many times the strip's tile area is the speaker (or a share)
    dark: int = 60  # max channel value of a dark gap in a photo of a screen (no flat colour there)
    dark_line: float = 0.75  # a gap line of that lattice is at least this fraction dark


TUNING = TileTuning()
