"""`python -m bot.train STEP`: the command line over the training steps (see bot/train/__init__.py)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import PROJECT_DIR
from . import __doc__ as ABOUT
from .blends import make_blends
from .calibrate import calibrate, calibrate_verifier, report_classes
from .data import DEFAULT_BLENDS, DEFAULT_CACHE, DEFAULT_DATA, pack, prepare
from .export import export
from .fit import Trainer
from .snapshots import average, snapshot

DEFAULT_RUN = PROJECT_DIR / "runs" / "main"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bot.train", description=ABOUT,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", help="detect and align every training face (cached)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--limit-ids", type=int, default=None, help="only the first N identities per folder (tests)")
    f = sub.add_parser("fit", help="train (resumes from the run's last checkpoint)")
    f.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    f.add_argument("--run", type=Path, default=DEFAULT_RUN)
    f.add_argument("--size", type=int, default=96, help="input side in px (the 112x112 aligned face is resized)")
    f.add_argument("--alpha", type=float, default=0.5)
    f.add_argument("--dim", type=int, default=128)
    f.add_argument("--batch", type=int, default=128)
    f.add_argument("--epochs", type=int, default=40)
    f.add_argument("--lr", type=float, default=0.05)
    f.add_argument("--distill", type=float, default=40.0, help="weight of the distillation loss")
    f.add_argument("--ce", type=float, default=1.0, help="weight of the CosFace loss (0: distillation only)")
    f.add_argument("--target-weight", type=int, default=2,
                   help="times an epoch each face like our students (Indonesian, hijab) is shown")
    f.add_argument("--relational", type=float, default=0.0,
                   help="weight of the loss matching pooled-feature cosines to the teacher's within a batch")
    f.add_argument("--jitter", type=float, default=0.0,
                   help="share of training faces whose alignment is moved a little (landmark noise)")
    f.add_argument("--mix", type=float, default=0.0,
                   help="share of training faces replaced by blends of two (their teacher vectors: --blends)")
    f.add_argument("--blends", type=Path, default=DEFAULT_BLENDS, help="made by `python -m bot.train blends`")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--max-minutes", type=float, default=None, help="stop (checkpointed) after this long")
    f.add_argument("--init-from", type=Path, default=None, help="start a new run from this run's weights")
    f.add_argument("--workers", type=int, default=1,
                   help="threads that augment batches beside training (more on a many-core machine)")
    f.add_argument("--bf16", action="store_true", help="mixed bfloat16 (a GPU; slower on a CPU)")
    b = sub.add_parser("blends", help="blended training faces with dlib's vector of each blend (fit --mix)")
    b.add_argument("--data", type=Path, default=DEFAULT_DATA)
    b.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    b.add_argument("--out", type=Path, default=DEFAULT_BLENDS)
    b.add_argument("-n", type=int, default=20000, help="how many (a larger n later extends the file)")
    b.add_argument("--workers", type=int, default=None, help="processes (default: one a core)")
    k = sub.add_parser("pack", help="the cache with WebP-encoded faces (~40 MB), to train on another machine")
    k.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    k.add_argument("--out", type=Path, default=PROJECT_DIR / "cache" / "packed.npz")
    k.add_argument("--quality", type=int, default=85)
    e = sub.add_parser("export", help="latest checkpoint -> TFLite")
    e.add_argument("--run", type=Path, default=DEFAULT_RUN)
    e.add_argument("--out", type=Path, default=PROJECT_DIR / "models" / "face_embed.tflite")
    e.add_argument("--float16", action="store_true", help="float16 weights (half the file)")
    e.add_argument("--int8", action="store_true",
                   help="int8 weights and activations, ranges set on training faces (a third of the file)")
    e.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="training faces to centre the vectors on")
    e.add_argument("--vector", choices=("pooled", "embedding"), default="pooled",
                   help="pooled: the 1280 pooled features, centred (default); embedding: the 128-d head")
    c = sub.add_parser("calibrate", help="held-out identities -> thresholds.json")
    c.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    c.add_argument("--model", type=Path, default=PROJECT_DIR / "models" / "face_embed.tflite")
    c.add_argument("--out", type=Path, default=PROJECT_DIR / "models" / "thresholds.json")
    c.add_argument("--far", type=float, default=0.01, help="false accept rate per (face, other student) pair")
    c.add_argument("--top-k", type=int, default=3,
                   help="score a face by its k nearest enrolled faces (0: prototype)")
    c.add_argument("--head-lambda", type=float, default=0.05,
                   help="ridge penalty of the class head fitted at enrollment; 0: no head")
    c.add_argument("--head-weight", type=float, default=1.0, help="the head's share of the ranking score")
    c.add_argument("--min-gallery", type=int, default=7,
                   help="only identities with this many faces besides the probe")
    cv = sub.add_parser("calibrate-verifier",
                        help="few-shot classes of held-out identities -> thresholds.json's \"verifier\" (the cascade)")
    cv.add_argument("--data", type=Path, default=DEFAULT_DATA)
    cv.add_argument("--model", type=Path, default=PROJECT_DIR / "models" / "face_embed.tflite")
    cv.add_argument("--out", type=Path, default=PROJECT_DIR / "models" / "thresholds.json")
    cv.add_argument("--vectors", type=Path, default=PROJECT_DIR / "cache",
                    help="folder for the detected faces and both models' vectors (reused)")
    cv.add_argument("--far", type=float, default=0.01, help="false accept rate per (face, other identity) pair")
    cv.add_argument("--class-size", type=int, default=30)
    cv.add_argument("--trials", type=int, default=10, help="random classes per number of enrolled photos")
    rc = sub.add_parser("verifier-classes",
                        help="link folders of held-out classes the verifier was not calibrated on (evaluate --enroll)")
    rc.add_argument("--data", type=Path, default=DEFAULT_DATA)
    rc.add_argument("--out", type=Path, required=True)
    rc.add_argument("--vectors", type=Path, default=PROJECT_DIR / "cache")
    rc.add_argument("--classes", type=int, default=2)
    rc.add_argument("--class-size", type=int, default=30)
    a = sub.add_parser("all", help="prepare, fit, export and calibrate; each resumes where it stopped")
    a.add_argument("--data", type=Path, default=DEFAULT_DATA)
    a.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    a.add_argument("--run", type=Path, default=DEFAULT_RUN)
    a.add_argument("--models", type=Path, default=PROJECT_DIR / "models")
    a.add_argument("--limit-ids", type=int, default=None)
    a.add_argument("--blends", type=Path, default=DEFAULT_BLENDS, help="for --mix: `python -m bot.train blends`")
    for flag, typ, default in (("--size", int, 96), ("--alpha", float, 0.5), ("--dim", int, 128),
                               ("--batch", int, 128), ("--epochs", int, 40), ("--lr", float, 0.05),
                               ("--distill", float, 40.0), ("--ce", float, 1.0), ("--target-weight", int, 2), ("--relational", float, 0.0), ("--jitter", float, 0.0), ("--mix", float, 0.0), ("--seed", int, 0), ("--max-minutes", float, None)):
        a.add_argument(flag, type=typ, default=default)
    v = sub.add_parser("average", help="mean weights of several checkpoints -> a run folder to export")
    v.add_argument("--run", type=Path, default=DEFAULT_RUN, help="the run whose config the checkpoints share")
    v.add_argument("--out", type=Path, required=True)
    v.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    v.add_argument("stems", nargs="+", help="checkpoint stems (ckpt/step-NNNNNNN, without .weights.h5)")
    n = sub.add_parser("snapshot", help="latest weights without optimizer state -> a small run folder")
    n.add_argument("--run", type=Path, default=DEFAULT_RUN)
    n.add_argument("--out", type=Path, default=PROJECT_DIR / "models" / "train-state")
    args = ap.parse_args(argv)
    if args.step == "snapshot":
        snapshot(args.run, args.out)
    elif args.step == "average":
        average(args.run, args.stems, args.out, args.cache)
    elif args.step == "all":
        if not args.cache.exists():
            prepare(args.data, args.cache, args.limit_ids)
        Trainer(args.cache, args.run, **_run_config(args), blends=args.blends).fit(args.max_minutes)
        model = export(args.run, args.models / "face_embed.tflite", cache=args.cache)
        calibrate(args.cache, model, args.models / "thresholds.json")
    elif args.step == "export":
        export(args.run, args.out, args.float16, args.cache, args.vector, args.int8)
    elif args.step == "calibrate":
        calibrate(args.cache, args.model, args.out, far=args.far, top_k=args.top_k,
                  min_gallery=args.min_gallery, head_lambda=args.head_lambda, head_weight=args.head_weight)
    elif args.step == "calibrate-verifier":
        calibrate_verifier(args.data, args.model, args.out, args.vectors, far=args.far, size=args.class_size,
                           trials=args.trials)
    elif args.step == "verifier-classes":
        for root in report_classes(args.data, args.out, args.vectors, args.classes, args.class_size):
            print(root)
    elif args.step == "prepare":
        prepare(args.data, args.cache, args.limit_ids)
    elif args.step == "fit":
        cfg = _run_config(args)
        Trainer(args.cache, args.run, **cfg, blends=args.blends, workers=args.workers, bf16=args.bf16).fit(args.max_minutes, args.init_from)
    elif args.step == "blends":
        make_blends(args.data, args.cache, args.out, args.n, workers=args.workers)
    elif args.step == "pack":
        pack(args.cache, args.out, args.quality)
    return 0


def _run_config(args) -> dict:
    """A resumed run keeps the settings it started with; new runs take the command line's."""
    keys = ("size", "alpha", "dim", "batch", "epochs", "lr", "distill", "ce", "target_weight", "relational", "jitter",
            "mix", "seed")
    cfg = {k: getattr(args, k) for k in keys}
    saved = args.run / "config.json"
    if saved.exists():
        # a run begun before a setting existed trained as that setting's neutral value does
        old = {"ce": 1.0, "target_weight": 1, "relational": 0.0, "jitter": 0.0, "mix": 0.0, **json.loads(saved.read_text())}
        cfg.update({k: old[k] for k in keys if k in old and k != "epochs"})
    return cfg
