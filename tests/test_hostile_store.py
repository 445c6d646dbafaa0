"""The store and the session under a hostile or clumsy home and under faults, on real SQLite files and
real folders, symlinks and locks: rollcall deletes and reads only what it wrote, keeps its files private
whatever the umask, stores face pixels only when a setting says so, keeps every alert through a full disk
or a locked database, never leaves a session `running`, and forget is not undone by a running session."""
from __future__ import annotations

import base64
import errno
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from bot.alerts.console import ConsoleChannel
from bot.alerts.worker import AlertDispatcher
from bot.cli import main
from bot.config import AlertSettings, ConfigError, RetentionSettings, Settings, TrackingSettings, load_settings
from bot.report import html, metrics
from bot.session import Session, delivery_recorder, replay
from bot.store import DB_NAME, Store, StoreError
from bot.types import Observation, Student, Verdict

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2024, 5, 6, 10, 0, tzinfo=timezone.utc)
STUDENTS = [Student("G1A021902", "Novia Evianti"), Student("G1A021038", "Mareta Aliana")]


def jpeg(colour=(0, 200, 0), size=112) -> bytes:
    return cv2.imencode(".jpg", np.full((size, size, 3), colour, np.uint8))[1].tobytes()


class Impostor:
    """The pipeline's interface without models: every capture shows G1A021902's tile with another face
    (a mismatch); with 1-of-1 tracking each capture after a verified one opens an alert, so `every`
    sets how often (1: only the first capture alerts, 2: every other capture)."""

    def __init__(self, every: int = 0):
        self.models = SimpleNamespace(thresholds=SimpleNamespace(t_verify=0.42))
        self.roster = STUDENTS
        self.every = every
        self.k = 0

    def process(self, frame, keep_crops=False):
        self.k += 1
        verdict = "mismatch" if not self.every or self.k % self.every == 0 else "verified"
        o = Observation(tile_index=0, box=(0, 0, 320, 180), display_name="Novia Evianti",
                        student_id="G1A021902", camera_off=False, faces=1, face_box=(100, 40, 80, 80),
                        face_px=80, blur=40.0, participant="G1A021902",
                        verdict=Verdict(verdict, similarity=0.2, identified_as="G1A021038"),
                        crop=np.full((180, 320, 3), 128, np.uint8) if keep_crops else None)
        return [o], {"segment": 1.0}


def settings(**retention) -> Settings:
    return Settings(tracking=TrackingSettings(confirm_n=1, window_m=1), retention=RetentionSettings(**retention))


def console(store):
    """A real dispatcher with the console channel, recording deliveries like `rollcall run` does."""
    lines: list[str] = []
    return AlertDispatcher(AlertSettings(retries=0), [ConsoleChannel(lines.append)],
                           record=delivery_recorder(store)), lines


def enrolled_home(home: Path, **kw) -> Store:
    store = Store(home, **kw).open()
    store.upsert_students(STUDENTS, "DL-A")
    for k, s in enumerate(STUDENTS):
        store.add_embeddings(s.student_id, np.ones((1, 8), np.float32), [f"h{k}"], [1.0], [jpeg()])
    return store


def old_session_with_evidence(store: Store, day: str = "2024-01-10") -> tuple[int, int, str]:
    """A finished session on `day` with one alert about G1A021902 and its evidence file."""
    sid = store.start_session("DL-A", "video:x.mp4", 10, started=f"{day}T10:00:00Z")
    cap = store.add_capture(sid, f"{day}T10:00:10Z", {}, [])
    aid = store.add_alert(sid, f"{day}T10:00:10Z", "mismatch", capture_id=cap, student_id="G1A021902",
                          display_name="Novia Evianti", identified_as="G1A021038", similarity=0.2, threshold=0.42)
    rel = store.save_evidence(sid, aid, jpeg())
    store.end_session(sid, "done", ended=f"{day}T10:01:00Z")
    return sid, aid, rel


# ------------------------------------------------------------------------------ only our own files

@pytest.mark.parametrize("how", ["purge", "forget"])
def test_strangers_files_and_symlinked_folders_are_left_alone(tmp_path, how):
    home, outside = tmp_path / "home", tmp_path / "outside"
    outside.mkdir()
    victims = [outside / "1.jpg", outside / "77.jpg", outside / "notes.txt"]
    for v in victims:
        v.write_bytes(b"not rollcall's")
    with enrolled_home(home) as store:
        sid, aid, rel = old_session_with_evidence(store)
        essay = home / "evidence" / "some-case" / "essay.docx"
        essay.parent.mkdir()
        essay.write_bytes(b"a student's essay")
        stray = home / "evidence" / str(sid) / "README.txt"
        stray.write_text("someone else's note in rollcall's folder")
        (home / "evidence" / "99").symlink_to(outside, target_is_directory=True)
        # a second old alert whose recorded path runs through the symlinked folder
        aid2 = store.add_alert(sid, "2024-01-10T10:00:20Z", "mismatch", student_id="G1A021902",
                               display_name="Novia Evianti")
        store.db.execute("UPDATE alerts SET evidence = 'evidence/99/1.jpg' WHERE id = ?", [aid2])
        store.db.conn.commit()
        assert (home / "evidence/99/1.jpg").read_bytes() == b"not rollcall's"   # the test can fail

        counts = store.purge(30, now="2024-03-01T00:00:00Z") if how == "purge" else store.forget("G1A021902")
    assert counts["alerts"] == 2 and counts["evidence_files"] == 1
    assert not (home / rel).exists()                                          # ours: gone
    assert all(v.read_bytes() == b"not rollcall's" for v in victims)          # behind the symlink: kept
    assert essay.read_bytes() == b"a student's essay" and stray.exists()      # strangers' files: kept
    assert (home / "evidence" / "99").is_symlink()


@pytest.mark.parametrize("how", ["purge", "forget"])
def test_a_symlinked_evidence_folder_is_never_followed(tmp_path, how):
    home, outside = tmp_path / "home", tmp_path / "outside"
    (outside / "1").mkdir(parents=True)
    victims = [outside / "1" / "1.jpg", outside / "1" / "2.jpg", outside / "essay.docx"]
    for v in victims:
        v.write_bytes(b"not rollcall's")
    with enrolled_home(home) as store:
        sid = store.start_session("DL-A", "video:x.mp4", 10, started="2024-01-10T10:00:00Z")
        aid = store.add_alert(sid, "2024-01-10T10:00:10Z", "mismatch", student_id="G1A021902",
                              display_name="Novia Evianti")
        store.end_session(sid, ended="2024-01-10T10:01:00Z")
        (home / "evidence").symlink_to(outside, target_is_directory=True)
        store.db.execute("UPDATE alerts SET evidence = ? WHERE id = ?", [f"evidence/{sid}/{aid}.jpg", aid])
        store.db.conn.commit()
        assert (home / f"evidence/{sid}/{aid}.jpg").exists()     # the recorded path reaches a victim
        # nor is evidence written through it
        with pytest.raises(StoreError, match="evidence.*symbolic link"):
            store.save_evidence(sid, aid, jpeg())
        counts = store.purge(30, now="2024-03-01T00:00:00Z") if how == "purge" else store.forget("Novia Evianti")
    assert counts["alerts"] == 1 and counts["evidence_files"] == 0
    assert all(v.read_bytes() == b"not rollcall's" for v in victims)
    assert sorted(p.name for p in (outside / "1").iterdir()) == ["1.jpg", "2.jpg"]


def test_an_edited_evidence_path_is_never_read_or_deleted(tmp_path):
    home = tmp_path / "home"
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"\xff\xd8\xff SECRET-PAYLOAD-7f3a")
    with enrolled_home(home) as store:
        sid, aid, rel = old_session_with_evidence(store, "2024-03-01")
        for bad in ("../secret.jpg", "evidence/../../secret.jpg", str(secret), "../../../../etc/passwd"):
            store.db.execute("UPDATE alerts SET evidence = ? WHERE id = ?", [bad, aid])
            store.db.conn.commit()
            assert store.evidence_path(bad) is None and store.read_evidence(bad) is None
            page = html.render(store, sid)
            assert "SECRET" not in page and "data:image" not in page
            assert base64.b64encode(secret.read_bytes())[:16].decode() not in page
            assert metrics.session_report(store, sid)["alerts"][0]["evidence"] is None
        # the real path still works, so the check above can fail
        store.db.execute("UPDATE alerts SET evidence = ? WHERE id = ?", [rel, aid])
        store.db.conn.commit()
        assert "data:image/jpeg" in html.render(store, sid)
        store.db.execute("UPDATE alerts SET evidence = '../secret.jpg' WHERE id = ?", [aid])
        store.db.conn.commit()
        store.forget("G1A021902")
    assert secret.exists()


# ------------------------------------------------------------------------------ private files

@pytest.fixture(params=[0o000, 0o022])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_home_database_and_evidence_are_private_whatever_the_umask(tmp_path, umask):
    home = tmp_path / "home"
    with enrolled_home(home) as store:
        sid = store.start_session("DL-A", "video:x.mp4", 10)
        aid = store.add_alert(sid, T0, "mismatch", student_id="G1A021902")
        rel = store.save_evidence(sid, aid, jpeg())
        made = [home / (DB_NAME + s) for s in ("", "-wal", "-shm")]
        assert all(p.exists() for p in made)
        assert mode(home) == 0o700
        assert {p.name: mode(p) for p in made} == {p.name: 0o600 for p in made}
        assert mode(home / rel) == 0o600
        assert mode(home / "evidence") == mode(home / "evidence" / str(sid)) == 0o700
        assert mode(home / "running") == 0o700 and mode(home / "running" / f"{sid}.lock") == 0o600
        store.end_session(sid)


def test_an_existing_open_home_is_tightened_on_open(tmp_path):
    home = tmp_path / "home"
    with enrolled_home(home) as store:
        sid = store.start_session("DL-A", "video:x.mp4", 10)
        aid = store.add_alert(sid, T0, "mismatch", student_id="G1A021902")
        rel = store.save_evidence(sid, aid, jpeg())
        store.end_session(sid)
    loose = [home, home / "evidence", home / "evidence" / str(sid), home / rel, home / DB_NAME]
    for p in loose:
        p.chmod(0o777 if p.is_dir() else 0o666)
    assert mode(home) == 0o777          # the test can fail
    Store(home).open().close()
    assert [mode(p) for p in loose] == [0o700, 0o700, 0o700, 0o600, 0o600]


# ------------------------------------------------------------------------------ enrolled face pixels

def test_reference_faces_are_kept_only_when_the_setting_says_so(tmp_path):
    home = tmp_path / "home"
    thumb = jpeg((10, 20, 250))
    with Store(home, reference_faces=True) as store:
        store.upsert_students(STUDENTS)
        store.add_embeddings("G1A021902", np.ones((1, 8), np.float32), ["h1"], [1.0], [thumb])
        assert store.reference_thumb("G1A021902") == thumb
        assert thumb in b"".join(p.read_bytes() for p in home.glob(DB_NAME + "*"))

    with Store(home, reference_faces=False) as store:     # off: the kept ones are cleared on open
        assert store.reference_thumb("G1A021902") is None
        store.add_embeddings("G1A021038", np.ones((1, 8), np.float32), ["h2"], [1.0], [thumb])
        assert store.reference_thumb("G1A021038") is None
        assert len(store.embeddings()[0]) == 2            # the embeddings themselves are kept
    raw = b"".join(p.read_bytes() for p in home.glob(DB_NAME + "*"))
    assert b"\xff\xd8\xff" not in raw                    # no JPEG byte left, free pages included


def test_reference_faces_setting_is_documented_validated_and_off_by_default(tmp_path):
    assert load_settings().retention.reference_faces is False
    text = (ROOT / "config" / "settings.toml").read_text()
    assert "\nreference_faces = false" in text
    bad = tmp_path / "settings.toml"
    bad.write_text('[retention]\nreference_faces = "yes"\n')
    with pytest.raises(ConfigError, match="retention.reference_faces"):
        load_settings(bad)
    bad.write_text("[retention]\nreference_faces = true\n")
    assert load_settings(bad).retention.reference_faces is True
    assert "reference_faces" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("keep", [True, False])
def test_evidence_shows_the_enrolled_face_only_when_kept(tmp_path, keep):
    home = tmp_path / "home"
    with enrolled_home(home, reference_faces=keep) as store:
        sess = Session(Impostor(), store, None, settings(reference_faces=keep), "DL-A", "test", 1.0)
        sess.capture(np.zeros((180, 320, 3), np.uint8), T0)
        sess.close()
        (alert,) = store.alerts(sess.id)
        img = cv2.imread(str(store.evidence_path(alert["evidence"])))
    tile_w = round(320 * 240 / 180)
    # the tile (labelled with the expected student), and with reference faces on, both enrolled faces
    assert img.shape == (240 + 28, tile_w + 8 + (2 * (240 + 8) if keep else 0), 3)
    assert img[230, 5:tile_w].mean() < 60        # the name strip along the tile's bottom


# ------------------------------------------------------------------------------ faults

def test_a_full_disk_while_writing_evidence_keeps_the_alert(tmp_path, monkeypatch, caplog):
    import bot.home_files

    def full_disk(path, data):
        with open(path, "wb") as fh:
            fh.write(data[:100])            # half a file on disk, then no space
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    home = tmp_path / "home"
    with enrolled_home(home) as store:
        monkeypatch.setattr(bot.home_files, "write_private", full_disk)
        d, lines = console(store)
        sess = Session(Impostor(every=2), store, d, settings(), "DL-A", "test", 1.0)
        with caplog.at_level(logging.WARNING):
            replay(sess, [(k, np.zeros((180, 320, 3), np.uint8), "") for k in range(4)], start=T0)
        assert d.close(5) == 0 and sess.close()
        alerts = store.alerts(sess.id)
        info = store.session(sess.id)
        delivered = [store.deliveries(a["id"]) for a in alerts]
    assert (sess.alerts, len(alerts), len(lines)) == (2, 2, 2)        # every alert out on the console
    assert all(a["evidence"] is None for a in alerts)
    assert [[(r["channel"], r["ok"]) for r in ds] for ds in delivered] == [[("console", True)]] * 2
    assert (info.status, info.captures) == ("done", 4)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2 and all("No space left" in r.getMessage() for r in warned)
    assert [p.name for p in home.rglob("*.tmp")] == [] and list(home.rglob("*.jpg")) == []


def test_a_database_locked_past_the_busy_timeout_loses_no_alert_and_no_session(tmp_path, caplog):
    home = tmp_path / "home"
    enrolled_home(home).close()
    store = Store(home, busy_timeout_s=0.2).open()
    d, lines = console(store)
    sess = Session(Impostor(every=2), store, d, settings(), "DL-A", "test", 1.0)
    frame = np.zeros((180, 320, 3), np.uint8)
    sess.capture(frame, T0)                                  # stored
    other = sqlite3.connect(home / DB_NAME, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")                         # a backup tool, a second rollcall
    try:
        with caplog.at_level(logging.WARNING):
            for k in (1, 2, 3):                              # capture 2 (k=1) is a mismatch: an alert
                sess.capture(frame, T0 + timedelta(seconds=k))
            assert d.close(5) == 0
            assert sess.close() is False                     # cannot be marked ended now
    finally:
        other.execute("ROLLBACK")
        other.close()
    # captures 2 and 4 are mismatches after a verified one: two alerts, neither stored
    assert (sess.captures, sess.skipped, sess.alerts) == (1, 3, 2)
    assert len(lines) == 2 and all("MISMATCH" in ln for ln in lines)   # delivered on the console all the same
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert all("busy" in w for w in warned) and len(warned) == 6   # 3 captures, 2 alerts, the end
    assert not any(r.exc_info for r in caplog.records)
    assert store.session(sess.id).status == "running"
    store.close()                                            # the process ends without marking it

    with Store(home) as store:                               # the next start repairs it
        new = store.start_session("DL-A", "test", 1.0)
        old = store.session(sess.id)
        assert (old.status, old.ended, old.captures) == ("interrupted", old.last_capture, 1)
        assert old.ended == "2024-05-06T10:00:00.000Z"
        assert store.session(new).status == "running"
        store.end_session(new)


KILLED = textwrap.dedent("""
    import os, sys
    from bot.store import Store
    store = Store(sys.argv[1]).open()
    sid = store.start_session("DL-A", "screen:1", 10)
    store.add_capture(sid, "2024-05-06T10:00:00Z", {}, [])
    print(sid, flush=True)
    if sys.argv[2] == "crash":
        os._exit(9)                      # no end_session, no close: as a kill would leave it
    sys.stdin.readline()                 # running until told to stop
    store.end_session(sid)
    print("ended", flush=True)
""")


def test_a_crashed_session_is_repaired_at_the_next_start_and_a_live_one_is_not(tmp_path):
    home = tmp_path / "home"
    enrolled_home(home).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    live = subprocess.Popen([sys.executable, "-c", KILLED, str(home), "wait"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        running = int(live.stdout.readline())
        crashed = subprocess.run([sys.executable, "-c", KILLED, str(home), "crash"], capture_output=True,
                                 text=True, env=env, timeout=300)
        dead = int(crashed.stdout)
        with Store(home) as store:
            assert store.session(dead).status == "running"          # opening alone repairs nothing
            mine = store.start_session("DL-A", "test", 1.0)
            assert store.session(dead).status == "interrupted"
            assert store.session(dead).ended == "2024-05-06T10:00:00.000Z"
            assert store.session(running).status == "running"       # its process is alive
            store.end_session(mine)
        live.stdin.write("\n")
        live.stdin.flush()
        assert live.stdout.readline().strip() == "ended"
    finally:
        live.kill()
        live.wait()
    with Store(home) as store:
        assert store.session(running).status == "done"


# ------------------------------------------------------------------------------ forget

def run(capsys, *args):
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_forget_refuses_while_a_session_runs_and_not_after_a_crash(tmp_path, capsys):
    home = tmp_path / "home"
    enrolled_home(home).close()
    session = Store(home).open()                 # a running session (the lock is held in this process)
    sid = session.start_session("DL-A", "screen:1", 10)
    rc, out, err = run(capsys, "--home", home, "forget", "G1A021902")
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("rollcall: error: G1A021902: session") and "running" in lines[0]
    with Store(home) as store:
        assert store.get_student("G1A021902") is not None      # nothing forgotten
    session.close()                               # gone without ending it: as after a crash
    rc, out, err = run(capsys, "--home", home, "forget", "g1a021902")   # ids are case-insensitive
    assert rc == 0, err
    with Store(home) as store:
        assert store.get_student("G1A021902") is None
        assert store.session(sid).status == "interrupted"


def test_commands_under_a_locked_database_say_so_in_one_line(tmp_path, capsys, monkeypatch):
    import bot.store

    home = tmp_path / "home"
    enrolled_home(home, reference_faces=False).close()
    monkeypatch.setitem(bot.store.Store.__init__.__kwdefaults__, "busy_timeout_s", 0.2)
    other = sqlite3.connect(home / DB_NAME, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        rc, out, err = run(capsys, "--home", home, "sessions")       # reading needs no write lock
        assert rc == 0 and err == ""
        rc, out, err = run(capsys, "--home", home, "forget", "G1A021902")
    finally:
        other.execute("ROLLBACK")
        other.close()
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith(f"rollcall: error: {home / DB_NAME}: cannot") and "busy" in lines[0]
    with Store(home) as store:
        assert store.get_student("G1A021902") is not None
