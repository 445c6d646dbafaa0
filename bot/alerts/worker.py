"""Alert delivery off the capture thread: one queue and one worker thread per channel.

`submit()` only puts the alert on each channel's queue, so a slow or dead endpoint never delays a
capture, and one channel's trouble never holds up another's. Each worker keeps its channel within
`rate_limit_per_min` attempts a minute (the rest wait their turn), retries a failed delivery `retries`
times with exponential backoff, and reports every attempt to `record(alert_id, channel, attempt, ok,
error)`. A channel with `batch_s > 0` (the e-mail digest) gets the alerts gathered over that time in
one delivery.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from . import Alert, make_test_alert

log = logging.getLogger(__name__)

Record = Callable[[int, str, int, bool, "str | None"], None]
_MAX_BACKOFF_S = 300.0


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    alerts: list = field(compare=False)
    attempt: int = field(default=1, compare=False)


@dataclass
class ChannelResult:
    channel: str
    ok: bool
    error: str | None
    ms: float


class _Lane(threading.Thread):
    """The worker for one channel."""

    def __init__(self, channel, per_min: int, retries: int, backoff_s: float, record: Record | None):
        super().__init__(name=f"rollcall-alerts-{channel.name}", daemon=True)
        self.channel = channel
        self.per_min = per_min
        self.retries = retries
        self.backoff_s = backoff_s
        self.record = record
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.jobs: list[_Job] = []          # heap by due time
        self.attempts: deque = deque()       # monotonic times of attempts in the last minute
        self.batch: list[Alert] = []
        self.batch_due: float | None = None
        self.deadline: float | None = None   # set by close(): leave by then, delivered or not
        self.delivered = 0
        self.failed = 0                      # alerts given up on after the last retry
        self.inflight = 0
        self.marker_put = False
        self._seq = itertools.count()

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            try:
                item = self.inbox.get(timeout=self._wait(time.monotonic()))
            except queue.Empty:
                item = None
            while item is not None:
                self._take(item)
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    item = None
            self._work()
            if self.deadline is not None:
                if not self.jobs and not self.batch:
                    return
                if time.monotonic() >= self.deadline:
                    return

    def _take(self, item) -> None:
        if isinstance(item, float):  # close(): the deadline
            self.deadline = item
            if self.batch:           # a digest waiting for its time goes out now
                self.batch_due = 0.0
            return
        if self.channel.batch_s > 0:
            if not self.batch:
                self.batch_due = time.monotonic() + self.channel.batch_s
            self.batch.append(item)
            if self.deadline is not None:
                self.batch_due = 0.0
        else:
            self._push(_Job(time.monotonic(), next(self._seq), [item]))

    def _push(self, job: _Job) -> None:
        heapq.heappush(self.jobs, job)

    def _wait(self, now: float) -> float | None:
        times = []
        if self.jobs:
            times.append(max(self.jobs[0].due, self._free_at(now)))
        if self.batch:
            times.append(self.batch_due or now)
        if self.deadline is not None:
            times.append(self.deadline)
        if not times:
            return None
        return max(0.0, min(times) - now)

    def _free_at(self, now: float) -> float:
        """When the rate limit next allows an attempt."""
        while self.attempts and self.attempts[0] <= now - 60.0:
            self.attempts.popleft()
        return now if len(self.attempts) < self.per_min else self.attempts[0] + 60.0

    def _work(self) -> None:
        now = time.monotonic()
        if self.batch and (self.batch_due or 0.0) <= now:
            self._push(_Job(now, next(self._seq), self.batch))
            self.batch, self.batch_due = [], None
        while self.jobs and self.jobs[0].due <= now:
            if self.deadline is not None and now >= self.deadline:
                return
            if self._free_at(now) > now:
                return
            job = heapq.heappop(self.jobs)
            self.attempts.append(now)
            self._attempt(job)
            now = time.monotonic()

    def _attempt(self, job: _Job) -> None:
        self.inflight = len(job.alerts)
        try:
            self.channel.deliver(job.alerts)
            ok, error = True, None
        except Exception as e:  # noqa: BLE001 - any failure is a failed attempt, recorded below
            ok, error = False, str(e) or type(e).__name__
        finally:
            self.inflight = 0
        for alert in job.alerts:
            self._record(alert.id, job.attempt, ok, error)
        if ok:
            self.delivered += len(job.alerts)
        elif job.attempt <= self.retries:
            delay = min(self.backoff_s * 2 ** (job.attempt - 1), _MAX_BACKOFF_S)
            self._push(_Job(time.monotonic() + delay, next(self._seq), job.alerts, job.attempt + 1))
        else:
            self.failed += len(job.alerts)
            log.warning("alert %s: %s failed %d times, giving up (%s)",
                        ",".join(str(a.id) for a in job.alerts), self.channel.name, job.attempt, error)

    def _record(self, alert_id: int, attempt: int, ok: bool, error: str | None) -> None:
        if self.record is None:
            return
        try:
            self.record(alert_id, self.channel.name, attempt, ok, error)
        except Exception:  # a broken store must not stop the alerts themselves
            log.exception("recording delivery of alert %s via %s failed", alert_id, self.channel.name)

    def pending(self) -> int:
        return (sum(len(j.alerts) for j in self.jobs) + len(self.batch) + self.inflight
                + self._queued())

    def _queued(self) -> int:
        # close()'s deadline marker sits in the inbox too until the lane reads it
        unread_marker = self.marker_put and self.deadline is None
        return max(0, self.inbox.qsize() - unread_marker)


class AlertDispatcher:
    """Queue + worker threads in front of the channels; see the module docstring."""

    def __init__(self, settings, channels: list, record: Record | None = None, backoff_s: float = 2.0):
        self.channels = list(channels)
        self._lanes = [_Lane(ch, settings.rate_limit_per_min, settings.retries, backoff_s, record)
                       for ch in self.channels]
        self._closed = False
        for lane in self._lanes:
            lane.start()

    def submit(self, alert: Alert) -> None:
        """Queue `alert` for every channel; returns at once."""
        if self._closed:
            raise RuntimeError("alert dispatcher is closed")
        for lane in self._lanes:
            lane.inbox.put(alert)

    def close(self, timeout: float = 10.0) -> int:
        """Deliver what is queued (retries included) for up to `timeout` s; return how many alert
        deliveries were left undone (0 = everything was delivered or given up on after its retries)."""
        if self._closed:
            return 0
        self._closed = True
        deadline = time.monotonic() + timeout
        for lane in self._lanes:
            lane.marker_put = True
            lane.inbox.put(float(deadline))
        for lane in self._lanes:
            lane.join(max(0.0, deadline - time.monotonic()) + 0.2)
        return sum(lane.pending() for lane in self._lanes)

    def stats(self) -> dict[str, dict[str, int]]:
        return {lane.channel.name: {"delivered": lane.delivered, "failed": lane.failed,
                                    "pending": lane.pending()} for lane in self._lanes}

    def send_test(self, class_name: str = "") -> list[ChannelResult]:
        """One test alert through every channel, synchronously (for `rollcall alerts test`)."""
        return send_test(self.channels, class_name)

    def __enter__(self) -> "AlertDispatcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def send_test(channels: list, class_name: str = "") -> list[ChannelResult]:
    """`rollcall alerts test`: one test alert through each channel, now, on this thread; no retries."""
    alert = make_test_alert(class_name)
    out = []
    for ch in channels:
        t0 = time.perf_counter()
        try:
            ch.deliver([alert])
            ok, error = True, None
        except Exception as e:  # noqa: BLE001 - reported per channel
            ok, error = False, str(e) or type(e).__name__
        out.append(ChannelResult(ch.name, ok, error, (time.perf_counter() - t0) * 1000))
    return out
