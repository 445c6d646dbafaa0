"""The HTML report opened in a real headless Chromium (Debian's `chromium` package), with no network.

The browser is driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`: fd 3 in,
fd 4 out, one NUL-terminated JSON message each), so no websocket package is needed. The report comes
from a real SQLite session with observations and an alert whose evidence image is the bot's own
evidence JPEG. Skipped, saying why, where Chromium is not installed (`apt-get install chromium`).
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from bot.report import render
from bot.alerts.evidence import evidence_image
from bot.store import Store
from tests.test_report import MARETA, NOVIA, SITI, T, captures_of_the_lecture, seed_roster

VIEWPORT = (1280, 900)
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio",
    "--hide-scrollbars", "--remote-debugging-pipe",
    # belt and braces: nothing may leave the machine even if the page tried
    "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
    f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
]


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class DevTools:
    """A headless Chromium and its DevTools protocol over a pipe pair."""

    def __init__(self, binary: str, profile: Path, timeout: float = 30.0):
        self.timeout = timeout
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def fds_3_and_4() -> None:  # in the child: the protocol lives on fds 3 (in) and 4 (out)
            # move both ends above 4 first, so that one dup2 cannot clobber the other end
            a = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)  # dup2 makes 3 and 4 inheritable; every other fd of ours is not (PEP 446)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            close_fds=False, preexec_fn=fds_3_and_4)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("chromium: no answer on the DevTools pipe")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium: DevTools pipe closed (browser exited: "
                                   f"{self.proc.poll()})")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"chromium: {method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str | None = None) -> dict:
        deadline = time.monotonic() + self.timeout
        seen = 0
        while True:
            for e in self.events[seen:]:
                if e.get("method") == method and (session is None or e.get("sessionId") == session):
                    return e
            seen = len(self.events)
            self.events.append(self._read_message(deadline))

    def evaluate(self, expression: str, session: str):
        got = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True}, session)
        if "exceptionDetails" in got:
            raise RuntimeError(f"page script failed: {got['exceptionDetails']}")
        return got["result"].get("value")

    def close(self) -> str:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        return err.decode(errors="replace")


# What the page reports about itself once loaded.
PAGE_FACTS = """(() => {
  const imgs = Array.from(document.images).map(i => ({
      alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,
      shown: i.getBoundingClientRect().width, scheme: i.src.split(':')[0]}));
  const rows = Array.from(document.querySelectorAll('tr[id^="student-"]')).map(r => ({
      id: r.id, cells: Array.from(r.cells).map(c => c.innerText.trim())}));
  const runs = Array.from(document.querySelectorAll('table.timeline svg rect[class]')).map(r => ({
      verdict: r.getAttribute('class'), w: r.getBoundingClientRect().width,
      fill: getComputedStyle(r).fill}));
  const badges = Array.from(document.querySelectorAll('.badge')).map(b => ({
      text: b.innerText, bg: getComputedStyle(b).backgroundColor}));
  return {title: document.title, h1: document.querySelector('h1').innerText,
          imgs, rows, runs, badges,
          alerts: Array.from(document.querySelectorAll('.alert')).map(a => a.id),
          width: document.documentElement.scrollWidth, viewport: window.innerWidth,
          height: document.documentElement.scrollHeight,
          stylesheets: document.styleSheets.length,
          body_font: getComputedStyle(document.body).fontFamily};
})()"""


def lecture_report(home: Path, data_dir: Path) -> tuple[str, int]:
    """The hand-built lecture of test_report in a real store, with a real evidence image; (html, alert)."""
    photos = sorted((data_dir / "seed-faces" / "Novia Evianti").glob("*.jpg"))
    tile_crop = cv2.imread(str(photos[-1]))
    ok, ref = cv2.imencode(".jpg", cv2.resize(cv2.imread(str(photos[0])), (112, 112)))
    jpeg = evidence_image(tile_crop, [("enrolled: G1A021038", ref.tobytes())], "mismatch: tile 'Mareta Aliana' sim 0.21 (t 0.42)")
    with Store(home) as store:
        store.upsert_students(seed_roster(data_dir), "DL-A")
        sid = store.start_session("DL-A", "video:lecture.mp4", 10, started="2024-05-01T09:59:55Z")
        cap_ids = [store.add_capture(sid, T.format(10 * k), {"segment": 5.0}, tiles)
                   for k, tiles in enumerate(captures_of_the_lecture())]
        aid = store.add_alert(sid, T.format(30), "mismatch", capture_id=cap_ids[3], student_id=MARETA,
                              display_name="Mareta Aliana", identified_as=NOVIA, similarity=0.21,
                              threshold=0.42, participant=MARETA)
        store.save_evidence(sid, aid, jpeg)
        store.end_session(sid, "done", ended="2024-05-01T10:01:00Z")
        return render(store, "last", "html"), aid


def needs_chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); the browser check "
                    "of the HTML report needs it")
    return binary


def open_in_chromium(binary: str, html_file: Path, profile: Path) -> dict:
    """Load a local HTML file: the page's facts, its console errors, its requests, a screenshot."""
    browser = DevTools(binary, profile)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=s)
        browser.send("Emulation.setDeviceMetricsOverride", {"width": VIEWPORT[0], "height": VIEWPORT[1],
                                                            "deviceScaleFactor": 1, "mobile": False}, s)
        browser.send("Page.navigate", {"url": html_file.as_uri()}, s)
        browser.wait_event("Page.loadEventFired", s)
        facts = browser.evaluate(PAGE_FACTS, s)
        shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                       "clip": {"x": 0, "y": 0, "width": facts["width"],
                                                                "height": facts["height"], "scale": 1}}, s)
        png = base64.b64decode(shot["data"])
        html_file.with_suffix(".png").write_bytes(png)
    finally:
        stderr = browser.close()
    ev = [e for e in browser.events if e.get("sessionId") == s]
    console_errors = (
        [e["params"] for e in ev if e.get("method") == "Runtime.exceptionThrown"]
        + [e["params"] for e in ev if e.get("method") == "Runtime.consoleAPICalled"
           and e["params"]["type"] in ("error", "assert")]
        + [e["params"]["entry"] for e in ev if e.get("method") == "Log.entryAdded"
           and e["params"]["entry"]["level"] == "error"])
    requests = [e["params"]["request"]["url"] for e in ev if e.get("method") == "Network.requestWillBeSent"]
    failed = [e["params"] for e in ev if e.get("method") == "Network.loadingFailed"]
    return {"facts": facts, "errors": console_errors, "requests": requests, "failed": failed,
            "png": png, "stderr": stderr}


@pytest.fixture(scope="module")
def page(tmp_path_factory, data_dir):
    """The lecture's HTML report as Chromium shows it (the screenshot lands beside it as report.png)."""
    binary = needs_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    html, alert_id = lecture_report(tmp / "home", data_dir)
    report = tmp / "report.html"
    report.write_text(html, encoding="utf-8")
    return {**open_in_chromium(binary, report, tmp / "profile"), "alert_id": alert_id}


def test_page_renders_with_title_and_styles(page):
    f = page["facts"]
    assert f["title"] == "rollcall session 1 (DL-A)"
    assert f["h1"].startswith("Session 1") and "DL-A" in f["h1"]
    assert f["stylesheets"] == 1
    # the inline style sheet applied: badges carry their status colours, not the default transparent
    colours = {b["text"]: b["bg"] for b in f["badges"]}
    assert colours["flagged"] == "rgb(209, 51, 58)"
    assert colours["verified"] == "rgb(46, 157, 79)"
    assert colours["absent"] == "rgb(108, 117, 125)"


def test_every_image_loaded(page):
    imgs = page["facts"]["imgs"]
    assert len(imgs) == 1, imgs          # the one alert's evidence
    for img in imgs:
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, img
        assert img["scheme"] == "data"   # self-contained: no file next to the report is needed
        assert img["shown"] > 0
    assert f"alert-{page['alert_id']}" in page["facts"]["alerts"]


def test_student_rows_are_there(page):
    rows = {r["id"]: r["cells"] for r in page["facts"]["rows"]}
    assert set(rows) == {f"student-{sid}" for sid in (SITI, MARETA, NOVIA, "G1A021044", "G1A021901")}
    assert rows[f"student-{MARETA}"][:3] == ["Mareta Aliana", MARETA, "flagged"]
    assert rows[f"student-{SITI}"][2] == "absent"
    assert rows["student-G1A021901"][2] == "camera_off"


def test_timeline_is_drawn(page):
    runs = page["facts"]["runs"]
    verdicts = {r["verdict"] for r in runs}
    assert {"verified", "mismatch", "camera_off", "unknown_face", "unlabeled"} <= verdicts
    assert all(r["w"] > 0 for r in runs)
    mismatch = next(r for r in runs if r["verdict"] == "mismatch")
    assert mismatch["fill"] == "rgb(209, 51, 58)"


def test_no_console_errors_and_no_network(page):
    assert page["errors"] == [], page["errors"]
    assert page["failed"] == [], page["failed"]
    assert all(u.startswith(("file:", "data:")) for u in page["requests"]), page["requests"]


def test_screenshot_shows_the_page(page):
    f = page["facts"]
    png = cv2.imdecode(np.frombuffer(page["png"], np.uint8), cv2.IMREAD_COLOR)
    assert png is not None and png.shape[1] == f["width"] and png.shape[0] == f["height"]
    # not a blank page: text, badges, the timeline and the evidence photo make it far from uniform
    assert png.std() > 20
    # the flagged badge's red is on screen
    assert np.any(np.all(np.abs(png.astype(int) - (58, 51, 209)) <= 3, axis=2))


def test_layout_fits_a_laptop_window(page):
    f = page["facts"]
    assert f["width"] <= f["viewport"], f"page is {f['width']} px wide in a {f['viewport']} px window"


def test_the_harness_sees_a_broken_page(tmp_path):
    """A page with a console error, a script error and an undecodable image fails every check above."""
    binary = needs_chromium()
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><title>bad</title></head><body><h1>x</h1>'
                   '<img src="data:image/jpeg;base64,AAAA" alt="broken">'
                   '<script>console.error("boom"); undefined_function();</script></body></html>')
    got = open_in_chromium(binary, bad, tmp_path / "profile")
    assert [i["w"] for i in got["facts"]["imgs"]] == [0]
    texts = json.dumps(got["errors"])
    assert "boom" in texts and "undefined_function" in texts
