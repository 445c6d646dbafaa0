"""Windows desktop alerts: a toast through desktop-notifier (WinRT).

desktop-notifier registers an app id for an unpackaged program (without one Windows drops the toast)
and builds the toast XML itself, so a display name a participant chose never becomes XML by our hand.
It logs a failed toast instead of raising; `send` turns that into a ChannelError so that the attempt
is recorded as failed and retried like any other channel's.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from . import ChannelError

APP_NAME = "rollcall"
INSTALL_HINT = "pip install desktop-notifier"
_SETTINGS_HINT = "are notifications on for rollcall? Settings > System > Notifications"


class _Reasons(logging.Handler):
    """Collects, per thread, why desktop-notifier says a toast failed."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        bucket = getattr(self.local, "bucket", None)
        if bucket is None:
            return
        exc = record.exc_info[1] if record.exc_info else None
        bucket.append((str(exc) or type(exc).__name__) if exc else record.getMessage())


_reasons = _Reasons()
_hooked = False


def _hook_logging() -> None:
    """The reason travels in the ChannelError; the library's own warning (with a traceback) would
    only repeat it on the lecturer's terminal."""
    global _hooked
    if not _hooked:
        lib = logging.getLogger("desktop_notifier")
        lib.addHandler(_reasons)
        lib.propagate = False
        _hooked = True


def check() -> None:
    """ConfigError now, naming the fix, when toasts cannot work on this machine."""
    from bot.config import ConfigError

    try:
        from desktop_notifier.backends.dummy import DummyNotificationCenter
        from desktop_notifier.main import get_backend_class
        backend = get_backend_class()   # imports the WinRT bindings on Windows
    except ImportError as e:
        raise ConfigError(f"alerts.channels: the desktop channel on Windows needs the desktop-notifier "
                          f"package and its WinRT bindings ({INSTALL_HINT}; missing: {e.name or e})") from None
    if issubclass(backend, DummyNotificationCenter):
        raise ConfigError("alerts.channels: desktop notifications need Windows 10 or later; "
                          "use webhook or email")


class Toaster:
    """One desktop-notifier instance, made on first use in the thread that delivers."""

    def __init__(self):
        self._notifier = None
        self._lock = threading.Lock()

    def send(self, title: str, body: str, critical: bool, image: Path | None = None,
             timeout_s: float = 0) -> None:
        try:
            from desktop_notifier import Attachment, DesktopNotifierSync, Urgency
        except ImportError:
            raise ChannelError(f"desktop-notifier is not installed ({INSTALL_HINT})") from None
        _hook_logging()
        dispatched: list[bool] = []
        with self._lock:
            _reasons.local.bucket = why = []
            try:
                if self._notifier is None:
                    self._notifier = DesktopNotifierSync(app_name=APP_NAME, app_icon=None)
                self._notifier.send(
                    title=title, message=body,
                    urgency=Urgency.Critical if critical else Urgency.Normal,
                    # the evidence is wide (tile beside reference): the hero image, not the square logo
                    attachment=Attachment(path=image) if image is not None else None,
                    timeout=int(timeout_s) if timeout_s else -1,
                    on_dispatched=lambda: dispatched.append(True))
            except Exception as e:  # noqa: BLE001 - e.g. WinRT refusing the app id
                raise ChannelError(f"Windows notification failed ({e or type(e).__name__})") from None
            finally:
                _reasons.local.bucket = None
        if not dispatched:
            raise ChannelError(f"Windows did not show the notification ({why[-1] if why else _SETTINGS_HINT})")
