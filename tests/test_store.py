"""The SQLite store on a real file: migrations, persistence, crash safety, purge and forget."""
from __future__ import annotations

import csv
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from bot.report import metrics
from bot.schema import MIGRATIONS
from bot.store import DB_NAME, Store, StoreError, utc_iso
from bot.types import Observation, Student, Verdict

ROOT = Path(__file__).resolve().parent.parent


def roster(data_dir: Path) -> list[Student]:
    with open(data_dir / "seed-roster.csv", newline="", encoding="utf-8") as f:
        return [Student(r["student_id"], r["name"], tuple(a for a in r["aliases"].split(";") if a),
                        r["email"]) for r in csv.DictReader(f)]


def photo_bytes(data_dir: Path, name: str, i: int = 0) -> bytes:
    return sorted((data_dir / "seed-faces" / name).glob("*.jpg"))[i].read_bytes()


def obs(i: int, student: Student | None, verdict: str = "verified", display: str | None = None,
        identified_as: str | None = None, best_other: str | None = None) -> Observation:
    return Observation(
        tile_index=i, box=(i * 320, 0, 320, 180),
        display_name=display if display is not None else (student.name if student else "iPhone"),
        student_id=student.student_id if student else None, camera_off=False, faces=1,
        face_box=(i * 320 + 100, 40, 80, 80), face_px=80, blur=42.5,
        verdict=Verdict(verdict, similarity=0.71, identified_as=identified_as, best_other=best_other,
                        best_other_similarity=0.3 if best_other else None),
        participant=student.student_id if student else (display or "iphone"))


def raw_bytes(home: Path) -> bytes:
    out = b""
    for suffix in ("", "-wal"):
        p = home / (DB_NAME + suffix)
        if p.exists():
            out += p.read_bytes()
    return out


def test_migrations_from_empty_home(tmp_path):
    home = tmp_path / "new" / "home"
    with Store(home) as store:
        assert store.schema_version() == max(v for v, _, _ in MIGRATIONS)
    con = sqlite3.connect(home / DB_NAME)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"students", "embeddings", "sessions", "captures", "observations", "alerts",
            "deliveries", "_rollcall_migrations"} <= tables
    assert [r[0] for r in con.execute("SELECT version FROM _rollcall_migrations ORDER BY version")] \
        == [v for v, _, _ in MIGRATIONS]
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "idx_observations_session_id_student_id" in indexes
    con.close()


def test_reopen_keeps_data_and_runs_each_migration_once(tmp_path, data_dir):
    students = roster(data_dir)
    vecs = np.random.default_rng(0).normal(size=(3, 128)).astype(np.float32)
    with Store(tmp_path) as store:
        store.upsert_students(students, "DL-A")
        assert store.add_embeddings(students[0].student_id, vecs, ["h1", "h2", "h3"], [0.2, 0.9, 0.5],
                                    [b"t1", photo_bytes(data_dir, students[0].name), b"t3"]) == 3
        sid = store.start_session("DL-A", "video:lecture.mp4", 10)
        store.add_capture(sid, "2024-05-01T10:00:00Z", {"segment": 12.5}, [obs(0, students[0])])
        applied = store.db.execute("SELECT applied FROM _rollcall_migrations").fetchall()
    with Store(tmp_path) as store:
        assert store.db.execute("SELECT applied FROM _rollcall_migrations").fetchall() == applied
        assert store.list_students("DL-A") == sorted(students, key=lambda s: s.student_id)
        ids, got = store.embeddings()
        assert list(ids) == [students[0].student_id] * 3 and got.dtype == np.float32
        np.testing.assert_array_equal(got, vecs)
        # the best-quality thumbnail is the enrolled reference
        assert store.reference_thumb(students[0].student_id) == photo_bytes(data_dir, students[0].name)
        # the same photos again add nothing
        assert store.add_embeddings(students[0].student_id, vecs, ["h1", "h2", "h3"]) == 0
        info = store.session("last")
        assert (info.id, info.captures, info.status, info.class_name) == (sid, 1, "running", "DL-A")
        (o,) = store.observations(sid)
        assert o["box"] == [0, 0, 320, 180] and o["time"] == "2024-05-01T10:00:00.000Z"
        assert store.captures(sid)[0]["ms"] == {"segment": 12.5}


def test_enrolling_with_another_model_replaces_that_students_vectors(tmp_path, data_dir):
    students = roster(data_dir)
    a, b = students[0].student_id, students[1].student_id
    rng = np.random.default_rng(0)
    with Store(tmp_path) as store:
        store.upsert_students(students)
        store.add_embeddings(a, rng.normal(size=(2, 8)), ["h1", "h2"], model="old:face")
        store.add_embeddings(b, rng.normal(size=(1, 8)), ["h9"])  # before models were recorded
        assert store.embedding_models() == {"old:face": 2, None: 1}
        # the same photos through a new model: not skipped as already stored, and the old rows go
        new = rng.normal(size=(2, 8)).astype(np.float32)
        assert store.add_embeddings(a, new, ["h1", "h2"], model="new:face") == 2
        assert store.add_embeddings(a, new, ["h1", "h2"], model="new:face") == 0
        assert store.embedding_models() == {"new:face": 2, None: 1}
        ids, got = store.embeddings()
        np.testing.assert_array_equal(got[ids == a], new)


def test_students_lookup_and_errors(tmp_path, data_dir):
    students = roster(data_dir)
    with Store(tmp_path) as store:
        store.upsert_students(students, "DL-A")
        rizky = next(s for s in students if s.name == "Rizky Putri Pratiwi")
        assert store.get_student(rizky.student_id) == rizky
        assert store.get_student("Rizky Putri Pratiwi") == rizky
        assert store.get_student("rizky putri pratiwi") == rizky
        assert store.get_student("Rizky") is None
        # re-import without a class keeps the class
        store.upsert_students([Student(rizky.student_id, "Rizky P. Pratiwi")])
        assert store.student_class(rizky.student_id) == "DL-A"
        assert store.get_student(rizky.student_id).name == "Rizky P. Pratiwi"
        with pytest.raises(StoreError, match="NOPE"):
            store.add_embeddings("NOPE", np.zeros((1, 4)))
        with pytest.raises(StoreError, match="session 42"):
            store.session(42)
        with pytest.raises(StoreError, match="session last"):
            store.session("last")


def test_times_are_one_utc_format():
    assert utc_iso("2024-05-01T17:00:00+07:00") == "2024-05-01T10:00:00.000Z"
    assert utc_iso("2024-05-01T10:00:00.5") == "2024-05-01T10:00:00.500Z"
    with pytest.raises(StoreError, match="yesterday"):
        utc_iso("yesterday")


def test_unwritable_or_damaged_home_is_a_store_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match=re.escape(str(blocker))):
        Store(blocker / "home").open()
    with pytest.raises(StoreError, match="not a directory|cannot create"):
        Store(blocker).open()
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / DB_NAME).write_bytes(b"this is not sqlite" * 500)
    with pytest.raises(StoreError, match=re.escape(str(damaged / DB_NAME)) + ".*damaged"):
        Store(damaged).open()
    if os.geteuid() != 0:   # root writes anywhere; the two cases above cover it
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            with pytest.raises(StoreError, match=re.escape(str(ro))):
                Store(ro).open()
        finally:
            ro.chmod(0o755)


def test_newer_schema_is_refused(tmp_path):
    with Store(tmp_path) as store:
        with store.db.atomic():
            store.db["_rollcall_migrations"].insert({"version": 99, "name": "future", "applied": "x"})
    with pytest.raises(StoreError, match="schema version 99"):
        Store(tmp_path).open()


WRITER = textwrap.dedent("""
    import sys
    from bot.store import Store, utc_iso
    from bot.types import Observation, Verdict
    store = Store(sys.argv[1]).open()
    sid = store.start_session("DL-A", "screen:1", 10)
    n = 0
    while True:
        tiles = [Observation(i, (i, 0, 10, 10), f"Student {i}", f"S{i}", False, 1, None, 50, 30.0,
                             Verdict("verified", 0.8), f"S{i}") for i in range(12)]
        store.add_capture(sid, utc_iso(), {"detect": 1.0}, tiles)
        n += 1
        print(n, flush=True)
""")


def test_committed_captures_survive_sigkill(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    reported = 0
    deadline = time.monotonic() + 300      # generous: a loaded 2-core machine starts Python slowly
    try:
        while reported < 20 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            reported = int(line)
    finally:
        os.kill(proc.pid, signal.SIGKILL)   # mid-run: the writer never closes the store
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert reported >= 20, "writer did not get going"
    with Store(tmp_path) as store:
        info = store.session("last")
        assert info.status == "running" and info.ended is None
        caps = store.captures(info.id)
        assert len(caps) >= reported              # every capture reported committed is there
        per_capture = {}
        for o in store.observations(info.id):
            per_capture[o["capture_id"]] = per_capture.get(o["capture_id"], 0) + 1
        assert all(per_capture.get(c["id"]) == c["tiles"] == 12 for c in caps)  # none half-written
        report = metrics.session_report(store, "last")
        assert report["session"]["captures"] == len(caps)
        assert report["session"]["ended"] is None and report["session"]["duration_s"] >= 0
        present = {st["student_id"]: st["present_s"] for st in report["students"]}
        assert present == {f"S{i}": 10 * len(caps) for i in range(12)}


def _session_with_alerts(store: Store, students: list[Student], data_dir: Path, day: str) -> dict:
    """One session on `day` where students[0] is impersonated by students[1]; returns ids."""
    a, b, c = students[0], students[1], students[2]
    sid = store.start_session("DL-A", f"video:{day}.mp4", 10, started=f"{day}T10:00:00Z")
    cap_ids = []
    for k in range(3):
        cap_ids.append(store.add_capture(sid, f"{day}T10:00:{k}0Z", {"detect": 3.0}, [
            obs(0, a, "mismatch", identified_as=b.student_id, best_other=b.student_id),
            obs(1, c, "verified", best_other=a.student_id),
            obs(2, None, "unlabeled", display=f"{a.student_id}_{a.name} (2)", identified_as=a.student_id),
        ]))
    alert = store.add_alert(sid, f"{day}T10:00:20Z", "mismatch", capture_id=cap_ids[-1],
                            student_id=a.student_id, display_name=a.name, identified_as=b.student_id,
                            similarity=0.21, threshold=0.42)
    rel = store.save_evidence(sid, alert, photo_bytes(data_dir, a.name))
    store.record_delivery(alert, "console", 1, True)
    store.record_delivery(alert, "webhook", 1, False, "HTTP 500")
    store.end_session(sid, "done", ended=f"{day}T10:01:00Z")
    return {"session": sid, "alert": alert, "evidence": rel}


def test_purge_deletes_old_records_and_evidence(tmp_path, data_dir):
    students = roster(data_dir)
    with Store(tmp_path) as store:
        store.upsert_students(students, "DL-A")
        old = _session_with_alerts(store, students, data_dir, "2024-01-10")
        new = _session_with_alerts(store, students, data_dir, "2024-03-01")
        assert (tmp_path / old["evidence"]).is_file()
        counts = store.purge(30, now="2024-03-05T00:00:00Z")
        assert counts == {"deliveries": 2, "alerts": 1, "observations": 9, "captures": 3,
                          "sessions": 1, "evidence_files": 1}
        assert not (tmp_path / old["evidence"]).exists()
        assert (tmp_path / new["evidence"]).is_file()
        assert [s.id for s in store.sessions()] == [new["session"]]
        assert len(store.observations(new["session"])) == 9
        assert [d["channel"] for d in store.deliveries(new["alert"])] == ["console", "webhook"]
        assert store.list_students() != []          # the roster is not history: purge keeps it
        with pytest.raises(StoreError, match="older-than"):
            store.purge(-1)


def test_purge_leaves_no_byte_of_the_old_records(tmp_path, data_dir):
    students = roster(data_dir)
    with Store(tmp_path) as store:
        store.upsert_students(students, "DL-A")
        old = _session_with_alerts(store, students, data_dir, "2024-01-10")
        store.add_capture(old["session"], "2024-01-10T10:00:40Z", {}, [obs(0, None, "unlabeled", display="Zq-OLD-guest")])
        store.record_delivery(old["alert"], "email", 1, False, "Kq-OLD-smtp-refused")
        _session_with_alerts(store, students, data_dir, "2024-03-01")
        secrets = [b"Zq-OLD-guest", b"Kq-OLD-smtp-refused", b"video:2024-01-10.mp4", b"2024-01-10T10:00"]
        before = raw_bytes(tmp_path)
        assert all(x in before for x in secrets)          # the test can fail

        store.purge(30, now="2024-03-05T00:00:00Z")
        after = raw_bytes(tmp_path)
        assert [x for x in secrets if x in after] == []
        assert b"video:2024-03-01.mp4" in after and b"2024-03-01T10:00" in after
        wal = tmp_path / (DB_NAME + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0
        # VACUUM ran: no free pages left behind (deleting alone would leave them, zeroed or not)
        assert store.db.execute("PRAGMA freelist_count").fetchone()[0] == 0


def test_forget_leaves_no_byte_of_the_student(tmp_path, data_dir):
    students = roster(data_dir)
    a, b, c = students[0], students[1], students[2]
    with Store(tmp_path) as store:
        store.upsert_students(students, "DL-A")
        for s in students:
            store.add_embeddings(s.student_id, np.random.default_rng(1).normal(size=(2, 128)),
                                 [f"{s.student_id}-1", f"{s.student_id}-2"], [0.5, 0.6],
                                 [photo_bytes(data_dir, s.name, 0), photo_bytes(data_dir, s.name, 1)])
        ids = _session_with_alerts(store, students, data_dir, "2024-03-01")
        before = raw_bytes(tmp_path)
        assert a.name.encode() in before and a.student_id.encode() in before   # the test can fail

        with pytest.raises(StoreError, match="Nobody Here"):
            store.forget("Nobody Here")
        counts = store.forget(a.name)
        assert counts["students"] == 1 and counts["embeddings"] == 2 and counts["alerts"] == 1
        assert counts["observations"] == 6     # a's own tile, and the unlabeled tile showing a's face
        assert counts["evidence_files"] == 1
        assert not (tmp_path / ids["evidence"]).exists()

        after = raw_bytes(tmp_path)
        assert a.name.encode() not in after and a.student_id.encode() not in after
        wal = tmp_path / (DB_NAME + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0
        assert store.db.execute("PRAGMA freelist_count").fetchone()[0] == 0   # VACUUM ran
        # everyone else is still there
        assert c.name.encode() in after and b.student_id.encode() in after
        assert store.get_student(a.student_id) is None
        assert set(store.embeddings()[0]) == {s.student_id for s in students[1:]}
        rest = store.observations(ids["session"])
        assert len(rest) == 3 and all(o["student_id"] == c.student_id for o in rest)
        assert all(o["best_other"] is None for o in rest)
        assert store.alerts() == []
        assert store.session(ids["session"]).captures == 3

    with Store(tmp_path) as store:       # and it stays forgotten after reopening
        assert store.get_student(a.student_id) is None
    assert a.name.encode() not in raw_bytes(tmp_path)


OPENER = "import sys; from bot.store import Store; Store(sys.argv[1]).open().close(); print('ok')"


def test_two_processes_opening_a_new_home_at_once(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [o.strip() for o, _ in outs] == ["ok"] * 3, [e for _, e in outs]
    with Store(tmp_path) as store:
        versions = [r["version"] for r in store.db.query("SELECT version FROM _rollcall_migrations")]
        assert versions == [v for v, _, _ in MIGRATIONS]
