"""Roster CSV loading and slugs (bot/roster.py)."""
from pathlib import Path

import pytest

from bot.roster import RosterError, load_roster, slug


def _write(tmp_path: Path, text: str, name: str = "roster.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def test_seed_roster_loads(data_dir):
    students = load_roster(data_dir / "seed-roster.csv")
    assert [s.student_id for s in students] == [
        "G1A021002", "G1A021038", "G1A021044", "G1A021901", "G1A021902"]
    by_id = {s.student_id: s for s in students}
    assert by_id["G1A021044"].name == "Rizky Putri Pratiwi"
    assert by_id["G1A021901"].aliases == ("Nanda",)
    assert by_id["G1A021002"].aliases == ()
    assert by_id["G1A021002"].email == ""


def test_aliases_email_bom_extra_columns_and_blank_lines(tmp_path):
    p = _write(tmp_path, "\ufeffStudent_ID,Name,aliases,email,notes\n"
                         "A1, Rizky  Putri Pratiwi ,Rizky; Rizky P ;,rizky@example.ac.id,front row\n"
                         "\n"
                         "A2,\"Zubaidah, Siti\",,,\n")
    a1, a2 = load_roster(p)
    assert (a1.student_id, a1.name, a1.aliases, a1.email) == (
        "A1", "Rizky Putri Pratiwi", ("Rizky", "Rizky P"), "rizky@example.ac.id")
    assert a2.name == "Zubaidah, Siti" and a2.aliases == ()


def test_only_required_columns(tmp_path):
    (s,) = load_roster(_write(tmp_path, "name,student_id\nSiti Zubaidah,G1A021002\n"))
    assert (s.student_id, s.name, s.aliases, s.email) == ("G1A021002", "Siti Zubaidah", (), "")


@pytest.mark.parametrize("text, message", [
    ("student_id,name\nG1A021002,Siti\nG1A021038,Mareta\nG1A021002,Other\n",
     "roster.csv: line 4: duplicate student_id G1A021002 (first on line 2)"),
    # IDs are matched case-insensitively, so they must be unique that way too
    ("student_id,name\nG1A021002,Siti\ng1a021002,Other\n", "roster.csv: line 3: duplicate student_id g1a021002"),
    ("student_id,name\nG1A021002,Siti\n,Mareta\n", "roster.csv: line 3: missing student_id"),
    ("student_id,name\nG1A021002,\n", "roster.csv: line 2: missing name"),
    ("student_id,name\nG1A021002\n", "roster.csv: line 2: missing name"),
    ("id,name\n1,Siti\n", "roster.csv: line 1: missing column student_id"),
    ("student_id,full name\n1,Siti\n", "roster.csv: line 1: missing column name"),
    ("", "roster.csv: empty file"),
    ("student_id,name\n", "roster.csv: no students"),
    ("student_id,name,email\nA1,Siti,not-an-email\n", "roster.csv: line 2: bad email 'not-an-email'"),
])
def test_bad_rosters_name_file_and_line(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, text)
    with pytest.raises(RosterError) as e:
        load_roster("roster.csv")
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)


def test_line_numbers_count_quoted_newlines(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, 'student_id,name\nA1,"Siti\nZubaidah"\nA1,Dup\n')
    with pytest.raises(RosterError, match=r"^roster\.csv: line 4: duplicate student_id A1"):
        load_roster("roster.csv")


def test_unreadable_files(tmp_path):
    with pytest.raises(RosterError, match=r"missing\.csv: roster file not found"):
        load_roster(tmp_path / "missing.csv")
    latin1 = _write(tmp_path, "student_id,name\nA1,Zubaïdah\n", "latin1.csv", encoding="latin-1")
    with pytest.raises(RosterError, match=r"latin1\.csv: not UTF-8 text"):
        load_roster(latin1)
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x00\x01\x02student_id")
    with pytest.raises(RosterError, match=r"photo\.csv: not a text CSV"):
        load_roster(binary)
    with pytest.raises(RosterError, match=r"cannot read"):
        load_roster(tmp_path)  # a directory


def test_utf8_names_kept(tmp_path):
    (s,) = load_roster(_write(tmp_path, "student_id,name\n20200759,양예지\n"))
    assert s.name == "양예지"


@pytest.mark.parametrize("name, expected", [
    ("Siti Zubaidah", "siti-zubaidah"),
    ("  Rizky   Putri_Pratiwi ", "rizky-putri-pratiwi"),
    ("Zoë O'Hare-Núñez", "zoe-o-hare-nunez"),
    ("양예지", "양예지"),
    ("G1A021044_Rizky", "g1a021044-rizky"),
])
def test_slug(name, expected):
    assert slug(name) == expected


def test_slug_is_stable_and_distinct():
    assert slug("Siti Zubaidah") == slug("siti zubaidah") == slug("SITI-ZUBAIDAH")
    assert slug("Siti Zubaidah") != slug("Siti Zubaida")
    with pytest.raises(ValueError):
        slug(" ... ")
