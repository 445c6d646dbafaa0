"""Text from the screen, a roster, a folder name or a setting, shown on a terminal as data.

A student picks their own display name: `[/]` or `[bold]` in it must not be taken for rich markup (which
would hide or garble the line that accuses them), and an escape sequence or a bidi override in a roster
name must not move the cursor, recolour the terminal or reverse the text around it. Every console rollcall
prints through is a `PlainConsole`, and every log line goes through `VisibleFormatter`. Native
libraries' own notes (TFLite's, ffmpeg's) stay off the terminal unless `rollcall -v` asked for them.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from contextlib import contextmanager

from rich.console import Console
from rich.text import Text

# C0 controls but tab and newline, DEL, C1 controls; bidi embeddings, overrides and isolates; the
# invisible marks that reorder text around them
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_HIDDEN_IN_A_LINE = re.compile(_HIDDEN.pattern[:-1] + "\t\n]")


def _escape(m: re.Match) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def visible(text: str, one_line: bool = False) -> str:
    """`text` with every control and bidi-override character written out (`\\x1b`, `\\u202e`);
    `one_line` writes out tabs and newlines too (a name, never a paragraph)."""
    return (_HIDDEN_IN_A_LINE if one_line else _HIDDEN).sub(_escape, text)


def hidden_characters(text: str) -> list[str]:
    """The control and bidi characters in a one-line value, written out: empty when it is plain text."""
    return [_escape(m) for m in _HIDDEN_IN_A_LINE.finditer(text)]


class PlainConsole(Console):
    """A rich Console that never reads markup or emoji codes in a string and writes out hidden
    characters. Styling is given as `rich.text.Text` objects, whose text must pass `visible` first."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("highlight", False)
        kwargs.pop("markup", None)
        kwargs.pop("emoji", None)
        super().__init__(*args, markup=False, emoji=False, **kwargs)

    def render_str(self, text: str, **kwargs) -> Text:
        kwargs["markup"] = False
        kwargs["emoji"] = False
        return super().render_str(visible(text), **kwargs)


def styled(text: str, style: str) -> Text:
    """`text` (user data welcome) in a rich style, with its hidden characters written out."""
    return Text(visible(text), style=style)


class VisibleFormatter(logging.Formatter):
    """Log lines with every control and bidi character of their arguments written out."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record))


VERBOSE_ENV = "ROLLCALL_VERBOSE"  # set by `rollcall -v`: native libraries may speak


def quiet_native_libraries() -> None:
    """ffmpeg inside OpenCV says nothing of a file it cannot open (rollcall says it in one line);
    called before the first video is opened."""
    if not os.environ.get(VERBOSE_ENV):
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


@contextmanager
def native_stderr_muted():
    """File descriptor 2 pointed at the null device for a native call that writes notes of its own
    there (TFLite's "Created TensorFlow Lite XNNPACK delegate"); used only while models load, before
    any alert can be printed."""
    if os.environ.get(VERBOSE_ENV):
        yield
        return
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
