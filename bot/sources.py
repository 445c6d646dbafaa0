"""Frames in: a folder of screenshots, a video file, or the live screen.

Every source gives frames as (t_seconds, frame, label): `t` is seconds from the start of the source
(video time for a video, wall time for the screen), `frame` a BGR uint8 array, `label` names where the
frame came from (file name, `video.mp4@12.0s`, `screen:1`).
"""
from __future__ import annotations

import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from .errors import RollcallError

log = logging.getLogger(__name__)

# the files read as images: screenshots here, photos by enroll.py and evaluate.py
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
Frame = tuple[float, np.ndarray, str]
# Video gaps longer than this many frames are crossed by seeking, shorter ones by grabbing (cheap,
# no colour conversion); seeking costs a keyframe decode, so it only pays off over long gaps.
_SEEK_MIN_FRAMES = 48


class SourceError(RollcallError, ValueError):
    """A source that cannot be read; str() is the one line shown to the user (names the file or key)."""


class NoDisplayError(SourceError):
    """Live capture asked for where there is no screen to capture."""


def _natural_key(path: Path) -> list:
    # "shot2.png" before "shot10.png": screenshot tools number frames without zero padding.
    return [int(p) if p.isdigit() else p.casefold() for p in re.split(r"(\d+)", path.name)]


def _warn_skip(path: Path, reason: str) -> None:
    log.warning("%s: skipped (%s)", path, reason)


def folder_frames(path: str | Path, every_s: float = 1.0,
                  on_skip: Callable[[Path, str], None] | None = None) -> Iterator[Frame]:
    """Screenshots in `path` (png/jpg/bmp/webp) in natural name order, `every_s` seconds apart.

    An image that cannot be decoded is skipped and reported to `on_skip(path, reason)` (default: a
    logged warning); its time slot stays empty so later frames keep their times.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise SourceError(f"{folder}: not a folder")
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                   key=_natural_key)
    if not files:
        raise SourceError(f"{folder}: no screenshots (png, jpg, bmp, webp) in this folder")
    return _folder_iter(folder, files, every_s, on_skip or _warn_skip)


def _folder_iter(folder: Path, files: list[Path], every_s: float,
                 skip: Callable[[Path, str], None]) -> Iterator[Frame]:
    read = 0
    for i, file in enumerate(files):
        frame = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if frame is None or frame.size == 0:
            skip(file, "not a readable image")
            continue
        read += 1
        yield i * every_s, frame, file.name
    if not read:
        raise SourceError(f"{folder}: none of its {len(files)} images could be read")


def video_frames(path: str | Path, every_s: float) -> Iterator[Frame]:
    """Frames of the video at `path`, one every `every_s` seconds of video time, starting at 0.

    Each frame is the first one at or after its sample time; `t` is that frame's own time. A file that
    will not open raises SourceError here, at the call, not at the first frame.
    """
    if every_s <= 0:
        raise SourceError(f"capture.every_s: must be > 0, got {every_s}")
    file = Path(path)
    cap = cv2.VideoCapture(str(file))
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"{file}: cannot open as a video")
    return _video_iter(cap, file, every_s)


def _video_iter(cap, file: Path, every_s: float) -> Iterator[Frame]:
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = fps if fps and 0 < fps < 1000 else 0.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        name = file.name
        index = -1      # index of the last grabbed frame
        target = 0.0    # next sample time (s)
        produced = 0
        while True:
            if fps:
                want = int(np.ceil(target * fps - 1e-6))
                if total and want >= total:
                    break
                if want - index > _SEEK_MIN_FRAMES:
                    cap.set(cv2.CAP_PROP_POS_FRAMES, want)
                    index = int(cap.get(cv2.CAP_PROP_POS_FRAMES)) - 1
                while index < want:
                    if not cap.grab():
                        return _end(file, produced)
                    index += 1
                t = index / fps
            else:
                # No usable frame rate: walk frame by frame and read each frame's own timestamp.
                if not cap.grab():
                    return _end(file, produced)
                t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                if t + 1e-6 < target:
                    continue
            ok, frame = cap.retrieve()
            if not ok or frame is None:
                return _end(file, produced)
            produced += 1
            yield t, frame, f"{name}@{t:.1f}s"
            while target <= t + 1e-6:
                target += every_s
        _end(file, produced)
    finally:
        cap.release()


def _end(file: Path, produced: int) -> None:
    if produced == 0:
        raise SourceError(f"{file}: no frame could be read from this video")


def open_source(path: str | Path, every_s: float) -> Iterator[Frame]:
    """A folder of screenshots or a video file, whichever `path` is."""
    p = Path(path)
    if not p.exists():
        raise SourceError(f"{p}: no such file or folder")
    if p.is_dir():
        return folder_frames(p, every_s)
    return video_frames(p, every_s)


def source_label(path: str | Path) -> str:
    """How a session records its source: `video:NAME` or `folder:NAME`."""
    p = Path(path)
    return f"{'folder' if p.is_dir() else 'video'}:{p.name}"


# ---------------------------------------------------------------------------------------------- screen

def _mss_open(display: str | None):
    import mss

    factory = getattr(mss, "MSS", None) or mss.mss  # mss >= 10.2 renamed the factory
    return factory(display=display) if display else factory()


class ScreenSource:
    """Live capture of a monitor (or a region of it) every `every_s` seconds.

    `region` is (x, y, w, h) relative to the chosen monitor's top-left corner (monitor 0 is the whole
    virtual screen); () captures the whole monitor.
    """

    def __init__(self, monitor: int = 1, region: tuple[int, ...] = (), every_s: float = 10.0,
                 display: str | None = None):
        if every_s <= 0:
            raise SourceError(f"capture.every_s: must be > 0, got {every_s}")
        self.monitor = monitor
        self.region = tuple(region)
        self.every_s = float(every_s)
        self.display = display  # None -> $DISPLAY
        self.captures = 0
        self.skipped = 0        # ticks dropped because the previous capture was still running

    def _connect(self):
        import os

        if not (self.display or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise NoDisplayError("capture: there is no display to capture ($DISPLAY is not set); "
                                 "use `rollcall replay VIDEO|FOLDER` on a recording instead")
        try:
            return _mss_open(self.display)
        except Exception as e:  # mss raises ScreenShotError, ctypes errors, OSError by backend
            raise NoDisplayError(f"capture: there is no display to capture ({e}); "
                                 "use `rollcall replay VIDEO|FOLDER` on a recording instead") from None

    def geometry(self, sct) -> dict:
        """The mss monitor dict to grab, checked against the screen."""
        monitors = sct.monitors
        if not 0 <= self.monitor < len(monitors):
            raise SourceError(f"capture.monitor: {self.monitor} is out of range "
                              f"(this screen has monitors 0-{len(monitors) - 1}; 0 = all)")
        mon = monitors[self.monitor]
        if not self.region:
            return {k: mon[k] for k in ("left", "top", "width", "height")}
        x, y, w, h = self.region
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > mon["width"] or y + h > mon["height"]:
            raise SourceError(f"capture.region: {list(self.region)} does not fit monitor {self.monitor} "
                              f"({mon['width']}x{mon['height']})")
        return {"left": mon["left"] + x, "top": mon["top"] + y, "width": w, "height": h}

    def grab(self) -> np.ndarray:
        """One frame now (BGR uint8); for `doctor` and tests."""
        with self._connect() as sct:
            return _to_bgr(sct.grab(self.geometry(sct)))

    def run(self, on_frame: Callable[[float, np.ndarray], None], minutes: float | None = None,
            stop_event: threading.Event | None = None) -> int:
        """Call `on_frame(t, frame)` every `every_s` s until `stop_event` is set, `minutes` pass, or
        SIGINT / SIGTERM arrives. Returns the number of captures.

        A capture that is still running when the next tick comes makes that tick be dropped (never two
        at once, no backlog). An exception from `on_frame` or from the capture stops the run and is
        raised here.
        """
        stop = stop_event or threading.Event()
        geometry = self._probe_geometry()
        failure: list[BaseException] = []
        t0 = time.monotonic()

        def tick() -> None:
            if stop.is_set():
                return
            try:
                # opened and closed on the job thread each capture (one X connect, ~1 ms): mss before
                # 10.2 keeps its X handles per thread, and a close from another thread fails
                with _mss_open(self.display) as sct:
                    frame = _to_bgr(sct.grab(geometry))
                self.captures += 1
                on_frame(time.monotonic() - t0, frame)
            except BaseException as e:  # noqa: BLE001 - handed to the caller of run()
                failure.append(e)
                stop.set()

        scheduler = self._scheduler()
        restore = _install_signal_handlers(stop)
        try:
            from datetime import datetime

            scheduler.add_job(tick, "interval", seconds=self.every_s, next_run_time=datetime.now(),
                              id="capture")
            scheduler.start()
            stop.wait(minutes * 60 if minutes is not None else None)
            stop.set()
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=True)
            restore()
        if failure:
            e = failure[0]
            if not isinstance(e, SourceError) and type(e).__module__.startswith("mss"):
                raise SourceError(f"capture: screen capture failed ({e})") from e
            raise e
        return self.captures

    def _probe_geometry(self) -> dict:
        """The captured area, read once through a connection opened and closed here."""
        probe = self._connect()
        try:
            return self.geometry(probe)
        finally:
            probe.close()

    def _scheduler(self):
        """One capture job at a time on one thread: a tick that comes while a capture still runs is
        dropped and counted in `skipped`, never queued."""
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        def missed(event) -> None:
            self.skipped += 1

        scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(1)},
                                        job_defaults={"max_instances": 1, "coalesce": True,
                                                      "misfire_grace_time": max(1, int(self.every_s // 2))})
        scheduler.add_listener(missed, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        return scheduler


def _to_bgr(shot) -> np.ndarray:
    # mss gives BGRA; dropping alpha leaves BGR, which is what OpenCV and the pipeline use.
    return np.ascontiguousarray(np.asarray(shot, dtype=np.uint8)[:, :, :3])


def _install_signal_handlers(stop: threading.Event) -> Callable[[], None]:
    """SIGINT / SIGTERM set `stop`; returns a function that puts the old handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signal handlers can only be set from the main thread
    old = {}

    def handler(signum, frame) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, h in old.items():
            signal.signal(sig, h)

    return restore
