"""SQLite record of rollcall (sqlite-utils, WAL): the only module that writes SQL.

One file, `<home>/rollcall.db`; evidence crops for alerts under `<home>/evidence/<session>/<alert>.jpg`.
The schema is built by an ordered list of migrations, each applied once and recorded in
`_rollcall_migrations`, so an old home is brought up to date on open.

Every write runs inside `Database.atomic()` (sqlite-utils nests it with savepoints), so a capture and its
observations are one transaction that is committed before `add_capture` returns: a killed process loses
at most the capture it was writing. Times are ISO-8601 UTC strings with milliseconds ("...T10:00:00.000Z"),
one format everywhere so that string order is time order in SQL.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import sqlite_utils

from bot.types import Observation, Student

DB_NAME = "rollcall.db"
EVIDENCE_DIR = "evidence"
MIGRATIONS_TABLE = "_rollcall_migrations"
JUDGED = ("verified", "mismatch", "unknown_face")


class StoreError(RuntimeError):
    """A store problem the user can cause or fix; str() is one line naming the path or the key."""


# ---------------------------------------------------------------------------------------------- time

def utc_iso(t: datetime | str | None = None) -> str:
    """`t` (a datetime, an ISO-8601 string, or now) as the store's one UTC format."""
    if t is None:
        dt = datetime.now(timezone.utc)
    elif isinstance(t, str):
        try:
            dt = datetime.fromisoformat(t)
        except ValueError as e:
            raise StoreError(f"time {t!r}: not an ISO-8601 time") from e
    else:
        dt = t
    if dt.tzinfo is None:       # a naive time is taken as UTC, never as local time
        dt = dt.replace(tzinfo=timezone.utc)
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(s: str) -> datetime:
    return datetime.fromisoformat(s)


# ---------------------------------------------------------------------------------------- migrations

def _m1_tables(db: sqlite_utils.Database) -> None:
    db["students"].create(
        {"student_id": str, "name": str, "aliases": str, "email": str, "class": str},
        pk="student_id", not_null=["name"], defaults={"aliases": "", "email": ""})
    db["embeddings"].create(
        {"id": int, "student_id": str, "vector": bytes, "dim": int, "photo_hash": str,
         "quality": float, "thumb": bytes},
        pk="id", not_null=["student_id", "vector", "dim"],
        foreign_keys=[("student_id", "students", "student_id")])
    db["sessions"].create(
        {"id": int, "class": str, "source": str, "started": str, "ended": str,
         "interval_s": float, "status": str},
        pk="id", not_null=["started", "status"])
    db["captures"].create(
        {"id": int, "session_id": int, "time": str, "tiles": int, "ms": str},
        pk="id", not_null=["session_id", "time"],
        foreign_keys=[("session_id", "sessions", "id")])
    db["observations"].create(
        {"id": int, "capture_id": int, "session_id": int, "tile_index": int, "box": str,
         "display_name": str, "student_id": str, "verdict": str, "similarity": float,
         "identified_as": str, "best_other": str, "best_other_similarity": float,
         "face_px": int, "face_box": str, "blur": float, "reason": str, "camera_off": int,
         "faces": int, "participant": str},
        pk="id", not_null=["capture_id", "session_id", "verdict"],
        foreign_keys=[("capture_id", "captures", "id"), ("session_id", "sessions", "id")])
    db["alerts"].create(
        {"id": int, "session_id": int, "capture_id": int, "time": str, "kind": str,
         "student_id": str, "display_name": str, "identified_as": str, "similarity": float,
         "threshold": float, "evidence": str, "participant": str},
        pk="id", not_null=["session_id", "time", "kind"],
        foreign_keys=[("session_id", "sessions", "id"), ("capture_id", "captures", "id")])
    db["deliveries"].create(
        {"id": int, "alert_id": int, "channel": str, "attempt": int, "time": str, "ok": int,
         "error": str},
        pk="id", not_null=["alert_id", "channel", "time"],
        foreign_keys=[("alert_id", "alerts", "id")])


def _m2_indexes(db: sqlite_utils.Database) -> None:
    # The report reads one session's observations per student and per participant; purge selects by
    # time; forget selects by student; the enrolled gallery is read per student.
    db["students"].create_index(["class"])
    db["embeddings"].create_index(["student_id"])
    db["embeddings"].create_index(["student_id", "photo_hash"])
    db["sessions"].create_index(["started"])
    db["captures"].create_index(["session_id", "time"])
    db["captures"].create_index(["time"])
    db["observations"].create_index(["capture_id"])
    db["observations"].create_index(["session_id", "student_id"])
    db["observations"].create_index(["session_id", "participant"])
    db["observations"].create_index(["student_id"])
    db["observations"].create_index(["identified_as"])
    db["alerts"].create_index(["session_id", "time"])
    db["alerts"].create_index(["student_id"])
    db["alerts"].create_index(["time"])
    db["deliveries"].create_index(["alert_id"])


def _m3_embedding_model(db: sqlite_utils.Database) -> None:
    # which face model (file digest and views, embed.Embedder.fingerprint) made each enrolled vector:
    # vectors of two models are not comparable, and a new model of the same size would otherwise be
    # compared silently with the old one's vectors. Rows enrolled before this column have NULL.
    db["embeddings"].add_column("model", str)


# Ordered; append only. A migration runs once, in one transaction with its record.
MIGRATIONS: list[tuple[int, str, Callable[[sqlite_utils.Database], None]]] = [
    (1, "tables", _m1_tables),
    (2, "report indexes", _m2_indexes),
    (3, "embedding model", _m3_embedding_model),
]


# --------------------------------------------------------------------------------------------- rows

@dataclass
class SessionInfo:
    id: int
    class_name: str | None
    source: str
    started: str
    ended: str | None
    interval_s: float
    status: str
    captures: int = 0
    alerts: int = 0
    last_capture: str | None = None


def _json_box(box) -> str | None:
    return None if box is None else json.dumps([int(v) for v in box])


def _opt_float(v) -> float | None:
    return None if v is None else float(v)


def _open_problem(e: sqlite3.DatabaseError) -> str:
    msg = str(e).lower()
    if "locked" in msg or "busy" in msg:
        return "busy: another process holds the database; try again when it has finished"
    if "readonly" in msg or "read-only" in msg or "unable to open" in msg:
        return "not writable"
    return "damaged or not a rollcall database"


# -------------------------------------------------------------------------------------------- store

class Store:
    """The rollcall database under `home`. Use `with Store(home) as store:` or `Store(home).open()`.

    Safe to share between the capture loop and the alert worker thread: one connection, one lock.
    """

    def __init__(self, home: Path | str):
        self.home = Path(home).expanduser()
        self.db_path = self.home / DB_NAME
        self.evidence_root = self.home / EVIDENCE_DIR
        self._db: sqlite_utils.Database | None = None
        self._lock = threading.RLock()

    # ----------------------------------------------------------------------------- open / close
    def open(self) -> "Store":
        if self._db is not None:
            return self
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"{self.home}: cannot create the rollcall home ({e.strerror or e})") from e
        if not self.home.is_dir():
            raise StoreError(f"{self.home}: not a directory")
        if not os.access(self.home, os.W_OK | os.X_OK):
            raise StoreError(f"{self.home}: not writable")
        try:
            # check_same_thread=False: the alert worker records deliveries from its own thread;
            # self._lock serialises every use of the connection.
            conn = sqlite3.connect(str(self.db_path), timeout=10, check_same_thread=False)
        except sqlite3.Error as e:
            raise StoreError(f"{self.db_path}: cannot open ({e})") from e
        try:
            db = sqlite_utils.Database(conn, execute_plugins=False)
            db.execute("PRAGMA foreign_keys = ON")
            # Deleted rows are overwritten with zeros at once, not left in free pages (forget).
            db.execute("PRAGMA secure_delete = ON")
            db.enable_wal()
            if db.journal_mode != "wal":
                raise sqlite3.OperationalError("cannot switch to WAL mode")
            self._migrate(db)
        except StoreError:
            conn.close()
            raise
        except sqlite3.DatabaseError as e:
            conn.close()
            raise StoreError(f"{self.db_path}: {_open_problem(e)} ({e})") from e
        self._db = db
        return self

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> "Store":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def db(self) -> sqlite_utils.Database:
        if self._db is None:
            raise StoreError(f"{self.db_path}: store is not open")
        return self._db

    def _migrate(self, db: sqlite_utils.Database) -> None:
        newest = max(v for v, _, _ in MIGRATIONS)

        def applied() -> set[int]:
            if not db[MIGRATIONS_TABLE].exists():
                return set()
            return {r["version"] for r in db.query(f"SELECT version FROM {MIGRATIONS_TABLE}")}

        done = applied()
        if done and max(done) > newest:
            raise StoreError(f"{self.db_path}: schema version {max(done)} is newer than this "
                             f"rollcall ({newest}); upgrade rollcall")
        if all(v in done for v, _, _ in MIGRATIONS):
            return
        # IMMEDIATE takes the write lock first, so two processes opening a new home at once migrate
        # one after the other (the second sees the work done) instead of both creating tables.
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            db[MIGRATIONS_TABLE].create({"version": int, "name": str, "applied": str}, pk="version",
                                        if_not_exists=True)
            done = applied()
            for version, name, fn in MIGRATIONS:
                if version not in done:
                    with db.atomic():   # a savepoint: the migration and its record go together
                        fn(db)
                        db[MIGRATIONS_TABLE].insert({"version": version, "name": name,
                                                     "applied": utc_iso()})
            db.conn.execute("COMMIT")
        except BaseException:
            db.rollback()
            raise

    def schema_version(self) -> int:
        with self._lock:
            row = self.db.execute(f"SELECT max(version) FROM {MIGRATIONS_TABLE}").fetchone()
            return int(row[0] or 0)

    def _query(self, sql: str, params: Iterable | dict = ()) -> list[dict]:
        with self._lock:
            return list(self.db.query(sql, params))

    # --------------------------------------------------------------------------------- students
    def upsert_students(self, students: list[Student], class_name: str | None = None) -> int:
        """Insert or update roster rows; a student's class is only changed when `class_name` is given."""
        with self._lock, self.db.atomic():
            for s in students:
                self.db.execute(
                    "INSERT INTO students (student_id, name, aliases, email, class) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(student_id) DO UPDATE SET "
                    "name = excluded.name, aliases = excluded.aliases, email = excluded.email, "
                    "class = coalesce(excluded.class, students.class)",
                    [s.student_id, s.name, ";".join(s.aliases), s.email or "", class_name])
        return len(students)

    @staticmethod
    def _student(row: dict) -> Student:
        aliases = tuple(a for a in (row["aliases"] or "").split(";") if a)
        return Student(student_id=row["student_id"], name=row["name"], aliases=aliases,
                       email=row["email"] or "")

    def list_students(self, class_name: str | None = None) -> list[Student]:
        """Roster students (of `class_name` when given), by student_id."""
        if class_name is None:
            rows = self._query("SELECT * FROM students ORDER BY student_id")
        else:
            rows = self._query("SELECT * FROM students WHERE class = ? ORDER BY student_id",
                               [class_name])
        return [self._student(r) for r in rows]

    def student_class(self, student_id: str) -> str | None:
        rows = self._query("SELECT class FROM students WHERE student_id = ?", [student_id])
        return rows[0]["class"] if rows else None

    def get_student(self, id_or_name: str) -> Student | None:
        """A student by student_id, else by exact name (case-insensitive if that is unique)."""
        key = id_or_name.strip()
        rows = self._query("SELECT * FROM students WHERE student_id = ?", [key])
        if not rows:
            rows = self._query("SELECT * FROM students WHERE name = ?", [key])
        if not rows:
            rows = [r for r in self._query("SELECT * FROM students")
                    if r["name"].casefold() == key.casefold()]
        if len(rows) > 1:
            ids = ", ".join(r["student_id"] for r in rows)
            raise StoreError(f"{id_or_name}: name of several students ({ids}); use the student_id")
        return self._student(rows[0]) if rows else None

    # ------------------------------------------------------------------------------- embeddings
    def add_embeddings(self, student_id: str, vectors: np.ndarray, photo_hashes: list[str] | None = None,
                       qualities: list[float] | None = None,
                       thumbs: list[bytes | None] | None = None, model: str | None = None) -> int:
        """Store enrolled vectors (float32) for a roster student; a photo hash already stored for the
        student is skipped, so enrolling the same folder twice adds nothing. Returns rows added.

        `model` names what made the vectors (Embedder.fingerprint). Given, the student's vectors made
        by any other model are replaced in the same transaction: enrolling again after a model upgrade
        re-embeds every photo instead of skipping it as already stored."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        n = len(vectors)
        hashes = list(photo_hashes) if photo_hashes is not None else [None] * n
        quals = list(qualities) if qualities is not None else [None] * n
        ths = list(thumbs) if thumbs is not None else [None] * n
        if not (len(hashes) == len(quals) == len(ths) == n):
            raise ValueError("add_embeddings: vectors, photo_hashes, qualities and thumbs differ in length")
        added = 0
        with self._lock, self.db.atomic():
            if not self.db.execute("SELECT 1 FROM students WHERE student_id = ?", [student_id]).fetchone():
                raise StoreError(f"{student_id}: not in the roster")
            if model is not None:
                self.db.execute("DELETE FROM embeddings WHERE student_id = ? AND (model IS NULL OR model != ?)",
                                [student_id, model])
            known = {r[0] for r in self.db.execute(
                "SELECT photo_hash FROM embeddings WHERE student_id = ? AND photo_hash IS NOT NULL",
                [student_id])}
            for vec, h, q, th in zip(vectors, hashes, quals, ths):
                if h is not None and h in known:
                    continue
                self.db.execute(
                    "INSERT INTO embeddings (student_id, vector, dim, photo_hash, quality, thumb, model) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [student_id, np.ascontiguousarray(vec, dtype=np.float32).tobytes(), int(vec.shape[0]),
                     h, _opt_float(q), th, model])
                if h is not None:
                    known.add(h)
                added += 1
        return added

    def embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """(student_ids, vectors): one row per enrolled photo; vectors float32 (N, D)."""
        rows = self._query("SELECT student_id, vector, dim FROM embeddings ORDER BY student_id, id")
        if not rows:
            return np.array([], dtype=object), np.zeros((0, 0), dtype=np.float32)
        dims = {r["dim"] for r in rows}
        if len(dims) > 1:
            raise StoreError(f"{self.db_path}: enrolled vectors of different sizes {sorted(dims)}; "
                             "enroll again with one model")
        ids = np.array([r["student_id"] for r in rows], dtype=object)
        vecs = np.stack([np.frombuffer(r["vector"], dtype=np.float32) for r in rows])
        return ids, vecs

    def embedding_models(self) -> dict[str | None, int]:
        """How many enrolled vectors each face model made (None: enrolled before models were recorded)."""
        return {r["model"]: r["n"] for r in self._query(
            "SELECT model, count(*) AS n FROM embeddings GROUP BY model")}

    def reference_thumb(self, student_id: str) -> bytes | None:
        """The best-quality enrolled thumbnail (JPEG bytes) of a student, if any."""
        rows = self._query(
            "SELECT thumb FROM embeddings WHERE student_id = ? AND thumb IS NOT NULL "
            "ORDER BY coalesce(quality, 0) DESC, id LIMIT 1", [student_id])
        return rows[0]["thumb"] if rows else None

    # --------------------------------------------------------------------------------- sessions
    def start_session(self, class_name: str | None, source: str, interval_s: float,
                      started: datetime | str | None = None) -> int:
        with self._lock, self.db.atomic():
            cur = self.db.execute(
                "INSERT INTO sessions (class, source, started, interval_s, status) "
                "VALUES (?, ?, ?, ?, 'running')",
                [class_name, source, utc_iso(started), float(interval_s)])
            return int(cur.lastrowid)

    def end_session(self, session_id: int, status: str = "done",
                    ended: datetime | str | None = None) -> None:
        with self._lock, self.db.atomic():
            cur = self.db.execute("UPDATE sessions SET ended = ?, status = ? WHERE id = ?",
                                  [utc_iso(ended), status, int(session_id)])
            if cur.rowcount == 0:
                raise StoreError(f"session {session_id}: not found")

    _SESSIONS_SQL = (
        "SELECT s.*, (SELECT count(*) FROM captures c WHERE c.session_id = s.id) AS n_captures, "
        "(SELECT max(time) FROM captures c WHERE c.session_id = s.id) AS last_capture, "
        "(SELECT count(*) FROM alerts a WHERE a.session_id = s.id) AS n_alerts FROM sessions s ")

    @staticmethod
    def _session(row: dict) -> SessionInfo:
        return SessionInfo(id=row["id"], class_name=row["class"], source=row["source"] or "",
                           started=row["started"], ended=row["ended"],
                           interval_s=float(row["interval_s"] or 0), status=row["status"],
                           captures=row["n_captures"], alerts=row["n_alerts"],
                           last_capture=row["last_capture"])

    def sessions(self) -> list[SessionInfo]:
        return [self._session(r) for r in self._query(self._SESSIONS_SQL + "ORDER BY s.id")]

    def session(self, ref: int | str) -> SessionInfo:
        """A session by id, or `last` (the newest). Unknown -> StoreError naming it."""
        if isinstance(ref, str) and ref.strip().lower() == "last":
            rows = self._query(self._SESSIONS_SQL + "ORDER BY s.id DESC LIMIT 1")
            if not rows:
                raise StoreError(f"session last: no sessions recorded in {self.db_path}")
        else:
            try:
                sid = int(ref)
            except (TypeError, ValueError):
                raise StoreError(f"session {ref}: not a session id (a number or `last`)") from None
            rows = self._query(self._SESSIONS_SQL + "WHERE s.id = ?", [sid])
            if not rows:
                raise StoreError(f"session {ref}: not found (see `rollcall sessions`)")
        return self._session(rows[0])

    # --------------------------------------------------------------------------------- captures
    def add_capture(self, session_id: int, time: datetime | str, ms: dict,
                    observations: list[Observation]) -> int:
        """One capture and all its observations in one transaction, committed before returning."""
        t = utc_iso(time)
        with self._lock, self.db.atomic():
            cur = self.db.execute(
                "INSERT INTO captures (session_id, time, tiles, ms) VALUES (?, ?, ?, ?)",
                [int(session_id), t, len(observations),
                 json.dumps({k: round(float(v), 3) for k, v in (ms or {}).items()})])
            capture_id = int(cur.lastrowid)
            self.db.conn.executemany(
                "INSERT INTO observations (capture_id, session_id, tile_index, box, display_name, "
                "student_id, verdict, similarity, identified_as, best_other, best_other_similarity, "
                "face_px, face_box, blur, reason, camera_off, faces, participant) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[capture_id, int(session_id), o.tile_index, _json_box(o.box), o.display_name,
                  o.student_id, o.verdict.verdict, _opt_float(o.verdict.similarity),
                  o.verdict.identified_as, o.verdict.best_other,
                  _opt_float(o.verdict.best_other_similarity), int(o.face_px), _json_box(o.face_box),
                  _opt_float(o.blur), o.verdict.reason, int(bool(o.camera_off)), int(o.faces),
                  o.participant or o.student_id or o.display_name]
                 for o in observations])
        return capture_id

    def captures(self, session_id: int) -> list[dict]:
        rows = self._query("SELECT id, time, tiles, ms FROM captures WHERE session_id = ? "
                           "ORDER BY time, id", [int(session_id)])
        for r in rows:
            r["ms"] = json.loads(r["ms"]) if r["ms"] else {}
        return rows

    def observations(self, session_id: int) -> list[dict]:
        """All observations of a session with their capture time, in capture then tile order."""
        rows = self._query(
            "SELECT o.*, c.time AS time FROM observations o JOIN captures c ON c.id = o.capture_id "
            "WHERE o.session_id = ? ORDER BY c.time, c.id, o.tile_index", [int(session_id)])
        for r in rows:
            r["box"] = json.loads(r["box"]) if r["box"] else None
            r["face_box"] = json.loads(r["face_box"]) if r["face_box"] else None
            r["camera_off"] = bool(r["camera_off"])
        return rows

    # ----------------------------------------------------------------------------------- alerts
    def add_alert(self, session_id: int, time: datetime | str, kind: str, *,
                  capture_id: int | None = None, student_id: str | None = None,
                  display_name: str = "", identified_as: str | None = None,
                  similarity: float | None = None, threshold: float | None = None,
                  participant: str = "", evidence: str | None = None) -> int:
        with self._lock, self.db.atomic():
            cur = self.db.execute(
                "INSERT INTO alerts (session_id, capture_id, time, kind, student_id, display_name, "
                "identified_as, similarity, threshold, evidence, participant) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [int(session_id), capture_id, utc_iso(time), kind, student_id, display_name,
                 identified_as, _opt_float(similarity), _opt_float(threshold), evidence,
                 participant or student_id or display_name])
            return int(cur.lastrowid)

    def save_evidence(self, session_id: int, alert_id: int, jpeg: bytes) -> str:
        """Write an alert's evidence JPEG; record and return its path relative to home."""
        rel = f"{EVIDENCE_DIR}/{int(session_id)}/{int(alert_id)}.jpg"
        path = self.home / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(jpeg)
            os.replace(tmp, path)  # a reader never sees half a file
        except OSError as e:
            raise StoreError(f"{path}: cannot write evidence ({e.strerror or e})") from e
        with self._lock, self.db.atomic():
            cur = self.db.execute("UPDATE alerts SET evidence = ? WHERE id = ?", [rel, int(alert_id)])
            if cur.rowcount == 0:
                path.unlink(missing_ok=True)
                raise StoreError(f"alert {alert_id}: not found")
        return rel

    def evidence_path(self, rel: str) -> Path:
        return self.home / rel

    def alerts(self, session_id: int | None = None) -> list[dict]:
        if session_id is None:
            return self._query("SELECT * FROM alerts ORDER BY time, id")
        return self._query("SELECT * FROM alerts WHERE session_id = ? ORDER BY time, id",
                           [int(session_id)])

    def record_delivery(self, alert_id: int, channel: str, attempt: int, ok: bool,
                        error: str = "", time: datetime | str | None = None) -> int:
        with self._lock, self.db.atomic():
            cur = self.db.execute(
                "INSERT INTO deliveries (alert_id, channel, attempt, time, ok, error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [int(alert_id), channel, int(attempt), utc_iso(time), int(bool(ok)), error or ""])
            return int(cur.lastrowid)

    def deliveries(self, alert_id: int) -> list[dict]:
        rows = self._query("SELECT * FROM deliveries WHERE alert_id = ? ORDER BY id", [int(alert_id)])
        for r in rows:
            r["ok"] = bool(r["ok"])
        return rows

    # --------------------------------------------------------------------------- purge / forget
    def purge(self, older_than_days: float, now: datetime | str | None = None) -> dict[str, int]:
        """Delete captures, observations, alerts, deliveries and evidence older than the cutoff, and
        sessions left without captures that started before it; then VACUUM. Returns counts."""
        if older_than_days < 0:
            raise StoreError(f"--older-than {older_than_days}: must be 0 or more days")
        cutoff = utc_iso(parse_iso(utc_iso(now)) - timedelta(days=older_than_days))
        with self._lock:
            with self.db.atomic():
                old_caps = "SELECT id FROM captures WHERE time < :cut"
                alert_where = f"(time < :cut OR capture_id IN ({old_caps}))"
                p = {"cut": cutoff}
                files = [r[0] for r in self.db.execute(
                    f"SELECT evidence FROM alerts WHERE {alert_where} AND evidence IS NOT NULL", p)]
                counts = {
                    "deliveries": self.db.execute(
                        f"DELETE FROM deliveries WHERE alert_id IN "
                        f"(SELECT id FROM alerts WHERE {alert_where})", p).rowcount,
                    "alerts": self.db.execute(f"DELETE FROM alerts WHERE {alert_where}", p).rowcount,
                    "observations": self.db.execute(
                        f"DELETE FROM observations WHERE capture_id IN ({old_caps})", p).rowcount,
                    "captures": self.db.execute("DELETE FROM captures WHERE time < :cut", p).rowcount,
                    "sessions": self.db.execute(
                        "DELETE FROM sessions WHERE started < :cut AND NOT EXISTS "
                        "(SELECT 1 FROM captures c WHERE c.session_id = sessions.id) AND NOT EXISTS "
                        "(SELECT 1 FROM alerts a WHERE a.session_id = sessions.id)", p).rowcount,
                }
            counts["evidence_files"] = self._delete_files(files) + self._sweep_evidence()
            self._compact()
        return counts

    def forget(self, student: str) -> dict[str, int]:
        """Delete everything about one student (id or exact name): roster row, embeddings, the
        observations and alerts of their tile or their face, deliveries, evidence files; clear them as
        someone's runner-up; then VACUUM and truncate the WAL so no byte of it is left in <home>."""
        found = self.get_student(student)
        sid = found.student_id if found else student.strip()
        name = found.name if found else None
        with self._lock:
            exists = self.db.execute(
                "SELECT 1 FROM observations WHERE student_id = :s OR identified_as = :s "
                "OR best_other = :s OR participant = :s UNION "
                "SELECT 1 FROM alerts WHERE student_id = :s OR identified_as = :s", {"s": sid}).fetchone()
            if found is None and not exists:
                raise StoreError(f"{student}: no such student (neither a student_id nor an exact name)")
            # Whole-token match, so forgetting "ana" leaves "Mareta Aliana" alone; "_" separates.
            needles = [sid] + ([name] if name else [])
            pattern = re.compile("|".join(rf"(?<![^\W_]){re.escape(n.casefold())}(?![^\W_])"
                                          for n in needles))

            def names_them(text: str | None) -> bool:
                return bool(text) and pattern.search(text.casefold()) is not None

            with self.db.atomic():
                p = {"s": sid}
                alert_ids = [r[0] for r in self.db.execute(
                    "SELECT id FROM alerts WHERE student_id = :s OR identified_as = :s "
                    "OR participant = :s", p)]
                # A display name typed by the student ("G1A021044_Rizky ...") names them even on a
                # tile that was not resolved to them.
                alert_ids += [r[0] for r in self.db.execute("SELECT id, display_name FROM alerts")
                              if r[0] not in alert_ids and names_them(r[1])]
                files = [r[0] for r in self.db.execute(
                    f"SELECT evidence FROM alerts WHERE id IN ({','.join('?' * len(alert_ids))}) "
                    "AND evidence IS NOT NULL", alert_ids)] if alert_ids else []
                obs_ids = [r[0] for r in self.db.execute(
                    "SELECT id FROM observations WHERE student_id = :s OR identified_as = :s "
                    "OR participant = :s", p)]
                seen = set(obs_ids)
                obs_ids += [r[0] for r in self.db.execute("SELECT id, display_name FROM observations")
                            if r[0] not in seen and names_them(r[1])]
                counts = {
                    "deliveries": self._delete_ids("deliveries", "alert_id", alert_ids),
                    "alerts": self._delete_ids("alerts", "id", alert_ids),
                    "observations": self._delete_ids("observations", "id", obs_ids),
                }
                self.db.execute("UPDATE observations SET best_other = NULL, best_other_similarity = NULL "
                                "WHERE best_other = :s", p)
                counts["embeddings"] = self.db.execute(
                    "DELETE FROM embeddings WHERE student_id = :s", p).rowcount
                counts["students"] = self.db.execute(
                    "DELETE FROM students WHERE student_id = :s", p).rowcount
            counts["evidence_files"] = self._delete_files(files) + self._sweep_evidence()
            self._compact()
        return counts

    def _delete_ids(self, table: str, column: str, ids: list[int]) -> int:
        n = 0
        for i in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = ids[i:i + 500]
            n += self.db.execute(f"DELETE FROM {table} WHERE {column} IN ({','.join('?' * len(chunk))})",
                                 chunk).rowcount
        return n

    def _delete_files(self, rels: list[str]) -> int:
        n = 0
        for rel in rels:
            path = self.home / rel
            if path.is_file():
                path.unlink()
                n += 1
        return n

    def _sweep_evidence(self) -> int:
        """Delete evidence files whose alert row is gone (e.g. a crash between file and row) and empty
        session folders. The alert row is written before its file, so a live writer is safe."""
        if not self.evidence_root.is_dir():
            return 0
        alive = {r[0] for r in self.db.execute("SELECT evidence FROM alerts WHERE evidence IS NOT NULL")}
        ids = {r[0] for r in self.db.execute("SELECT id FROM alerts")}
        n = 0
        for folder in self.evidence_root.iterdir():
            if not folder.is_dir():
                continue
            for f in folder.iterdir():
                rel = f"{EVIDENCE_DIR}/{folder.name}/{f.name}"
                stem = f.name.split(".")[0]
                if rel in alive or (stem.isdigit() and int(stem) in ids):
                    continue
                f.unlink()
                n += 1
            if not any(folder.iterdir()):
                folder.rmdir()
        return n

    def _compact(self) -> None:
        """VACUUM, then copy the WAL into the db file and truncate it to zero bytes."""
        try:
            self.db.vacuum()
            busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as e:
            raise StoreError(f"{self.db_path}: cannot compact ({e}); stop other rollcall processes "
                             "and run it again") from e
        if busy:
            raise StoreError(f"{self.db_path}: another rollcall process is reading the database; stop "
                             "it and run the command again so the write-ahead log can be truncated")
