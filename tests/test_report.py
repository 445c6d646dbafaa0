"""Reports of a hand-built session in a real SQLite file; expected figures worked out by hand."""
from __future__ import annotations

import base64
import csv
import io
import json
import re
from pathlib import Path

import pytest

from bot.report import csv_report, html, metrics, render, terminal, write
from bot.roster import load_roster
from bot.store import SessionInfo, Store, StoreError
from bot.types import Observation, Student, Verdict

SITI, MARETA, RIZKY, NANDA, NOVIA = "G1A021002", "G1A021038", "G1A021044", "G1A021901", "G1A021902"
T = "2024-05-01T10:00:{:02d}.000Z"


def seed_roster(data_dir: Path) -> list[Student]:
    """The seed class's roster, as `rollcall` reads it (the `roster` fixture, for helpers that are not tests)."""
    return load_roster(data_dir / "seed-roster.csv")


def tile(i: int, sid: str | None, verdict: str, display: str, camera_off: bool = False,
         identified_as: str | None = None, faces: int = 1) -> Observation:
    return Observation(tile_index=i, box=(i * 100, 0, 100, 60), display_name=display, student_id=sid,
                       camera_off=camera_off, faces=faces, face_box=None, face_px=60 if faces else 0,
                       blur=30.0, verdict=Verdict(verdict, similarity=0.8, identified_as=identified_as,
                                                  reason="small" if verdict == "unjudged" else ""),
                       participant=sid or display.casefold())


def captures_of_the_lecture() -> list[list[Observation]]:
    """Six captures 10 s apart. Rizky: seen 6 (one unjudged, two tiles in capture 2); Mareta: seen
    4, verified then mismatch x3 (face of Novia); Siti: absent; Nanda: seen 5, camera off; Novia:
    seen 4 (verified, verified, unknown_face, no_face); "iPhone" unlabeled in 3 (face Novia twice),
    "Guest 7" in 1."""
    rz = "G1A021044_Rizky Putri Pratiwi"
    caps: list[list[Observation]] = [[] for _ in range(6)]
    for k in range(6):
        caps[k].append(tile(0, RIZKY, "unjudged" if k == 4 else "verified", "Rizky" if k == 5 else rz))
    caps[2].append(tile(9, RIZKY, "verified", rz))
    caps[0].append(tile(1, MARETA, "verified", "Mareta Aliana"))
    for k in (1, 2, 3):
        caps[k].append(tile(1, MARETA, "mismatch", "Mareta Aliana", identified_as=NOVIA))
    for k in range(1, 6):
        caps[k].append(tile(2, NANDA, "camera_off", "Nanda", camera_off=True, faces=0))
    for k, v in enumerate(("verified", "verified", "unknown_face", "no_face")):
        caps[k].append(tile(3, NOVIA, v, "Novia Evianti", faces=0 if v == "no_face" else 1))
    for k, who in ((0, NOVIA), (1, NOVIA), (2, None)):
        caps[k].append(tile(4, None, "unlabeled", "iPhone", identified_as=who))
    caps[4].append(tile(5, None, "unlabeled", "Guest 7"))
    return caps


@pytest.fixture()
def lecture(tmp_path, data_dir):
    """A store with an earlier session (Siti present there) and the hand-built lecture (the last)."""
    evidence_jpeg = sorted((data_dir / "seed-faces" / "Novia Evianti").glob("*.jpg"))[0].read_bytes()
    with Store(tmp_path) as store:
        store.upsert_students(seed_roster(data_dir), "DL-A")
        other = store.start_session("DL-A", "screen:1", 10, started="2024-04-24T10:00:00Z")
        store.add_capture(other, "2024-04-24T10:00:05Z", {}, [tile(0, SITI, "verified", "Siti Zubaidah")])
        store.end_session(other, "done", ended="2024-04-24T10:00:10Z")

        sid = store.start_session("DL-A", "video:lecture.mp4", 10, started="2024-05-01T09:59:55Z")
        cap_ids = [store.add_capture(sid, T.format(10 * k), {"segment": 5.0, "names": 40.0}, tiles)
                   for k, tiles in enumerate(captures_of_the_lecture())]
        aid = store.add_alert(sid, T.format(30), "mismatch", capture_id=cap_ids[3], student_id=MARETA,
                              display_name="Mareta Aliana", identified_as=NOVIA, similarity=0.21,
                              threshold=0.42, participant=MARETA, model="verifier")
        rel = store.save_evidence(sid, aid, evidence_jpeg)
        store.end_session(sid, "done", ended="2024-05-01T10:01:00Z")
        yield {"store": store, "session": sid, "alert": aid, "evidence": rel, "jpeg": evidence_jpeg}


def expected(sid: int, aid: int) -> dict:
    none = {"first_seen": None, "last_seen": None, "camera_on_pct": None, "verified_pct": None}
    return {
        "session": {"id": sid, "class": "DL-A", "source": "video:lecture.mp4",
                    "started": "2024-05-01T09:59:55.000Z", "ended": "2024-05-01T10:01:00.000Z",
                    "duration_s": 65, "captures": 6, "interval_s": 10},
        "students": [
            {"student_id": SITI, "name": "Siti Zubaidah", "status": "absent", "present_s": 0, **none,
             "mismatch_captures": 0, "unknown_face_captures": 0, "display_names": []},
            {"student_id": MARETA, "name": "Mareta Aliana", "status": "flagged", "present_s": 40,
             "first_seen": T.format(0), "last_seen": T.format(30), "camera_on_pct": 100.0,
             "verified_pct": 25.0, "mismatch_captures": 3, "unknown_face_captures": 0,
             "display_names": ["Mareta Aliana"]},
            {"student_id": RIZKY, "name": "Rizky Putri Pratiwi", "status": "verified", "present_s": 60,
             "first_seen": T.format(0), "last_seen": T.format(50), "camera_on_pct": 100.0,
             "verified_pct": 100.0, "mismatch_captures": 0, "unknown_face_captures": 0,
             "display_names": ["G1A021044_Rizky Putri Pratiwi", "Rizky"]},
            {"student_id": NANDA, "name": "Nanda Nurahmanita Putri", "status": "camera_off",
             "present_s": 50, "first_seen": T.format(10), "last_seen": T.format(50),
             "camera_on_pct": 0.0, "verified_pct": None, "mismatch_captures": 0,
             "unknown_face_captures": 0, "display_names": ["Nanda"]},
            {"student_id": NOVIA, "name": "Novia Evianti", "status": "unverified", "present_s": 40,
             "first_seen": T.format(0), "last_seen": T.format(30), "camera_on_pct": 100.0,
             "verified_pct": 66.7, "mismatch_captures": 0, "unknown_face_captures": 1,
             "display_names": ["Novia Evianti"]},
        ],
        "unlabeled": [{"display_name": "iPhone", "captures": 3, "identified_as": NOVIA},
                      {"display_name": "Guest 7", "captures": 1, "identified_as": None}],
        "alerts": [{"id": aid, "time": T.format(30), "kind": "mismatch", "student_id": MARETA,
                    "display_name": "Mareta Aliana", "identified_as": NOVIA, "similarity": 0.21,
                    "threshold": 0.42, "model": "verifier", "evidence": f"evidence/{sid}/{aid}.jpg"}],
    }


def test_json_report_matches_hand_computed_figures(lecture):
    got = json.loads(render(lecture["store"], "last", "json"))
    assert got == expected(lecture["session"], lecture["alert"])
    assert list(got) == ["session", "students", "unlabeled", "alerts"]
    assert got == json.loads(render(lecture["store"], str(lecture["session"]), "json"))


def test_csv_report_one_row_per_student(lecture, tmp_path):
    path = write(lecture["store"], lecture["session"], "csv", tmp_path / "out" / "report.csv")
    text = path.read_text(encoding="utf-8")
    assert next(csv.reader(io.StringIO(text))) == [
        "student_id", "name", "status", "present_s", "first_seen", "last_seen", "camera_on_pct", "verified_pct",
        "mismatch_captures", "unknown_face_captures", "display_names"]
    # text quoted, numbers bare: a spreadsheet reads the numbers as numbers
    assert text.splitlines()[2].startswith(f'"{MARETA}","Mareta Aliana","flagged",40,')
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["student_id"] for r in rows] == [SITI, MARETA, RIZKY, NANDA, NOVIA]
    by_id = {r["student_id"]: r for r in rows}
    assert by_id[RIZKY]["display_names"] == "G1A021044_Rizky Putri Pratiwi;Rizky"
    assert by_id[NOVIA]["verified_pct"] == "66.7" and by_id[NOVIA]["status"] == "unverified"
    assert by_id[SITI]["first_seen"] == "" and by_id[SITI]["present_s"] == "0"
    assert by_id[MARETA]["mismatch_captures"] == "3"


def test_html_report_is_self_contained(lecture):
    page = render(lecture["store"], "last", "html")
    assert not re.search(r'(src|href)="(?!data:)', page)             # nothing to fetch
    images = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', page)
    assert [base64.b64decode(i) for i in images] == [lecture["jpeg"]]
    for name in ("Rizky Putri Pratiwi", "Mareta Aliana", "Nanda Nurahmanita Putri", "Novia Evianti"):
        assert name in page
    absent = page.split("<h2>Absent")[1].split("<h2>")[0]
    assert "Siti Zubaidah" in absent and "Rizky" not in absent
    assert page.count('<span class="badge flagged">') == 1
    assert page.count('<span class="badge verified">') == 1
    # one strip per participant: 4 seen students + 2 unlabeled names
    strips = re.findall(r'aria-label="verdicts of ([^"]+)">(.*?)</svg>', page, re.S)
    assert [label for label, _ in strips] == ["Mareta Aliana", "Nanda Nurahmanita Putri", "Novia Evianti",
                                              "Rizky Putri Pratiwi", "Guest 7", "iPhone"]
    mareta = dict(strips)["Mareta Aliana"]
    assert re.findall(r'class="(\w+)"', mareta) == ["verified", "mismatch"]   # runs, not cells
    assert 'x="150.0" y="0" width="450.0"' in mareta                           # captures 2-4 of 6


def test_html_says_when_evidence_file_is_missing(lecture, tmp_path):
    (tmp_path / lecture["evidence"]).unlink()
    page = render(lecture["store"], "last", "html")
    assert "data:image" not in page and f"evidence file {lecture['evidence']} is missing" in page


def test_terminal_summary(lecture):
    report = metrics.session_report(lecture["store"], "last")
    text = terminal.to_text(report)
    assert f"Session {lecture['session']}" in text and "captures 6" in text
    for name, status in (("Siti Zubaidah", "absent"), ("Mareta Aliana", "flagged"),
                         ("Rizky Putri Pratiwi", "verified"), ("Novia Evianti", "unverified")):
        line = next(line for line in text.splitlines() if name in line)
        assert status in line
    assert "Alerts (1)" in text and "'iPhone': 3 captures" in text
    # on an 80-column terminal every id and status is still whole (the clock times give way)
    narrow = terminal.to_text(report, width=80)
    assert narrow.splitlines()[1] == "started 2024-05-01 09:59:55Z  ended 10:01:00Z  duration 1.1 min"
    for sid, status in ((SITI, "absent"), (MARETA, "flagged"), (RIZKY, "verified"), (NOVIA, "unverified")):
        assert any(sid in line and status in line for line in narrow.splitlines())


def test_missing_session_is_named(lecture):
    with pytest.raises(StoreError, match="session 99: not found"):
        render(lecture["store"], 99, "html")
    with pytest.raises(StoreError, match="session yesterday"):
        metrics.session_report(lecture["store"], "yesterday")
    with pytest.raises(ValueError, match="--format pdf"):
        render(lecture["store"], "last", "pdf")


def test_status_thresholds_at_their_boundaries():
    info = SessionInfo(id=1, class_name=None, source="x", started=T.format(0), ended=None, interval_s=5,
                       status="running")
    caps = [{"id": k, "time": T.format(k)} for k in range(10)]

    def row(sid, k, verdict, camera_off=False):
        return {"capture_id": k, "time": T.format(k), "student_id": sid, "display_name": sid,
                "verdict": verdict, "camera_off": camera_off, "identified_as": None, "participant": sid}

    obs = [row("cam10", k, "verified" if k == 0 else "camera_off", camera_off=k > 0) for k in range(10)]
    obs += [row("cam0", k, "camera_off", camera_off=True) for k in range(10)]
    obs += [row("v90", k, "mismatch" if k == 0 else "verified") for k in range(10)]
    obs += [row("v78", k, "mismatch" if k < 2 else "verified") for k in range(9)]
    obs += [row("small", k, "unjudged") for k in range(3)]
    roster = [Student(s, s) for s in ("cam10", "cam0", "v90", "v78", "small")]
    report = metrics.compute(info, roster, caps, obs, [])
    got = {s["student_id"]: (s["status"], s["camera_on_pct"], s["verified_pct"]) for s in report["students"]}
    assert got == {"cam10": ("verified", 10.0, 100.0), "cam0": ("camera_off", 0.0, None),
                   "v90": ("verified", 100.0, 90.0), "v78": ("unverified", 100.0, 77.8),
                   "small": ("unverified", 100.0, None)}
    assert report["session"]["duration_s"] == 9 and report["session"]["ended"] is None


def test_timeline_runs_merge_equal_verdicts():
    runs = html.timeline_runs(["verified", "verified", None, "mismatch"], width=40)
    assert [(r["x"], r["w"], r["verdict"], r["first"], r["last"]) for r in runs] == [
        (0.0, 20.0, "verified", 1, 2), (30.0, 10.0, "mismatch", 4, 4)]
    assert csv_report.FIELDS[-1] == "display_names"


def test_report_command_summary_stdout_or_file(lecture, tmp_path, capsys):
    """`report` alone: the table; `--format F`: F on stdout, as is (pipe it to jq); `-o FILE`: a file,
    its format from --format or else the file's suffix."""
    from bot.cli import main

    home = str(lecture["store"].home)
    want = expected(lecture["session"], lecture["alert"])
    assert main(["--home", home, "report", "last"]) == 0
    table = capsys.readouterr().out
    assert "Mareta Aliana" in table and "flagged" in table and "Alerts (1)" in table
    assert main(["--home", home, "report", "last", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == want
    assert main(["--home", home, "report", str(lecture["session"]), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith('"student_id","name","status","present_s"')
    out = tmp_path / "out"
    assert main(["--home", home, "report", "last", "-o", str(out / "r.html")]) == 0
    assert (out / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert main(["--home", home, "report", "last", "-o", str(out / "r.txt")]) == 0
    assert json.loads((out / "r.txt").read_text(encoding="utf-8")) == want
    assert main(["--home", home, "report", "last", "--format", "csv", "-o", str(out / "r.json")]) == 0
    assert (out / "r.json").read_text(encoding="utf-8").startswith('"student_id",')
    capsys.readouterr()
    assert main(["--home", home, "report", "last", "--format", "pdf"]) == 1
    assert capsys.readouterr().err.strip() == "rollcall: error: --format: 'pdf' is not one of json, csv, html"


def test_timelines_give_a_second_tile_under_one_name_its_own_row():
    caps = [{"id": 1}, {"id": 2}]
    obs = [{"capture_id": c, "participant": p, "student_id": "S1", "display_name": "Siti Zubaidah", "verdict": v}
           for c in (1, 2) for p, v in (("S1", "verified"), ("S1#2", "mismatch"))]
    rows = metrics.timelines(caps, obs, [Student("S1", "Siti Zubaidah")])
    assert [(r["label"], r["verdicts"]) for r in rows] == [
        ("Siti Zubaidah", ["verified", "verified"]), ("Siti Zubaidah (tile 2)", ["mismatch", "mismatch"])]
