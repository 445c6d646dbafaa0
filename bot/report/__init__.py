"""Session reports: JSON (DESIGN.md "Report JSON"), CSV, self-contained HTML, terminal summary.

    from bot.report import render, write
    text = render(store, "last", "json")
"""
from __future__ import annotations

from pathlib import Path

from bot.store import Store, StoreError

FORMATS = ("json", "csv", "html")


def render(store: Store, session: int | str, fmt: str = "json") -> str:
    """The report of `session` (an id or "last") as text in `fmt`."""
    # Imported here so that `import bot.report` stays light for callers that only need FORMATS.
    from bot.report import csv_report, html, json_report, metrics

    if fmt == "html":
        return html.render(store, session)
    report = metrics.session_report(store, session)
    if fmt == "json":
        return json_report.to_json(report)
    if fmt == "csv":
        return csv_report.to_csv(report)
    raise ValueError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")


def write(store: Store, session: int | str, fmt: str, out: Path | str) -> Path:
    """Write the report to `out`; returns the path."""
    text = render(store, session, fmt)
    path = Path(out).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise StoreError(f"{path}: cannot write the report ({e.strerror or e})") from e
    return path
