"""The store's privacy deletions: purge records past an age, forget one student, and compact the
database afterwards so no deleted byte is left in the home; done through a Store (bot/store.py)."""
from __future__ import annotations

import logging
import re
import sqlite3
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable

from .errors import StoreError
from .store import parse_iso, utc_iso

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)


def purge(store: Store, older_than_days: float, now: datetime | str | None = None) -> dict[str, int]:
    """Delete captures, observations, alerts, deliveries and evidence older than the cutoff, and
    sessions left without captures that started before it; then VACUUM. Returns counts."""
    if older_than_days < 0:
        raise StoreError(f"--older-than {older_than_days}: must be 0 or more days")
    cutoff = utc_iso(parse_iso(utc_iso(now)) - timedelta(days=older_than_days))
    with store.lock:
        with store.writing("purge") as db:
            old_caps = "SELECT id FROM captures WHERE time < :cut"
            alert_where = f"(time < :cut OR capture_id IN ({old_caps}))"
            p = {"cut": cutoff}
            files = [r[0] for r in db.execute(
                f"SELECT evidence FROM alerts WHERE {alert_where} AND evidence IS NOT NULL", p)]
            counts = {
                "deliveries": db.execute(
                    f"DELETE FROM deliveries WHERE alert_id IN "
                    f"(SELECT id FROM alerts WHERE {alert_where})", p).rowcount,
                "alerts": db.execute(f"DELETE FROM alerts WHERE {alert_where}", p).rowcount,
                "observations": db.execute(
                    f"DELETE FROM observations WHERE capture_id IN ({old_caps})", p).rowcount,
                "captures": db.execute("DELETE FROM captures WHERE time < :cut", p).rowcount,
                "sessions": db.execute(
                    "DELETE FROM sessions WHERE started < :cut AND NOT EXISTS "
                    "(SELECT 1 FROM captures c WHERE c.session_id = sessions.id) AND NOT EXISTS "
                    "(SELECT 1 FROM alerts a WHERE a.session_id = sessions.id)", p).rowcount,
            }
        counts["evidence_files"] = store.files.delete_evidence(files) + sweep_evidence(store)
        compact(store)
    return counts


def forget(store: Store, student: str) -> dict[str, int]:
    """Delete everything about one student (id or exact name): roster row, embeddings, the
    observations and alerts of their tile or their face, deliveries, evidence files; clear them as
    someone's runner-up; then VACUUM and truncate the WAL so no byte of it is left in <home>."""
    found = store.get_student(student)
    sid = found.student_id if found else _recorded_id(store, student.strip())
    with store.lock:
        _check_forgettable(store, student, sid, known=found is not None)
        names_them = _naming(sid, found.name if found else None)
        with store.writing(f"forget {student}") as db:
            p = {"s": sid}
            alert_ids = _ids_about(db, "alerts", p, names_them)
            files = [r[0] for r in db.execute(
                f"SELECT evidence FROM alerts WHERE id IN ({','.join('?' * len(alert_ids))}) "
                "AND evidence IS NOT NULL", alert_ids)] if alert_ids else []
            obs_ids = _ids_about(db, "observations", p, names_them)
            counts = {
                "deliveries": _delete_ids(db, "deliveries", "alert_id", alert_ids),
                "alerts": _delete_ids(db, "alerts", "id", alert_ids),
                "observations": _delete_ids(db, "observations", "id", obs_ids),
            }
            db.execute("UPDATE observations SET best_other = NULL, best_other_similarity = NULL "
                       "WHERE best_other = :s", p)
            counts["embeddings"] = db.execute("DELETE FROM embeddings WHERE student_id = :s", p).rowcount
            counts["students"] = db.execute("DELETE FROM students WHERE student_id = :s", p).rowcount
        counts["evidence_files"] = store.files.delete_evidence(files) + sweep_evidence(store)
        compact(store)
    return counts


def _check_forgettable(store: Store, student: str, sid: str, known: bool) -> None:
    """StoreError unless the student is in the roster or the records, and no session is running (it
    recognises every enrolled student and would record them again)."""
    exists = store.db.execute(
        "SELECT 1 FROM observations WHERE student_id = :s OR identified_as = :s "
        "OR best_other = :s OR participant = :s UNION "
        "SELECT 1 FROM alerts WHERE student_id = :s OR identified_as = :s", {"s": sid}).fetchone()
    if not known and not exists:
        raise StoreError(f"{student}: no such student (neither a student_id nor an exact name)")
    running = store.running_sessions()
    if running:
        s0 = running[0]
        raise StoreError(f"{student}: session {s0.id} (class {s0.class_name or '-'}) is running and "
                         "would record the student again; stop it, then forget")


def _naming(sid: str, name: str | None) -> Callable[[str | None], bool]:
    """Whether a display name names the student: their id or name as a whole token, so forgetting
    "ana" leaves "Mareta Aliana" alone ("_" separates)."""
    needles = [sid] + ([name] if name else [])
    pattern = re.compile("|".join(rf"(?<![^\W_]){re.escape(n.casefold())}(?![^\W_])" for n in needles))
    return lambda text: bool(text) and pattern.search(text.casefold()) is not None


def _ids_about(db, table: str, params: dict, names_them: Callable[[str | None], bool]) -> list[int]:
    """The rows of `table` about the student `params["s"]`: their tile, their face, their participant,
    and a display name typed by the student ("G1A021044_Rizky ...") on a tile not resolved to them."""
    ids = [r[0] for r in db.execute(f"SELECT id FROM {table} WHERE student_id = :s OR identified_as = :s "
                                    "OR participant = :s", params)]
    seen = set(ids)
    return ids + [r[0] for r in db.execute(f"SELECT id, display_name FROM {table}")
                  if r[0] not in seen and names_them(r[1])]


def _recorded_id(store: Store, key: str) -> str:
    """A student id as the records spell it (ids are case-insensitive); `key` if none does."""
    with store.lock:
        row = store.db.execute(
            "SELECT student_id FROM observations WHERE student_id = :k COLLATE NOCASE UNION ALL "
            "SELECT identified_as FROM observations WHERE identified_as = :k COLLATE NOCASE UNION ALL "
            "SELECT student_id FROM alerts WHERE student_id = :k COLLATE NOCASE LIMIT 1",
            {"k": key}).fetchone()
    return row[0] if row else key


def _delete_ids(db, table: str, column: str, ids: list[int]) -> int:
    n = 0
    for i in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
        chunk = ids[i:i + 500]
        n += db.execute(f"DELETE FROM {table} WHERE {column} IN ({','.join('?' * len(chunk))})",
                        chunk).rowcount
    return n


def sweep_evidence(store: Store) -> int:
    """Delete rollcall's evidence files whose alert row is gone (e.g. a crash between file and row)
    and session folders left empty. The alert row is written before its file, so a live writer is
    safe."""
    recorded = {r[0] for r in store.db.execute("SELECT evidence FROM alerts WHERE evidence IS NOT NULL")}
    ids = {r[0] for r in store.db.execute("SELECT id FROM alerts")}
    return store.files.sweep_evidence(recorded, ids)


def clear_thumbs(store: Store) -> None:
    """Drop enrolled face thumbnails (kept by a rollcall with reference faces on), bytes and all."""
    if not store.query("SELECT 1 FROM embeddings WHERE thumb IS NOT NULL LIMIT 1"):
        return                      # nothing to clear: no write, so a read-only or busy home opens
    with store.writing("clear enrolled face thumbnails") as db:
        db.execute("UPDATE embeddings SET thumb = NULL WHERE thumb IS NOT NULL")
    try:
        compact(store)
    except StoreError as e:         # the rows hold none; free pages go at the next compaction
        log.warning("%s", e)


def compact(store: Store) -> None:
    """VACUUM, then copy the WAL into the db file and truncate it to zero bytes."""
    try:
        store.db.vacuum()
        busy, _, _ = store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as e:
        raise StoreError(f"{store.db_path}: cannot compact ({e}); stop other rollcall processes "
                         "and run it again") from e
    if busy:
        raise StoreError(f"{store.db_path}: another rollcall process is reading the database; stop "
                         "it and run the command again so the write-ahead log can be truncated")
