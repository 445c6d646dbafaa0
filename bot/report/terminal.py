"""A readable summary of a session report in the terminal (rich)."""
from __future__ import annotations

import io

from rich import box
from rich.table import Table
from rich.text import Text

from ..display import PlainConsole, styled
from .clock import clock_for, day_and_time

NARROW = 110  # columns below which the summary table leaves out the clock times
STATUS_STYLE = {"verified": "green", "flagged": "bold red", "unverified": "yellow",
                "camera_off": "dim", "absent": "dim red"}


def _fmt(value, suffix: str = "") -> str:
    return "-" if value is None else f"{value}{suffix}"


def _minutes(seconds) -> str:
    return f"{seconds / 60:.1f}"


def stamp(iso: str | None, same_day_as: str | None = None, seconds: bool = True) -> str:
    """"2024-05-01T10:00:00.000Z" -> "2024-05-01 10:00:00Z" (or, without seconds, "2024-05-01 10:00");
    the time alone on `same_day_as`'s day: a laptop's 80-column terminal shows the whole line."""
    parts = day_and_time(iso)
    if not parts:
        return iso or ""
    (day, time_of_day), same_day = parts, day_and_time(same_day_as)
    clock = f"{time_of_day}Z" if seconds else time_of_day[:5]
    return clock if same_day and day == same_day[0] else f"{day} {clock}"


def print_summary(report: dict, console: PlainConsole | None = None) -> None:
    console = console or PlainConsole()
    s = report["session"]
    console.print(
        Text("Session " + str(s["id"]), style="bold"),
        f"  class {s['class'] or '-'}  source {s['source']}  "
        f"captures {s['captures']} every {s['interval_s']} s\n"
        f"started {stamp(s['started'])}  ended {stamp(s['ended'], s['started']) or '(not ended)'}  "
        f"duration {_minutes(s['duration_s'])} min", sep="")

    # an 80-column terminal (a laptop's default) drops the first/last-seen clock times and the column
    # rules rather than cut every student's id and status short; the json/csv/html reports keep them
    narrow = console.width < NARROW
    table = (Table(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, show_edge=False) if narrow
             else Table(show_lines=False))
    table.add_column("student", no_wrap=True, overflow="ellipsis", max_width=32)
    table.add_column("id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    # short headers so a 120-column terminal fits a full name; the caption spells them out
    for col in ("min",) + (() if narrow else ("first", "last")) + ("cam%", "ver%", "mism", "unkn"):
        table.add_column(col, justify="left" if col in ("first", "last") else "right", no_wrap=True)
    table.caption = "min present, cam% camera on, ver% verified of judged, mism/unkn captures"
    clock_of = clock_for(s)  # a replay's times are into the recording
    for st in report["students"]:
        clock = () if narrow else (clock_of(st["first_seen"]), clock_of(st["last_seen"]))
        table.add_row(st["name"], st["student_id"],
                      styled(st["status"], STATUS_STYLE.get(st["status"], "")),
                      _minutes(st["present_s"]), *clock,
                      _fmt(st["camera_on_pct"]), _fmt(st["verified_pct"]),
                      str(st["mismatch_captures"]), str(st["unknown_face_captures"]))
    console.print(table)

    if report["unlabeled"]:
        console.print(Text("Unlabeled names", style="bold"), " (not in the roster):", sep="")
        for u in report["unlabeled"]:
            who = f", face matches {u['identified_as']}" if u["identified_as"] else ""
            n = u["captures"]
            label = repr(u["display_name"]) if u["display_name"] else f"no name shown ({u['participant']})"
            console.print(f"  {label}: {n} capture{'' if n == 1 else 's'}{who}")
    if report["alerts"]:
        console.print(Text(f"Alerts ({len(report['alerts'])})", style="bold red"))
        names = {st["student_id"]: st["name"] for st in report["students"]}

        def by(alert: dict) -> str:
            return f" by {alert['model']}" if alert.get("model") else ""  # the model that decided

        def who(sid: str | None) -> str:
            return f"{names[sid]} ({sid})" if sid in names else (sid or "")

        for a in report["alerts"]:
            sim = "-" if a["similarity"] is None else f"{a['similarity']:.2f}"
            thr = "-" if a["threshold"] is None else f"{a['threshold']:.2f}"
            console.print(
                f"  #{a['id']} {clock_of(a['time'])} {a['kind']}{by(a)}: tile {a['display_name']!r} "
                f"[{who(a['student_id']) or 'unlabeled'}] "
                f"shows {who(a['identified_as']) or 'nobody enrolled'}"
                f", similarity {sim} (threshold {thr})  {a['evidence'] or ''}")
    else:
        console.print("No alerts.")


def to_text(report: dict, width: int = 120) -> str:
    """The summary as plain text (no colour codes)."""
    buf = io.StringIO()
    print_summary(report, PlainConsole(file=buf, width=width, color_system=None, force_terminal=False))
    return buf.getvalue()
