"""Train rollcall's face embedding: MobileNetV2 (weights=None) -> L2-normalised embedding.

    python -m bot.train prepare   # detect + align every training face with the bot's own aligner (cached)
    python -m bot.train fit       # CosFace on labelled identities + distillation from dlib's ResNet
    python -m bot.train export    # -> models/face_embed.tflite
    python -m bot.train calibrate # held-out identities -> models/thresholds.json
    python -m bot.train all       # the four in order; each step resumes where it stopped
    python -m bot.train snapshot  # a run's weights alone (small enough to commit) to start from elsewhere
    python -m bot.train pack      # the cache with WebP faces (~35 MB) to train on another machine
    python -m bot.train average   # the mean of several checkpoints, batch norm re-estimated
    python -m bot.train blends    # blended training faces with dlib's vector of each (fit --mix)

The trainer uses Keras 3 alone: `KERAS_BACKEND=jax` (or torch) trains the same model on a GPU machine,
and `export` reads its weight files under TensorFlow.

Modules, in the order data flows: data (prepare, pack, the held-out split), augment, network,
blends, weights, fit, snapshots (average, snapshot), export, calibrate; cli is the command line.

Data: ../shared/data/{lfw,celeba,extra}-faces/<identity>/*.jpg and unlabelled-faces/*.jpg, with the dlib
teacher vectors of teacher-dlib.npz. seed-faces is the evaluation class and is never read here.
Whole identities are held out (never images) for validation and threshold calibration.
"""

# `bot.train` keeps the names it had as one module (DESIGN.md lists it as train.py)
from .augment import augment
from .calibrate import calibrate
from .cli import main
from .data import load_cache, pack, prepare, split_identities
from .export import export
from .fit import Trainer
from .network import build_backbone
from .snapshots import average, snapshot

__all__ = ["Trainer", "augment", "average", "build_backbone", "calibrate", "export", "load_cache", "main",
           "pack", "prepare", "snapshot", "split_identities"]
