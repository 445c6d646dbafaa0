"""Label memory safety: `python -m benchmarks.label_memory [--size 1920x1080] [--galleries 8] [--json]`.

bot.label_memory.LabelMemory lets a tile keep its last reading while its label looks the same, and sends it
to the recogniser otherwise. This measures both sides on rendered galleries of 25 tiles (Zoom and Meet
themes, `--galleries` seeds each, the class photos as webcam video):

    renamed labels kept   every label renamed (another student's name; a suffix given or stripped,
                          "Siti Zubaidah" <-> "Siti Zubaidah 2"; a suffix's digit changed), over the
                          sitter moved a few pixels with fresh noise, counted where the recogniser reads
                          the new label otherwise than the old: how many old readings the memory kept
                          (each one a tile judged under a name it no longer shows; must be 0)
    same labels kept      the same labels over the moved video: how many readings the memory kept
                          (the rest cost a recogniser read each)

Prints both counts per theme and in all; --json: one object. Its results over time: benchmarks/HISTORY.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np


RENAMES = {
    "other": lambda i, specs: specs[(i + 1) % len(specs)].name,
    "suffix": lambda i, specs: specs[i].name + " 2" if specs[i].name[-1].isalpha() else specs[i].name[:-2],
    "digit": lambda i, specs: (specs[i].name[:-1] + str(int(specs[i].name[-1]) % 5 + 1)
                               if specs[i].name[-1].isdigit() else specs[i].name + " 3"),
}


def _renamed(specs: list, rename) -> list:
    return [dataclasses.replace(s, name=rename(i, specs)) for i, s in enumerate(specs)] if rename else specs


def _tiles(frame: np.ndarray, boxes: list) -> list[np.ndarray]:
    return [frame[y:y + h, x:x + w] for x, y, w, h in boxes]


def run(data: Path, size: tuple[int, int], galleries: int, say=lambda line: None) -> dict:
    from bot.config import TileSettings
    from bot.label_memory import LabelMemory
    from bot.ocr import NameReader
    from bot.tiles import segment
    from scenes.gallery import make_specs, render_gallery, seed_photos
    from scenes.recording import moved_view

    reader = NameReader()
    photos = seed_photos(data)
    out = {}
    for theme in ("zoom", "meet"):
        kept_bad = bad = kept_same = same = 0
        by_kind = {k: 0 for k in RENAMES}
        for seed in range(galleries):
            specs = make_specs(photos, 25, {6: "initials", 13: "name"}, seed % 8, seed=seed)
            frame, _ = render_gallery(specs, size, theme=theme, seed=seed)
            boxes = [t.box for t in segment(frame, TileSettings())]
            if len(boxes) != 25:
                say(f"{theme} seed {seed}: {len(boxes)} tiles found, skipped")
                continue
            reader.clear_cache()
            where = [None] * 25
            texts = reader.read_tiles(_tiles(frame, boxes), where)
            memory = LabelMemory()
            for box, crop, text, at in zip(boxes, _tiles(frame, boxes), texts, where):
                memory.remember(box, crop, text, at)
            rng = np.random.default_rng(seed)
            moved = [dataclasses.replace(s, face=moved_view(s.face, rng)) if s.camera_off == "none" else s
                     for s in specs]
            for kind, rename in [("same", None), *RENAMES.items()]:
                shown = _renamed(moved, rename)
                now = _tiles(render_gallery(shown, size, theme=theme, seed=seed)[0], boxes)
                # what the recogniser reads of the new label, on the unmoved video
                still = render_gallery(_renamed(specs, rename), size, theme=theme, seed=seed)[0]
                reads = reader.read_tiles(_tiles(still, boxes)) if rename else texts
                for i, (s0, s1) in enumerate(zip(specs, shown)):
                    if s0.camera_off != "none":
                        continue
                    probe = LabelMemory()
                    probe._seen = dict(memory._seen)  # every check against the first reading
                    kept = probe.recall(boxes[i], now[i]) is not None
                    if rename is None:
                        same += 1
                        kept_same += kept
                    elif s1.name != s0.name and reads[i] != texts[i]:
                        bad += 1
                        kept_bad += kept
                        by_kind[kind] += kept
        out[theme] = {"renamed": bad, "renamed_kept": kept_bad, "renamed_kept_by_kind": by_kind,
                      "same": same, "same_kept": kept_same}
        say(f"{theme}: renamed labels kept {kept_bad} of {bad}; same labels kept {kept_same} of {same}")
    out["all"] = {k: sum(out[t][k] for t in ("zoom", "meet")) for k in ("renamed", "renamed_kept", "same", "same_kept")}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.label_memory", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1920x1080", help="gallery size WxH (default 1920x1080)")
    ap.add_argument("--galleries", type=int, default=8, help="rendered galleries per theme (default 8)")
    ap.add_argument("--data", help="data folder with seed-faces/ (default $ROLLCALL_DATA or ../shared/data)")
    ap.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = ap.parse_args(argv)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        ap.error(f"--size: expected WxH such as 1920x1080, got {args.size!r}")
    if args.galleries < 1:
        ap.error("--galleries must be >= 1")
    from benchmarks.cycle import BenchError, find_data

    try:
        data = find_data(args.data)
    except BenchError as e:
        print(f"benchmarks.label_memory: error: {e}", file=sys.stderr)
        return 1
    r = run(data, (w, h), args.galleries, say=(lambda line: None) if args.json else print)
    a = r["all"]
    print(json.dumps(r) if args.json else f"all: renamed labels kept {a['renamed_kept']} of {a['renamed']}; "
          f"same labels kept {a['same_kept']} of {a['same']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
