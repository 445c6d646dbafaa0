"""The bundled demo: a class of five students (a few photos each, `demo/class/`) and a recorded lecture
(`demo/lecture.mp4`) in which another student's face sits in Mareta Aliana's tile for a few captures."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .config import shipped

EVERY_S = 2.0  # the lecture holds one frame every 2 s of video


@dataclass(frozen=True)
class Demo:
    photos: Path      # <Student Name>/*.jpg
    roster: Path
    lecture: Path
    class_name: str = "Demo"
    every_s: float = EVERY_S


def bundled() -> Demo:
    """The demo's files, from the installed package or the checkout."""
    folder = shipped("demo/class")
    return Demo(folder, folder / "roster.csv", shipped("demo/lecture.mp4"))


def new_home() -> Path:
    """A fresh home for the demo's data, left in place afterwards so the report can be opened."""
    return Path(tempfile.mkdtemp(prefix="rollcall-demo-"))
