"""Remake demo/lecture.mp4: the synthetic lecture of the end-to-end test, rendered from the class photos.

    python demo/make_demo.py [--data ../shared/data]
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scenes.recording import make_recording  # noqa: E402

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    rec = make_recording(args.data, ROOT / "demo" / "lecture.mp4")
    print(f"wrote {rec.path}: {rec.frames} captures every {rec.every_s:g} s; tile '{rec.impostor_tile}' shows "
          f"{rec.impostor_face} in captures {rec.swap[0]}-{rec.swap[1] - 1}")
