"""Desktop channel: a notification through the desktop's own notifier.

Linux (and other freedesktop systems): notify-send (libnotify). macOS: osascript's `display notification`,
the texts passed as arguments, never spliced into the script. Windows: not yet.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Mapping

from . import Alert, ChannelError, describe, format_text, title


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

    @classmethod
    def from_settings(cls, settings, env: Mapping[str, str] | None = None,
                      platform: str = sys.platform) -> "DesktopChannel":
        from bot.config import ConfigError

        if platform.startswith("win"):
            raise ConfigError("alerts.channels: the desktop channel does not support Windows yet; "
                              "use webhook or email")
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
                "--urgency=" + ("normal" if alert.kind == "test" else "critical")]
        if self.timeout_s:
            args.append(f"--expire-time={int(self.timeout_s * 1000)}")
        if alert.evidence_path and alert.evidence_path.exists():
            args.append(f"--icon={alert.evidence_path.resolve()}")
        body = describe(alert) + "\n" + format_text(alert)
        # "--" so that a display name starting with "-" is never taken for an option
        return args + ["--", title(alert), body]

    def deliver(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            try:
                done = subprocess.run(self.argv(alert), env=self.env, capture_output=True, text=True,
                                      timeout=self.call_timeout_s)
            except FileNotFoundError:
                raise ChannelError(f"{self.command} not found (Debian/Ubuntu: apt install libnotify-bin)") \
                    from None
            except subprocess.TimeoutExpired:
                raise ChannelError(f"notify-send did not return in {self.call_timeout_s:g} s") from None
            if done.returncode != 0:
                why = (done.stderr or done.stdout).strip().splitlines()
                raise ChannelError(f"{os.path.basename(self.command)} failed "
                               f"({why[-1] if why else f'exit {done.returncode}'})")
