"""The database's schema: tables and indexes built by ordered migrations, each applied once and
recorded in `_rollcall_migrations` (Store.open applies them), so an old home is brought up to date."""
from __future__ import annotations

from typing import Callable

import sqlite_utils

MIGRATIONS_TABLE = "_rollcall_migrations"


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


def _m4_alert_model(db: sqlite_utils.Database) -> None:
    # which model decided an alert's verdict ("verifier" or "mobilenet"): its score and threshold are
    # that model's
    db["alerts"].add_column("model", str)


# Ordered; append only. A migration runs once, in one transaction with its record.
MIGRATIONS: list[tuple[int, str, Callable[[sqlite_utils.Database], None]]] = [
    (1, "tables", _m1_tables),
    (2, "report indexes", _m2_indexes),
    (3, "embedding model", _m3_embedding_model),
    (4, "alert model", _m4_alert_model),
]
