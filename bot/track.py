"""Per participant: N-of-M confirmation of verdicts into impersonation episodes.

One alert per episode, never one per capture. The rules (the same for every participant key):

* Every capture of a participant takes one slot in that participant's window of the last `window_m`
  captures. `mismatch` and `unknown_face` are *bad*, `verified` is *good*; every other verdict
  (`camera_off`, `no_face`, `unjudged`, `multiple_faces`, `unlabeled`) is *neutral*: it counts toward
  neither side but still takes its slot, so a blip (one capture with no face) does not break a
  confirmation, while a long camera-off stretch lets old evidence age out of the window.
* Open: with no episode open, `confirm_n` bad captures among the last `window_m` open one (event
  "open", which the caller turns into exactly one alert). Its kind is the commoner bad verdict among
  them, ties going to the latest; mismatch and unknown_face mixed are one episode, not two.
* Close: with an episode open, `confirm_n` verified captures among the last `window_m` and no bad one
  among them close it (event "close"). The "no bad one" part is hysteresis: a participant flapping
  between verified and mismatch stays in one open episode instead of closing and re-alerting.
* The window starts afresh at every open and close, so the captures that opened an episode can never
  count toward reopening it.
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Hashable

from bot.types import BAD, VerdictKind

GOOD = VerdictKind.VERIFIED


@dataclass(frozen=True)
class Event:
    type: str                         # "open" | "close"
    kind: VerdictKind                 # the episode's kind: MISMATCH | UNKNOWN_FACE
    participant: str
    capture_id: Hashable              # the latest qualifying capture (of the episode's kind, for "open")
    capture_ids: tuple = ()           # every qualifying capture in the window, oldest first
    observation: Any = None           # what the caller passed with `capture_id` (evidence for the alert)
    episode: int = 0                  # running number of episodes in this tracker, from 1


@dataclass
class _Slot:
    verdict: VerdictKind
    capture_id: Hashable
    observation: Any


@dataclass
class _State:
    window: deque
    open_kind: VerdictKind | None = None
    episode: int = 0


@dataclass
class Tracker:
    confirm_n: int = 3
    window_m: int = 5
    _states: dict = field(default_factory=dict, init=False, repr=False)
    _episodes: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.confirm_n <= self.window_m:
            raise ValueError(f"tracking.confirm_n: must be between 1 and tracking.window_m "
                             f"({self.confirm_n} of {self.window_m})")

    def update(self, participant: str, verdict: str, capture_id: Hashable,
               observation: Any = None) -> Event | None:
        """Record one capture's verdict for `participant`; return the event it causes, if any.

        `verdict` is a verdict name or a `bot.types.Verdict`.
        """
        try:
            verdict = VerdictKind(getattr(verdict, "verdict", verdict))
        except ValueError:
            raise ValueError(f"unknown verdict {verdict!r}") from None
        st = self._states.get(participant)
        if st is None:
            st = self._states[participant] = _State(deque(maxlen=self.window_m))
        st.window.append(_Slot(verdict, capture_id, observation))
        bad = [s for s in st.window if s.verdict in BAD]
        if st.open_kind is None:
            if len(bad) < self.confirm_n:
                return None
            self._episodes += 1
            st.episode = self._episodes
            st.open_kind = _kind(bad)
            st.window.clear()
            return _event("open", st, participant, bad)
        good = [s for s in st.window if s.verdict == GOOD]
        if len(good) < self.confirm_n or bad:
            return None
        kind, st.open_kind = st.open_kind, None
        st.window.clear()
        return _event("close", st, participant, good, kind)

    def is_open(self, participant: str) -> bool:
        st = self._states.get(participant)
        return bool(st and st.open_kind)

    def open_episodes(self) -> dict[str, VerdictKind]:
        """participant -> kind, for every episode still open (e.g. at the end of a session)."""
        return {p: st.open_kind for p, st in self._states.items() if st.open_kind}


def _kind(bad: list[_Slot]) -> VerdictKind:
    counts = Counter(s.verdict for s in bad)
    top = max(counts.values())
    # ties go to the latest bad verdict: it is the freshest evidence
    return next(s.verdict for s in reversed(bad) if counts[s.verdict] == top)


def _event(type_: str, st: _State, participant: str, slots: list[_Slot],
           kind: VerdictKind | None = None) -> Event:
    kind = kind or st.open_kind
    # evidence: the latest capture of the episode's own kind (a mismatch alert needs `identified_as`)
    last = next((s for s in reversed(slots) if s.verdict == kind), slots[-1])
    return Event(type=type_, kind=kind, participant=participant,
                 capture_id=last.capture_id, capture_ids=tuple(s.capture_id for s in slots),
                 observation=last.observation, episode=st.episode)
