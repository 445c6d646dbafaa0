"""SQLite record of rollcall (sqlite-utils, WAL): the only module that writes SQL, with its schema
(bot/schema.py), its files beside the database (bot/home_files.py) and its privacy deletions
(bot/privacy.py).

One file, `<home>/rollcall.db`; evidence crops for alerts under `<home>/evidence/<session>/<alert>.jpg`.
The home is the user's alone (0700; the database, its -wal/-shm and evidence files 0600, whatever the
umask), and rollcall deletes only evidence files of that exact shape, in real folders under the home:
a symbolic link is never followed out of it and a file it did not write is left alone.
The schema is built by an ordered list of migrations, each applied once and recorded in
`_rollcall_migrations`, so an old home is brought up to date on open.

Every write is one transaction (`writing`: BEGIN IMMEDIATE, savepoints inside), so a capture and its
observations are committed together before `add_capture` returns: a killed process loses at most the
capture it was writing. A write that cannot get the database within the busy timeout, or a full disk, is
a one-line StoreError. A running session holds `<home>/running/<id>.lock`; a session left `running` whose
lock nobody holds (its process died) is marked interrupted by the next start_session. Times are
ISO-8601 UTC strings with milliseconds ("...T10:00:00.000Z"), one format everywhere so that string
order is time order in SQL.
"""
from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import numpy as np
import sqlite_utils

from bot.errors import StoreError
from bot.home_files import DB_NAME, HomeFiles
from bot.schema import MIGRATIONS, MIGRATIONS_TABLE
from bot.types import Observation, Student

log = logging.getLogger(__name__)


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


# An enrolled vector's kind, from the model that made it: the verifier's (bot/verify.py, its
# fingerprint starts "verifier:") or the face model's (anything else, NULL included). A student keeps one
# set of each; enrolling with a new model of one kind replaces that kind's only.
VERIFIER_KIND = "verifier:"
_IS_VERIFIER = "COALESCE(model LIKE 'verifier:%', 0)"


def is_verifier_model(model: str | None) -> bool:
    return bool(model) and model.startswith(VERIFIER_KIND)


def made_by_another(made_by: dict[str | None, int], current: str, verifier: bool = False) -> int:
    """How many enrolled vectors of one kind (the face model's, or with `verifier` the verifier's) were
    made by another model or recipe than `current` (Store.embedding_models gives `made_by`)."""
    return sum(n for m, n in made_by.items() if is_verifier_model(m) == verifier and m != current)


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


def _write_problem(e: sqlite3.Error, busy_s: float) -> str:
    msg = str(e).lower()
    if "locked" in msg or "busy" in msg:
        return f"busy: another process held the database for over {busy_s:g} s"
    if "full" in msg:
        return "disk full"
    return str(e)


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

    def __init__(self, home: Path | str, *, reference_faces: bool = True, busy_timeout_s: float = 10.0):
        """`reference_faces`: keep the enrolled face thumbnails it is given (settings: retention.
        reference_faces); false stores none and clears those an older rollcall stored, on open.
        `busy_timeout_s`: how long a write waits for another process's lock before it fails."""
        self.home = Path(home).expanduser()
        self.db_path = self.home / DB_NAME
        self.files = HomeFiles(self.home)     # the folder, evidence JPEGs, running sessions' locks
        self.evidence_root = self.files.evidence_root
        self.reference_faces = reference_faces
        self.busy_timeout_s = float(busy_timeout_s)
        self._db: sqlite_utils.Database | None = None
        self._lock = threading.RLock()

    # ----------------------------------------------------------------------------- open / close
    def open(self) -> "Store":
        if self._db is not None:
            return self
        self.files.make()
        try:
            # check_same_thread=False: the alert worker records deliveries from its own thread;
            # self._lock serialises every use of the connection.
            conn = sqlite3.connect(str(self.db_path), timeout=self.busy_timeout_s, check_same_thread=False)
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
        self.files.make_private()
        if not self.reference_faces:
            from .privacy import clear_thumbs
            try:
                clear_thumbs(self)
            except StoreError as e:     # busy now: none are added meanwhile, the next open clears them
                log.warning("%s", e)
        return self

    def close(self) -> None:
        with self._lock:
            self.files.release_all()
            if self._db is not None:
                self._db.close()
                self._db = None

    @contextlib.contextmanager
    def writing(self, what: str):
        """One write transaction, committed at the end (a savepoint inside another). It takes the write
        lock first (BEGIN IMMEDIATE), so reading then writing never fails on another writer's commit;
        a lock held past the busy timeout or a full disk is a one-line StoreError."""
        try:
            with self._lock:
                if self.db.conn.in_transaction:
                    with self.db.atomic():
                        yield self.db
                    return
                self.db.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.db
                    self.db.conn.execute("COMMIT")
                except BaseException:
                    self.db.rollback()
                    raise
        except sqlite3.Error as e:
            raise StoreError(f"{self.db_path}: cannot {what} ({_write_problem(e, self.busy_timeout_s)})") from e

    def __enter__(self) -> "Store":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def lock(self) -> threading.RLock:
        """The lock that serialises every use of the connection: held across several statements that
        must see one state of the database (bot/privacy.py's deletions)."""
        return self._lock

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

    def query(self, sql: str, params: Iterable | dict = ()) -> list[dict]:
        """The rows of one read, as dicts, under the connection's lock."""
        with self._lock:
            return list(self.db.query(sql, params))

    # --------------------------------------------------------------------------------- students
    def upsert_students(self, students: list[Student], class_name: str | None = None) -> int:
        """Insert or update roster rows; a student's class is only changed when `class_name` is given."""
        with self.writing("store the roster"):
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
            rows = self.query("SELECT * FROM students ORDER BY student_id")
        else:
            rows = self.query("SELECT * FROM students WHERE class = ? ORDER BY student_id",
                               [class_name])
        return [self._student(r) for r in rows]

    def student_class(self, student_id: str) -> str | None:
        rows = self.query("SELECT class FROM students WHERE student_id = ?", [student_id])
        return rows[0]["class"] if rows else None

    def get_student(self, id_or_name: str) -> Student | None:
        """A student by student_id, else by exact name (case-insensitive if that is unique)."""
        key = id_or_name.strip()
        rows = self.query("SELECT * FROM students WHERE student_id = ?", [key])
        if not rows:     # ids are case-insensitive, as on a tile (g1a021902 is G1A021902)
            rows = self.query("SELECT * FROM students WHERE student_id = ? COLLATE NOCASE", [key])
        if not rows:
            rows = self.query("SELECT * FROM students WHERE name = ?", [key])
        if not rows:
            rows = [r for r in self.query("SELECT * FROM students")
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
        ths = list(thumbs) if thumbs is not None and self.reference_faces else [None] * n
        if not (len(hashes) == len(quals) == len(ths) == n):
            raise ValueError("add_embeddings: vectors, photo_hashes, qualities and thumbs differ in length")
        added = 0
        with self.writing("store enrolled faces"):
            if not self.db.execute("SELECT 1 FROM students WHERE student_id = ?", [student_id]).fetchone():
                raise StoreError(f"{student_id}: not in the roster")
            kind = int(is_verifier_model(model))
            if model is not None:
                self.db.execute(f"DELETE FROM embeddings WHERE student_id = ? AND {_IS_VERIFIER} = ? "
                                "AND (model IS NULL OR model != ?)", [student_id, kind, model])
            known = {r[0] for r in self.db.execute(
                f"SELECT photo_hash FROM embeddings WHERE student_id = ? AND {_IS_VERIFIER} = ? "
                "AND photo_hash IS NOT NULL", [student_id, kind])}
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

    def embeddings(self, verifier: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(student_ids, vectors): one row per enrolled photo; vectors float32 (N, D); the face model's,
        or with `verifier` the verifier's."""
        rows = self.query(f"SELECT student_id, vector, dim FROM embeddings WHERE {_IS_VERIFIER} = ? "
                           "ORDER BY student_id, id", [int(verifier)])
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
        return {r["model"]: r["n"] for r in self.query(
            "SELECT model, count(*) AS n FROM embeddings GROUP BY model")}

    def reference_thumb(self, student_id: str) -> bytes | None:
        """The best-quality enrolled thumbnail (JPEG bytes) of a student, if any."""
        rows = self.query(
            "SELECT thumb FROM embeddings WHERE student_id = ? AND thumb IS NOT NULL "
            "ORDER BY coalesce(quality, 0) DESC, id LIMIT 1", [student_id])
        return rows[0]["thumb"] if rows else None

    # --------------------------------------------------------------------------------- sessions
    def start_session(self, class_name: str | None, source: str, interval_s: float,
                      started: datetime | str | None = None) -> int:
        """A new `running` session, whose lock file this store holds until end_session or close; a
        session a crashed process left `running` is marked interrupted first (repair_sessions)."""
        sid = None
        try:
            with self.writing("start a session"):
                self._repair_sessions()
                cur = self.db.execute(
                    "INSERT INTO sessions (class, source, started, interval_s, status) "
                    "VALUES (?, ?, ?, ?, 'running')",
                    [class_name, source, utc_iso(started), float(interval_s)])
                sid = int(cur.lastrowid)
                # taken before the row is committed: no other process can see it running but unheld
                self.files.hold(sid)
        except BaseException:
            if sid is not None:
                self.files.release(sid)
            raise
        return sid

    def end_session(self, session_id: int, status: str = "done",
                    ended: datetime | str | None = None) -> None:
        """Mark a session ended. Its lock is let go even when the write fails, so that the next start
        marks it interrupted instead of taking it for one still running."""
        try:
            with self.writing(f"end session {session_id}"):
                cur = self.db.execute("UPDATE sessions SET ended = ?, status = ? WHERE id = ?",
                                      [utc_iso(ended), status, int(session_id)])
                if cur.rowcount == 0:
                    raise StoreError(f"session {session_id}: not found")
        finally:
            self.files.release(int(session_id))

    def repair_sessions(self) -> list[int]:
        """Mark every session left `running` by a process that is gone as `interrupted`, ended at its
        last capture; returns their ids. A session whose process still runs is left alone."""
        with self.writing("repair interrupted sessions"):
            return self._repair_sessions()

    def running_sessions(self) -> list[SessionInfo]:
        """Sessions whose process is running now (after repairing those whose process is gone)."""
        self.repair_sessions()
        return [self._session(r) for r in self.query(self._SESSIONS_SQL + "WHERE s.status = 'running' "
                                                      "ORDER BY s.id")]

    def _repair_sessions(self) -> list[int]:
        ids = [r[0] for r in self.db.execute("SELECT id FROM sessions WHERE status = 'running'")]
        stale = [sid for sid in ids if not self.files.is_running(sid)]
        for sid in stale:
            self.db.execute(
                "UPDATE sessions SET status = 'interrupted', ended = coalesce("
                "(SELECT max(time) FROM captures c WHERE c.session_id = sessions.id), started) "
                "WHERE id = ? AND status = 'running'", [sid])
            self.files.lock_path(sid).unlink(missing_ok=True)
        return stale

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
        return [self._session(r) for r in self.query(self._SESSIONS_SQL + "ORDER BY s.id")]

    def session(self, ref: int | str) -> SessionInfo:
        """A session by id, or `last` (the newest). Unknown -> StoreError naming it."""
        if isinstance(ref, str) and ref.strip().lower() == "last":
            rows = self.query(self._SESSIONS_SQL + "ORDER BY s.id DESC LIMIT 1")
            if not rows:
                raise StoreError(f"session last: no sessions recorded in {self.db_path}")
        else:
            try:
                sid = int(ref)
            except (TypeError, ValueError):
                raise StoreError(f"session {ref}: not a session id (a number or `last`)") from None
            rows = self.query(self._SESSIONS_SQL + "WHERE s.id = ?", [sid])
            if not rows:
                raise StoreError(f"session {ref}: not found (see `rollcall sessions`)")
        return self._session(rows[0])

    # --------------------------------------------------------------------------------- captures
    def add_capture(self, session_id: int, time: datetime | str, ms: dict,
                    observations: list[Observation]) -> int:
        """One capture and all its observations in one transaction, committed before returning."""
        t = utc_iso(time)
        with self.writing("store a capture"):
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
        rows = self.query("SELECT id, time, tiles, ms FROM captures WHERE session_id = ? "
                           "ORDER BY time, id", [int(session_id)])
        for r in rows:
            r["ms"] = json.loads(r["ms"]) if r["ms"] else {}
        return rows

    def observations(self, session_id: int) -> list[dict]:
        """All observations of a session with their capture time, in capture then tile order."""
        rows = self.query(
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
                  participant: str = "", evidence: str | None = None, model: str | None = None) -> int:
        """`model`: which model decided the verdict, whose score `similarity` and `threshold` are."""
        with self.writing("store an alert"):
            cur = self.db.execute(
                "INSERT INTO alerts (session_id, capture_id, time, kind, student_id, display_name, "
                "identified_as, similarity, threshold, evidence, participant, model) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [int(session_id), capture_id, utc_iso(time), kind, student_id, display_name,
                 identified_as, _opt_float(similarity), _opt_float(threshold), evidence,
                 participant or student_id or display_name, model])
            return int(cur.lastrowid)

    def save_evidence(self, session_id: int, alert_id: int, jpeg: bytes) -> str:
        """Write an alert's evidence JPEG (0600, in 0700 folders); record and return its path relative
        to home. A failed write (a full disk) leaves no partial file and raises StoreError."""
        rel, path = self.files.write_evidence(session_id, alert_id, jpeg)
        try:
            with self.writing("record the evidence"):
                cur = self.db.execute("UPDATE alerts SET evidence = ? WHERE id = ?", [rel, int(alert_id)])
                if cur.rowcount == 0:
                    raise StoreError(f"alert {alert_id}: not found")
        except StoreError:
            path.unlink(missing_ok=True)
            raise
        return rel

    def evidence_path(self, rel: str | None) -> Path | None:
        """The file an alert's recorded evidence path names, if rollcall wrote it (HomeFiles)."""
        return self.files.evidence_path(rel)

    def read_evidence(self, rel: str | None) -> bytes | None:
        """The evidence JPEG of `rel`, or None if it is not rollcall's or is gone (HomeFiles)."""
        return self.files.read_evidence(rel)

    def alerts(self, session_id: int | None = None) -> list[dict]:
        if session_id is None:
            return self.query("SELECT * FROM alerts ORDER BY time, id")
        return self.query("SELECT * FROM alerts WHERE session_id = ? ORDER BY time, id",
                           [int(session_id)])

    def record_delivery(self, alert_id: int, channel: str, attempt: int, ok: bool,
                        error: str = "", time: datetime | str | None = None) -> int:
        with self.writing("record a delivery"):
            cur = self.db.execute(
                "INSERT INTO deliveries (alert_id, channel, attempt, time, ok, error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [int(alert_id), channel, int(attempt), utc_iso(time), int(bool(ok)), error or ""])
            return int(cur.lastrowid)

    def deliveries(self, alert_id: int) -> list[dict]:
        rows = self.query("SELECT * FROM deliveries WHERE alert_id = ? ORDER BY id", [int(alert_id)])
        for r in rows:
            r["ok"] = bool(r["ok"])
        return rows

    # --------------------------------------------------------------------------- purge / forget
    def purge(self, older_than_days: float, now: datetime | str | None = None) -> dict[str, int]:
        """Delete every record older than the cutoff, then compact (bot/privacy.py). Returns counts."""
        from .privacy import purge
        return purge(self, older_than_days, now)

    def forget(self, student: str) -> dict[str, int]:
        """Delete everything about one student (id or exact name), then compact (bot/privacy.py)."""
        from .privacy import forget
        return forget(self, student)
