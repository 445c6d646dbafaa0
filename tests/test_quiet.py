"""Nothing reaches stderr that rollcall did not write: not TFLite's delegate note, not ffmpeg's complaint
about a broken video, not TensorFlow's logs. Run as a user would, in a child process, so that what native
libraries write to file descriptor 2 is seen too."""
import os
import re
import subprocess
import sys

import pytest

from bot.config import PROJECT_DIR

DEMO = PROJECT_DIR / "demo" / "lecture.mp4"


def rollcall(home, *args, verbose=False):
    env = {k: v for k, v in os.environ.items() if k not in ("ROLLCALL_VERBOSE", "OPENCV_FFMPEG_LOGLEVEL")}
    env["ROLLCALL_HOME"] = str(home)
    argv = [sys.executable, "-m", "bot.cli", *(["-v"] if verbose else []), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)


def own_lines(stderr: str) -> list[str]:
    """The stderr lines that are not rollcall's own: its lines start with `rollcall` (errors, notes),
    a log level, or an alert's time."""
    return [line for line in stderr.splitlines() if line.strip()
            and not line.startswith(("rollcall", "WARNING ", "ERROR ")) and not re.match(r"\d\d:\d\d:\d\d ", line)]


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("quiet")
    photos = root / "photos"
    for name in ("Siti Zubaidah", "Mareta Aliana"):
        (photos / name).mkdir(parents=True)
        for p in sorted((data_dir / "seed-faces" / name).glob("*.jpg"))[:4]:
            (photos / name / p.name).write_bytes(p.read_bytes())
    home = root / "home"
    r = rollcall(home, "enroll", str(photos))
    return home, r


def test_enroll_replay_report_doctor_say_only_their_own_lines(enrolled):
    home, enroll = enrolled
    assert enroll.returncode == 0, enroll.stderr
    assert own_lines(enroll.stderr) == []
    replay = rollcall(home, "replay", str(DEMO), "--every", "8")
    assert replay.returncode == 0, replay.stderr
    assert own_lines(replay.stderr) == []
    report = rollcall(home, "report", "last")
    assert report.returncode == 0 and own_lines(report.stderr) == []
    doctor = rollcall(home, "doctor")  # the display check may fail here (no X): still only its lines
    assert own_lines(doctor.stderr) == [] and "INFO" not in doctor.stdout


def test_a_broken_video_is_one_line(tmp_path):
    bad = tmp_path / "lecture.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video at all")
    r = rollcall(tmp_path / "home", "replay", str(bad))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"rollcall: error: {bad}: cannot open as a video"]


def test_verbose_lets_the_libraries_speak(tmp_path):
    bad = tmp_path / "lecture.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video at all")
    r = rollcall(tmp_path / "home", "replay", str(bad), verbose=True)
    assert r.returncode == 1 and len(r.stderr.splitlines()) > 1  # ffmpeg's own line above rollcall's
