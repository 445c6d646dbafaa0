"""Bad input through the real CLI: one line `rollcall: error: <file or key>: <problem>`, exit 1, no traceback,
and nothing already stored is lost."""
import sqlite3

import cv2
import numpy as np
import pytest

from bot.cli import main
from bot.config import PROJECT_DIR

MODEL = PROJECT_DIR / "models" / "face_embed.tflite"
needs_model = pytest.mark.skipif(not MODEL.exists(), reason="no trained model in models/ yet")


def run(capsys, *args):
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def one_error_line(err: str, *needles: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("rollcall: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def import_roster(capsys, home, path, text):
    path.write_text(text)
    assert run(capsys, "--home", home, "roster", "import", path)[0] == 0


def test_help_for_every_command(capsys):
    for cmd in (["enroll"], ["roster", "import"], ["roster", "list"], ["run"], ["replay"], ["sessions"],
                ["report"], ["evaluate"], ["alerts", "test"], ["purge"], ["forget"], ["inspect"], ["doctor"]):
        rc, out, _ = run(capsys, *cmd, "--help")
        assert rc == 0 and "Usage" in out, cmd


def test_usage_error_exits_2(capsys):
    rc, _, err = run(capsys, "report")
    assert rc == 2



def test_every_user_facing_error_derives_from_the_one_base():
    """The CLI catches RollcallError once: each module's error class derives from it (and keeps its
    builtin base, which callers may catch)."""
    import importlib
    import pkgutil

    import bot
    from bot.errors import RollcallError
    found = set()
    for m in pkgutil.iter_modules(bot.__path__, "bot."):
        if m.name.startswith(("bot.train", "bot.__main__")):
            continue
        for name, obj in vars(importlib.import_module(m.name)).items():
            if isinstance(obj, type) and issubclass(obj, Exception) and obj.__module__ == m.name:
                found.add(name)
                assert issubclass(obj, RollcallError), name
    assert {"ConfigError", "StoreError", "SourceError", "OcrError", "VerifierError", "ChannelError",
            "DetectorError", "ModelError"} <= found

def test_malformed_settings_file(capsys, tmp_path, home):
    bad = tmp_path / "s.toml"
    bad.write_text("[capture\nevery_s = 3\n")
    rc, _, err = run(capsys, "--home", home, "--config", bad, "replay", tmp_path)
    assert rc == 1
    one_error_line(err, str(bad), "not valid TOML")


@pytest.mark.parametrize("text, key", [
    ("[capture]\nevery_secs = 3\n", "capture.every_secs"),
    ("[capture]\nevery_s = -1\n", "capture.every_s"),
    ("[alerts]\nchannels = ['pigeon']\n", "alerts.channels"),
    ("[alerts.webhook]\nformat = 'xml'\n", "alerts.webhook.format"),
    ("[faces]\nmin_face_px = 'big'\n", "faces.min_face_px"),
    ("[faces]\nmin_in_view = 1.5\n", "faces.min_in_view"),
    ("[faces]\nflag_in_view = 0.5\n", "faces.flag_in_view"),
])
def test_bad_setting_named(capsys, tmp_path, home, text, key):
    cfg = tmp_path / "s.toml"
    cfg.write_text(text)
    rc, _, err = run(capsys, "--home", home, "--config", cfg, "replay", tmp_path)
    assert rc == 1
    one_error_line(err, key)


def test_webhook_url_not_http(capsys, tmp_path, home, monkeypatch):
    cfg = tmp_path / "s.toml"
    cfg.write_text("[alerts]\nchannels = ['webhook']\n")
    monkeypatch.setenv("ROLLCALL_WEBHOOK_URL", "ftp://example.invalid/hook")
    rc, _, err = run(capsys, "--home", home, "--config", cfg, "alerts", "test")
    assert rc == 1
    one_error_line(err, "ROLLCALL_WEBHOOK_URL")


def test_unreachable_smtp_host_reported_per_channel(capsys, tmp_path, home):
    cfg = tmp_path / "s.toml"
    cfg.write_text("[alerts]\nchannels = ['email']\n[alerts.email]\nhost = '127.0.0.1'\nport = 9\n"
                   "security = 'none'\nto = ['lecturer@example.org']\nuser_env = ''\npassword_env = ''\n")
    rc, out, err = run(capsys, "--home", home, "--config", cfg, "alerts", "test")
    assert rc == 1
    assert "email: failed" in out
    one_error_line(err, "alerts.email: 127.0.0.1:9:")


def test_corrupt_image_inspect(capsys, tmp_path, home):
    img = tmp_path / "shot.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    rc, _, err = run(capsys, "--home", home, "inspect", img)
    assert rc == 1
    one_error_line(err, str(img), "not a readable image")


def test_video_that_will_not_open(capsys, tmp_path, home):
    vid = tmp_path / "lecture.mp4"
    vid.write_bytes(b"\x00" * 1000)
    rc, _, err = run(capsys, "--home", home, "replay", vid)
    assert rc == 1
    one_error_line(err, str(vid))
    assert not (home / "rollcall.db").exists() or not _rows(home, "sessions")


def test_empty_folder(capsys, tmp_path, home):
    empty = tmp_path / "shots"
    empty.mkdir()
    rc, _, err = run(capsys, "--home", home, "replay", empty)
    assert rc == 1
    one_error_line(err, str(empty))


def test_missing_source(capsys, tmp_path, home):
    rc, _, err = run(capsys, "--home", home, "replay", tmp_path / "nope.mp4")
    assert rc == 1
    one_error_line(err, "nope.mp4")


@pytest.mark.parametrize("content, problem", [(None, "not found"), (b"garbage" * 100, "not a valid TFLite model")])
def test_missing_or_damaged_model(capsys, tmp_path, home, content, problem):
    model = tmp_path / "face.tflite"
    if content is not None:
        model.write_bytes(content)
    cfg = tmp_path / "s.toml"
    cfg.write_text(f"[recognition]\nmodel = '{model}'\n")
    shots = tmp_path / "shots"
    shots.mkdir()
    cv2.imwrite(str(shots / "1.png"), np.zeros((720, 1280, 3), np.uint8))
    rc, _, err = run(capsys, "--home", home, "--config", cfg, "replay", shots)
    assert rc == 1
    one_error_line(err, str(model), problem)


def test_roster_errors_name_the_line_and_store_nothing(capsys, tmp_path, home):
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,name\nA1,Ana\nA1,Budi\n")
    rc, _, err = run(capsys, "--home", home, "roster", "import", roster)
    assert rc == 1
    one_error_line(err, "roster.csv", "line 3", "A1")
    roster.write_text("student_id,name\nA1,\n")
    rc, _, err = run(capsys, "--home", home, "roster", "import", roster)
    assert rc == 1
    one_error_line(err, "line 2")
    assert not (home / "rollcall.db").exists() or not _rows(home, "students")


def test_unwritable_home(capsys, tmp_path):
    home = tmp_path / "afile"
    home.write_text("I am a file")
    rc, _, err = run(capsys, "--home", home, "sessions")
    assert rc == 1
    one_error_line(err, str(home))


def test_report_for_missing_session(capsys, home):
    rc, _, err = run(capsys, "--home", home, "report", "42")
    assert rc == 1
    one_error_line(err, "42")


def test_forget_unknown_student_touches_nothing(capsys, tmp_path, home):
    import_roster(capsys, home, tmp_path / "roster.csv", "student_id,name\nA1,Ana Putri\n")
    rc, _, err = run(capsys, "--home", home, "forget", "Nobody Here")
    assert rc == 1
    one_error_line(err, "Nobody Here")
    assert _rows(home, "students") == [("A1",)]


@needs_model
def test_enroll_folder_with_no_usable_face(capsys, tmp_path, home):
    photos = tmp_path / "photos" / "Ana Putri"
    photos.mkdir(parents=True)
    cv2.imwrite(str(photos / "wall.jpg"), np.full((200, 200, 3), 128, np.uint8))
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    rc, out, err = run(capsys, "--home", home, "enroll", tmp_path / "photos")
    assert rc == 1
    one_error_line(err, "Ana Putri", "no usable face")
    assert "1 no face" in out and "1 unreadable" in out


def test_max_photos_spreads_over_the_folder(tmp_path):
    from bot.enroll import photos_of, spread
    assert spread(list(range(10)), 4) == [0, 3, 6, 9]
    assert spread(list(range(3)), 5) == [0, 1, 2] and spread(list(range(3)), None) == [0, 1, 2]
    for i in range(7):
        (tmp_path / f"{i:03d}.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a photo")
    assert [p.name for p in photos_of(tmp_path, 3)] == ["000.jpg", "003.jpg", "006.jpg"]


@needs_model
def test_enroll_notes_a_student_whose_photos_are_all_one_sitting(capsys, tmp_path, home, data_dir):
    """Mareta Aliana's first photos are one selfie session (grey hijab, one room); Nanda's vary."""
    for name in ("Mareta Aliana", "Nanda Nurahmanita Putri"):
        d = tmp_path / "photos" / name
        d.mkdir(parents=True)
        for p in sorted((data_dir / "seed-faces" / name).iterdir())[:12]:
            (d / p.name).symlink_to(p.resolve())
    rc, out, err = run(capsys, "--home", home, "enroll", tmp_path / "photos")
    assert rc == 0
    notes = [ln for ln in err.splitlines() if "one sitting" in ln]
    assert len(notes) == 1 and "Mareta Aliana" in notes[0], err
    assert "Nanda" not in notes[0]


@needs_model
def _siti_enrolled(capsys, tmp_path, home, data_dir):
    """Siti enrolled from 3 photos (tmp_path/photos); returns a folder of one black screenshot to replay."""
    photos = tmp_path / "photos" / "Siti Zubaidah"
    photos.mkdir(parents=True)
    for p in sorted((data_dir / "seed-faces" / "Siti Zubaidah").iterdir())[:3]:
        (photos / p.name).symlink_to(p.resolve())
    shots = tmp_path / "shots"
    shots.mkdir()
    cv2.imwrite(str(shots / "1.png"), np.zeros((720, 1280, 3), np.uint8))
    assert run(capsys, "--home", home, "--quiet", "enroll", tmp_path / "photos")[0] == 0
    return shots


def test_vectors_of_another_model_are_refused_until_enrolled_again(capsys, tmp_path, home, data_dir):
    shots = _siti_enrolled(capsys, tmp_path, home, data_dir)
    db = sqlite3.connect(home / "rollcall.db")
    with db:  # as if enrolled by the face model an older rollcall shipped (the verifier's vectors stay)
        db.execute("UPDATE embeddings SET model = 'an older model' WHERE model NOT LIKE 'verifier:%'")
    rc, _, err = run(capsys, "--home", home, "--quiet", "replay", shots)
    assert rc == 1
    one_error_line(err, "face_embed.tflite", "3 of the 3", "another face model", "rollcall enroll")
    rc, out, _ = run(capsys, "--home", home, "doctor")
    assert rc == 1 and "3 of 3 enrolled photo vectors were made by another face model" in out
    assert db.execute("SELECT count(*) FROM embeddings").fetchone() == (6,)  # nothing lost by refusing
    assert run(capsys, "--home", home, "--quiet", "enroll", tmp_path / "photos")[0] == 0
    # the face model's 3 replaced, the verifier's 3 kept
    assert db.execute("SELECT count(*), count(DISTINCT model) FROM embeddings WHERE model != 'an older model'"
                      ).fetchone() == (6, 2)
    assert run(capsys, "--home", home, "--quiet", "replay", shots)[0] == 0
    assert "3 enrolled photo vectors, all made by this model" in run(capsys, "--home", home, "doctor")[1]


def test_a_class_enrolled_before_the_verifier_is_told_to_enroll_again(capsys, tmp_path, home, data_dir):
    shots = _siti_enrolled(capsys, tmp_path, home, data_dir)
    db = sqlite3.connect(home / "rollcall.db")
    with db:  # as an older rollcall enrolled it: the face model's vectors only
        db.execute("DELETE FROM embeddings WHERE model LIKE 'verifier:%'")
    rc, _, err = run(capsys, "--home", home, "--quiet", "replay", shots)
    assert rc == 1
    one_error_line(err, "rollcall.db", "1 enrolled students (siti-zubaidah)", "before the verifier", "rollcall enroll")
    assert db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    rc, out, _ = run(capsys, "--home", home, "doctor")
    assert rc == 1 and "enrolled before the verifier" in out
    assert run(capsys, "--home", home, "--quiet", "enroll", tmp_path / "photos")[0] == 0  # adds the verifier's
    assert db.execute("SELECT count(*) FROM embeddings WHERE model LIKE 'verifier:%'").fetchone() == (3,)
    assert run(capsys, "--home", home, "--quiet", "replay", shots)[0] == 0
    with db:  # as an older verifier recipe described them
        db.execute("UPDATE embeddings SET model = 'verifier:an older recipe' WHERE model LIKE 'verifier:%'")
    rc, _, err = run(capsys, "--home", home, "--quiet", "replay", shots)
    assert rc == 1
    one_error_line(err, "rollcall.db", "3 enrolled verifier vectors", "another verifier recipe", "rollcall enroll")
    rc, out, _ = run(capsys, "--home", home, "doctor")
    assert rc == 1 and "3 enrolled verifier vectors were made by another verifier recipe" in " ".join(out.split())
    assert run(capsys, "--home", home, "--quiet", "enroll", tmp_path / "photos")[0] == 0  # replaces them
    assert db.execute("SELECT count(DISTINCT model), count(*) FROM embeddings WHERE model LIKE 'verifier:%'"
                      ).fetchone() == (1, 3)
    assert run(capsys, "--home", home, "--quiet", "replay", shots)[0] == 0


@needs_model
def test_black_screen_is_a_capture_with_no_tiles(capsys, tmp_path, home):
    shots = tmp_path / "shots"
    shots.mkdir()
    cv2.imwrite(str(shots / "1.png"), np.zeros((720, 1280, 3), np.uint8))
    cv2.imwrite(str(shots / "2.png"), np.full((720, 1280, 3), 255, np.uint8))
    rc, _, err = run(capsys, "--home", home, "--quiet", "replay", shots)
    assert rc == 0, err
    assert _rows(home, "captures", "tiles") == [(0,), (0,)]


def _rows(home, table, cols="*"):
    db = sqlite3.connect(home / "rollcall.db")
    key = {"sessions": "id", "students": "student_id", "captures": "tiles"}[table]
    return db.execute(f"SELECT {cols if cols != '*' else key} FROM {table}").fetchall()


def test_run_without_a_display_points_to_replay(capsys, monkeypatch, home):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    rc, _, err = run(capsys, "--home", home, "run", "--minutes", "1")
    assert rc == 1
    one_error_line(err, "no display", "rollcall replay")
    assert not (home / "rollcall.db").exists() or not _rows(home, "sessions")


def test_run_region_must_be_four_numbers(capsys, home):
    rc, _, err = run(capsys, "--home", home, "run", "--region", "1,2,3")
    assert rc == 1
    one_error_line(err, "--region")


def test_forget_and_purge_from_the_command_line(capsys, tmp_path, home):
    import_roster(capsys, home, tmp_path / "roster.csv",
                  "student_id,name\nG1A021002,Siti Zubaidah\nG1A021038,Mareta Aliana\n")
    rc, out, _ = run(capsys, "--home", home, "forget", "Siti Zubaidah")
    assert rc == 0 and "forgot Siti Zubaidah" in out
    raw = b"".join(p.read_bytes() for p in home.glob("rollcall.db*"))
    assert b"Siti Zubaidah" not in raw and b"G1A021002" not in raw and b"Mareta Aliana" in raw
    rc, out, _ = run(capsys, "--home", home, "purge", "--older-than", "30")
    assert rc == 0 and out.startswith("purged")
    rc, _, err = run(capsys, "--home", home, "purge", "--older-than", "-1")
    assert rc == 1
    one_error_line(err, "--older-than")


def _stored(home):
    """Everything stored under home: the database's content and the evidence files."""
    db = sqlite3.connect(home / "rollcall.db")
    try:
        dump = list(db.iterdump())
    finally:
        db.close()
    return dump, sorted((p.relative_to(home), p.read_bytes()) for p in (home / "evidence").rglob("*") if p.is_file())


@pytest.fixture
def stored_home(home):
    """A home with a roster, one session with an alert, its evidence and a delivery."""
    from bot.store import Store
    from bot.types import Observation, Student, Verdict

    with Store(home) as store:
        store.upsert_students([Student("A1", "Ana Putri"), Student("B2", "Budi Santoso")], "DL-A")
        sid = store.start_session("DL-A", "video:x.mp4", 10, started="2024-05-01T10:00:00Z")
        cap = store.add_capture(sid, "2024-05-01T10:00:10Z", {}, [Observation(
            0, (0, 0, 320, 180), "Ana Putri", "A1", False, 1, (10, 10, 80, 80), 80, 40.0,
            Verdict("mismatch", 0.2, "B2"), "A1")])
        aid = store.add_alert(sid, "2024-05-01T10:00:10Z", "mismatch", capture_id=cap, student_id="A1",
                              display_name="Ana Putri", identified_as="B2", similarity=0.2, threshold=0.42)
        store.save_evidence(sid, aid, b"\xff\xd8 not really a jpeg")
        store.record_delivery(aid, "console", 1, True)
        store.end_session(sid, "done", ended="2024-05-01T10:01:00Z")
    return home


@pytest.mark.parametrize("case", ["malformed settings", "unknown channel", "webhook not http",
                                  "unreachable smtp", "missing session", "unknown student"])
def test_bad_input_touches_nothing_stored(capsys, tmp_path, stored_home, monkeypatch, case):
    home = stored_home
    before = _stored(home)
    shots = tmp_path / "shots"
    shots.mkdir()
    cv2.imwrite(str(shots / "1.png"), np.zeros((720, 1280, 3), np.uint8))
    cfg = tmp_path / "s.toml"
    monkeypatch.setenv("ROLLCALL_WEBHOOK_URL", "file:///etc/passwd")
    args, needle, out_needle = {
        # forget would delete A1 if the broken file were ignored
        "malformed settings": (("--config", cfg, "forget", "A1"), "not valid TOML", None),
        "unknown channel": (("--config", cfg, "replay", shots), "'pigeon'", None),
        "webhook not http": (("--config", cfg, "replay", shots), "ROLLCALL_WEBHOOK_URL", None),
        "unreachable smtp": (("--config", cfg, "alerts", "test"), "alerts.email: smtp.invalid:25:",
                             "email: failed: smtp.invalid:25"),
        "missing session": (("report", "42"), "session 42", None),
        "unknown student": (("forget", "Nobody Here"), "Nobody Here", None),
    }[case]
    cfg.write_text({
        "malformed settings": "[alerts\nchannels = 3\n",
        "unknown channel": "[alerts]\nchannels = ['console', 'pigeon']\n",
        "webhook not http": "[alerts]\nchannels = ['webhook']\n",
        "unreachable smtp": "[alerts]\nchannels = ['email']\n[alerts.email]\nhost = 'smtp.invalid'\nport = 25\n"
                            "security = 'none'\nto = ['lecturer@example.org']\nuser_env = ''\n",
    }.get(case, ""))
    rc, out, err = run(capsys, "--home", home, *args)
    assert rc == 1
    if needle:
        one_error_line(err, needle)
    if out_needle:
        assert out_needle in out and "Traceback" not in err
    assert _stored(home) == before
    assert "file:///etc/passwd" not in err + out    # the webhook URL is a secret: named, never shown


def test_alerts_test_prints_each_channel(capsys, tmp_path, home, monkeypatch):
    """Every configured channel gets the test alert; each result is one line; one failure is exit 1."""
    from aiosmtpd.controller import Controller

    from tests.test_alerts import Hook, Inbox, free_port

    hook, inbox = Hook(), Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    cfg = tmp_path / "s.toml"
    monkeypatch.setenv("ROLLCALL_WEBHOOK_URL", hook.url)

    def config(smtp_port):
        cfg.write_text("[alerts]\nchannels = ['console', 'webhook', 'email']\n[alerts.webhook]\nformat = 'slack'\n"
                       f"[alerts.email]\nhost = '127.0.0.1'\nport = {smtp_port}\nsecurity = 'none'\n"
                       "to = ['lecturer@example.org']\nuser_env = ''\n")
    try:
        config(smtp.port)
        rc, out, err = run(capsys, "--home", home, "--config", cfg, "alerts", "test")
        assert rc == 0, err
        results = [ln for ln in out.splitlines() if ln.startswith(("console:", "webhook:", "email:"))]
        assert [r.split(" (")[0] for r in results] == ["console: ok", "webhook: ok", "email: ok"]
        assert "TEST" in out                                   # the console channel's own line
        assert "TEST" in hook.requests[0][2]["text"] and len(inbox.messages) == 1
        config(free_port())                                    # the SMTP server is gone
        rc, out, err = run(capsys, "--home", home, "--config", cfg, "alerts", "test")
        assert rc == 1
        assert "webhook: ok" in out and "email: failed: 127.0.0.1:" in out
        one_error_line(err, "alerts.email: 127.0.0.1:")
    finally:
        smtp.stop()
        hook.close()
