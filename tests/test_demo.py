"""The bundled demo recording is what the README promises: six tiles a capture, found by the pipeline."""
import cv2
import pytest

from bot.config import PROJECT_DIR, TileSettings
from bot.tiles import segment

DEMO = PROJECT_DIR / "demo" / "lecture.mp4"


def frames():
    cap = cv2.VideoCapture(str(DEMO))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        yield frame
    cap.release()


def test_demo_exists_and_is_small():
    assert DEMO.is_file() and DEMO.stat().st_size < 2_000_000


@pytest.mark.parametrize("index", [0, 5, 13])
def test_demo_frames_segment_into_six_tiles(index):
    frame = list(frames())[index]
    tiles = segment(frame, TileSettings())
    assert len(tiles) == 6, [t.box for t in tiles]
    assert [t.camera_off for t in tiles] == [False] * 5 + [True]


def test_rollcall_demo_from_anywhere_raises_the_one_alert(tmp_path):
    """`rollcall demo` in a folder that is not the checkout: the bundled class enrolled, the lecture
    replayed, exactly one mismatch (Siti Zubaidah's face in Mareta Aliana's tile), the HTML report written."""
    import os
    import sqlite3
    import subprocess
    import sys

    env = dict(os.environ, TMPDIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "bot.cli", "demo"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    (home,) = tmp_path.glob("rollcall-demo-*")
    # the console wraps at its width, and the temporary folder's path is as long as it happens to be
    squeezed = "".join(r.stdout.split())
    assert (home / "report.html").is_file() and f"wrote{home / 'report.html'}" in squeezed
    alerts = sqlite3.connect(home / "rollcall.db").execute(
        "SELECT kind, student_id, identified_as, model FROM alerts").fetchall()
    assert alerts == [("mismatch", "D02", "D01", "verifier")]
    assert "Mareta Aliana [D02]'s tile shows Siti Zubaidah [D01]" in " ".join(r.stderr.split())
    assert "Alerts (1)" in " ".join(r.stdout.split())
