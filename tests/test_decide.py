"""The verdict table of DESIGN.md on vectors whose similarities are set by hand."""
import json

import numpy as np
import pytest

from bot.config import FaceSettings
from bot.decide import (Gallery, HeadRule, QuickRule, Thresholds, ThresholdError, decide, gate, hold_back,
                         load_thresholds, settled)
from bot.types import Face

TH = Thresholds(t_verify=0.5, margin=0.1)


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def gallery():
    ids = np.array(["A", "A", "B", "C"])
    vecs = np.stack([unit([1, 0, 0, 0]), unit([1, 0.1, 0, 0]), unit([0, 1, 0, 0]), unit([0, 0, 1, 0])])
    return Gallery.from_embeddings(ids, vecs)


def probe(a, b, c, rest=0.0):
    """A unit vector with cosine ~a, b, c to the three prototypes (they are near-orthogonal)."""
    v = np.array([a, b, c, rest], np.float32)
    return v / np.linalg.norm(v) if np.linalg.norm(v) > 1 else v + np.array([0, 0, 0, np.sqrt(max(0, 1 - (v ** 2).sum()))], np.float32)


def test_prototypes_are_unit_means(gallery):
    assert gallery.student_ids == ["A", "B", "C"]
    assert np.allclose(np.linalg.norm(gallery.prototypes, axis=1), 1)


def test_verified(gallery):
    v = decide("A", probe(0.8, 0.2, 0.1), gallery, TH)
    assert v.verdict == "verified" and v.identified_as == "A" and v.best_other == "B"


def test_mismatch_needs_margin_and_t_verify(gallery):
    v = decide("A", probe(0.2, 0.8, 0.1), gallery, TH)
    assert v.verdict == "mismatch" and v.identified_as == "B" and v.best_other_similarity > v.similarity
    # ahead, but by less than the margin and the expected one passes: verified
    assert decide("A", probe(0.62, 0.68, 0.0), gallery, TH).verdict == "verified"
    # another one ahead by the margin but below t_verify: nobody known
    assert decide("A", probe(0.1, 0.4, 0.0), gallery, TH).verdict == "unknown_face"


def test_unknown_face(gallery):
    v = decide("A", probe(0.3, 0.2, 0.1), gallery, TH)
    assert v.verdict == "unknown_face" and v.identified_as is None


def test_unlabeled_is_identified_against_everyone(gallery):
    assert decide(None, probe(0.1, 0.1, 0.9), gallery, TH).identified_as == "C"
    assert decide(None, probe(0.1, 0.1, 0.3), gallery, TH).identified_as is None
    assert decide(None, probe(0.1, 0.1, 0.9), gallery, TH).verdict == "unlabeled"


def test_student_without_photos(gallery):
    assert decide("Z", probe(0.1, 0.1, 0.2), gallery, TH).verdict == "unjudged"
    assert decide("Z", probe(0.1, 0.9, 0.1), gallery, TH).verdict == "mismatch"


def test_gates():
    fs = FaceSettings(min_face_px=36, blur_min=15.0, min_in_view=0.8)
    f = Face(box=(0, 0, 30, 30), score=0.9, landmarks=np.zeros((6, 2)), blur=100.0)
    assert gate(f, fs) == "small"
    f.box = (0, 0, 60, 60)
    assert gate(f, fs) == ""
    f.in_view = 0.79
    assert gate(f, fs) == "cut"
    f.in_view = 1.0
    f.blur = 3.0
    assert gate(f, fs) == "blur"


def test_a_face_partly_out_of_view_is_verified_but_never_accused(gallery):
    fs = FaceSettings(min_in_view=0.8, flag_in_view=0.95)
    f = Face(box=(0, 0, 60, 60), score=0.9, landmarks=np.zeros((6, 2)), blur=100.0, in_view=0.9)
    own, other, nobody = (decide("A", probe(*p), gallery, TH) for p in
                          [(0.9, 0.1, 0.1), (0.1, 0.9, 0.1), (0.1, 0.1, 0.1)])
    assert [v.verdict for v in (own, other, nobody)] == ["verified", "mismatch", "unknown_face"]
    assert hold_back(own, f, fs) == own
    held = hold_back(other, f, fs)
    assert (held.verdict, held.reason, held.identified_as) == ("unjudged", "cut", None)
    assert held.similarity == other.similarity and held.best_other == "B"  # the scores stay on record
    assert hold_back(nobody, f, fs).verdict == "unjudged"
    f.in_view = 0.95
    assert hold_back(other, f, fs) == other and hold_back(nobody, f, fs) == nobody


def test_thresholds_file(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"t_verify": 0.41, "margin": 0.07, "far": 0.001}))
    assert load_thresholds(p) == Thresholds(0.41, 0.07, 0.001)
    assert load_thresholds(p, t_verify=0.6).t_verify == 0.6
    p.write_text("{}")
    with pytest.raises(ThresholdError, match="t.json"):
        load_thresholds(p)
    with pytest.raises(ThresholdError, match="not found"):
        load_thresholds(tmp_path / "none.json")


def test_top_k_scores_by_the_nearest_enrolled_photos():
    # A: one photo like the probe and three unlike it (a prototype hides the match); B: all middling
    ids = np.array(["A"] * 4 + ["B"] * 3)
    vecs = np.stack([unit([1, 0, 0, 0])] + [unit([0, 0, 1, 0])] * 3 + [unit([0.6, 0.8, 0, 0])] * 3)
    face = unit([1, 0, 0, 0])
    proto = Gallery.from_embeddings(ids, vecs)
    top1 = Gallery.from_embeddings(ids, vecs, top_k=1)
    top3 = Gallery.from_embeddings(ids, vecs, top_k=3)
    assert np.argmax(proto.similarities(face)) == 1          # B's prototype is nearer
    assert np.allclose(top1.similarities(face), [1.0, 0.6])  # A's nearest photo is the face itself
    assert np.allclose(top3.similarities(face), [1 / 3, 0.6])
    # a student with fewer photos than k is scored over all of them
    few = Gallery.from_embeddings(np.array(["A", "B"]), np.stack([face, unit([0, 1, 0, 0])]), top_k=3)
    assert np.allclose(few.similarities(face), [1.0, 0.0])
    assert decide("A", face, top1, TH).verdict == "verified"
    assert decide("A", face, proto, TH).verdict == "mismatch"


def test_thresholds_name_their_scoring_rule(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"t_verify": 0.6, "margin": 0.08, "top_k": 3}))
    assert load_thresholds(p).top_k == 3
    p.write_text(json.dumps({"t_verify": 0.6, "margin": 0.08}))
    assert load_thresholds(p).top_k == 0
    p.write_text(json.dumps({"t_verify": 0.6, "margin": 0.08, "top_k": -2}))
    with pytest.raises(ThresholdError, match="t.json"):
        load_thresholds(p)


# ------------------------------------------------------------------ the class head
def _lit_class():
    """Dimensions: A, B, C and the light of a room. B and C are mostly seen in that light, A once."""
    ids = np.array(list("AAABBBCCC"))
    vecs = np.stack([unit([1, 0, 0, 0]), unit([1, 0, 0, 0]), unit([1, 0, 0, .8]),
                     unit([0, 1, 0, 1]), unit([0, 1, 0, 1.2]), unit([0, 1, 0, 0.2]),
                     unit([0, 0, 1, 1]), unit([0, 0, 1, 1.2]), unit([0, 0, 1, 0.2])])
    return ids, vecs


def test_the_head_is_ridge_regression_onto_plus_minus_one():
    from bot.decide import fit_head
    ids, vecs = _lit_class()
    owner = np.searchsorted(["A", "B", "C"], ids)
    alpha = fit_head(vecs, owner, 3, lam=0.05)
    y = -np.ones((9, 3))
    y[np.arange(9), owner] = 1
    w = np.linalg.solve(vecs.T @ vecs + 0.05 * np.eye(4), vecs.T @ y)  # the primal form
    probe = unit([0.3, 0.2, 0.1, 0.9])
    assert np.allclose((vecs @ probe) @ alpha, probe @ w, atol=1e-4)
    assert ((vecs @ vecs.T) @ alpha).argmax(1).tolist() == owner.tolist()  # it fits its own photos


def test_the_head_tells_a_student_in_another_students_light():
    ids, vecs = _lit_class()
    th = Thresholds(t_verify=0.4, margin=0.02, top_k=3, head=HeadRule(lam=0.05, weight=1.0, margin=0.3))
    probe = unit([0.8, 0.3, 0, 1.6])  # A, lit like B and C usually are
    plain = Gallery.from_embeddings(ids, vecs, top_k=3)
    headed = Gallery.from_embeddings(ids, vecs, top_k=3, head=th.head)
    # the nearest photos alone put B ahead of A by more than the margin: a false accusation
    assert decide("A", probe, plain, th).verdict == "mismatch"
    v = decide("A", probe, headed, th)
    assert v.verdict == "verified" and v.best_other == "B"
    # similarities stay the cosine of the nearest photos (what t_verify is calibrated on)
    assert v.similarity == round(float(plain.similarities(probe)[0]), 4)
    assert headed.margin(th) == 0.3 and plain.margin(th) == 0.02
    # and B's own face is still B's and not A's
    assert decide("A", unit([0, 1, 0, 1.1]), headed, th).verdict == "mismatch"


def test_no_head_for_fewer_than_three_students():
    ids, vecs = _lit_class()
    two = Gallery.from_embeddings(ids[:6], vecs[:6], top_k=3, head=HeadRule(0.05, 1.0, 0.3))
    assert two.alpha is None and two.head is None
    sim, rank = two.scores(unit([1, 0, 0, 0]))
    assert np.array_equal(sim, rank)


def test_thresholds_with_a_head(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"t_verify": 0.34, "margin": 0.02, "top_k": 3,
                             "head": {"lambda": 0.05, "weight": 1.0, "margin": 0.29}}))
    th = load_thresholds(p)
    assert th.head == HeadRule(0.05, 1.0, 0.29)
    # a margin set in settings replaces the one in effect: the head's
    assert load_thresholds(p, margin=0.5).head.margin == 0.5
    p.write_text(json.dumps({"t_verify": 0.34, "margin": 0.02, "top_k": 3, "head": {"lambda": 0, "weight": 1,
                                                                                   "margin": 0.3}}))
    with pytest.raises(ThresholdError, match="t.json.*lambda"):
        load_thresholds(p)
    p.write_text(json.dumps({"t_verify": 0.34, "margin": 0.02, "head": {"lambda": 0.05}}))
    with pytest.raises(ThresholdError, match="t.json"):
        load_thresholds(p)


def test_thresholds_with_a_quick_rule(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"t_verify": 0.34, "margin": 0.02, "quick": {"view": "face", "gap": 0.12}}))
    assert load_thresholds(p).quick == QuickRule("face", 0.12)
    p.write_text(json.dumps({"t_verify": 0.34, "margin": 0.02}))
    assert load_thresholds(p).quick is None
    p.write_text(json.dumps({"t_verify": 0.34, "margin": 0.02, "quick": {"view": "face", "gap": 0}}))
    with pytest.raises(ThresholdError, match="t.json.*gap"):
        load_thresholds(p)


def test_one_view_settles_a_face_only_beyond_doubt(gallery):
    th = Thresholds(t_verify=0.5, margin=0.1, quick=QuickRule("face", 0.15))
    assert settled("A", probe(0.8, 0.2, 0.1), gallery, th)
    # verified, but another student within the gap, or t_verify within it: the other views decide
    assert decide("A", probe(0.62, 0.55, 0.0), gallery, th).verdict == "verified"
    assert not settled("A", probe(0.62, 0.55, 0.0), gallery, th)
    assert decide("A", probe(0.6, 0.2, 0.1), gallery, th).verdict == "verified"
    assert not settled("A", probe(0.6, 0.2, 0.1), gallery, th)
    # anything but verified, an unresolved name, a student not enrolled, no rule: never settled
    assert not settled("A", probe(0.2, 0.8, 0.1), gallery, th)       # mismatch
    assert not settled("B", probe(0.8, 0.2, 0.1), gallery, th)
    assert not settled(None, probe(0.8, 0.2, 0.1), gallery, th)
    assert not settled("Z", probe(0.8, 0.2, 0.1), gallery, th)
    assert not settled("A", probe(0.8, 0.2, 0.1), gallery, TH)
    alone = Gallery.from_embeddings(np.array(["A"]), unit([1, 0, 0, 0])[None])
    assert not settled("A", probe(0.9, 0.0, 0.0), alone, th)
