"""Roster CSV -> students; folder names -> student ids.

Format (DESIGN.md "Roster"): a header row; required columns `student_id,name`; optional `aliases`
(`;`-separated) and `email`; other columns are ignored so a spreadsheet export with extra columns loads.
"""
from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path

from bot.display import hidden_characters
from bot.errors import RollcallError
from bot.types import Student

REQUIRED = ("student_id", "name")


class RosterError(RollcallError, ValueError):
    """A bad roster file; str() is the one line shown to the user (file and line named)."""


def load_roster(path: str | Path) -> list[Student]:
    """Read a roster CSV. Raises RosterError naming the file (and line) on any problem."""
    where = str(path)
    try:
        # utf-8-sig: spreadsheet programs often prepend a BOM that would otherwise corrupt the header.
        with open(path, encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise RosterError(f"{where}: roster file not found") from None
    except UnicodeDecodeError as e:
        raise RosterError(f"{where}: not UTF-8 text (byte {e.start}); save the roster as UTF-8 CSV") from None
    except OSError as e:
        raise RosterError(f"{where}: cannot read ({e.strerror})") from None
    if "\x00" in text:
        raise RosterError(f"{where}: not a text CSV file (contains NUL bytes)")

    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = next(reader, None)
        if header is None:
            raise RosterError(f"{where}: empty file (expected a header: student_id,name,aliases,email)")
        columns = [h.strip().lower() for h in header]
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise RosterError(f"{where}: line 1: missing column {', '.join(missing)} "
                              f"(header must include student_id,name)")
        col = {c: columns.index(c) for c in ("student_id", "name", "aliases", "email") if c in columns}

        students: list[Student] = []
        seen: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank lines are harmless
            fields = {c: (row[i].strip() if i < len(row) else "") for c, i in col.items()}
            for c in REQUIRED:
                if not fields[c]:
                    raise RosterError(f"{where}: line {line}: missing {c}")
            for c, value in fields.items():
                hidden = hidden_characters(" ".join(value.split()))  # line breaks in a cell become spaces
                if hidden:
                    raise RosterError(f"{where}: line {line}: {c} holds control characters ({', '.join(hidden)})")
            sid = fields["student_id"]
            key = sid.casefold()  # IDs are matched case-insensitively, so they must be unique that way
            if key in seen:
                raise RosterError(f"{where}: line {line}: duplicate student_id {sid} "
                                  f"(first on line {seen[key]})")
            seen[key] = line
            email = fields.get("email", "")
            if email and ("@" not in email or " " in email):
                raise RosterError(f"{where}: line {line}: bad email {email!r}")
            aliases = tuple(" ".join(a.split()) for a in fields.get("aliases", "").split(";") if a.strip())
            students.append(Student(student_id=sid, name=" ".join(fields["name"].split()),
                                    aliases=aliases, email=email))
    except csv.Error as e:
        raise RosterError(f"{where}: line {reader.line_num}: bad CSV ({e})") from None
    if not students:
        raise RosterError(f"{where}: no students (only a header)")
    return students


def fold(text: str) -> str:
    """A name as it is compared: NFKD, accents dropped, casefolded; recomposed so that Hangul stays
    syllables, not loose jamo (`Zoë Núñez` -> `zoe nunez`)."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", text).casefold()


def slug(name: str) -> str:
    """A stable student_id for a student known only by name: `Siti Zubaidah` -> `siti-zubaidah`.

    Accents are dropped; letters of other scripts are kept (a Korean name keeps its Hangul).
    """
    out = re.sub(r"[\W_]+", "-", fold(name)).strip("-")
    if not out:
        raise ValueError(f"cannot make a student_id from the name {name!r}")
    return out
