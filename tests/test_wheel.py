"""The wheel carries everything the bot needs to run away from a checkout: its code, the face models,
their thresholds and the default settings (issue: the front door)."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bot.config import PROJECT_DIR

SHIPPED = ["bot/models/face_embed.tflite", "bot/models/thresholds.json", "bot/models/NOTICE.md",
           "bot/models/face_detection_full_range.tflite", "bot/models/face_detection_short_range.tflite",
           "bot/settings/settings.toml", "bot/report/templates/report.html",
           "bot/demo_files/lecture.mp4", "bot/demo_files/class/roster.csv",
           "bot/demo_files/class/Mareta Aliana/001.jpg"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(PROJECT_DIR), "-w", str(out)],
                       capture_output=True, text=True, timeout=600, cwd=out)
    assert r.returncode == 0, r.stderr
    (whl,) = out.glob("rollcall-*.whl")
    return whl


def test_the_wheel_holds_the_code_models_and_settings(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert not [f for f in SHIPPED if f not in names]
    code = {p.relative_to(PROJECT_DIR).as_posix() for p in (PROJECT_DIR / "bot").rglob("*.py")
            if "__pycache__" not in p.parts}
    assert not sorted(code - names)  # every module, every sub-package
    assert not [n for n in names if "train-state" in n or n.endswith(".h5")]  # training state stays home
    models = {n: zipfile.ZipFile(wheel).getinfo(n).file_size for n in SHIPPED if n.startswith("bot/models/")}
    assert models["bot/models/face_embed.tflite"] == (PROJECT_DIR / "models" / "face_embed.tflite").stat().st_size


def test_the_unpacked_wheel_runs_from_anywhere(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = dict(os.environ, PYTHONPATH=str(site), ROLLCALL_HOME=str(tmp_path / "home"))
    probe = ("import bot.config as c, bot.faces as f; "
             "print(c.DEFAULTS_FILE); print(f.DETECTOR_FILE); print(c.load_settings().recognition.model_path())")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    paths = [Path(line) for line in r.stdout.splitlines()]
    assert len(paths) == 3 and all(p.is_file() and p.is_relative_to(site) for p in paths), paths
    doctor = subprocess.run([sys.executable, "-m", "bot.cli", "doctor"], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=300)
    lines = {line.split()[0]: line for line in doctor.stdout.splitlines() if line.strip() and line[0] != " "}
    for check in ("model", "detector", "ocr", "home"):
        assert " OK " in lines[check], doctor.stdout
