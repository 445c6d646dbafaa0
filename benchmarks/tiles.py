"""Tile stage speed: `python -m benchmarks.tiles [--repeat 15] [--json]`.

The tile finder (bot.tiles) on rendered galleries of the class photos, per layout: a Zoom 5x5 and a
Google Meet 7x7 at 1920x1080 and a Teams 2020 3x3 over its strip at 2560x1440 (scenes/layouts.py). For
each, the median ms of a fresh cut (`segment`: a layout change) and of a capture on a standing layout
(`LayoutMemory`, what a steady capture costs), and the tiles found against those drawn. Its results over
time: benchmarks/HISTORY.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from bot.config import TileSettings
from bot.tiles import LayoutMemory, segment
from scenes.gallery import make_specs, render_gallery, seed_photos
from scenes.layouts import teams_2020_gallery

ROOT = Path(__file__).resolve().parent.parent


def _frames(data: Path) -> dict[str, tuple[np.ndarray, int]]:
    photos = seed_photos(data)
    zoom, zt = render_gallery(make_specs(photos, 25, seed=1), (1920, 1080), "zoom", seed=1)
    meet, mt = render_gallery(make_specs(photos, 49, seed=2), (1920, 1080), "meet", seed=2)
    teams = teams_2020_gallery(photos, size=(2560, 1440), grid=(3, 3), extra=4, bubbles=6, off=2, seed=3)
    return {"zoom 5x5 1920x1080": (zoom, len(zt)), "meet 7x7 1920x1080": (meet, len(mt)),
            "teams 3x3 + strip 2560x1440": (teams.image, len(teams.tiles))}


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return round(float(np.median(times)), 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    data = Path(os.environ.get("ROLLCALL_DATA", ROOT.parent / "shared" / "data"))
    settings = TileSettings()
    out = {}
    for name, (frame, drawn) in _frames(data).items():
        memory = LayoutMemory()
        found = len(memory.segment(frame, settings))
        out[name] = {"drawn": drawn, "found": found,
                     "fresh_ms": _median_ms(lambda: segment(frame, settings), args.repeat),
                     "standing_ms": _median_ms(lambda: memory.segment(frame, settings), args.repeat)}
    if args.json:
        print(json.dumps(out))
    else:
        for name, r in out.items():
            print(f"{name:30s} tiles {r['found']:3d} of {r['drawn']:3d}   fresh {r['fresh_ms']:7.1f} ms   "
                  f"standing layout {r['standing_ms']:6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
