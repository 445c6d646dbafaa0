"""The report as CSV: one row per student, the fields of the JSON's `students` in the same order
(display names joined with ';'; null as an empty cell).

Names come from students (display names) and the roster: a cell a spreadsheet would read as a formula
is neutralised by OWASP's rule (a leading `'`), and every text cell is quoted (so a line break in a name
stays inside its cell); numbers rollcall computed are written as bare numbers.
"""
from __future__ import annotations

import csv
import io

FIELDS = ("student_id", "name", "status", "present_s", "first_seen", "last_seen",
          "camera_on_pct", "verified_pct", "mismatch_captures", "unknown_face_captures",
          "display_names")

# what makes Excel, LibreOffice or Google Sheets start a formula (OWASP, CSV Injection; ASVS 1.2.10 adds NUL)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")


def neutralise(text: str) -> str:
    """`text` safe in a spreadsheet cell: each ';'-separated piece that starts like a formula gets a
    leading `'`. Pieces, not only the cell: ';' is the list separator of our own joined lists and the
    field separator a spreadsheet in many locales splits a CSV on, so every piece may open a cell."""
    return ";".join("'" + p if p.startswith(_FORMULA_START) else p for p in text.split(";"))


def _cell(value) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value    # a number rollcall computed: never text a student chose
    if isinstance(value, list):
        return neutralise(";".join(str(v) for v in value))
    return neutralise(str(value))


def to_csv(report: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(FIELDS)
    for st in report["students"]:
        writer.writerow([_cell(st[f]) for f in FIELDS])
    return out.getvalue()
