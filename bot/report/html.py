"""The report as one self-contained HTML file (Jinja2): styles inline, images as data: URIs, the
per-participant timeline as inline SVG, so the file can be mailed or archived alone."""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Callable

import jinja2

from bot.report import metrics
from bot.report.clock import clock_for, day_and_time, wall
from bot.store import Store
from bot.types import VerdictKind as V

TEMPLATES = Path(__file__).resolve().parent / "templates"

VERDICT_COLOURS = {
    V.VERIFIED: "#2e9d4f", V.MISMATCH: "#d1333a", V.UNKNOWN_FACE: "#f08c00", V.UNLABELED: "#8e5cc4",
    V.CAMERA_OFF: "#9aa0a6", V.NO_FACE: "#cfd4d9", V.MULTIPLE_FACES: "#e6c229", V.UNJUDGED: "#6f8fb0",
}
TIMELINE_WIDTH = 900    # px of the SVG strip; each capture gets TIMELINE_WIDTH / captures
ROW_HEIGHT = 14


def when(iso: str | None) -> str:
    """'2024-05-01T10:00:05.000Z' -> '2024-05-01 10:00:05 UTC'."""
    parts = day_and_time(iso)
    return f"{parts[0]} {parts[1]} UTC" if parts else (iso or "-")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=when)
    return env


def timeline_runs(verdicts: list[str | None], width: float = TIMELINE_WIDTH,
                  times: list[str] | None = None, clock: Callable[[str | None], str] = wall) -> list[dict]:
    """Consecutive equal verdicts as one rectangle each (x, w in px), so a long session stays small.
    `times` (one per capture) label each run with its first and last capture time."""
    n = len(verdicts)
    if n == 0:
        return []
    step = width / n
    runs, start = [], 0
    for i in range(1, n + 1):
        if i == n or verdicts[i] != verdicts[start]:
            if verdicts[start] is not None:
                runs.append({"x": round(start * step, 2), "w": round((i - start) * step, 2),
                             "verdict": verdicts[start], "first": start + 1, "last": i,
                             "colour": VERDICT_COLOURS.get(verdicts[start], "#444"),
                             "from": clock(times[start]) if times else "",
                             "to": clock(times[i - 1]) if times else ""})
            start = i
    return runs


def data_uri(jpeg: bytes | None) -> str | None:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii") if jpeg else None


def to_html(report: dict, timelines: list[dict], evidence: dict[int, bytes | None],
            capture_times: list[str] | None = None) -> str:
    """`timelines` from metrics.timelines; `evidence` maps alert id -> evidence JPEG bytes;
    `capture_times` (one per capture, as in the timelines) label the strips."""
    clock = clock_for(report["session"])  # a replay's times are into the recording
    rows = [{**t, "runs": timeline_runs(t["verdicts"], times=capture_times, clock=clock)} for t in timelines]
    alerts = [{**a, "image": data_uri(evidence.get(a["id"]))} for a in report["alerts"]]
    env = _env()
    env.filters["clock"] = clock
    return env.get_template("report.html").render(
        session=report["session"], students=report["students"],
        present=[s for s in report["students"] if s["status"] != "absent"],
        absent=[s for s in report["students"] if s["status"] == "absent"],
        unlabeled=report["unlabeled"], alerts=alerts, timelines=rows,
        width=TIMELINE_WIDTH, row_height=ROW_HEIGHT, colours=VERDICT_COLOURS,
        first_time=clock(capture_times[0]) if capture_times else "",
        last_time=clock(capture_times[-1]) if capture_times else "")


def render(store: Store, ref: int | str) -> str:
    """The HTML report of session `ref` (an id or "last")."""
    info, roster, captures, observations, alerts = metrics.session_data(store, ref)
    report = metrics.compute(info, roster, captures, observations, alerts)
    # only files rollcall wrote under <home>/evidence are read: an edited path is never followed
    evidence = {a["id"]: store.read_evidence(a["evidence"]) for a in report["alerts"]}
    return to_html(report, metrics.timelines(captures, observations, roster), evidence,
                   [c["time"] for c in captures])
