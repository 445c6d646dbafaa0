"""N-of-M confirmation: one alert per episode, never per capture."""
from __future__ import annotations

import json

import pytest

from bot.track import Tracker
from bot.types import Verdict, VerdictKind

CODES = {"V": "verified", "M": "mismatch", "U": "unknown_face", "C": "camera_off", "N": "no_face",
         "J": "unjudged", "L": "unlabeled", "X": "multiple_faces"}


def run(seq: str, n: int = 3, m: int = 5, who: str = "s1", tracker: Tracker | None = None):
    """Feed a verdict string (one letter per capture); return [(capture index, type, kind)]."""
    tr = tracker or Tracker(n, m)
    out = []
    for i, c in enumerate(seq.replace(" ", "")):
        ev = tr.update(who, CODES[c], i, {"capture": i, "verdict": CODES[c]})
        if ev:
            out.append((i, ev.type, ev.kind))
    return out


def test_single_mismatch_never_alerts():
    assert run("VVMVVVVMVV") == []


def test_three_of_five_opens_once_at_the_confirming_capture():
    assert run("VMVMM") == [(4, "open", "mismatch")]


def test_persistent_mismatch_alerts_once_not_per_capture():
    assert run("MMM" + "M" * 50) == [(2, "open", "mismatch")]


def test_two_of_five_is_not_enough():
    assert run("MVVMVVMVV") == []


def test_close_needs_verified_held_the_same_way():
    assert run("MMM VV") == [(2, "open", "mismatch")]
    assert run("MMM VVV") == [(2, "open", "mismatch"), (5, "close", "mismatch")]
    assert run("MMM VCVNV") == [(2, "open", "mismatch"), (7, "close", "mismatch")]


def test_flapping_stays_one_episode():
    # alternating verdicts hit 3-of-5 on both sides; hysteresis keeps it one episode, one alert
    events = run("MVMVM" + "VM" * 40)
    assert events == [(4, "open", "mismatch")]


def test_reopen_after_close_needs_fresh_confirmation():
    # the captures that opened the first episode never count toward the second
    events = run("MMM VVV M M M")
    assert events == [(2, "open", "mismatch"), (5, "close", "mismatch"), (8, "open", "mismatch")]
    assert run("MMM VVV MVVMV") == [(2, "open", "mismatch"), (5, "close", "mismatch")]


def test_neutral_verdicts_take_slots_but_count_for_neither_side():
    # one blip inside a confirmation does not break it: M N M M -> 3 of the last 4
    assert run("MNMM") == [(3, "open", "mismatch")]
    # a long camera-off stretch ages old evidence out: M M, five camera_off, M -> no alert
    assert run("MM CCCCC M") == []
    for c in "CNJLX":
        assert run(c * 20) == [], c


def test_kind_is_majority_then_latest():
    assert run("UUM") == [(2, "open", "unknown_face")]
    assert run("MMU") == [(2, "open", "mismatch")]
    # 2-2 tie in a 4-of-5 window: the latest bad verdict decides
    assert run("MUMU", n=4, m=5) == [(3, "open", "unknown_face")]
    # mixed kinds are one episode
    assert run("UUM MUMUUMM") == [(2, "open", "unknown_face")]


def test_event_carries_evidence_of_its_own_kind():
    tr = Tracker(3, 5)
    seq = ["mismatch", "verified", "mismatch", "unknown_face", "unknown_face", "mismatch"]
    events = [tr.update("G1A021044", v, f"cap{i}", {"i": i, "v": v}) for i, v in enumerate(seq)]
    assert events[:3] == [None, None, None]
    ev = events[3]
    # M _ M U: mismatch is the majority; evidence is the latest mismatch, not the unknown_face
    assert ev.type == "open" and ev.kind == "mismatch" and ev.participant == "G1A021044"
    assert ev.capture_ids == ("cap0", "cap2", "cap3")
    assert ev.capture_id == "cap2" and ev.observation == {"i": 2, "v": "mismatch"}
    assert ev.episode == 1
    assert events[4:] == [None, None]


def test_close_event_names_the_verified_captures():
    tr = Tracker(2, 3)
    for i, v in enumerate(["mismatch", "mismatch"]):
        tr.update("p", v, i)
    assert tr.is_open("p") and tr.open_episodes() == {"p": "mismatch"}
    assert tr.update("p", "verified", 2) is None
    ev = tr.update("p", "verified", 3, "obs3")
    assert (ev.type, ev.kind, ev.capture_id, ev.capture_ids, ev.observation) == \
        ("close", "mismatch", 3, (2, 3), "obs3")
    assert not tr.is_open("p") and tr.open_episodes() == {}


def test_participants_are_independent_and_episodes_numbered():
    tr = Tracker(2, 3)
    seq = [("a", "mismatch"), ("b", "mismatch"), ("a", "verified"), ("b", "mismatch"),
           ("a", "mismatch"), ("b", "mismatch")]
    events = [tr.update(p, v, i) for i, (p, v) in enumerate(seq)]
    opened = [(e.participant, e.capture_id, e.episode) for e in events if e]
    assert opened == [("b", 3, 1), ("a", 4, 2)]
    assert tr.open_episodes() == {"a": "mismatch", "b": "mismatch"}


def test_one_of_one_alerts_on_first_bad_capture_and_closes_on_first_verified():
    assert run("VMMVVM", n=1, m=1) == [(1, "open", "mismatch"), (3, "close", "mismatch"),
                                         (5, "open", "mismatch")]


def test_accepts_verdict_objects_and_rejects_unknown_names():
    tr = Tracker(1, 1)
    ev = tr.update("p", Verdict("unknown_face", similarity=0.1), 7)
    assert ev.type == "open" and ev.kind == "unknown_face"
    with pytest.raises(ValueError, match="unknown verdict 'mismtach'"):
        tr.update("p", "mismtach", 8)



def test_verdicts_are_one_vocabulary_with_the_stored_strings():
    """A verdict given as a string holds its VerdictKind member, which is that string to the store,
    JSON and any comparison; a misspelt one is refused where it is made."""
    v = Verdict("mismatch")
    assert v.verdict is VerdictKind.MISMATCH and v.verdict == "mismatch"
    assert json.dumps({v.verdict: v.verdict}) == '{"mismatch": "mismatch"}' and f"{v.verdict}" == "mismatch"
    assert set(CODES.values()) == set(VerdictKind)
    with pytest.raises(ValueError):
        Verdict("mismtach")

def test_bad_settings():
    with pytest.raises(ValueError, match="tracking.confirm_n"):
        Tracker(4, 3)
    with pytest.raises(ValueError, match="tracking.confirm_n"):
        Tracker(0, 3)
