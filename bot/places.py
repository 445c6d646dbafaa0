"""A tile's place across captures: the key every stage's memory files a tile under, and the phases that
spread the memories' periodic refreshes evenly over captures."""
from __future__ import annotations


def place(box) -> tuple:
    """The tile's box (x, y, w, h) in 8-pixel steps: a tile moved or resized by a few pixels (a
    re-cut of the same layout) keeps its place, and what the memories hold for it."""
    return tuple(int(round(v / 8)) for v in box)


class Phases:
    """The refresh phase of each place a memory meets, dealt in the order it meets them (reading order:
    0, 1, 2, ... modulo the period): a gallery seen for the first time has its tiles' refreshes spread
    evenly over `period` captures. Phases from the places' hashes left some captures with none and
    one with 8 of a 5x5 gallery's 22 full detector passes (benchmarks/HISTORY.md, 2026-12-07)."""

    def __init__(self, period: int):
        self.period = max(1, period)
        self._met = 0

    def deal(self) -> int:
        """The next place's phase, 0 .. period - 1."""
        phase = self._met % self.period
        self._met += 1
        return phase
