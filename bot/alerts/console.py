"""Console channel: one line per alert on the terminal running the session."""
from __future__ import annotations

from typing import Callable

from . import Alert, format_text


class ConsoleChannel:
    name = "console"
    batch_s = 0.0

    def __init__(self, print_fn: Callable[[str], None] | None = None):
        if print_fn is None:
            from bot.display import PlainConsole

            # markup off, hidden characters written out: display names are user text
            console = PlainConsole(stderr=True)

            def print_fn(line: str) -> None:
                console.print(line, style="bold red", soft_wrap=True)  # one line, whatever the width
        self._print = print_fn

    def deliver(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self._print(format_text(alert))
