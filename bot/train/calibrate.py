"""Thresholds (t_verify, margins, the class head's margin, the quick rule's gap) from held-out
identities, through the exported TFLite model as the bot runs it."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..decide import Gallery, HeadRule, QuickRule, Thresholds, decide, settle_lead, top_k_scores
from ..embed import Embedder, unit
from .data import load_cache, split_identities


def leave_one_out_scores(emb: np.ndarray, lab: np.ndarray, top_k: int) -> np.ndarray:
    """(faces, identities) scores of every face against every identity by decide.Gallery's rule
    (top_k 0: the prototype; k: the mean of the k nearest faces), a face never counted in its own
    identity's gallery; -inf where that leaves its own gallery empty."""
    n_ids = int(lab.max()) + 1
    if top_k <= 0:
        sums = np.stack([emb[lab == k].sum(0) for k in range(n_ids)])
        out = np.empty((len(emb), n_ids), np.float32)
        for i in range(len(emb)):
            protos = sums.copy()
            protos[lab[i]] -= emb[i]
            norm = np.linalg.norm(protos, axis=1)
            out[i] = np.where(norm > 1e-6, (protos @ emb[i]) / np.maximum(norm, 1e-12), -np.inf)
        return out
    sims = emb @ emb.T
    out = top_k_scores(sims, lab, n_ids, top_k)
    # a face's own identity: its gallery is the others, the face itself left out
    for k in range(n_ids):
        rows = np.flatnonzero(lab == k)
        kk = min(top_k, len(rows) - 1)
        own = sims[np.ix_(rows, rows)]
        np.fill_diagonal(own, -np.inf)
        out[rows, k] = np.sort(own, axis=1)[:, ::-1][:, :kk].mean(1) if kk > 0 else -np.inf
    return out


def calibrate(cache: Path, model_path: Path, out: Path, seed: int = 0, far: float = 0.01,
              class_size: int = 30, top_k: int = 3, min_gallery: int = 7, head_lambda: float = 0.05,
              head_weight: float = 1.0) -> dict:
    """Thresholds from held-out identities, computed through the exported TFLite model as the bot runs it.

    Every held-out face is a probe against every held-out identity, scored by decide.Gallery's rule
    with `top_k` (the probe left out of its own identity's gallery). Only identities with at least
    `min_gallery` faces take part: the score an impostor's gallery reaches grows with its size (top-3
    at FAR 1%, alpha-0.5 model: 0.50 for 1-3 faces, 0.61 for 7-12, 0.62 for 13+), and a student is
    enrolled from many photos, so small galleries would set t_verify too low. t_verify: the score an
    impostor identity reaches for at most `far` of (probe, other identity) pairs. margin: how far one
    other identity is ahead of the probe's own in at most `far` of those pairs. Both are per pair, so
    they do not depend on how many students a class has; what a class of `class_size` then sees is
    simulated and stored.

    With head_lambda > 0 (and top_k >= 1) the class head joins the ranking (decide.Gallery) and its
    margin comes from classes of `class_size` (head_margin); t_verify stays on the cosine.
    """
    z = load_cache(cache)
    idents = z["identities"]
    held = split_identities(idents, seed)
    idx = np.flatnonzero(held)
    names, lab = np.unique(idents[idx], return_inverse=True)
    counts = np.bincount(lab)
    wanted = min_gallery
    # a tiny cache (tests, --limit-ids) may hold no identity that large: use the largest galleries it has
    while min_gallery > 1 and (counts >= min_gallery + 1).sum() < 3:
        min_gallery -= 1
    big = counts >= min_gallery + 1  # the probe's own gallery keeps min_gallery faces
    if big.sum() < 3:
        raise ValueError(f"{cache}: fewer than 3 held-out identities with 2+ faces; cannot calibrate")
    if min_gallery < wanted:
        print(f"calibrate: only {int((counts >= wanted + 1).sum())} held-out identities have {wanted + 1}+ faces; "
              f"using galleries of {min_gallery}+", flush=True)
    keep = big[lab]
    idx, lab = idx[keep], np.unique(lab[keep], return_inverse=True)[1]
    embedder = Embedder(model_path)
    per_view = embedder.view_vectors(z["faces"][idx])
    emb = unit(per_view.sum(0))
    sims = leave_one_out_scores(emb, lab, top_k)
    rows = np.arange(len(lab))
    genuine = sims[rows, lab]
    other = np.ones_like(sims, bool)
    other[rows, lab] = False
    impostor = sims[other]
    gaps = (sims - genuine[:, None])[other]
    t_verify = float(np.quantile(impostor, 1 - far))
    margin = float(max(0.02, np.quantile(gaps, 1 - far)))
    # how alike one identity's photos are, on average: enroll notes a student above the 95th percentile
    # (varied press photos of one person reach ~0.45 with the shipped model, one webcam sitting 0.92-0.97)
    pair_sims = emb @ emb.T
    alike = [float(pair_sims[np.ix_(lab == k, lab == k)][np.triu_indices(int((lab == k).sum()), 1)].mean())
             for k in range(int(lab.max()) + 1)]
    head = None
    if head_lambda > 0 and top_k > 0:
        head = HeadRule(head_lambda, head_weight,
                        head_margin(emb, lab, head_lambda, head_weight, top_k, class_size, far, seed))
    th = Thresholds(t_verify=t_verify, margin=margin, far=far, top_k=top_k, head=head)
    quick = None
    if len(embedder.views) > 1:
        gap, share = quick_gap(emb, per_view[0], lab, th, class_size, seed)
        quick = {"view": embedder.views[0], "gap": round(gap, 4), "settled": round(share, 4),
                 "method": "a face verified on its first view alone, ahead of every other member and "
                           "of t_verify by `gap` there, keeps that verdict: 2 x the largest such lead at "
                           "which the other views changed a verdict, classes of "
                           f"{class_size} held-out identities, probes under their own name, another "
                           "member's and (outsiders) a member's; `settled`: the share of own-name probes "
                           "it spares the other views"}
        th = dataclasses.replace(th, quick=QuickRule(quick["view"], gap))
    result = {"t_verify": round(t_verify, 4), "margin": round(margin, 4), "far": far, "top_k": int(top_k),
              "tar_at_t_verify": round(float((genuine >= t_verify).mean()), 4),
              "alike": round(float(np.quantile(alike, 0.95)), 4)}
    if head:
        result["head"] = {"lambda": head.lam, "weight": head.weight, "margin": round(head.margin, 4),
                          "method": f"ridge onto +-1 per student, standardised and added to the nearest-{top_k} "
                                    f"score; margin: one other member ahead in at most `far` of (probe, other "
                                    f"member) pairs, classes of {class_size} held-out identities, a third of each "
                                    "one's faces as probes"}
    if quick:
        result["quick"] = quick
    result["in_a_class"] = _class_outcomes(emb, lab, th, class_size, seed)
    result["calibration"] = {"identities": int(lab.max() + 1), "probes": int(len(genuine)),
                             "impostor_comparisons": int(len(impostor)), "min_gallery": int(min_gallery),
                             "method": (f"mean of the {top_k} nearest faces of an identity" if top_k > 0
                                        else "leave-one-out prototypes") +
                                       f"; identities with {min_gallery}+ faces beside the probe; t_verify "
                                       "and margin per (probe, other identity) pair at `far`"}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return result


def class_trials(lab: np.ndarray, size: int, seed: int, trials: int):
    """Random classes of `size` identities (never all of them: outsiders remain), each member's faces
    split at random, a third of them (at least one) as probes and the rest enrolled, as a lecturer
    enrolls from photos and the bot then sees other ones. Yields (members, enrolled, probes): face
    indices into lab."""
    rng = np.random.default_rng(seed)
    n_ids = int(lab.max()) + 1
    size = min(size, n_ids - 1)
    for _ in range(trials):
        members = rng.choice(n_ids, size=size, replace=False)
        enrolled, probes = [], []
        for m in members:
            faces = rng.permutation(np.flatnonzero(lab == m))
            k = max(1, len(faces) // 3)
            probes.append(faces[:k])
            enrolled.append(faces[k:])
        yield members, np.concatenate(enrolled), np.concatenate(probes)


def head_margin(emb: np.ndarray, lab: np.ndarray, lam: float, weight: float, top_k: int, size: int,
                far: float, seed: int, trials: int = 100, floor: float = 0.1) -> float:
    """The class head's margin: in classes of `size` held-out identities (class_trials), how far one
    other member's ranking score (decide.class_scores) leads the probe's own in at most `far` of
    (probe, other member) pairs; at least `floor`. The ranking is standardised per face, so its
    units do not depend on the model; its spread does depend on the class size."""
    leads = []
    for _, enrolled, probes in class_trials(lab, size, seed, trials):
        gallery = Gallery.from_embeddings(lab[enrolled], emb[enrolled], top_k, HeadRule(lam, weight, 0.0))
        own = np.searchsorted(gallery.student_ids, lab[probes])
        _, rank = gallery.rank(emb[probes])
        rows = np.arange(len(probes))
        other = np.ones_like(rank, bool)
        other[rows, own] = False
        leads.append((rank - rank[rows, own][:, None])[other])
    return float(max(floor, np.quantile(np.concatenate(leads), 1 - far)))


def quick_gap(emb: np.ndarray, first: np.ndarray, lab: np.ndarray, th, size: int, seed: int,
              trials: int = 100, floor: float = 0.05, room: float = 2.0) -> tuple[float, float]:
    """(gap, settled share) for decide.QuickRule: in classes of `size` held-out identities, every probe
    under its own name, under another member's and (an outsider's face) under a member's is decided on
    its first view (`first`) and on all views (`emb`); where the first view verifies but all views do
    not, the first view's decide.settle_lead is noted. gap: `room` x the largest of those (at least
    `floor`); share: of own-name probes, those the first view settles at that gap."""
    rng = np.random.default_rng(seed + 2)
    changed, leads, own = [], [], 0  # leads where the other views changed a verdict; of own-name probes
    for members, enrolled, probes in class_trials(lab, size, seed, trials):
        gallery = Gallery.from_embeddings(lab[enrolled].astype(str), emb[enrolled], th.top_k, th.head)
        outside = rng.permutation(np.flatnonzero(~np.isin(lab, members)))[:len(probes) // 2]
        shown = [(i, str(lab[i])) for i in probes]
        shown += [(i, str(rng.choice([m for m in members if m != lab[i]]))) for i in probes]
        shown += [(i, str(rng.choice(members))) for i in outside]
        own += len(probes)
        for n, (i, name) in enumerate(shown):
            lead = settle_lead(name, first[i], gallery, th)
            if lead is None:
                continue
            if n < len(probes):
                leads.append(lead)
            if decide(name, emb[i], gallery, th).verdict != "verified":
                changed.append(lead)
    gap = max(floor, room * max(changed, default=0.0))
    return gap, float((np.array(leads) >= gap).sum() / max(1, own))


def _class_outcomes(emb: np.ndarray, lab: np.ndarray, th, size: int, seed: int, trials: int = 200) -> dict:
    """decide.py's verdicts for the probes of classes of `size` held-out identities (class_trials),
    each shown under its own name: the share verified, unknown_face and (wrongly) mismatch; and how
    often a face of an identity outside the class, shown under a random member's name, is verified
    (the false accept rate the lecturer sees when someone not enrolled sits in)."""
    rng = np.random.default_rng(seed + 1)
    counts = {"verified": 0, "unknown_face": 0, "mismatch": 0}
    outsider_pass, outsiders = 0, 0
    for members, enrolled, probes in class_trials(lab, size, seed, trials):
        gallery = Gallery.from_embeddings(lab[enrolled].astype(str), emb[enrolled], th.top_k, th.head)
        for i in probes:
            counts[decide(str(lab[i]), emb[i], gallery, th).verdict] += 1
        outside = np.flatnonzero(~np.isin(lab, members))
        for i in rng.permutation(outside)[:50]:
            outsiders += 1
            outsider_pass += decide(str(rng.choice(members)), emb[i], gallery, th).verdict == "verified"
    total = max(1, sum(counts.values()))
    return {"class_size": int(min(size, int(lab.max()))), **{k: round(v / total, 4) for k, v in counts.items()},
            "outsider_verified": round(outsider_pass / max(1, outsiders), 4)}
