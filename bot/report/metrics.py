"""Per-session, per-student figures of the report (DESIGN.md "Report JSON"), from plain rows.

`compute` is a pure function over the rows the store returns; `session_report` reads them from a Store.
A student's figures count captures, not tiles: a student seen in two tiles of one capture is one capture.
Percentages have one decimal; a percentage of nothing (never seen, no judged face) is null.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime

from bot.home_files import is_evidence_rel
from bot.store import SessionInfo, Store
from bot.types import JUDGED, Student, VerdictKind

CAMERA_OFF_BELOW_PCT = 10.0   # status camera_off: camera on in fewer than this % of captures seen
VERIFIED_FROM_PCT = 90.0      # status verified: at least this % of judged captures verified
STATUSES = ("flagged", "absent", "camera_off", "verified", "unverified")


def _num(x: float) -> int | float:
    """Whole numbers as int (3600, not 3600.0); others to one decimal."""
    x = round(float(x), 1)
    return int(x) if x.is_integer() else x


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _seconds_between(a: str, b: str) -> float:
    return max(0.0, (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds())


def session_block(info: SessionInfo, captures: list[dict]) -> dict:
    times = [c["time"] for c in captures]
    # A session cut short (killed process) has no end: it lasted until its last capture.
    end = info.ended or (max(times) if times else info.started)
    return {"id": info.id, "class": info.class_name, "source": info.source, "started": info.started,
            "ended": info.ended, "duration_s": _num(_seconds_between(info.started, end)),
            "captures": len(captures), "interval_s": _num(info.interval_s)}


def student_rows(roster: list[Student], observations: list[dict], alerts: list[dict],
                 interval_s: float) -> list[dict]:
    by_student: dict[str, list[dict]] = defaultdict(list)
    for o in observations:
        if o["student_id"]:
            by_student[o["student_id"]].append(o)
    flagged = {a["student_id"] for a in alerts if a["student_id"]}
    rows = []
    for st in roster:
        obs = by_student.get(st.student_id, [])
        per_capture: dict[int, list[dict]] = defaultdict(list)
        for o in obs:
            per_capture[o["capture_id"]].append(o)
        seen = len(per_capture)
        camera_on = sum(1 for tiles in per_capture.values() if any(not t["camera_off"] for t in tiles))
        judged = verified = mismatch = unknown = 0
        for tiles in per_capture.values():
            verdicts = {t["verdict"] for t in tiles}
            if verdicts & set(JUDGED):
                judged += 1
                verified += VerdictKind.VERIFIED in verdicts
            mismatch += VerdictKind.MISMATCH in verdicts
            unknown += VerdictKind.UNKNOWN_FACE in verdicts
        camera_on_pct = _pct(camera_on, seen)
        verified_pct = _pct(verified, judged)
        if st.student_id in flagged:
            status = "flagged"
        elif seen == 0:
            status = "absent"
        elif camera_on_pct < CAMERA_OFF_BELOW_PCT:
            status = "camera_off"
        elif verified_pct is not None and verified_pct >= VERIFIED_FROM_PCT:
            status = "verified"
        else:
            status = "unverified"
        names = Counter(o["display_name"] for o in obs if o["display_name"])
        times = [o["time"] for o in obs]
        rows.append({
            "student_id": st.student_id, "name": st.name, "status": status,
            "present_s": _num(seen * interval_s),
            "first_seen": min(times) if times else None, "last_seen": max(times) if times else None,
            "camera_on_pct": camera_on_pct, "verified_pct": verified_pct,
            "mismatch_captures": mismatch, "unknown_face_captures": unknown,
            "display_names": [n for n, _ in sorted(names.items(), key=lambda kv: (-kv[1], kv[0]))],
        })
    return rows


def unlabeled_rows(observations: list[dict]) -> list[dict]:
    """Display names that resolved to no roster student, and tiles that showed no name at all (one row
    per tile place: Teams shows names only on some tiles): captures they were in, and the enrolled
    student their face matched most often (null if none)."""
    captures: dict[tuple, set[int]] = defaultdict(set)
    who: dict[tuple, Counter] = defaultdict(Counter)
    for o in observations:
        if o["student_id"]:
            continue
        name = o["display_name"] or ""
        key = (name, "" if name else (o.get("participant") or ""))
        captures[key].add(o["capture_id"])
        if o["identified_as"]:
            who[key][o["identified_as"]] += 1
    rows = []
    for (name, place), caps in captures.items():
        row = {"display_name": name, "captures": len(caps),
               "identified_as": (min(who[(name, place)].items(), key=lambda kv: (-kv[1], kv[0]))[0]
                                 if who[(name, place)] else None)}
        if not name:
            row["participant"] = place      # which nameless tile: its place in reading order
        rows.append(row)
    return sorted(rows, key=lambda r: (-r["captures"], r["display_name"], r.get("participant", "")))


def alert_rows(alerts: list[dict]) -> list[dict]:
    """The alerts of the report; an evidence path not of rollcall's own shape (edited in the database
    to point elsewhere) is reported as none, so no report names or embeds a file outside evidence/."""
    return [{"id": a["id"], "time": a["time"], "kind": a["kind"], "student_id": a["student_id"],
             "display_name": a["display_name"], "identified_as": a["identified_as"],
             "similarity": a["similarity"], "threshold": a["threshold"], "model": a.get("model"),
             "evidence": a["evidence"] if is_evidence_rel(a["evidence"]) else None}
            for a in alerts]


def compute(info: SessionInfo, roster: list[Student], captures: list[dict], observations: list[dict],
            alerts: list[dict]) -> dict:
    """The report dict, exactly the keys of DESIGN.md "Report JSON"."""
    return {"session": session_block(info, captures),
            "students": student_rows(roster, observations, alerts, info.interval_s),
            "unlabeled": unlabeled_rows(observations),
            "alerts": alert_rows(alerts)}


def session_roster(store: Store, info: SessionInfo, observations: list[dict],
                   alerts: list[dict]) -> list[Student]:
    """The class's roster (the whole roster if the class has none), plus anyone else seen or alerted
    on, so that no observation is left out of the student rows."""
    roster = store.list_students(info.class_name) if info.class_name else []
    if not roster:
        roster = store.list_students()
    known = {s.student_id for s in roster}
    extra = sorted({o["student_id"] for o in observations if o["student_id"]}
                   | {a["student_id"] for a in alerts if a["student_id"]})
    for sid in extra:
        if sid not in known:
            roster.append(store.get_student(sid) or Student(student_id=sid, name=sid))
    return roster


def session_data(store: Store, ref: int | str) -> tuple[SessionInfo, list[Student], list[dict],
                                                           list[dict], list[dict]]:
    info = store.session(ref)
    captures = store.captures(info.id)
    observations = store.observations(info.id)
    alerts = store.alerts(info.id)
    return info, session_roster(store, info, observations, alerts), captures, observations, alerts


def session_report(store: Store, ref: int | str) -> dict:
    """The report of session `ref` (an id or "last"); an unknown session is a StoreError naming it."""
    return compute(*session_data(store, ref))


def timelines(captures: list[dict], observations: list[dict],
              roster: list[Student] | None = None) -> list[dict]:
    """Per participant, the verdict in each capture of the session (None where not seen):
    [{"participant", "label", "verdicts": [..one per capture..]}], roster students first."""
    index = {c["id"]: i for i, c in enumerate(captures)}
    names = {s.student_id: s.name for s in roster or []}
    rows: dict[str, dict] = {}
    for o in observations:
        key = o["participant"] or o["student_id"] or o["display_name"] or "?"
        row = rows.get(key)
        if row is None:
            label = names.get(o["student_id"]) or o["display_name"] or key
            sid = o["student_id"]
            if sid and key.startswith(f"{sid}#"):  # a second tile under this student's name
                label = f"{label} (tile {key[len(sid) + 1:]})"
            row = rows[key] = {"participant": key, "label": label, "student_id": o["student_id"],
                               "verdicts": [None] * len(captures)}
        i = index.get(o["capture_id"])
        if i is not None and row["verdicts"][i] is None:  # two tiles of one participant: the first
            row["verdicts"][i] = o["verdict"]
    return sorted(rows.values(), key=lambda r: (r["student_id"] is None, r["label"].casefold()))
