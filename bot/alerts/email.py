"""E-mail channel: one message per alert, or a digest every `digest_min` minutes, over SMTP.

Display names and class names reach the Subject only through `shown` (no CR or LF: no added header) and
the HTML part only escaped.

Each alert's evidence JPEG goes inline (multipart/related, referenced by cid) so the lecturer sees the
tile beside the enrolled reference without opening attachments.
"""
from __future__ import annotations

import html
import os
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Mapping

from . import Alert, ChannelError, describe, format_text, shown, title


def build_message(alerts: list[Alert], sender: str, to: tuple[str, ...] | list[str]) -> EmailMessage:
    """text/plain + (text/html with each evidence JPEG inline by cid)."""
    if not alerts:
        raise ValueError("no alerts to send")
    msg = EmailMessage()
    if len(alerts) == 1:
        msg["Subject"] = title(alerts[0]) + (f" ({shown(alerts[0].class_name)})" if alerts[0].class_name else "")
    else:
        classes = sorted({shown(a.class_name) for a in alerts if a.class_name})
        msg["Subject"] = f"rollcall: {len(alerts)} alerts" + (f" ({', '.join(classes)})" if classes else "")
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=True)
    domain = sender.rpartition("@")[2] or "rollcall.local"
    msg["Message-ID"] = make_msgid("rollcall", domain=domain)

    msg.set_content("\n".join(format_text(a) for a in alerts) + "\n")
    images = []  # (cid, bytes)
    parts = []
    for a in alerts:
        img = ""
        data = _read_evidence(a)
        if data is not None:
            cid = make_msgid("evidence", domain=domain)
            images.append((cid, data))
            img = (f'<p><img src="cid:{cid[1:-1]}" alt="evidence: tile beside the enrolled photo" '
                   f'style="max-width:100%"></p>')
        elif a.evidence_path:
            img = f"<p><i>evidence file missing: {html.escape(str(a.evidence_path))}</i></p>"
        parts.append(f"<h3>{html.escape(title(a))}</h3><p>{html.escape(describe(a))}</p>"
                     f"<p><small>{html.escape(format_text(a))}</small></p>{img}")
    msg.add_alternative("<html><body>" + "<hr>".join(parts) + "</body></html>", subtype="html")
    html_part = msg.get_payload()[1]
    for i, (cid, data) in enumerate(images, 1):
        html_part.add_related(data, "image", "jpeg", cid=cid, disposition="inline",
                              filename=f"evidence-{i}.jpg")
    return msg


def _read_evidence(alert: Alert) -> bytes | None:
    if not alert.evidence_path:
        return None
    try:
        return alert.evidence_path.read_bytes()
    except OSError:
        return None  # a missing evidence file must not cost the lecturer the alert itself


class EmailChannel:
    name = "email"

    def __init__(self, host: str, port: int, security: str, sender: str, to: tuple[str, ...],
                 user: str | None = None, password: str | None = None, digest_min: float = 0,
                 timeout_s: float = 15.0, ssl_context: ssl.SSLContext | None = None):
        self.host, self.port, self.security = host, port, security
        self.sender, self.to = sender, tuple(to)
        self.user, self.password = user, password
        self.batch_s = float(digest_min) * 60.0
        self.timeout_s = timeout_s
        self.ssl_context = ssl_context

    @classmethod
    def from_settings(cls, settings, env: Mapping[str, str] | None = None, **kw) -> "EmailChannel":
        from bot.config import ConfigError

        env = os.environ if env is None else env
        if not settings.to:
            raise ConfigError("alerts.email.to: no recipients")
        if settings.security not in ("ssl", "starttls", "none"):
            raise ConfigError(f"alerts.email.security: {settings.security!r} is not one of ssl, starttls, none")
        user = env.get(settings.user_env, "") if settings.user_env else ""
        password = None
        if user:
            password = env.get(settings.password_env, "") if settings.password_env else ""
            if not password:
                raise ConfigError(f"alerts.email.password_env: ${settings.password_env or '(none)'} is not set "
                                  f"but ${settings.user_env} is (a login needs both)")
        return cls(settings.host, settings.port, settings.security, settings.sender, settings.to,
                   user or None, password, settings.digest_min, **kw)

    def _connect(self) -> smtplib.SMTP:
        ctx = self.ssl_context or ssl.create_default_context()
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=ctx)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            if self.security == "starttls":
                smtp.starttls(context=ctx)
        return smtp

    def deliver(self, alerts: list[Alert]) -> None:
        msg = build_message(alerts, self.sender, self.to)
        where = f"{self.host}:{self.port}"
        try:
            with self._connect() as smtp:
                if self.user:
                    smtp.login(self.user, self.password or "")
                refused = smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as e:
            raise ChannelError(f"{where}: login refused ({e.smtp_code})") from None
        except smtplib.SMTPException as e:
            raise ChannelError(f"{where}: {e}") from None
        except ssl.SSLError as e:
            raise ChannelError(f"{where}: TLS failed ({e.reason or e})") from None
        except OSError as e:
            raise ChannelError(f"{where}: {e.strerror or e or type(e).__name__}") from None
        if refused:
            raise ChannelError(f"{where}: refused recipients {', '.join(sorted(refused))}")
