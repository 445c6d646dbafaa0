"""Desktop channel: a notification through the desktop's own notifier.

Linux (and other freedesktop systems): notify-send (libnotify). macOS: osascript's `display notification`,
the texts passed as arguments, never spliced into the script. Windows: a toast through desktop-notifier
(windows.py).
"""
from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
from typing import Mapping

from . import TEST_KIND, Alert, ChannelError, describe, format_text, title


def _notify_send_body(text: str) -> str:
    """`text` as notify-send's BODY argument, to be shown as it is. Most notification servers read the
    body as markup: unescaped, the "<" of "0.21 < threshold" breaks every alert's body, and a display name
    like "<b>x</b>" would be rendered, not shown. notify-send first reads C escapes in it (g_strcompress):
    a display name holding the four characters `\\033` would reach the server as an ESC character, so
    backslashes are doubled."""
    return html.escape(text, quote=False).replace("\\", "\\\\")


class DesktopChannel:
    name = "desktop"
    batch_s = 0.0

    def __init__(self, timeout_s: int = 10, env: Mapping[str, str] | None = None,
                 command: str = "notify-send", call_timeout_s: float = 10.0, platform: str = sys.platform):
        self.timeout_s = timeout_s
        self.env = dict(os.environ if env is None else env)
        self.command = command
        self.call_timeout_s = call_timeout_s
        self.macos = platform == "darwin"
        self.toaster = None
        if platform == "win32":
            from .windows import Toaster
            self.toaster = Toaster()

    @classmethod
    def from_settings(cls, settings, env: Mapping[str, str] | None = None,
                      platform: str = sys.platform) -> "DesktopChannel":
        from bot.config import ConfigError

        if platform == "win32":
            from . import windows
            windows.check()
            return cls(settings.timeout_s, env, "desktop-notifier", platform=platform)
        tool, hint = ("osascript", "it comes with macOS") if platform == "darwin" else \
            ("notify-send", "Debian/Ubuntu: apt install libnotify-bin")
        path = shutil.which(tool, path=(env or os.environ).get("PATH"))
        if path is None:
            raise ConfigError(f"alerts.channels: the desktop channel needs {tool}, which is not "
                              f"installed ({hint})")
        return cls(settings.timeout_s, env, path, platform=platform)

    def argv(self, alert: Alert) -> list[str]:
        if self.macos:
            script = ["-e", "on run argv", "-e", "display notification (item 2 of argv) with title (item 1 of argv)",
                      "-e", "end run"]
            return [self.command, *script, title(alert), describe(alert) + "\n" + format_text(alert)]
        args = [self.command, "--app-name=rollcall",
                "--urgency=" + ("normal" if alert.kind == TEST_KIND else "critical")]
        if self.timeout_s:
            args.append(f"--expire-time={int(self.timeout_s * 1000)}")
        if alert.evidence_path and alert.evidence_path.exists():
            args.append(f"--icon={alert.evidence_path.resolve()}")
        # "--" so that a display name starting with "-" is never taken for an option
        return args + ["--", title(alert), _notify_send_body(describe(alert) + "\n" + format_text(alert))]

    def deliver(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            if self.toaster is not None:
                ev = alert.evidence_path
                self.toaster.send(title(alert), describe(alert) + "\n" + format_text(alert),
                                  critical=alert.kind != TEST_KIND,
                                  image=ev.resolve() if ev and ev.is_file() else None,
                                  timeout_s=self.timeout_s)
                continue
            try:
                done = subprocess.run(self.argv(alert), env=self.env, capture_output=True, text=True,
                                      timeout=self.call_timeout_s)
            except FileNotFoundError:
                raise ChannelError(f"{self.command} not found (Debian/Ubuntu: apt install libnotify-bin)") \
                    from None
            except subprocess.TimeoutExpired:
                raise ChannelError(f"{os.path.basename(self.command)} did not return in "
                                   f"{self.call_timeout_s:g} s") from None
            if done.returncode != 0:
                why = (done.stderr or done.stdout).strip().splitlines()
                raise ChannelError(f"{os.path.basename(self.command)} failed "
                                   f"({why[-1] if why else f'exit {done.returncode}'})")
