"""The report as JSON, exactly DESIGN.md "Report JSON"."""
from __future__ import annotations

import json


def to_json(report: dict, indent: int | None = 2) -> str:
    return json.dumps(report, indent=indent, ensure_ascii=False) + "\n"
