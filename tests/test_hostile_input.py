"""Display names, roster names, folder names and command-line numbers are data, never markup, control
sequences or a way past a check (issue: hostile input). A student chooses their own display name, and the
student most motivated to choose a hostile one is the one being impersonated for."""
import contextlib
import io
import json
import os
import sqlite3

import pytest

from bot.cli import main
from bot.display import PlainConsole, hidden_characters, visible

from scenes.recording import enrollment_folder, make_recording

NOVIA = "[/]Novia Evianti"          # closes a rich tag that was never opened: a MarkupError once
RIZKY = "[bold]Rizky Putri Pratiwi"
STRANGER = "[bold]Budi[/] Santoso"  # in the roster, never on screen


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture(scope="module")
def hostile_lecture(tmp_path_factory, data_dir):
    """Siti's face in the tile labelled `[/]Novia Evianti`, a class named `[/]DL-A`, and a roster
    whose names and aliases hold markup: enrolled and replayed; (home, recording, replay's stderr)."""
    root = tmp_path_factory.mktemp("hostile")
    photos = enrollment_folder(data_dir, root / "photos")
    roster = root / "roster.csv"
    roster.write_text((data_dir / "seed-roster.csv").read_text().rstrip("\n").replace(
        "Novia Evianti,Novia,", f"Novia Evianti,{NOVIA};Novia,") + f"\nX99,{STRANGER},[red]Budi,\n")
    rec = make_recording(data_dir, root / "lecture.mp4", impostor_tile="Novia Evianti",
                         impostor_face="Siti Zubaidah", labels={"Novia Evianti": NOVIA, "Rizky Putri Pratiwi": RIZKY})
    home = root / "home"
    assert main(["--home", str(home), "--quiet", "enroll", str(photos), "--roster", str(roster),
                 "--class", "[/]DL-A"]) == 0
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["--home", str(home), "replay", str(rec.path), "--every", str(rec.every_s), "--class", "[/]DL-A"])
    assert rc == 0, err.getvalue()
    return home, rec, err.getvalue()


def test_the_alert_line_of_a_markup_display_name_prints(hostile_lecture):
    home, rec, err = hostile_lecture
    db = sqlite3.connect(home / "rollcall.db")
    alerts = db.execute("SELECT kind, student_id, display_name, identified_as FROM alerts").fetchall()
    assert [(k, s, i) for k, s, _, i in alerts] == [("mismatch", "G1A021902", "G1A021002")]
    shown = alerts[0][2]
    assert "[" in shown and "Novia" in shown  # the OCR read the bracket: the label is hostile as rendered
    alert_lines = [line for line in err.splitlines() if "mismatch" in line.lower() or "Novia" in line]
    assert any(shown in line for line in alert_lines), err
    assert "pending" not in err and "MarkupError" not in err and "closing tag" not in err
    assert db.execute("SELECT channel, ok FROM deliveries").fetchall() == [("console", 1)]


@pytest.mark.parametrize("argv", [["sessions"], ["report", "last"], ["report", "last", "--format", "csv"],
                                  ["report", "last", "--format", "json"], ["roster", "list"]])
def test_every_command_shows_markup_names_as_text(hostile_lecture, capsys, argv):
    home, _, _ = hostile_lecture
    assert main(["--home", str(home), *argv]) == 0
    out = capsys.readouterr().out
    if argv[0] == "sessions":
        assert "[/]DL-A" in out
    if argv == ["roster", "list"]:
        assert STRANGER in out and "[red]Budi" in out and NOVIA in out
    if argv == ["report", "last"]:
        assert "Novia Evianti" in out and "[/]" in out


def test_inspect_a_frame_with_markup_labels(hostile_lecture, tmp_path, capsys):
    import cv2
    home, rec, _ = hostile_lecture
    cap = cv2.VideoCapture(str(rec.path))
    ok, frame = cap.read()
    cap.release()
    assert ok
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), frame)
    assert main(["--home", str(home), "inspect", str(image)]) == 0
    assert main(["--home", str(home), "inspect", str(image), "--json"]) == 0
    out = capsys.readouterr().out
    assert "Novia" in out


def test_control_and_bidi_characters_are_written_out():
    raw = "Mareta\x1b[2J\x1b]0;owned\x07 \u202eailanA\u2066x\u2069\x9b"
    assert visible(raw) == r"Mareta\x1b[2J\x1b]0;owned\x07 \u202eailanA\u2066x\u2069\x9b"
    assert visible("two\nlines\tok") == "two\nlines\tok"
    assert visible("two\nlines", one_line=True) == r"two\x0alines"
    assert hidden_characters("Siti Zubaidah") == [] and hidden_characters("Siti\x1bZ") == [r"\x1b"]
    buf = io.StringIO()
    PlainConsole(file=buf, width=200).print(f"[/]{raw} :smile: [bold]x[/bold]")
    text = buf.getvalue()
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert text.startswith("[/]Mareta\\x1b[2J") and ":smile: [bold]x[/bold]" in text


def test_a_roster_name_with_an_escape_sequence_is_refused(tmp_path, capsys, home):
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,name\nG1,Siti\x1b[31m Zubaidah\n")
    assert main(["--home", str(home), "roster", "import", str(roster)]) == 1
    err = capsys.readouterr().err
    assert f"{roster}: line 2: name holds control characters (\\x1b)" in err and "\x1b" not in err
    assert not (home / "rollcall.db").exists() or not sqlite3.connect(home / "rollcall.db").execute(
        "SELECT count(*) FROM students").fetchone()[0]


@pytest.mark.parametrize("folder", ["!!!", "Siti\u202eZ"])
def test_an_enroll_folder_that_names_nobody_is_one_line(tmp_path, capsys, home, data_dir, folder):
    photos = tmp_path / "photos"
    (photos / folder).mkdir(parents=True)
    (photos / folder / "1.jpg").write_bytes((data_dir / "seed-faces" / "Siti Zubaidah" / "001.jpg").read_bytes())
    assert main(["--home", str(home), "enroll", str(photos)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rollcall: error: ") and len(err.strip().splitlines()) == 1 and "\u202e" not in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_among_the_photos_is_not_read(tmp_path, capsys, home, data_dir):
    photos = tmp_path / "photos" / "Siti Zubaidah"
    photos.mkdir(parents=True)
    for p in sorted((data_dir / "seed-faces" / "Siti Zubaidah").glob("*.jpg"))[:3]:
        (photos / p.name).write_bytes(p.read_bytes())
    os.mkfifo(photos / "p.jpg")  # a read of it would block for ever
    assert main(["--home", str(home), "--quiet", "enroll", str(photos.parent)]) == 0
    db = sqlite3.connect(home / "rollcall.db")
    assert db.execute("SELECT count(*) FROM embeddings").fetchone()[0] >= 1


@pytest.mark.parametrize("argv, key", [
    (["purge", "--older-than", "inf"], "--older-than"), (["purge", "--older-than", "nan"], "--older-than"),
    (["purge", "--older-than", "1e308"], "--older-than"), (["purge", "--older-than", "-1"], "--older-than"),
    (["replay", "VIDEO", "--every", "nan"], "--every"), (["replay", "VIDEO", "--every", "inf"], "--every"),
    (["replay", "VIDEO", "--every", "-5"], "--every"), (["replay", "VIDEO", "--every", "0"], "--every"),
    (["run", "--every", "nan"], "--every"), (["run", "--minutes", "-1"], "--minutes"),
])
def test_numbers_out_of_range_are_one_line_and_store_nothing(argv, key, capsys, home):
    from bot.config import PROJECT_DIR
    argv = [str(PROJECT_DIR / "demo" / "lecture.mp4") if a == "VIDEO" else a for a in argv]
    assert main(["--home", str(home), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"rollcall: error: {key}: ") and len(err.strip().splitlines()) == 1
    db = home / "rollcall.db"
    assert not db.exists() or sqlite3.connect(db).execute("SELECT count(*) FROM sessions").fetchone()[0] == 0


@pytest.mark.parametrize("text, key", [(b"[capture]\nevery_s = 5 # caf\xe9\n", "not UTF-8"),
                                       (b"[capture]\nevery_s = inf\n", "capture.every_s"),
                                       (b"[capture]\nevery_s = nan\n", "capture.every_s"),
                                       (b"[retention]\ndays = inf\n", "retention.days"),
                                       (b"[faces]\nblur_min = nan\n", "faces.blur_min"),
                                       (b"[faces]\nfull_pass_every = 0\n", "faces.full_pass_every"),
                                       (b"[names]\nreread_every = -1\n", "names.reread_every"),
                                       (b"[recognition]\nvector_refresh = 1.5\n", "recognition.vector_refresh"),
                                       (b"[recognition]\ncapture_budget_ms = nan\n", "recognition.capture_budget_ms"),
                                       (b"[recognition]\ncapture_budget_ms = -1\n", "recognition.capture_budget_ms")])
def test_settings_that_are_not_text_or_not_finite_are_one_line(tmp_path, capsys, home, text, key):
    cfg = tmp_path / "settings.toml"
    cfg.write_bytes(text)
    assert main(["--home", str(home), "--config", str(cfg), "sessions"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"rollcall: error: {cfg}: ") and key in err and len(err.strip().splitlines()) == 1


def test_json_report_keeps_the_names_as_they_were_read(hostile_lecture, capsys):
    home, _, _ = hostile_lecture
    assert main(["--home", str(home), "report", "last", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["session"]["class"] == "[/]DL-A"
