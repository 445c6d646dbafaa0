"""Alert delivery off the capture thread: one queue and one worker thread per channel.

`submit()` only puts the alert on each channel's queue, so a slow or dead endpoint never delays a
capture, and one channel's trouble never holds up another's. Each worker keeps its channel within
`rate_limit_per_min` attempts a minute (the rest wait their turn), retries a failed delivery `retries`
times with exponential backoff, and reports every attempt to `record(alert_id, channel, attempt, ok,
error)`. A channel with `batch_s > 0` (the e-mail digest) gets the alerts gathered over that time in
one delivery. What `close()` cannot deliver in its time is recorded as not delivered, so that every
alert has a row per channel saying what became of it. Error texts pass the channel's `redact` (the
webhook's URL secrets) before they are recorded or logged.
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

from . import Alert, make_test_alert, shown

log = logging.getLogger(__name__)

Record = Callable[[int, str, int, bool, "str | None"], None]
_MAX_BACKOFF_S = 300.0
# what close() records for the deliveries it leaves undone
_NOT_SENT = "not sent: rollcall exited before its turn"
_DIGEST_NOT_SENT = "not sent: rollcall exited while the digest was gathering"
_NO_ANSWER = "no answer yet when rollcall exited"


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
    """The worker for one channel. Its state is shared with `leave()` (called by close() on another
    thread) under `lock`; the delivery itself runs outside it."""

    def __init__(self, channel, per_min: int, retries: int, backoff_s: float, record: Record | None):
        super().__init__(name=f"rollcall-alerts-{channel.name}", daemon=True)
        self.channel = channel
        self.per_min = per_min
        self.retries = retries
        self.backoff_s = backoff_s
        self.record = record
        self.lock = threading.Lock()
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.jobs: list[_Job] = []          # heap by due time
        self.attempts: deque = deque()       # monotonic times of attempts in the last minute
        self.batch: list[Alert] = []
        self.batch_due: float | None = None
        self.deadline: float | None = None   # set by close(): leave by then, delivered or not
        self.delivered = 0
        self.failed = 0                      # alerts given up on after the last retry
        self.undone = 0                      # alerts still queued or being sent when close() gave up
        self.current: _Job | None = None     # the job being delivered now
        self.left = False                    # leave() ran: the lane records nothing more
        self.marker_put = False
        self._seq = itertools.count()

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            with self.lock:
                wait = self._wait(time.monotonic())
            try:
                item = self.inbox.get(timeout=wait)
            except queue.Empty:
                item = None
            with self.lock:
                if self.left:   # leave() drained the inbox but for this one, taken just before it
                    if isinstance(item, Alert):
                        self.undone += 1
                        self._record(item.id, 1, False, _NOT_SENT)
                    return
                while item is not None:
                    self._take(item)
                    try:
                        item = self.inbox.get_nowait()
                    except queue.Empty:
                        item = None
            self._work()
            with self.lock:
                if self.left or self._may_go(time.monotonic()):
                    return

    def _may_go(self, now: float) -> bool:
        """After close(): everything is done, or the deadline has come."""
        return self.deadline is not None and ((not self.jobs and not self.batch) or now >= self.deadline)

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
        while True:
            with self.lock:
                job = None if self.left else self._next_job(time.monotonic())
                self.current = job
            if job is None:
                return
            self._attempt(job)

    def _next_job(self, now: float) -> _Job | None:
        """The job to attempt now (taken off the heap and counted against the rate limit), if any."""
        if self.batch and (self.batch_due or 0.0) <= now:
            self._push(_Job(now, next(self._seq), self.batch))
            self.batch, self.batch_due = [], None
        if not self.jobs or self.jobs[0].due > now:
            return None
        if (self.deadline is not None and now >= self.deadline) or self._free_at(now) > now:
            return None
        self.attempts.append(now)
        return heapq.heappop(self.jobs)

    def _attempt(self, job: _Job) -> None:
        try:
            self.channel.deliver(job.alerts)
            ok, error = True, None
        except Exception as e:  # noqa: BLE001 - any failure is a failed attempt, recorded below
            ok, error = False, _reason(self.channel, e)
        with self.lock:
            self.current = None
            if self.left:        # close() gave up on it and recorded it as not delivered
                return
            if ok:
                self.delivered += len(job.alerts)
            elif job.attempt <= self.retries:
                delay = min(self.backoff_s * 2 ** (job.attempt - 1), _MAX_BACKOFF_S)
                self._push(_Job(time.monotonic() + delay, next(self._seq), job.alerts, job.attempt + 1))
            else:
                self.failed += len(job.alerts)
        for alert in job.alerts:
            self._record(alert.id, job.attempt, ok, error)
        if not ok and job.attempt > self.retries:
            log.warning("alert %s: %s failed %d times, giving up (%s)",
                        ",".join(str(a.id) for a in job.alerts), self.channel.name, job.attempt, error)

    def leave(self) -> int:
        """Stop the lane where it is: record each alert it has not delivered (queued, gathering for a
        digest, waiting for a retry, or being sent right now) as an attempt that failed, saying why.
        Returns how many."""
        with self.lock:
            self.left = True
            undone = [(a, 1, _NOT_SENT) for a in self._unread()]
            undone += [(a, 1, _DIGEST_NOT_SENT) for a in self.batch]
            undone += [(a, job.attempt, _NOT_SENT) for job in self.jobs for a in job.alerts]
            if self.current is not None:
                undone += [(a, self.current.attempt, _NO_ANSWER) for a in self.current.alerts]
            self.batch, self.jobs, self.current = [], [], None
            self.undone += len(undone)
        for alert, attempt, why in undone:
            self._record(alert.id, attempt, False, why)
        return len(undone)

    def _unread(self) -> list[Alert]:
        out = []
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return out
            if not isinstance(item, float):
                out.append(item)

    def _record(self, alert_id: int, attempt: int, ok: bool, error: str | None) -> None:
        if self.record is None:
            return
        try:
            self.record(alert_id, self.channel.name, attempt, ok, error)
        except Exception:  # a broken store must not stop the alerts themselves
            log.exception("recording delivery of alert %s via %s failed", alert_id, self.channel.name)

    def pending(self) -> int:
        """Alerts not yet delivered nor given up on (after close(): those it left undone)."""
        with self.lock:
            current = len(self.current.alerts) if self.current is not None else 0
            return (sum(len(j.alerts) for j in self.jobs) + len(self.batch) + current + self.undone
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
        """Deliver what is queued (retries included) for up to `timeout` s; record each alert delivery
        still undone then as a failed attempt (see `_Lane.leave`), and return how many there were
        (0 = everything was delivered or given up on after its retries)."""
        if self._closed:
            return 0
        self._closed = True
        deadline = time.monotonic() + timeout
        for lane in self._lanes:
            lane.marker_put = True
            lane.inbox.put(float(deadline))
        for lane in self._lanes:
            lane.join(max(0.0, deadline - time.monotonic()) + 0.2)
        return sum(lane.leave() for lane in self._lanes)

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
            ok, error = False, _reason(ch, e)
        out.append(ChannelResult(ch.name, ok, error, (time.perf_counter() - t0) * 1000))
    return out


def _reason(channel, error: Exception) -> str:
    """Why an attempt failed, as it may be recorded and shown: a channel with secrets in its settings
    (the webhook's URL) masks them, whatever raised; what a server said is one line with its control
    characters written out."""
    text = str(error) or type(error).__name__
    redact = getattr(channel, "redact", None)
    return shown(redact(text) if redact is not None else text)
