"""Alerts: what one impersonation episode tells the lecturer, and the channels that carry it.

A channel is any object with
    name: str          "console", "desktop", "webhook", "email"
    batch_s: float     0 = deliver each alert alone; > 0 = gather alerts this many seconds (a digest)
    deliver(alerts: list[Alert]) -> None    raises ChannelError (or any exception) when it fails
`worker.AlertDispatcher` queues alerts and drives the channels off the capture thread.

The texts below carry a display name, roster ids and a class name, which students and rosters choose:
`shown` writes out their control and bidi characters, so no channel gets a line break in a mail header,
an escape sequence for a terminal or an override that reverses the line around it. A channel whose
format reads markup passes its escaper as `escape`: it is applied to that text only, not to rollcall's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Mapping, Protocol

from bot.display import visible
from bot.errors import RollcallError
from bot.types import VerdictKind

TEST_KIND = "test"  # the kind of `rollcall alerts test`'s alert; any other is a bad VerdictKind
KIND_TITLES = {VerdictKind.MISMATCH: "MISMATCH", VerdictKind.UNKNOWN_FACE: "UNKNOWN FACE", TEST_KIND: "TEST"}


class ChannelError(RollcallError, RuntimeError):
    """A delivery that failed; str() is the reason recorded for the attempt."""


@dataclass(frozen=True)
class Alert:
    id: int
    session_id: int | None
    time: datetime
    kind: str                       # VerdictKind.MISMATCH | VerdictKind.UNKNOWN_FACE | TEST_KIND
    student_id: str | None          # the student the display name claims
    display_name: str
    identified_as: str | None       # the enrolled student the face matched instead, if any
    similarity: float | None        # face vs the claimed student
    threshold: float | None         # t_verify in force
    evidence_path: Path | None = None
    class_name: str = ""
    student_name: str = ""          # the roster names of student_id and identified_as ("" if unknown)
    identified_name: str = ""


class Channel(Protocol):
    name: str
    batch_s: float

    def deliver(self, alerts: list[Alert]) -> None: ...


def shown(text: str) -> str:
    """User text for one line of an alert: control and bidi characters written out (`\\x1b`, `\\u202e`),
    line breaks and tabs too."""
    return visible(text, one_line=True)


Escape = Callable[[str], str]


def _user(text: str, escape: Escape | None) -> str:
    return escape(shown(text)) if escape else shown(text)


def title(alert: Alert, escape: Escape | None = None) -> str:
    who = _user(alert.display_name or alert.student_id or "?", escape)
    return f"rollcall {KIND_TITLES.get(alert.kind, alert.kind.upper())}: {who}"


def _who(name: str, student_id: str | None, escape: Escape | None) -> str:
    """`Siti Zubaidah [G1A021002]`: the lecturer thinks in names, the roster in ids."""
    if name and student_id and name != student_id:
        return f"{_user(name, escape)} [{_user(student_id, escape)}]"
    return _user(name or student_id or "", escape)


def describe(alert: Alert, escape: Escape | None = None) -> str:
    """The alert's substance in one sentence, without time or class: whose tile shows whom."""
    if alert.kind == TEST_KIND:
        return "test alert: this channel works"
    tile = (f"{_who(alert.student_name, alert.student_id, escape)}'s tile" if alert.student_id
            else "a tile of no roster student")
    scores = ", ".join(s for s in (alert.similarity is not None and f"similarity {alert.similarity:.2f}",
                                   alert.threshold is not None and f"threshold {alert.threshold:.2f}") if s)
    if alert.kind == VerdictKind.MISMATCH:
        what = f"{tile} shows {_who(alert.identified_name, alert.identified_as, escape) or 'another student'}"
    elif alert.kind == VerdictKind.UNKNOWN_FACE:
        what = f"{tile} shows a face that matches no enrolled student"
    else:
        what = f"{tile}: {alert.kind}"
    return f"{what} ({scores})" if scores else what


def format_text(alert: Alert, escape: Escape | None = None) -> str:
    """One line: time, kind, display name, what was seen, class, session, alert id."""
    when = alert.time.strftime("%H:%M:%S")
    where = ", ".join(p for p in (alert.class_name and f"class {_user(alert.class_name, escape)}",
                                  alert.session_id is not None and f"session {alert.session_id}",
                                  f"alert {alert.id}") if p)
    return (f"{when} {KIND_TITLES.get(alert.kind, alert.kind.upper())} "
            f"\"{_user(alert.display_name, escape)}\": {describe(alert, escape)} [{where}]")


def make_test_alert(class_name: str = "") -> Alert:
    """The alert `rollcall alerts test` sends through every channel."""
    return Alert(id=0, session_id=None, time=datetime.now().astimezone(), kind=TEST_KIND,
                 student_id=None, display_name="rollcall test", identified_as=None, similarity=None,
                 threshold=None, evidence_path=None, class_name=class_name)


def build_channels(settings, env: Mapping[str, str] | None = None, print_fn=None) -> list:
    """The channels named in `settings.channels` (an AlertSettings), checked now so that a bad setting
    is a ConfigError naming its key before the session starts, not a failed delivery later."""
    env = os.environ if env is None else env
    out = []
    for name in settings.channels:
        if name == "console":
            from .console import ConsoleChannel
            out.append(ConsoleChannel(print_fn))
        elif name == "desktop":
            from .desktop import DesktopChannel
            out.append(DesktopChannel.from_settings(settings.desktop, env))
        elif name == "webhook":
            from .webhook import WebhookChannel
            out.append(WebhookChannel.from_settings(settings.webhook, env))
        elif name == "email":
            from .email import EmailChannel
            out.append(EmailChannel.from_settings(settings.email, env))
        else:
            from bot.config import ConfigError
            raise ConfigError(f"alerts.channels: unknown channel {name!r}")
    return out


__all__ = ["Alert", "Channel", "ChannelError", "build_channels", "describe", "format_text", "make_test_alert",
           "shown", "title"]
