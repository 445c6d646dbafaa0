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

from .recording import enrollment_folder, make_recording

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


def test_exactly_the_impersonated_tile_alerts_once(lecture, data_dir):
    home, rec = lecture
    db = sqlite3.connect(home / "rollcall.db")
    alerts = db.execute("SELECT kind, student_id, display_name, identified_as, evidence FROM alerts").fetchall()
    roster = {r.split(",")[1]: r.split(",")[0] for r in (data_dir / "seed-roster.csv").read_text().splitlines()[1:]}
    assert [(a[0], a[1], a[3]) for a in alerts] == [
        ("mismatch", roster[rec.impostor_tile], roster[rec.impostor_face])]
    assert (home / alerts[0][4]).is_file()  # evidence crop on disk


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
