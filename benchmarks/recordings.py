"""End-to-end recordings: `python -m benchmarks.recordings [--seeds 1-12] [--model M --thresholds T] [--json]`.

tests/test_end_to_end.py's lecture (scenes/recording.py: five students on camera, the lecturer
camera-off, the tile labelled "Mareta Aliana" showing Siti Zubaidah's face for five captures), rendered
from each seed in turn and run through the real commands: `enroll` on the 40 spread photos of each
student, `replay` with the settings (and, if given, another face model and its thresholds). A seed
passes when the session raises exactly one alert, a mismatch for that tile naming Siti. This is how a
change to the pipeline or a new face model is judged on whole recordings (README "Figures"); the test
itself runs one seed.

Prints one line per seed (PASS / FAIL and the alerts raised) and the count; --json: one object.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import tempfile
from pathlib import Path



def _seeds(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def _config(root: Path, model: str | None, thresholds: str | None) -> Path | None:
    """A settings file naming another model (and its thresholds), else None: the packaged settings."""
    if not model and not thresholds:
        return None
    import tomllib

    from bot.config import PROJECT_DIR

    text = (PROJECT_DIR / "config" / "settings.toml").read_text()
    rec = tomllib.loads(text)["recognition"]
    if model:
        text = text.replace(f'model = "{rec["model"]}"', f'model = "{Path(model).resolve()}"')
    if thresholds:
        text = text.replace(f'thresholds = "{rec["thresholds"]}"', f'thresholds = "{Path(thresholds).resolve()}"')
    path = root / "settings.toml"
    path.write_text(text)
    return path


def run(data: Path, seeds: list[int], model: str | None = None, thresholds: str | None = None,
        say=lambda line: None) -> dict:
    from bot.cli import main
    from scenes.recording import enrollment_folder, make_recording

    roster = {r.split(",")[1]: r.split(",")[0] for r in (data / "seed-roster.csv").read_text().splitlines()[1:]}
    results = []
    with tempfile.TemporaryDirectory(prefix="rollcall-recordings-") as tmp:
        root = Path(tmp)
        photos = enrollment_folder(data, root / "photos")
        config = _config(root, model, thresholds)
        for seed in seeds:
            rec = make_recording(data, root / f"rec{seed}.mp4", seed=seed)
            home = root / f"home{seed}"
            c = ["--home", str(home), "--quiet"] + (["--config", str(config)] if config else [])
            enroll = ["enroll", str(photos), "--roster", str(data / "seed-roster.csv"), "--class", "DL-A"]
            replay = ["replay", str(rec.path), "--every", str(rec.every_s), "--class", "DL-A"]
            with contextlib.redirect_stdout(sys.stderr):  # the commands' tables and console alerts
                ok = main(c + enroll) == 0 and main(c + replay) == 0
            if not ok:
                raise SystemExit(f"recordings.py: seed {seed}: enroll or replay failed")
            with sqlite3.connect(home / "rollcall.db") as db:
                alerts = [list(a) for a in db.execute("SELECT kind, student_id, identified_as FROM alerts ORDER BY id")]
            want = [["mismatch", roster[rec.impostor_tile], roster[rec.impostor_face]]]
            results.append({"seed": seed, "pass": alerts == want, "alerts": alerts})
            say(f"seed {seed:2d} {'PASS' if alerts == want else 'FAIL'} {alerts}")
    return {"passed": sum(r["pass"] for r in results), "of": len(results), "seeds": results}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.recordings", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1-12", help="seeds to render, e.g. 1-12 or 3,5,7 (default 1-12)")
    ap.add_argument("--model", help="face model .tflite (default: the settings' recognition.model)")
    ap.add_argument("--thresholds", help="its thresholds.json (default: the settings' recognition.thresholds)")
    ap.add_argument("--data", help="data folder with seed-faces/ (default $ROLLCALL_DATA or ../shared/data)")
    ap.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = ap.parse_args(argv)
    try:
        seeds = _seeds(args.seeds)
    except ValueError:
        ap.error(f"--seeds: expected numbers and ranges like 1-12 or 3,5,7, got {args.seeds!r}")
    from benchmarks.cycle import BenchError, find_data

    try:
        data = find_data(args.data)
    except BenchError as e:
        print(f"benchmarks.recordings: error: {e}", file=sys.stderr)
        return 1
    r = run(data, seeds, args.model, args.thresholds, say=(lambda line: None) if args.json else print)
    print(json.dumps(r) if args.json else f"passed {r['passed']} of {r['of']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
