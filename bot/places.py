"""A tile's place across captures: the key every stage's memory files a tile under, and the stagger
that spreads the memories' periodic refreshes over captures instead of one."""
from __future__ import annotations


def place(box) -> tuple:
    """The tile's box (x, y, w, h) in 8-pixel steps: a tile moved or resized by a few pixels (a
    re-cut of the same layout) keeps its place, and what the memories hold for it."""
    return tuple(int(round(v / 8)) for v in box)


def stagger(key: tuple, period: int) -> int:
    """0 .. period - 1 from the place alone (tuples of ints hash the same every run): a gallery seen
    for the first time has its tiles' refreshes spread over `period` captures, not all on one."""
    return hash(key) % max(1, period)
