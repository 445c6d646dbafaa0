"""Capture-cycle benchmark: `python -m benchmarks.cycle [--json] [--cycles N]`.

One 1920x1080 Zoom gallery of 25 tiles (5 x 5; a few camera-off), rendered from real seed-faces photos
framed like webcams, goes through the bot's capture cycle stage by stage:

    capture   an mss grab of the real screen when $DISPLAY is set, else a copy of the frame (said which)
    segment, names, detect, embed, verify, decide   bot.session.Pipeline.process (verify: the
              identity stage, bot/identity.py: dlib's ResNet on the faces MobileNetV2 cannot verify
              beyond doubt, within the live per-capture budget, as a lecture gets it)
    store     Store.add_capture into a SQLite file in a temporary home

Three kinds of cycle, --cycles of each, every one on a frame with fresh sensor noise on its live tiles
(live video never repeats a frame exactly, so no cache keyed on exact pixels hits where it would not in
a meeting):

    cold        a fresh Pipeline and an emptied OCR cache each cycle: every name and face seen first
    steady      one Pipeline over a lecture's steady state: names and layout stay, each tile's webcam
                view moves a few pixels and rescales by up to 2% from capture to capture (the floor);
                warmed up on every frame once with the verifier's budget lifted, so that its first
                confirmations (live: spread over the lecture's first captures) are done, then timed
                with the live budget
    new photos  one Pipeline, names and layout stay, but every live tile shows ANOTHER photo of its
                student each cycle: no face is where it was, the hardest case for the face memory
                (a stress figure: no lecture changes every face every capture)

The figures are medians over the cycles of each kind. Beside the wall-clock stages, the CPU time of a
cycle (every thread's): on a shared machine whose speed drifts from minute to minute it tells two
versions apart better. And the
work of a cycle, counted (`work` in the JSON: face views embedded, labels read, full-range and
short-range face searches, means per cycle), which no drift moves at all.

Peak RSS is the process's ru_maxrss taken after the bot's cycles and BEFORE the peer (dlib) is loaded,
so it is the bot's own peak, its verifier (dlib's ResNet) loaded (plus the harness's rendering
of the frames, a few MB).
The verifier gallery is the enrolled photos described by `models.verifier`, as `enroll` stores them.
Every live tile shows its own student: any `mismatch` or `unknown_face` on one, in any cycle (warm-ups
included), is a genuine student accused (`genuine_accused`, floor 0). `verifier` in the JSON: its share
of each kind's cycle time, its runs a capture, the steady warm-up, the faces left pending a capture.

The peer is face_recognition's default path (dlib HOG upsampled once + ResNet encodings of every face,
bot.evaluate.DlibPeer) on the whole first frame, in the same process; ratio = peer / steady.

Floors (the issue's): steady <= 150 ms, cold <= 1 s, peak RSS <= 600 MB (the verifier loaded),
peer/steady >= 10, 0 genuine students accused.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from bot.types import BAD
from scenes.lecture import ENROLL_PHOTOS, SIZE, TILES, SceneError, live, render_frames

ROOT = Path(__file__).resolve().parent.parent

STAGES = ("capture", "segment", "names", "detect", "embed", "verify", "decide", "store")
# the work of a cycle, counted (means over the cycles): face views through the embedding model, labels
# sent to the name reader, tiles searched with the full-range detector, tiles searched near the last
# face with the short-range one, and faces the verifier (dlib's ResNet, bot/identity.py) described
WORK = {"views": "face views embedded", "labels": "labels read", "full": "full-range searches",
        "near": "short-range searches", "verifier": "verifier runs"}
# verdicts that accuse a tile's student: every live tile in these galleries shows its own student
ACCUSATIONS = BAD
# steady cycles' warm-up: every frame once with the verifier's budget lifted, then on until no face waits
# for it (its first confirmations are a lecture's start, not its steady state); at most this many
WARMUP_MAX = 40
FLOORS = {"steady_ms": 150.0, "cold_ms": 1000.0, "rss_mb": 600.0, "ratio": 10.0}


class BenchError(Exception):
    """Something the user can fix (missing model or data); str() names the file."""


# ---------------------------------------------------------------------------------------------- setup

def find_data(arg: str | None) -> Path:
    """--data, else $ROLLCALL_DATA, else <project>/../shared/data."""
    path = Path(arg or os.environ.get("ROLLCALL_DATA") or ROOT.parent / "shared" / "data")
    if not (path / "seed-faces").is_dir():
        raise BenchError(f"{path / 'seed-faces'}: photo folder not found (set --data or $ROLLCALL_DATA)")
    return path


def bench_settings(config: str | None, model: str | None, thresholds: str | None):
    """Settings from --config (or the packaged defaults) with --model / --thresholds put in."""
    from bot.config import load_settings

    settings = load_settings(Path(config) if config else None)
    rec = settings.recognition
    if model or thresholds:
        rec = dataclasses.replace(rec, model=str(Path(model).resolve()) if model else rec.model,
                                  thresholds=str(Path(thresholds).resolve()) if thresholds else rec.thresholds)
        settings = dataclasses.replace(settings, recognition=rec)
    if not rec.model_path().is_file():
        raise BenchError(f"{rec.model_path()}: face model not found (train it with `python -m bot.train all`, "
                         "or pass --model FILE --thresholds FILE)")
    if not rec.thresholds_path().is_file():
        raise BenchError(f"{rec.thresholds_path()}: thresholds file not found (pass --thresholds FILE)")
    return settings


def enrol(data: Path, roster, models, faces_cfg, per_student: int = ENROLL_PHOTOS):
    """(gallery, verifier gallery) from photos spread over each student's folder (as `enroll
    --max-photos` picks them), through enrollment's own photo gates, each photo described by both
    models as `enroll` stores it (bot.session.enrolled_galleries; the verifier's None without one)."""
    from bot.enroll import embed_photo, match_folder, spread
    from bot.session import enrolled_galleries
    from scenes.gallery import seed_photos

    ids, vecs, vids, vvecs = [], [], [], []
    for folder, paths in seed_photos(data).items():
        student = match_folder(folder, roster)
        if student is None:
            continue
        for p in spread(paths, per_student):
            got = embed_photo(p, models.detector, models.embedder, faces_cfg, models.verifier)
            if isinstance(got, tuple):
                ids.append(student.student_id)
                vecs.append(got[0])
                if got[3] is not None:
                    vids.append(student.student_id)
                    vvecs.append(got[3])
    if not vecs:
        raise BenchError(f"{data / 'seed-faces'}: no usable enrollment photo")
    return enrolled_galleries(models, ids, vecs, vids, vvecs)


def iou(a, b) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / max(1, a[2] * a[3] + b[2] * b[3] - inter)


def tiles_matched(boxes: list, truth: list, min_iou: float = 0.8) -> int:
    """True tiles that some found box covers with IoU >= min_iou: the cycle timed the real work."""
    return sum(any(iou(t, b) >= min_iou for b in boxes) for t in truth)


class Capture:
    """The capture stage's cost: a real mss grab when there is a display, else a frame copy."""

    def __init__(self):
        self.sct, self.mode = None, "frame copy (no $DISPLAY)"
        if os.environ.get("DISPLAY"):
            try:
                import mss
                self.sct = (getattr(mss, "MSS", None) or mss.mss)()
                self.geometry = self.sct.monitors[1]
                self.mode = f"mss grab of {self.geometry['width']}x{self.geometry['height']} on $DISPLAY"
            except Exception as e:  # noqa: BLE001 - any backend failure: fall back, and say so
                self.sct, self.mode = None, f"frame copy (mss failed: {str(e).splitlines()[0][:60]})"

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.sct is not None:
            # as ScreenSource's tick does; the grabbed screen is timed, the rendered gallery is processed
            np.ascontiguousarray(np.asarray(self.sct.grab(self.geometry), dtype=np.uint8)[:, :, :3])
            return frame
        return frame.copy()

    def close(self) -> None:
        if self.sct is not None:
            self.sct.close()


# ---------------------------------------------------------------------------------------------- cycles

def _work(pipeline) -> dict:
    """Counters of the work the pipeline has done so far (WORK)."""
    models, faces = pipeline.models, pipeline.faces.memory.counts
    return {"views": models.embedder.made, "labels": models.reader.stats["misses"],
            "full": faces["full"], "near": faces["roi"], "verifier": pipeline.identity.cascade.runs}


def one_cycle(pipeline, capture: Capture, frame: np.ndarray, store, session_id: int, when: datetime):
    """(observations, ms by stage) of one capture cycle, stored as Session.capture stores it; "cpu":
    the CPU time of the whole cycle, every thread's (what a busy or shared machine does not stretch);
    and the work it did (WORK), which no drift of the machine's speed moves."""
    work = _work(pipeline)
    cpu = time.process_time()
    t = time.perf_counter()
    frame = capture(frame)
    cap_ms = (time.perf_counter() - t) * 1000
    obs, ms = pipeline.process(frame)
    t = time.perf_counter()
    store.add_capture(session_id, when, ms, obs)
    done = {k: v - work[k] for k, v in _work(pipeline).items()}
    return obs, {"capture": cap_ms, **ms, "store": (time.perf_counter() - t) * 1000,
                 "cpu": (time.process_time() - cpu) * 1000, **done}


def forget_names(models) -> None:
    """Empty the OCR reader's label cache, so the next cycle reads every name afresh."""
    models.reader.clear_cache()


def medians(runs: list[dict]) -> dict:
    return {s: round(statistics.median(r[s] for r in runs), 2) for s in STAGES}


def work_means(runs: list[dict]) -> dict:
    return {w: round(statistics.mean(r[w] for r in runs), 2) for w in WORK}


def total_median(runs: list[dict]) -> float:
    return round(statistics.median(sum(r[s] for s in STAGES) for r in runs), 2)


def run_peer(frame: np.ndarray, runs: int) -> tuple[float | None, int]:
    """(median ms, faces found) of face_recognition's default path on the whole frame; None without dlib."""
    from bot.evaluate import DlibPeer

    peer = DlibPeer.load()
    if peer is None:
        return None, 0
    times, found = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        found = len(peer.detect_and_encode(frame))
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 1), found


def benchmark(args, say=lambda msg: None) -> dict:
    from bot.roster import load_roster
    from bot.session import Pipeline, load_models
    from bot.store import Store

    data = find_data(args.data)
    settings = bench_settings(args.config, args.model, args.thresholds)
    roster = load_roster(data / "seed-roster.csv")
    say("loading models")
    t = time.perf_counter()
    models = load_models(settings)
    load_s = time.perf_counter() - t
    say("enrolling and rendering the gallery")
    gallery, vgallery = enrol(data, roster, models, settings.faces)
    frames, truth = render_frames(data, models.detector, args.frames, same_sitters=True)
    others, _ = render_frames(data, models.detector, args.frames, same_sitters=False)
    capture = Capture()
    start = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
    with tempfile.TemporaryDirectory(prefix="rollcall-bench-") as home, Store(home) as store:
        session_id = store.start_session("bench", "benchmark", 10)

        noise = np.random.default_rng(1)
        # genuine students accused (ACCUSATIONS on a live tile, which always shows its own student),
        # by kind of cycle, warm-ups included: (kind, cycle, tile, label, verdict, model, score)
        accused: list[tuple] = []

        def pipeline_():
            return Pipeline(settings, models, roster, gallery, vgallery)

        def cycle(k: int, pipeline, shown: list = frames, kind: str = "warm-up"):
            # fresh sensor noise on every cycle's frame (made before the clock starts): live video
            # never repeats a frame exactly, and the OCR cache keyed on exact pixels must not hit
            # where a live meeting would miss it
            frame = live(shown[k % len(shown)], truth, noise)
            obs, ms = one_cycle(pipeline, capture, frame, store, session_id, start + timedelta(seconds=10 * k))
            accused.extend((kind, k, o.tile_index, o.display_name, o.verdict.verdict, o.verdict.model,
                            o.verdict.similarity) for o in obs
                           if not o.camera_off and o.verdict.verdict in ACCUSATIONS)
            ms["pending"] = pending(obs)
            return obs, ms

        def pending(obs) -> int:
            return sum(o.verdict.reason == "verifier pending" for o in obs)

        def steady_cycles(shown: list, kind: str, settle: bool) -> tuple[list, list, dict]:
            """Warmed up on every frame once (each label seen); `settle`: with the verifier's budget
            lifted meanwhile, so that its first confirmations are done in those captures whatever the
            machine's speed (live, they are spread over the lecture's first captures: a cold cycle
            times one of those), and on until no face waits for it. The steady cycles then start at
            the same capture of the pipeline's life in every run, with the live budget."""
            pipeline = pipeline_()
            ident = pipeline.identity.cascade
            budget = ident.settings
            if settle:
                ident.settings = dataclasses.replace(budget, budget_ms=math.inf, capture_budget_ms=math.inf)
            k, obs = 0, []
            while k < len(shown) or (settle and pending(obs) and k < WARMUP_MAX):
                obs, _ = cycle(k, pipeline, shown, f"{kind} warm-up")
                k += 1
            ident.settings = budget
            warm = {"cycles": k, "verifier_runs": ident.runs, "pending_after": pending(obs)}
            runs = []
            for j in range(args.cycles):
                obs, ms = cycle(k + j, pipeline, shown, kind)
                runs.append(ms)
            return runs, obs, warm

        # the first cycle after loading pays one-off costs (allocations, first inference): not counted
        say("warm-up cycle")
        _, first = cycle(0, pipeline_())
        say(f"{args.cycles} cold cycles")
        cold = []
        for k in range(args.cycles):
            forget_names(models)
            cold.append(cycle(k, pipeline_(), kind="cold")[1])
        say(f"{args.cycles} steady cycles (a lecture: the same sitters)")
        steady, obs, warm = steady_cycles(frames, "steady", settle=True)
        say(f"{args.cycles} steady cycles with new photos in every tile (stress)")
        stress, _, _ = steady_cycles(others, "new_photos", settle=False)
    capture.close()
    rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux

    peer_ms, peer_faces = None, 0
    if args.peer_runs > 0:
        say(f"peer (face_recognition) x{args.peer_runs}")
        peer_ms, peer_faces = run_peer(frames[0], args.peer_runs)
    steady_ms = total_median(steady)
    kinds = {"cold": cold, "steady": steady, "new_photos": stress}
    by_kind = Counter(a[0] for a in accused)
    return {
        "cold_ms": total_median(cold), "steady_ms": steady_ms,
        "new_photos_ms": total_median(stress),
        "cpu_ms": {"cold": round(statistics.median(r["cpu"] for r in cold), 1),
                   "steady": round(statistics.median(r["cpu"] for r in steady), 1),
                   "new_photos": round(statistics.median(r["cpu"] for r in stress), 1)},
        "stages_ms": {"cold": medians(cold), "steady": medians(steady), "new_photos": medians(stress)},
        "work": {"cold": work_means(cold), "steady": work_means(steady), "new_photos": work_means(stress)},
        "rss_mb": rss_mb, "peer_ms": peer_ms,
        "ratio": round(peer_ms / steady_ms, 1) if peer_ms and steady_ms else None,
        # the identity stage (bot/identity.py): its share of a cycle's time (all the kind's cycles'
        # verify ms over their total ms), the faces it described a capture (work.*.verifier), the
        # steady state's warm-up (every frame once, then until no face waits for it), and the faces
        # left waiting a capture (its live budget spent)
        "verifier": {
            "share": {k: round(sum(r["verify"] for r in v) / max(1e-9, sum(sum(r[s] for s in STAGES) for r in v)), 3)
                      for k, v in kinds.items()},
            "runs_per_capture": {k: work_means(v)["verifier"] for k, v in kinds.items()},
            "max_runs_in_a_capture": {k: max(r["verifier"] for r in v) for k, v in kinds.items()},
            "budget_ms": settings.recognition.verifier_budget_ms,
            # the capture's whole budget: the verifier gets what the other stages left of it (a cold
            # capture, every name read afresh, leaves it one face)
            "capture_budget_ms": settings.recognition.capture_budget_ms,
            "refresh": settings.recognition.verifier_refresh,
            "steady_warmup": warm,
            # faces left waiting for it ("verifier pending") a capture: its budget spent
            "pending_per_capture": {k: round(statistics.mean(r["pending"] for r in v), 2) for k, v in kinds.items()},
            # tiles whose standing verdict is the verifier's in the steady state: each is judged again
            # every `refresh` captures (runs a capture over a long lecture: this / refresh)
            "steady_tiles_by_verifier": sum(o.verdict.model == "verifier" for o in obs),
            "loaded": models.verifier is not None and vgallery is not None,
        },
        # 0 is the floor: the galleries' live tiles all show their own students
        "genuine_accused": {"total": len(accused), **{k: by_kind.get(k, 0) for k in sorted(
            {"warm-up", "cold", "steady warm-up", "steady", "new_photos warm-up", "new_photos"})}},
        "genuine_accused_examples": [list(a) for a in accused[:10]],
        # who: [kind, tile, label, verdict, captures] for each tile and verdict
        "genuine_accused_tiles": [[*key, n] for key, n in Counter((a[0], a[2], a[3], a[4]) for a in accused).items()],
        "setup": {
            "frame": list(SIZE), "tiles": TILES, "tiles_found": len(obs),
            "tiles_matched": tiles_matched([o.box for o in obs], truth), "frames": len(frames),
            "cycles": args.cycles, "capture": capture.mode, "model": str(settings.recognition.model_path()),
            "models_load_s": round(load_s, 2), "first_cycle_ms": round(sum(first[s] for s in STAGES), 1),
            "verdicts": dict(Counter(o.verdict.verdict for o in obs).most_common()),
            "peer_faces": peer_faces, "rss": "ru_maxrss before the peer is loaded",
        },
    }


# ---------------------------------------------------------------------------------------------- output

def _mark(key: str, value) -> str:
    if value is None:
        return "-"
    ok = value >= FLOORS[key] if key == "ratio" else value <= FLOORS[key]
    return "[green]ok[/]" if ok else "[red]over[/]" if key != "ratio" else "[red]under[/]"


def print_table(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    s = r["setup"]
    t = Table(title=f"cycle medians (ms), {s['cycles']} cycles of each kind")
    t.add_column("stage")
    kinds = (("cold", "cold"), ("steady", "steady"), ("new_photos", "new photos"))
    for _, title in kinds:
        t.add_column(title, justify="right")
    for st in STAGES:
        t.add_row(st, *(f"{r['stages_ms'][k][st]:.1f}" for k, _ in kinds))
    t.add_section()
    t.add_row("[b]cycle[/]", *(f"[b]{r[k + '_ms']:.1f}[/]" for k, _ in kinds))
    t.add_row("CPU, all threads", *(f"{r['cpu_ms'][k]:.0f}" for k, _ in kinds))
    t.add_section()
    for w, title in WORK.items():
        t.add_row(title, *(f"{r['work'][k][w]:.1f}" for k, _ in kinds))
    console.print(t)
    f = Table(title="against the floors")
    for c in ("figure", "value", "floor", ""):
        f.add_column(c, justify="right" if c in ("value", "floor") else "left")
    f.add_row("cold cycle", f"{r['cold_ms']:.0f} ms", "<= 1000 ms", _mark("cold_ms", r["cold_ms"]))
    f.add_row("steady cycle", f"{r['steady_ms']:.0f} ms", "<= 150 ms", _mark("steady_ms", r["steady_ms"]))
    f.add_row("  (new photos in every tile)", f"{r['new_photos_ms']:.0f} ms", "", "")
    f.add_row("peak RSS", f"{r['rss_mb']:.0f} MB", "<= 600 MB", _mark("rss_mb", r["rss_mb"]))
    peer = "not installed" if r["peer_ms"] is None else f"{r['peer_ms']:.0f} ms ({s['peer_faces']} faces)"
    f.add_row("peer (face_recognition)", peer, "", "")
    f.add_row("peer / steady", "-" if r["ratio"] is None else f"{r['ratio']:.1f}x", ">= 10x",
              _mark("ratio", r["ratio"]))
    g = r["genuine_accused"]["total"]
    f.add_row("genuine students accused", f"{g}", "0", "[green]ok[/]" if g == 0 else "[red]over[/]")
    console.print(f)
    v = r["verifier"]
    console.print(f"verifier (dlib's ResNet, budget {v['budget_ms']:.0f} ms a capture, within what the other "
                  f"stages left of {v['capture_budget_ms']:.0f}): share of the cycle "
                  + ", ".join(f"{k} {v['share'][k]:.1%} ({v['runs_per_capture'][k]:.2f} runs a capture)"
                              for k in ("cold", "steady", "new_photos"))
                  + f"; steady warm-up {v['steady_warmup']['cycles']} cycles, {v['steady_warmup']['verifier_runs']} runs; "
                  f"{v['steady_tiles_by_verifier']} steady tiles stand on its verdict (each judged again every "
                  f"{v['refresh']} captures); faces left pending a capture {v['pending_per_capture']}",
                  highlight=False)
    if g:
        console.print(f"genuine students accused: {r['genuine_accused']}; e.g. {r['genuine_accused_examples'][:3]}",
                      highlight=False)
    console.print("steady: the same sitters moving a little (a lecture); new photos: another photo of "
                  "each student in every tile each cycle (stress, no floor)", highlight=False)
    console.print(f"frame {s['frame'][0]}x{s['frame'][1]}, {s['tiles']} tiles; capture: {s['capture']}; "
                  f"tiles found {s['tiles_found']}, matching the true boxes {s['tiles_matched']}; verdicts "
                  f"{s['verdicts']}; first cycle after load {s['first_cycle_ms']:.0f} ms; models load "
                  f"{s['models_load_s']:.1f} s; RSS: {s['rss']}; model {s['model']}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cycle", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ap.add_argument("--cycles", type=int, default=20, help="cycles of each kind (default 20)")
    ap.add_argument("--frames", type=int, default=3, help="distinct frames the cycles go round (default 3)")
    ap.add_argument("--peer-runs", type=int, default=3, help="peer runs on the frame (0: skip the peer)")
    ap.add_argument("--config", help="settings file (default: the packaged settings)")
    ap.add_argument("--model", help="face model .tflite (default: the settings' recognition.model)")
    ap.add_argument("--thresholds", help="thresholds.json (default: the settings' recognition.thresholds)")
    ap.add_argument("--data", help="data folder with seed-faces/ (default $ROLLCALL_DATA or ../shared/data)")
    args = ap.parse_args(argv)
    if args.cycles < 1 or args.frames < 1 or args.peer_runs < 0:
        ap.error("--cycles and --frames must be >= 1, --peer-runs >= 0")

    from bot.config import ConfigError
    from bot.decide import ThresholdError
    from bot.embed import ModelError
    from bot.faces import DetectorError
    from bot.ocr import OcrError
    from bot.roster import RosterError

    def say(msg: str) -> None:
        print(f"... {msg}", file=sys.stderr, flush=True)

    try:
        result = benchmark(args, say)
    except (BenchError, SceneError, ConfigError, ThresholdError, ModelError, DetectorError, OcrError, RosterError) as e:
        print(f"benchmarks.cycle: error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
