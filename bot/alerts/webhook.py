"""Webhook channel: an HTTP POST of the alert as JSON, in rollcall's own shape or as a Slack, Discord or
Microsoft Teams incoming-webhook message.

The evidence image is never uploaded (it stays on the lecturer's machine); payloads name its path.
Display names are text a student chose: each format carries them as literal text in its own dialect
(Slack: &, <, > escaped; Discord: markdown backslash-escaped, no mentions parsed; Teams: RichTextBlock,
which reads no markdown). The URL is a secret: only `mask_url`'s form of it is ever shown.
"""
from __future__ import annotations

import base64
import json
import os
import re
import string
import urllib.error
import urllib.request
from typing import Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from . import Alert, ChannelError, describe, format_text, shown, title

FORMATS = ("json", "slack", "discord", "teams")
_DISCORD_RED = 0xD70000


def _facts(alert: Alert) -> list[tuple[str, str]]:
    rows = [("Display name", shown(alert.display_name)), ("Claimed student", shown(alert.student_id or "—")),
            ("Identified as", shown(alert.identified_as or "—"))]
    if alert.similarity is not None:
        rows.append(("Similarity", f"{alert.similarity:.2f}"))
    if alert.threshold is not None:
        rows.append(("Threshold", f"{alert.threshold:.2f}"))
    if alert.class_name:
        rows.append(("Class", shown(alert.class_name)))
    if alert.session_id is not None:
        rows.append(("Session", str(alert.session_id)))
    rows.append(("Time", alert.time.isoformat(timespec="seconds")))
    if alert.evidence_path:
        rows.append(("Evidence (local)", str(alert.evidence_path)))
    return rows


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_ASCII_PUNCTUATION = re.compile(f"([{re.escape(string.punctuation)}])")


def _discord_escape(text: str) -> str:
    """`text` as literal Discord markdown. Discord (like CommonMark) reads a backslash before any ASCII
    punctuation as that character itself: every one is escaped, so no masked link, emphasis, spoiler,
    heading, quote, code, mention, emoji code or bare URL is made of it."""
    return _ASCII_PUNCTUATION.sub(r"\\\1", text)


def _clip(text: str, limit: int) -> str:
    """At most `limit` characters of escaped markdown, never ending on half an escape."""
    out = text[:limit]
    trailing = len(out) - len(out.rstrip("\\"))
    return out[:-1] if trailing % 2 else out


def _teams_text(text: str, **style) -> dict:
    """A Teams card element showing `text` as it is: RichTextBlock reads no markdown (TextBlock and
    FactSet values do, in Teams)."""
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": text, **style}]}


def _teams_fact(name: str, value: str) -> dict:
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": f"{name}: ", "weight": "Bolder"},
                                                 {"type": "TextRun", "text": value}]}


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
        # allowed_mentions: nothing pings; the escaping: no display name renders as markup (a masked
        # link to a phishing page, a mention pill)
        esc = _discord_escape
        return {"content": _clip(format_text(alert, esc), 2000), "allowed_mentions": {"parse": []},
                "embeds": [{"title": _clip(title(alert, esc), 256),
                            "description": _clip(describe(alert, esc), 4096),
                            "color": _DISCORD_RED, "timestamp": alert.time.isoformat(),
                            "fields": [{"name": k, "value": _clip(esc(v), 1024) or "—", "inline": True}
                                       for k, v in _facts(alert)[:25]]}]}
    if fmt == "teams":
        # an Adaptive Card in a message: what Teams' Workflows webhooks (and the older connectors) take
        card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                "version": "1.4",
                "body": [_teams_text(title(alert), weight="Bolder", size="Medium", color="Attention"),
                         _teams_text(describe(alert)),
                         {"type": "Container", "items": [_teams_fact(k, v) for k, v in _facts(alert)]}]}
        return {"type": "message", "summary": text[:250],
                "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                 "contentUrl": None, "content": card}]}
    raise ValueError(f"alerts.webhook.format: {fmt!r} is not one of {', '.join(FORMATS)}")


# ------------------------------------------------------------------------------------------- the URL

_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f-\x9f]")
_TOKEN_MIN = 8    # a path segment this long may be a token (Slack's, Discord's, Teams' ids and keys)
_SECRET_MIN = 4   # a shorter login or value is no secret, and masking it would garble the message ("HTTP 401")


def mask_url(url: str) -> str:
    """The URL as it may be shown or stored: scheme, host and port; the login, the path (where Slack,
    Discord and Teams keep their secret) and every query value (?token=, ?sig=) become `***`."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "(not a valid URL)"
    _, at, host = parts.netloc.rpartition("@")
    out = f"{parts.scheme}://" + ("***@" if at else "") + host
    if parts.path not in ("", "/"):
        out += "/***"
    if parts.query:
        out += "?" + "&".join(f"{name}=***" for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    return out


def _secrets(url: str) -> list[str]:
    """The pieces of `url` that must never be shown, longest first, as written and percent-decoded."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        query = [v for _, v in parse_qsl(parts.query, keep_blank_values=True)]
    except ValueError:
        return [text] if text else []
    login = parts.netloc.rpartition("@")[0]
    pieces = [text, login, *login.split(":"), parts.path if parts.path not in ("", "/") else "", parts.query,
              *query, *(s for s in parts.path.split("/") if len(s) >= _TOKEN_MIN)]
    found = {p for piece in pieces for p in (piece, unquote(piece)) if len(p) >= _SECRET_MIN}
    return sorted(found, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` (an error from a server or a library) with every secret piece of `url` replaced by `***`."""
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


def check_url(url: str, key: str) -> str:
    """The webhook URL, stripped; a ConfigError naming `key` (never the URL) when it cannot be posted to."""
    from bot.config import ConfigError

    text = url.strip()
    if _UNSAFE_IN_URL.search(text):
        raise ConfigError(f"{key}: the webhook URL contains a space or a control character")
    try:
        parts = urlsplit(text)
        parts.port   # checks the port
    except ValueError as e:
        raise ConfigError(f"{key}: not a valid URL ({scrub(str(e), text)})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key}: the webhook URL must start with http:// or https:// and name a host "
                          f"(got {parts.scheme + '://...' if parts.scheme else 'no scheme'})")
    return text


def _basic_auth(url: str) -> tuple[str, dict[str, str]]:
    """`url` without its `user:password@`, and the Authorization header that carries them instead."""
    parts = urlsplit(url)
    login, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, {}
    user, _, password = login.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return parts._replace(netloc=host).geturl(), {"Authorization": f"Basic {token}"}


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
        self.shown_url = mask_url(self.url)
        self._post_url, self._auth = _basic_auth(self.url)

    def __repr__(self) -> str:
        return f"WebhookChannel({self.shown_url!r}, {self.fmt!r})"

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

    def redact(self, text: str) -> str:
        """`text` with this channel's URL secrets masked: what the worker records and logs."""
        return scrub(text, self.url)

    def deliver(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self._post(payload(alert, self.fmt))

    def _post(self, body: dict) -> None:
        data = json.dumps(body).encode()
        req = urllib.request.Request(self._post_url, data=data, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "rollcall-alerts", **self._auth})
        host = urlsplit(self._post_url).netloc
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read(4096)
        except urllib.error.HTTPError as e:
            detail = e.read(200).decode("utf-8", "replace").strip()
            raise ChannelError(self.redact(f"{host} answered HTTP {e.code}{': ' + detail if detail else ''}")) \
                from None
        except urllib.error.URLError as e:
            raise ChannelError(self.redact(f"{host}: {e.reason}")) from None
        except (TimeoutError, OSError, ValueError) as e:   # ValueError: http.client.InvalidURL
            raise ChannelError(self.redact(f"{host}: {e or type(e).__name__}")) from None
