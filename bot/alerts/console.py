"""Console channel: one line per alert on the terminal running the session."""
from __future__ import annotations

from typing import Callable

from . import Alert, format_text


class ConsoleChannel:
    name = "console"
    batch_s = 0.0

    def __init__(self, print_fn: Callable[[str], None] | None = None):
        if print_fn is None:
            from rich.console import Console

            console = Console(stderr=True)

            def print_fn(line: str) -> None:
                # markup off: display names are user text and may hold [brackets]
                console.print(line, style="bold red", markup=False, highlight=False)
        self._print = print_fn

    def deliver(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self._print(format_text(alert))
