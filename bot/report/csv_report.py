"""The report as CSV: one row per student, the fields of the JSON's `students` in the same order
(display names joined with ';'; null as an empty cell)."""
from __future__ import annotations

import csv
import io

FIELDS = ("student_id", "name", "status", "present_s", "first_seen", "last_seen",
          "camera_on_pct", "verified_pct", "mismatch_captures", "unknown_face_captures",
          "display_names")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


def to_csv(report: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for st in report["students"]:
        writer.writerow([_cell(st[f]) for f in FIELDS])
    return out.getvalue()
