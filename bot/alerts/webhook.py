"""Webhook channel: an HTTP POST of the alert as JSON, in rollcall's own shape or as a Slack, Discord or
Microsoft Teams incoming-webhook message.

The evidence image is never uploaded (it stays on the lecturer's machine); payloads name its path.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Mapping
from urllib.parse import urlsplit

from . import Alert, ChannelError, describe, format_text, title

FORMATS = ("json", "slack", "discord", "teams")
_DISCORD_RED = 0xD70000


def _facts(alert: Alert) -> list[tuple[str, str]]:
    rows = [("Display name", alert.display_name), ("Claimed student", alert.student_id or "—"),
            ("Identified as", alert.identified_as or "—")]
    if alert.similarity is not None:
        rows.append(("Similarity", f"{alert.similarity:.2f}"))
    if alert.threshold is not None:
        rows.append(("Threshold", f"{alert.threshold:.2f}"))
    if alert.class_name:
        rows.append(("Class", alert.class_name))
    if alert.session_id is not None:
        rows.append(("Session", str(alert.session_id)))
    rows.append(("Time", alert.time.isoformat(timespec="seconds")))
    if alert.evidence_path:
        rows.append(("Evidence (local)", str(alert.evidence_path)))
    return rows


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(alert: Alert, fmt: str = "json") -> dict:
    """The JSON body for `fmt` ("json", "slack", "discord", "teams")."""
    text = format_text(alert)
    if fmt == "json":
        return {"type": "rollcall.alert", "id": alert.id, "session_id": alert.session_id,
                "time": alert.time.isoformat(timespec="seconds"), "kind": alert.kind,
                "student_id": alert.student_id, "display_name": alert.display_name,
                "identified_as": alert.identified_as, "similarity": alert.similarity,
                "threshold": alert.threshold, "class": alert.class_name or None,
                "evidence": str(alert.evidence_path) if alert.evidence_path else None, "text": text}
    if fmt == "slack":
        # `text` is the notification fallback; blocks are what the channel shows. Both are mrkdwn, where
        # a display name "<!channel>" would ping everyone: Slack asks for &, <, > escaped.
        return {"text": _slack_escape(text),
                "blocks": [{"type": "header", "text": {"type": "plain_text", "text": title(alert)[:150]}},
                           {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(describe(alert))}},
                           {"type": "section", "fields": [
                               {"type": "mrkdwn", "text": f"*{k}*\n{_slack_escape(v)}"}
                               for k, v in _facts(alert)[:10]]}]}
    if fmt == "discord":
        return {"content": text[:2000], "allowed_mentions": {"parse": []},
                "embeds": [{"title": title(alert)[:256], "description": describe(alert)[:4096],
                            "color": _DISCORD_RED, "timestamp": alert.time.isoformat(),
                            "fields": [{"name": k, "value": v[:1024] or "—", "inline": True}
                                       for k, v in _facts(alert)[:25]]}]}
    if fmt == "teams":
        # an Adaptive Card in a message: what Teams' Workflows webhooks (and the older connectors) take
        card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                "version": "1.4",
                "body": [{"type": "TextBlock", "text": title(alert), "weight": "Bolder", "size": "Medium",
                          "color": "Attention", "wrap": True},
                         {"type": "TextBlock", "text": describe(alert), "wrap": True},
                         {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(alert)]}]}
        return {"type": "message", "summary": text[:250],
                "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                 "contentUrl": None, "content": card}]}
    raise ValueError(f"alerts.webhook.format: {fmt!r} is not one of {', '.join(FORMATS)}")


def check_url(url: str, key: str) -> str:
    from bot.config import ConfigError

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        # the URL is a secret: name where it came from, never print it whole
        raise ConfigError(f"{key}: the webhook URL must start with http:// or https:// "
                          f"(got {parts.scheme + '://...' if parts.scheme else 'no scheme'})")
    return url.strip()


class WebhookChannel:
    name = "webhook"
    batch_s = 0.0

    def __init__(self, url: str, fmt: str = "json", timeout_s: float = 10.0, key: str = "url"):
        self.url = check_url(url, key)
        if fmt not in FORMATS:
            from bot.config import ConfigError
            raise ConfigError(f"alerts.webhook.format: {fmt!r} is not one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings, env: Mapping[str, str] | None = None, timeout_s: float = 10.0):
        from bot.config import ConfigError

        env = os.environ if env is None else env
        key = f"alerts.webhook.url_env (${settings.url_env})"
        url = env.get(settings.url_env, "") if settings.url_env else ""
        if not url.strip():
            raise ConfigError(f"alerts.webhook.url_env: environment variable {settings.url_env or '(none)'} "
                              "is not set; put the webhook URL there")
        return cls(url, settings.format, timeout_s, key)

    def deliver(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self._post(payload(alert, self.fmt))

    def _post(self, body: dict) -> None:
        data = json.dumps(body).encode()
        req = urllib.request.Request(self.url, data=data, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "rollcall-alerts"})
        host = urlsplit(self.url).netloc
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read(4096)
        except urllib.error.HTTPError as e:
            detail = e.read(200).decode("utf-8", "replace").strip()
            raise ChannelError(f"{host} answered HTTP {e.code}{': ' + detail if detail else ''}") from None
        except urllib.error.URLError as e:
            raise ChannelError(f"{host}: {e.reason}") from None
        except (TimeoutError, OSError) as e:
            raise ChannelError(f"{host}: {e or type(e).__name__}") from None
