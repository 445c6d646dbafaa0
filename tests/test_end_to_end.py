"""The whole bot on a synthetic lecture rendered from the real class photos: enroll -> replay -> report.

One tile ("Mareta Aliana") shows another student's face for five captures: that participant must get
exactly one mismatch alert naming the right student, and nobody else any alert. Runs on the trained
model in models/.
"""
import json
import sqlite3

import pytest

from bot.cli import main
from bot.config import PROJECT_DIR

from scenes.recording import enrollment_folder, make_recording

MODEL = PROJECT_DIR / "models" / "face_embed.tflite"

pytestmark = pytest.mark.skipif(not MODEL.exists(), reason="no trained model in models/ yet")


@pytest.fixture(scope="module")
def lecture(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("e2e")
    photos = enrollment_folder(data_dir, root / "photos")
    rec = make_recording(data_dir, root / "lecture.mp4")
    home = root / "home"
    assert main(["--home", str(home), "--quiet", "enroll", str(photos), "--roster",
                 str(data_dir / "seed-roster.csv"), "--class", "DL-A"]) == 0
    assert main(["--home", str(home), "--quiet", "replay", str(rec.path), "--every", str(rec.every_s),
                 "--class", "DL-A"]) == 0
    return home, rec


# The face model in models/ (its figures on this class: models/README.md), enrolled on 40 photos spread
# over each folder, as here. On this recording the swapped captures of the impersonated tile are
# mismatch naming Siti; Nanda's close selfie of captures 5-9 has her
# forehead out of view (0.88-0.92 of the inner face in view) and scores under t_verify: held back as
# `unjudged` (cut), not an unknown_face alert (decide.hold_back). Not every recording is this kind to the
# model: rendered with each of seeds 1-12 (7 among them), 9 of 12 pass the test below; the other 3 raise a second
# alert on a whole face of Nanda or Siti (unknown_face twice, a mismatch naming Mareta once): issue 7.


def test_pipeline_records_every_capture_and_alerts_once_per_episode(lecture):
    """What holds whatever the model says: every capture stored, one alert per episode per participant,
    each with its evidence image and its console delivery on record; the camera-off lecturer never alerts."""
    home, rec = lecture
    db = sqlite3.connect(home / "rollcall.db")
    (sid,) = db.execute("SELECT id FROM sessions ORDER BY id LIMIT 1").fetchone()
    assert db.execute("SELECT count(*), min(tiles), max(tiles) FROM captures WHERE session_id = ?",
                      [sid]).fetchone() == (rec.frames, 6, 6)
    alerts = db.execute("SELECT id, participant, evidence FROM alerts WHERE session_id = ?", [sid]).fetchall()
    participants = [a[1] for a in alerts]
    assert len(participants) == len(set(participants))  # never two alerts for one participant's one episode
    assert not any("dosen" in p.lower() for p in participants)
    for alert_id, _, evidence in alerts:
        assert (home / evidence).is_file()
        assert db.execute("SELECT channel, ok FROM deliveries WHERE alert_id = ?", [alert_id]).fetchall() == [
            ("console", 1)]
    verdicts = dict(db.execute("SELECT verdict, count(*) FROM observations WHERE session_id = ? GROUP BY verdict",
                               [sid]).fetchall())
    assert verdicts.get("camera_off") == rec.frames  # the lecturer's initials tile, every capture


def test_sessions_lists_the_replay_whole_on_80_columns(lecture, capsys):
    home, rec = lecture
    db = sqlite3.connect(home / "rollcall.db")
    started, ended = db.execute("SELECT started, ended FROM sessions ORDER BY id LIMIT 1").fetchone()
    assert main(["--home", str(home), "sessions"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "DL-A" in line)
    assert f"{started[:10]} {started[11:16]}" in line and ended[11:16] in line
    assert f" {rec.frames} " in line and "done" in line


def test_exactly_the_impersonated_tile_alerts_once(lecture, roster):
    home, rec = lecture
    db = sqlite3.connect(home / "rollcall.db")
    alerts = db.execute("SELECT kind, student_id, display_name, identified_as, evidence FROM alerts").fetchall()
    names = {s.name: s.student_id for s in roster}
    assert [(a[0], a[1], a[3]) for a in alerts] == [
        ("mismatch", names[rec.impostor_tile], names[rec.impostor_face])]
    assert (home / alerts[0][4]).is_file()  # evidence crop on disk
    # the console channel delivered it, and the attempt is on record
    assert db.execute("SELECT channel, attempt, ok FROM deliveries").fetchall() == [("console", 1, 1)]


def test_every_capture_stored_and_reported(lecture, tmp_path):
    home, rec = lecture
    out = tmp_path / "r.json"
    assert main(["--home", str(home), "report", "last", "--format", "json", "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["session"]["captures"] == rec.frames
    students = {s["name"]: s for s in report["students"]}
    assert students[rec.impostor_tile]["status"] == "flagged"
    for name in rec.names[:5]:
        assert students[name]["present_s"] == rec.frames * rec.every_s
        if name != rec.impostor_tile:
            assert students[name]["status"] == "verified", students[name]
    # the lecturer's camera-off tile is reported, not accused
    assert any(u["display_name"] == "Dosen Pengampu" for u in report["unlabeled"])


def test_a_replay_report_shows_time_into_the_recording(lecture, tmp_path, capsys):
    """0:10 in the video, not the minute the replay ran: the terminal summary, the HTML timeline."""
    import re
    home, rec = lecture
    (sid,) = sqlite3.connect(home / "rollcall.db").execute("SELECT min(id) FROM sessions").fetchone()
    assert main(["--home", str(home), "report", str(sid)]) == 0
    out = capsys.readouterr().out
    (when,) = re.findall(r"#1 (\S+) mismatch", out)
    m, s = (int(x) for x in when.split(":"))
    # opened within confirm_n captures of the swap's start, in video time
    assert rec.swap[0] * rec.every_s <= 60 * m + s <= rec.swap[1] * rec.every_s, out
    html = tmp_path / "r.html"
    assert main(["--home", str(home), "report", str(sid), "-o", str(html)]) == 0
    last = f"0:{round((rec.frames - 1) * rec.every_s):02d}"
    assert f"<span>0:00</span><span>{last}</span>" in html.read_text()


# ------------------------------------------------------------------------------ live screen (Xvfb)
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402

from .test_sources import screen_showing  # noqa: E402


@pytest.fixture(scope="module")
def live_screen(lecture):
    """The demo lecture's impersonation frame shown on a real X screen."""
    home, rec = lecture
    cap = cv2.VideoCapture(str(rec.path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, rec.swap[0])
    ok, frame = cap.read()
    assert ok
    with screen_showing(frame) as display:
        yield home, display


def _rollcall(home, display, *args):
    env = {**os.environ, "DISPLAY": display}
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "--home", str(home), "--quiet", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _session_rows(home):
    db = sqlite3.connect(home / "rollcall.db")
    return db.execute("SELECT s.id, s.ended, s.status, count(c.id), max(c.tiles) FROM sessions s "
                      "LEFT JOIN captures c ON c.session_id = s.id GROUP BY s.id ORDER BY s.id").fetchall()


def test_live_run_stops_on_sigterm_and_closes_the_session(live_screen):
    home, display = live_screen
    before = len(_session_rows(home))
    p = _rollcall(home, display, "run", "--every", "1", "--class", "DL-A")
    deadline = time.time() + 120
    while time.time() < deadline:
        rows = _session_rows(home)
        if len(rows) > before and rows[-1][3] >= 2:
            break
        time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    sid, ended, status, captures, tiles = _session_rows(home)[-1]
    assert ended and captures >= 2 and tiles == 6


def test_sigkill_keeps_committed_captures_and_reports(live_screen, tmp_path):
    home, display = live_screen
    p = _rollcall(home, display, "run", "--every", "1")
    deadline = time.time() + 120
    while time.time() < deadline:
        rows = _session_rows(home)
        if rows and rows[-1][1] is None and rows[-1][3] >= 2:
            break
        time.sleep(0.5)
    p.kill()
    p.wait(10)
    sid, ended, status, captures, _ = _session_rows(home)[-1]
    assert ended is None and captures >= 2
    out = tmp_path / "r.json"
    assert main(["--home", str(home), "report", str(sid), "--format", "json", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["session"]["captures"] == captures
