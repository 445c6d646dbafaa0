"""Frame sources: folders of real screenshots, videos written here, and a real (virtual) X screen."""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from bot.sources import (NoDisplayError, ScreenSource, SourceError, folder_frames, open_source,
                         source_label, video_frames)

# ------------------------------------------------------------------------------------------ folders


@pytest.fixture
def screens(data_dir) -> list[Path]:
    files = sorted((data_dir / "meeting-screens").glob("zoom-gallery-2x2-0*.png"))
    assert len(files) >= 3
    return files[:3]


def test_folder_in_natural_name_order_with_times(tmp_path, screens):
    # shot10 after shot2: screenshot tools do not zero-pad
    for name, src in zip(["shot10.png", "shot2.png", "shot1.png"], screens):
        shutil.copy(src, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    frames = list(folder_frames(tmp_path, every_s=5))
    assert [label for _, _, label in frames] == ["shot1.png", "shot2.png", "shot10.png"]
    assert [t for t, _, _ in frames] == [0, 5, 10]
    expected = cv2.imread(str(screens[2]))  # copied as shot1.png
    assert frames[0][1].dtype == np.uint8 and frames[0][1].shape == expected.shape
    assert np.array_equal(frames[0][1], expected)


def test_folder_skips_corrupt_image_and_reports_it(tmp_path, screens):
    shutil.copy(screens[0], tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(screens[1].read_bytes()[:200])  # truncated PNG
    shutil.copy(screens[2], tmp_path / "c.jpg")
    skipped = []
    frames = list(folder_frames(tmp_path, every_s=2, on_skip=lambda p, why: skipped.append((p.name, why))))
    assert [label for _, _, label in frames] == ["a.png", "c.jpg"]
    assert [t for t, _, _ in frames] == [0, 4]  # the corrupt file keeps its slot
    assert skipped == [("b.png", "not a readable image")]


def test_folder_corrupt_image_logged_by_default(tmp_path, screens, caplog):
    shutil.copy(screens[0], tmp_path / "a.png")
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8garbage")
    with caplog.at_level("WARNING", logger="bot.sources"):
        assert len(list(folder_frames(tmp_path))) == 1
    assert "b.jpg" in caplog.text


def test_empty_folder_is_an_error_naming_it(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(SourceError, match=str(tmp_path)):
        folder_frames(tmp_path)  # at the call, before any frame is asked for


def test_folder_of_only_corrupt_images_is_an_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG broken")
    skipped = []
    with pytest.raises(SourceError, match="none of its 1 images could be read"):
        list(folder_frames(tmp_path, on_skip=lambda p, why: skipped.append(p.name)))
    assert skipped == ["a.png"]


def test_open_source_missing_path(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match="nope.mp4: no such file"):
        open_source(missing, 1.0)


def test_open_source_picks_folder(tmp_path, screens):
    shutil.copy(screens[0], tmp_path / "a.png")
    assert [lbl for _, _, lbl in open_source(tmp_path, 3)] == ["a.png"]
    assert source_label(tmp_path) == f"folder:{tmp_path.name}"


# ------------------------------------------------------------------------------------------- videos

BITS = 8
CELL = 16


def _numbered_frame(i: int) -> np.ndarray:
    """A 160x128 frame that carries `i` as 8 black/white cells (survives lossy compression)."""
    img = np.full((128, 160, 3), 128, np.uint8)
    for b in range(BITS):
        val = 255 if (i >> b) & 1 else 0
        img[40:40 + 2 * CELL, b * 20:b * 20 + CELL] = val
    cv2.putText(img, str(i), (40, 110), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 255), 2)
    return img


def _read_number(img: np.ndarray) -> int:
    return sum(1 << b for b in range(BITS) if img[40 + CELL, b * 20 + CELL // 2].mean() > 128)


def _write_video(path: Path, n: int, fps: float, fourcc: str) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (160, 128))
    assert w.isOpened(), f"cannot write {fourcc} video"
    for i in range(n):
        w.write(_numbered_frame(i))
    w.release()
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    return {"mp4": _write_video(d / "lecture.mp4", 150, 10.0, "mp4v"),
            "avi": _write_video(d / "lecture.avi", 150, 10.0, "MJPG")}


@pytest.mark.parametrize("kind", ["mp4", "avi"])
def test_video_sampled_every_second_of_video_time(videos, kind):
    frames = list(video_frames(videos[kind], every_s=1.0))
    assert [_read_number(f) for _, f, _ in frames] == list(range(0, 150, 10))
    assert [round(t, 3) for t, _, _ in frames] == [float(s) for s in range(15)]
    assert frames[3][2] == f"lecture.{kind}@3.0s"
    assert frames[0][1].shape == (128, 160, 3) and frames[0][1].dtype == np.uint8


@pytest.mark.parametrize("kind", ["mp4", "avi"])
def test_video_fractional_interval_takes_first_frame_at_or_after(videos, kind):
    frames = list(video_frames(videos[kind], every_s=0.35))
    # 0, 0.35 -> frame 4 (0.4 s), 0.7 -> 7, 1.05 -> 11, 1.4 -> 14, ...
    assert [_read_number(f) for _, f, _ in frames[:6]] == [0, 4, 7, 11, 14, 18]


@pytest.mark.parametrize("kind", ["mp4", "avi"])
def test_video_long_gaps_seek_to_the_right_frame(videos, kind):
    # 6 s at 10 fps = 60 frames apart: crossed by seeking, not grabbing
    frames = list(video_frames(videos[kind], every_s=6.0))
    assert [_read_number(f) for _, f, _ in frames] == [0, 60, 120]
    assert [round(t, 3) for t, _, _ in frames] == [0.0, 6.0, 12.0]


def test_video_that_will_not_open(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(SourceError, match="broken.mp4: cannot open as a video"):
        open_source(bad, 1.0)
    assert source_label(bad) == "video:broken.mp4"


# ---------------------------------------------------------------------------------- live screen (X)

def _free_xvfb(width: int, height: int):
    """Start Xvfb on a display number it picks itself (-displayfd); returns (process, ':N')."""
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", f"{width}x{height}x24",
                             "-nolisten", "tcp"], pass_fds=(w,), stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as fh:
        num = fh.readline().strip()
    if not num:
        proc.kill()
        pytest.fail("Xvfb did not report a display number")
    return proc, f":{num}"


class _XPainter:
    """Puts a BGR image on the X root window with plain libX11 calls (no window manager, no viewer)."""

    def __init__(self, display: str):
        x = ctypes.CDLL(ctypes.util.find_library("X11"))
        vp, ul, ui, i = ctypes.c_void_p, ctypes.c_ulong, ctypes.c_uint, ctypes.c_int
        x.XOpenDisplay.restype, x.XOpenDisplay.argtypes = vp, [ctypes.c_char_p]
        x.XDefaultScreen.argtypes = [vp]
        x.XRootWindow.restype, x.XRootWindow.argtypes = ul, [vp, i]
        x.XDefaultVisual.restype, x.XDefaultVisual.argtypes = vp, [vp, i]
        x.XDefaultGC.restype, x.XDefaultGC.argtypes = vp, [vp, i]
        x.XCreateImage.restype = vp
        x.XCreateImage.argtypes = [vp, vp, ui, i, i, ctypes.c_char_p, ui, ui, i, i]
        x.XPutImage.argtypes = [vp, ul, vp, vp, i, i, i, i, ui, ui]
        x.XSync.argtypes = [vp, i]
        x.XCloseDisplay.argtypes = [vp]
        self.x = x
        self.d = x.XOpenDisplay(display.encode())
        assert self.d, f"cannot open {display}"
        self.screen = x.XDefaultScreen(self.d)
        self._buffers = []  # XImage points into these: keep them alive while the display is open

    def show(self, bgr: np.ndarray) -> None:
        h, w = bgr.shape[:2]
        bgrx = np.zeros((h, w, 4), np.uint8)
        bgrx[:, :, :3] = bgr  # ZPixmap, 32 bpp little-endian = B, G, R, pad
        buf = ctypes.create_string_buffer(bgrx.tobytes())
        self._buffers.append(buf)
        x, d, s = self.x, self.d, self.screen
        img = x.XCreateImage(d, x.XDefaultVisual(d, s), 24, 2, 0, ctypes.cast(buf, ctypes.c_char_p),
                             w, h, 32, 0)
        x.XPutImage(d, x.XRootWindow(d, s), x.XDefaultGC(d, s), img, 0, 0, 0, 0, w, h)
        x.XSync(d, 0)

    def close(self) -> None:
        self.x.XCloseDisplay(self.d)


@contextlib.contextmanager
def screen_showing(image: np.ndarray):
    """A fresh Xvfb screen the size of `image`, showing it; yields the display name."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb not installed (Debian package: xvfb)")
    h, w = image.shape[:2]
    proc, display = _free_xvfb(w, h)
    painter = _XPainter(display)
    try:
        painter.show(image)
        yield display
    finally:
        painter.close()
        proc.terminate()
        proc.wait(5)


@pytest.fixture(scope="module")
def xscreen(data_dir):
    gallery = cv2.imread(str(data_dir / "meeting-screens" / "zoom-gallery-2x2-01.png"))
    h, w = gallery.shape[:2]
    gallery = np.ascontiguousarray(gallery[:h - h % 2, :w - w % 8])
    with screen_showing(gallery) as display:
        yield display, gallery


def test_screen_capture_matches_the_gallery_shown(xscreen):
    display, gallery = xscreen
    frames = []
    src = ScreenSource(monitor=1, every_s=0.2, display=display)
    stop = threading.Event()

    def on_frame(t, frame):
        frames.append((t, frame))
        if len(frames) == 2:
            stop.set()

    n = src.run(on_frame, minutes=0.2, stop_event=stop)
    assert n == 2 and len(frames) == 2
    assert frames[0][0] < 0.2          # the first capture is immediate, not one interval later
    assert 0.15 < frames[1][0] - frames[0][0] < 0.5
    assert frames[0][1].dtype == np.uint8 and frames[0][1].shape == gallery.shape
    assert np.array_equal(frames[0][1], gallery)


def test_screen_region_is_relative_to_monitor(xscreen):
    display, gallery = xscreen
    frame = ScreenSource(monitor=1, region=(40, 30, 200, 120), display=display).grab()
    assert np.array_equal(frame, gallery[30:150, 40:240])
    with pytest.raises(SourceError, match="capture.region"):
        ScreenSource(monitor=1, region=(0, 0, gallery.shape[1] + 1, 10), display=display).grab()


def test_screen_monitor_out_of_range(xscreen):
    display, _ = xscreen
    with pytest.raises(SourceError, match="capture.monitor: 5 is out of range"):
        ScreenSource(monitor=5, display=display).run(lambda t, f: None, minutes=0.01)


def test_slow_on_frame_never_piles_up(xscreen):
    display, _ = xscreen
    active, peak, calls = [0], [0], []
    lock = threading.Lock()

    def slow(t, frame):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        calls.append(t)
        time.sleep(0.35)
        with lock:
            active[0] -= 1

    src = ScreenSource(monitor=1, every_s=0.1, display=display)
    t0 = time.monotonic()
    src.run(slow, minutes=1.2 / 60)
    elapsed = time.monotonic() - t0
    assert peak[0] == 1
    # ~12 ticks in 1.2 s, but only one capture at a time and no backlog replayed afterwards
    assert 2 <= len(calls) <= 5
    assert src.skipped >= 3
    assert elapsed < 1.2 + 0.6  # shutdown waits only for the capture in flight


def test_sigterm_stops_the_run_and_restores_handlers(xscreen):
    display, _ = xscreen
    before = signal.getsignal(signal.SIGTERM)
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    t0 = time.monotonic()
    n = ScreenSource(monitor=1, every_s=0.1, display=display).run(lambda t, f: None, minutes=0.5)
    assert time.monotonic() - t0 < 2.0
    assert n >= 3
    assert signal.getsignal(signal.SIGTERM) is before


def test_error_in_on_frame_stops_and_is_raised(xscreen):
    display, _ = xscreen

    def boom(t, frame):
        raise RuntimeError("pipeline broke")

    with pytest.raises(RuntimeError, match="pipeline broke"):
        ScreenSource(monitor=1, every_s=0.1, display=display).run(boom, minutes=0.2)


def test_no_display_points_to_replay(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(NoDisplayError) as e:
        ScreenSource(monitor=1).run(lambda t, f: None, minutes=0.01)
    assert "no display" in str(e.value) and "rollcall replay" in str(e.value)


def test_unreachable_display_is_no_display(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":4999")  # nothing listens there
    with pytest.raises(NoDisplayError, match="no display.*rollcall replay"):
        ScreenSource(monitor=1).grab()
