"""How a report shows a moment: the wall clock of a live session, the time into the recording of a replay
(a lecturer looks for 0:10 in the video, not for the minute the replay happened to run)."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

RECORDED = ("video:", "folder:")  # sources.source_label of a replayed recording


def is_replay(session: dict) -> bool:
    return str(session.get("source") or "").startswith(RECORDED)


def day_and_time(iso: str | None) -> tuple[str, str] | None:
    """A stored UTC time (store.utc_iso) cut into its day and its time of day:
    '2024-05-01T10:00:05.000Z' -> ('2024-05-01', '10:00:05'); None for anything shorter."""
    return (iso[:10], iso[11:19]) if iso and len(iso) >= 19 else None


def wall(iso: str | None) -> str:
    """'2024-05-01T10:00:05.000Z' -> '10:00:05' (the date is in the report's header)."""
    parts = day_and_time(iso)
    return parts[1] if parts else (iso or "-")


def into(iso: str | None, started: str) -> str:
    """The time from `started` to `iso` as m:ss, or h:mm:ss past an hour."""
    if not iso:
        return "-"
    s = max(0, round((datetime.fromisoformat(iso) - datetime.fromisoformat(started)).total_seconds()))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def clock_for(session: dict) -> Callable[[str | None], str]:
    """The clock a report of this session (its JSON "session" block) shows times in."""
    if is_replay(session) and session.get("started"):
        return lambda iso: into(iso, session["started"])
    return wall
