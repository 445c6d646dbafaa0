"""Thresholds (t_verify, margins, the class head's margin, the quick rule's gap) from held-out
identities, through the exported TFLite model as the bot runs it."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..decide import Gallery, HeadRule, QuickRule, Thresholds, decide, load_thresholds, settle_lead, top_k_scores
from ..embed import Embedder, unit
from ..types import JUDGED, VerdictKind
from .data import load_cache, split_identities
from .verifier_noise import fit_unsure, second_vectors, verdict_codes, with_second_look


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
    if out.exists() and "verifier" in (old := json.loads(out.read_text())):
        # the verifier's own thresholds stand; its MobileNetV2 lead was set against the old t_verify
        result["verifier"] = old["verifier"]
        print("calibrate: kept thresholds.json's \"verifier\"; re-run `python -m bot.train calibrate-verifier`",
              flush=True)
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
            if decide(name, emb[i], gallery, th).verdict != VerdictKind.VERIFIED:
                changed.append(lead)
    gap = max(floor, room * max(changed, default=0.0))
    return gap, float((np.array(leads) >= gap).sum() / max(1, own))


def _class_outcomes(emb: np.ndarray, lab: np.ndarray, th, size: int, seed: int, trials: int = 200) -> dict:
    """decide.py's verdicts for the probes of classes of `size` held-out identities (class_trials),
    each shown under its own name: the share verified, unknown_face and (wrongly) mismatch; and how
    often a face of an identity outside the class, shown under a random member's name, is verified
    (the false accept rate the lecturer sees when someone not enrolled sits in)."""
    rng = np.random.default_rng(seed + 1)
    counts = {VerdictKind.VERIFIED: 0, VerdictKind.UNKNOWN_FACE: 0, VerdictKind.MISMATCH: 0}
    outsider_pass, outsiders = 0, 0
    for members, enrolled, probes in class_trials(lab, size, seed, trials):
        gallery = Gallery.from_embeddings(lab[enrolled].astype(str), emb[enrolled], th.top_k, th.head)
        for i in probes:
            counts[decide(str(lab[i]), emb[i], gallery, th).verdict] += 1
        outside = np.flatnonzero(~np.isin(lab, members))
        for i in rng.permutation(outside)[:50]:
            outsiders += 1
            outsider_pass += decide(str(rng.choice(members)), emb[i], gallery, th).verdict == VerdictKind.VERIFIED
    total = max(1, sum(counts.values()))
    return {"class_size": int(min(size, int(lab.max()))), **{k: round(v / total, 4) for k, v in counts.items()},
            "outsider_verified": round(outsider_pass / max(1, outsiders), 4)}


# ---------------------------------------------------------------- the verifier (bot/verify.py) and the cascade
def detect_labelled(data: Path, out: Path, progress: bool = True) -> dict[str, np.ndarray]:
    """Every labelled training image (lfw, celeba, extra; never seed-faces) through the bot's detector as
    `prepare` runs it (the face nearest the crop's centre), cached at `out`: path, identity, box,
    landmarks, blur, in_view. Its identities reproduce the training cache's, so split_identities gives
    the very identities the face model never trained on, without the ~600 MB cache."""
    if out.exists():
        z = np.load(out)
        return {k: z[k] for k in z.files}
    import cv2
    from ..faces import FaceDetector, find_faces
    from .data import list_images
    detector = FaceDetector()
    rows = {"paths": [], "identities": [], "boxes": [], "landmarks": [], "blur": [], "in_view": []}
    items = [(rel, ident) for rel, ident in list_images(data) if ident]
    for n, (rel, ident) in enumerate(items):
        img = cv2.imread(str(data / rel))
        found = find_faces(detector, img) if img is not None else []
        if progress and n % 1000 == 0:
            print(f"detect_labelled: {n}/{len(items)}", flush=True)
        if not found:
            continue
        h, w = img.shape[:2]
        face = min(found, key=lambda f: abs(f.box[0] + f.box[2] / 2 - w / 2) + abs(f.box[1] + f.box[3] / 2 - h / 2))
        for key, v in zip(rows, (rel, ident, face.box, face.landmarks, face.blur, face.in_view)):
            rows[key].append(v)
    result = {"paths": np.array(rows["paths"], str), "identities": np.array(rows["identities"], str),
              "boxes": np.array(rows["boxes"], np.float32).reshape(-1, 4),
              "landmarks": np.array(rows["landmarks"], np.float32).reshape(-1, 6, 2),
              "blur": np.array(rows["blur"], np.float32), "in_view": np.array(rows["in_view"], np.float32)}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **result)
    tmp.replace(out)
    return result


def few_shot_identities(detected: dict[str, np.ndarray], seed: int = 0, min_photos: int = 4,
                        sources: tuple[str, ...] = ("lfw-faces/", "celeba-faces/", "extra-faces/ITERA_")) -> np.ndarray:
    """Mask over `detected` (detect_labelled) of the faces of identities the face model never trained on
    (split_identities, as the training cache splits them) with `min_photos`+ faces, from `sources`
    (not NUAA: forty webcam frames of one sitting are not a lecturer's few photos)."""
    idents = detected["identities"]
    held = split_identities(idents, seed)
    names, counts = np.unique(idents[held], return_counts=True)
    keep = {n for n, c in zip(names, counts) if c >= min_photos and n.startswith(sources)}
    return np.array([i in keep for i in idents])


def face_vectors(data: Path, detected: dict[str, np.ndarray], rows: np.ndarray, model_path: Path,
                 out: Path, progress: bool = True) -> dict[str, np.ndarray]:
    """Both models' vectors of the detected faces at `rows`, cached at `out` (reused while it holds the
    same paths and the verifier's chip recipe): "ours" (MobileNetV2, every view, unit length) and
    "verifier" (dlib ResNet on the chip bot/verify.py cuts from our detector's landmarks)."""
    from ..verify import Verifier
    verifier = Verifier.load()
    paths = detected["paths"][rows]
    if out.exists():
        z = np.load(out)
        # the verifier's run-time vectors depend on how its chip is cut (verifier.chip_recipe): a cache
        # made otherwise (or before the key was kept) is made again
        if (np.array_equal(z["paths"], paths) and "chip" in z.files
                and str(z["chip"]) == _chip_key(verifier)):
            return {k: z[k] for k in z.files if k != "chip"}
    import cv2
    from ..faces import align
    from ..types import Face
    embedder = Embedder(model_path)
    ours, ver = [], []
    for n, i in enumerate(rows):
        img = cv2.imread(str(data / detected["paths"][i]))
        face = Face(box=tuple(float(v) for v in detected["boxes"][i]), score=1.0,
                    landmarks=detected["landmarks"][i], aligned=align(img, detected["landmarks"][i]))
        ours.append(embedder.embed(face.aligned[None])[0])
        ver.append(verifier.describe(img, face))
        if progress and n % 200 == 0:
            print(f"face_vectors: {n}/{len(rows)}", flush=True)
    result = {"paths": paths, "identities": detected["identities"][rows],
              "ours": np.array(ours, np.float32), "verifier": np.array(ver, np.float32)}
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, chip=np.array(_chip_key(verifier)), **result)
    tmp.replace(out)
    return result


def _chip_key(verifier) -> str:
    """What the run-time vectors of face_vectors' cache were made with: the chip's recipe and run-time
    jitter/mirror."""
    return f"{verifier.chip_recipe or 'box'}:j{verifier.jitter}:{'m' if verifier.mirror else ''}"


SOURCES = ("lfw-faces/", "celeba-faces/", "extra-faces/ITERA_")


def split_half(identities: np.ndarray, seed: int = 0) -> np.ndarray:
    """Mask of the faces whose identity calibrates (the rest report): half of each source's identities
    (LFW, CelebA, ITERA), drawn with `seed`, so both halves hold some of the faces most like our students."""
    names = np.unique(identities)
    rng = np.random.default_rng([seed, 28])
    calib = set()
    for src in SOURCES:
        cand = [n for n in names if n.startswith(src)]
        calib.update(rng.permutation(cand)[: (len(cand) + 1) // 2].tolist())
    return np.array([i in calib for i in identities])


def settle_leads(sims: np.ndarray, rank: np.ndarray, t_verify: float, margin: float) -> np.ndarray:
    """decide.settle_lead for every (face, student named) at once: (P, S), nan where decide would not
    verify the face under that name. sims, rank: Gallery.rank's two (P, S) arrays."""
    def best_other(a: np.ndarray) -> np.ndarray:
        top2 = np.sort(a, axis=1)[:, -2:]
        first = np.argmax(a, axis=1)
        out = np.repeat(top2[:, 1:2], a.shape[1], axis=1)
        out[np.arange(len(a)), first] = top2[:, 0]
        return out
    verified = (sims >= t_verify) & ~(best_other(rank) - rank >= margin)
    lead = np.minimum(sims - best_other(sims), sims - t_verify)
    return np.where(verified, lead, np.nan)


def fewshot_trials(lab: np.ndarray, size: int, shots: int, seed: int, trials: int):
    """Classes of `size` identities among those with shots + 1 faces or more, each member's `shots`
    enrolled faces drawn at random and the rest probed; outsiders: faces of identities outside the
    class. Yields (members, enrolled, probes, outsiders) as face indices into lab."""
    rng = np.random.default_rng([seed, shots])
    counts = np.bincount(lab)
    able = np.flatnonzero(counts >= shots + 1)
    size = min(size, len(able) - 1)
    for _ in range(trials):
        members = rng.choice(able, size=size, replace=False)
        enrolled, probes = [], []
        for m in members:
            faces = rng.permutation(np.flatnonzero(lab == m))
            enrolled.append(faces[:shots])
            probes.append(faces[shots:])
        outsiders = np.flatnonzero(~np.isin(lab, members))
        yield members, np.concatenate(enrolled), np.concatenate(probes), outsiders


def fewshot_judgements(lab: np.ndarray, ours: np.ndarray, ver: np.ndarray, th: Thresholds, nearest: int,
                       size: int = 30, shots: tuple[int, ...] = (2, 3, 5), trials: int = 20,
                       seed: int = 0, ver_enrolled: np.ndarray | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Every face of few-shot classes (fewshot_trials) judged under every member's name: {"own", "other",
    "outsider"} -> {"lead": MobileNetV2's settle lead (nan: not verified), "v_own": the named student's
    verifier score, "v_other": the best other member's, "v_true": the face's own student's (nan for an
    outsider), "first": whether the verifier ranks the face's own student first (own only)}.
    `ver_enrolled`: the verifier's vectors of the same faces by its enrolment recipe, used for the
    enrolled ones (None: `ver` for both)."""
    ver_enrolled = ver if ver_enrolled is None else ver_enrolled
    from ..decide import VerifierGallery, verifier_scores
    out = {k: {"lead": [], "v_own": [], "v_other": [], "v_true": [], "first": []} for k in ("own", "other", "outsider")}
    for k in shots:
        for members, enrolled, probes, outsiders in fewshot_trials(lab, size, k, seed, trials):
            gallery = Gallery.from_embeddings(lab[enrolled], ours[enrolled], th.top_k, th.head)
            vg = VerifierGallery.from_embeddings(lab[enrolled], ver_enrolled[enrolled], nearest)
            ids = np.array(gallery.student_ids)
            for faces, kind in ((probes, "probe"), (outsiders, "outsider")):
                sims, rank = gallery.rank(ours[faces])
                lead = settle_leads(sims, rank, th.t_verify, gallery.margin(th))
                v = verifier_scores(ver[faces], vg.vectors, vg.owner, len(ids), nearest)
                top2 = np.sort(v, axis=1)[:, -2:]
                first = np.argmax(v, axis=1)
                v_other = np.repeat(top2[:, 1:2], v.shape[1], axis=1)
                v_other[np.arange(len(v)), first] = top2[:, 0]
                if kind == "probe":
                    own = np.searchsorted(ids, lab[faces])
                    is_own = np.zeros_like(v, bool)
                    is_own[np.arange(len(faces)), own] = True
                    parts = (("own", is_own), ("other", ~is_own))
                    true = np.repeat(v[np.arange(len(faces)), own][:, None], v.shape[1], axis=1)
                else:
                    parts = (("outsider", np.ones_like(v, bool)),)
                    true = np.full_like(v, np.nan)
                for key, mask in parts:
                    out[key]["lead"].append(lead[mask])
                    out[key]["v_own"].append(v[mask])
                    out[key]["v_other"].append(v_other[mask])
                    out[key]["v_true"].append(true[mask])
                    if key == "own":
                        out[key]["first"].append(first == own)
    return {k: {f: np.concatenate(a) if a else np.zeros(0) for f, a in d.items()} for k, d in out.items()}


def calibrate_verifier(data: Path, model_path: Path, out: Path, cache_dir: Path, far: float = 0.01,
                       size: int = 30, shots: tuple[int, ...] = (2, 3, 5), trials: int = 10, seed: int = 0,
                       nearest_choices: tuple[int, ...] = (1, 2, 3), room: float = 1.25,
                       keep: float = 0.95) -> dict:
    """The verifier's thresholds and MobileNetV2's lead beyond doubt, from few-shot classes of held-out
    identities (never seed-faces), written into `out` (thresholds.json) under "verifier"; the other
    keys are left as they are.

    Identities: those the face model never trained on with 4+ faces (few_shot_identities), half of
    each source calibrating (split_half), the other half left for the report. Classes of `size` with
    `shots` faces enrolled per member (fewshot_judgements), every face judged under every member's name.
    t_verify: the verifier score another identity (a member or an outsider) reaches in at most `far`
    of (face, identity) pairs; margin: how far another member leads the face's own in at most `far`
    of those pairs (at least 0.02); nearest: of `nearest_choices`, the one that leaves the fewest own
    faces wrongly accused (mismatch or unknown_face). lead: `room` x the largest settle lead at
    which MobileNetV2 verified a face under a name not its own (another member's or an outsider's).
    dispute: the verifier's lead of another member over the named one that `keep` of the accusations
    MobileNetV2 disputes reached, among another member's faces that MobileNetV2 verified under the
    named member's name and the verifier called a mismatch (decide.disputed; at least margin)."""
    from ..verify import Verifier
    recipe = Verifier.load()
    detected = detect_labelled(data, cache_dir / "labelled_faces.npz")
    rows = np.flatnonzero(few_shot_identities(detected, seed))
    vec = face_vectors(data, detected, rows, model_path, cache_dir / "fewshot_vectors.npz")
    calib = split_half(vec["identities"], seed)
    names, lab = np.unique(vec["identities"][calib], return_inverse=True)
    ours, ver = vec["ours"][calib], vec["verifier"][calib]
    enrolled = None
    if recipe.enrol_differs:  # enrolled photos described by the enrolment recipe, run-time faces plainly
        enrolled = enrolled_vectors(data, detected, rows, recipe, cache_dir / "fewshot_enrolled.npz")[calib]
    th = load_thresholds(out)
    wrong, nearest, t, m, j = fit_verifier_rule(lab, ours, ver, th, far, size, shots, trials, seed,
                                                nearest_choices, enrolled)
    own, other, outsider = j["own"], j["other"], j["outsider"]
    bad = np.concatenate([other["lead"], outsider["lead"]])
    bad = bad[~np.isnan(bad)]
    lead = float(room * bad.max()) if len(bad) else float(th.quick.gap if th.quick else 0.1)
    settled = float(np.mean(own["lead"] >= lead))
    dispute, disputes = fit_dispute(j, t, m, keep)
    # the second looks at the same faces, judged in the same classes: the unsure band from how far they
    # move a face's scores, and the verdicts with both as decide.cascade gives them
    second = second_vectors(data, detected, rows, recipe, vec["verifier"], cache_dir / "fewshot_second.npz")[calib]
    venrol = ver if enrolled is None else enrolled
    j2 = fewshot_judgements(lab, ours, second, th, nearest, size, shots, trials, seed, venrol)
    u_lead, u_score = fit_unsure(j, fewshot_judgements(lab, ours, 2 * second - ver, th, nearest, size, shots,
                                                       trials, seed, venrol))
    codes = {k: with_second_look(verdict_codes(d["v_own"], d["v_other"], t, m, u_lead, u_score),
                                 verdict_codes(j2[k]["v_own"], j2[k]["v_other"], t, m, u_lead, u_score))
             for k, d in j.items()}
    result = {"t_verify": round(t, 4), "margin": round(m, 4), "nearest": int(nearest), "lead": round(lead, 4),
              "dispute": round(dispute, 4),
              "unsure": {"lead": round(u_lead, 4), "score": round(u_score, 4),
                         "method": "1.96 sigma of how far a description of the face mirrored moves the lead of "
                                   "the best other member over the own, and the own score (sigma: the median "
                                   "absolute change / (0.6745 x sqrt 2)), own faces of the same classes"},
              "far": far, "metric": "1 - Euclidean distance of dlib ResNet vectors (bot/verify.py)",
              "enrolled_as": recipe.fingerprint,
              "calibration": {"identities": int(len(names)), "faces": int(len(lab)), "class_size": size,
                              "shots": list(shots), "trials": trials,
                              "verifier_alone": {"own_face": _rates(codes["own"]), "other_face": _rates(codes["other"]),
                                                 "outsider_verified": round(float((codes["outsider"] == 0).mean()), 4),
                                                 "outsider_unjudged": round(float((codes["outsider"] == 3).mean()), 4)},
                              "mobilenet_settled": round(settled, 4),
                              "mobilenet_wrong_settles": int(len(bad)),
                              "disputes": disputes},
              "method": f"few-shot classes of {size} held-out identities (LFW, CelebA, ITERA; 4+ faces; "
                        f"half of each source, the other half reports), {'/'.join(map(str, shots))} faces "
                        f"enrolled per member ({_recipe_words(recipe)}), every face under every member's "
                        f"name; verifier score: 1 - "
                        f"mean distance of the {nearest} nearest enrolled vectors; t_verify: another "
                        f"identity (member or outsider) reaches it in at most `far` of (face, identity) "
                        f"pairs; margin: another member ahead of the own in at most `far` of pairs, at "
                        f"least 0.02; nearest: fewest own faces accused; lead: MobileNetV2's settle lead "
                        f"beyond which its `verified` stands, {room} x the largest at which it verified "
                        f"a face under a name not its own; dispute: where MobileNetV2 verifies the named "
                        f"member and the verifier accuses, the accusation stands only as a mismatch led by "
                        f"this much, the lead {keep:.0%} of such accusations of another member's face reached; "
                        f"unsure: another member ahead by less than its lead, or a score less than its score under "
                        f"t_verify, is `unjudged`, `verified` needs the named member first, an accusation "
                        f"stands only where the second look (the face's plain and mirrored descriptions "
                        f"averaged) accuses too"}
    data_out = json.loads(out.read_text())
    data_out["verifier"] = result
    out.write_text(json.dumps(data_out, indent=1) + "\n")
    print(json.dumps(result))
    return result


def fit_dispute(j: dict, t: float, m: float, keep: float = 0.95) -> tuple[float, dict]:
    """decide.disputed's `dispute` from fewshot_judgements `j` at thresholds (t, m): the lead of the
    verifier's other member over the named one that `keep` of the mismatches it found on faces
    MobileNetV2 verified under the named member's name (another member's faces) reached, at least m;
    and what the rule does on those judgements (counts of (face, name) pairs)."""
    out = {}
    for kind in ("own", "other", "outsider"):
        d = j[kind]
        mv = ~np.isnan(d["lead"])
        code = verdict_codes(d["v_own"], d["v_other"], t, m)
        out[kind] = (mv, code, d["v_other"] - d["v_own"])
    mv, code, gap = out["other"]
    caught = gap[mv & (code == 1)]
    dispute = float(max(m, np.quantile(caught, 1 - keep))) if len(caught) else float(m)
    def withheld(kind):
        mv, code, gap = out[kind]
        return int((mv & ((code == 2) | ((code == 1) & (gap < dispute)))).sum())
    counts = {"own_accused_mobilenet_verified": int((out["own"][0] & (out["own"][1] != 0)).sum()),
              "own_withheld": withheld("own"),
              "other_accused_mobilenet_verified": int((mv & (code != 0)).sum()),
              "other_withheld": withheld("other"),
              "outsider_withheld": withheld("outsider"),
              "other_pairs": int(len(code))}
    return dispute, counts


def fit_verifier_rule(lab: np.ndarray, ours: np.ndarray, ver: np.ndarray, th: Thresholds, far: float = 0.01,
                      size: int = 30, shots: tuple[int, ...] = (2, 3, 5), trials: int = 10, seed: int = 0,
                      nearest_choices: tuple[int, ...] = (1, 2, 3), ver_enrolled: np.ndarray | None = None):
    """calibrate_verifier's rule on few-shot classes of the identities `lab` (fewshot_judgements, the
    enrolled faces by `ver_enrolled` where given): (own faces wrongly accused, nearest, t_verify, margin,
    the judgements at that nearest)."""
    best = None
    for nearest in nearest_choices:
        j = fewshot_judgements(lab, ours, ver, th, nearest, size, shots, trials, seed, ver_enrolled)
        own, other, outsider = j["own"], j["other"], j["outsider"]
        t = float(np.quantile(np.concatenate([other["v_own"], outsider["v_own"]]), 1 - far))
        # a member ahead of the face's own: per (own face, other member) pair, as decide's margin
        m = float(max(0.02, np.quantile(other["v_own"] - other["v_true"], 1 - far)))
        codes = verdict_codes(own["v_own"], own["v_other"], t, m)
        wrong = float((codes != 0).mean())
        if best is None or wrong < best[0]:
            best = (wrong, nearest, t, m, j)
    return best


def enrolled_vectors(data: Path, detected: dict[str, np.ndarray], rows: np.ndarray, verifier, out: Path,
                     progress: bool = True) -> np.ndarray:
    """The verifier's vectors of the detected faces at `rows` by its enrolment recipe
    (Verifier.describe(..., enrol=True)), cached at `out` while it holds the same paths and recipe
    (verifier.fingerprint)."""
    paths = detected["paths"][rows]
    if out.exists():
        z = np.load(out)
        if np.array_equal(z["paths"], paths) and str(z["recipe"]) == verifier.fingerprint:
            return z["enrolled"]
    import cv2
    from ..types import Face
    vecs = []
    for n, i in enumerate(rows):
        img = cv2.imread(str(data / detected["paths"][i]))
        face = Face(box=tuple(float(v) for v in detected["boxes"][i]), score=1.0, landmarks=detected["landmarks"][i])
        vecs.append(verifier.describe(img, face, enrol=True))
        if progress and n % 100 == 0:
            print(f"enrolled_vectors: {n}/{len(rows)}", flush=True)
    result = np.array(vecs, np.float32).reshape(-1, 128)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, paths=paths, recipe=np.array(verifier.fingerprint), enrolled=result)
    tmp.replace(out)
    return result


def _recipe_words(verifier) -> str:
    parts = ([f"dlib's {verifier.enrol_jitter}-jitter"] if verifier.enrol_jitter else []) + \
        (["mirrored and averaged"] if verifier.enrol_mirror else [])
    run = ([f"{verifier.jitter}-jitter"] if verifier.jitter else []) + (["mirrored"] if verifier.mirror else [])
    return (f"enrolled photos: {', '.join(parts) or 'one plain description'}; run-time faces: "
            f"{', '.join(run) or 'one plain description'}")


def _rates(codes: np.ndarray) -> dict[str, float]:
    """verdict_codes' share of each verdict."""
    return {name: round(float((codes == c).mean()), 4) for c, name in enumerate((*JUDGED, VerdictKind.UNJUDGED))}


def report_classes(data: Path, out: Path, cache_dir: Path, classes: int = 2, size: int = 30, seed: int = 0) -> list[Path]:
    """Folders of links (out/classA/<source>__<name>/*.jpg, ...) for `rollcall evaluate --enroll`: classes
    of `size` identities drawn (rng 1, 2, ...) from the held-out identities calibrate_verifier left to
    report (split_half's other half), every photo of each."""
    detected = detect_labelled(data, cache_dir / "labelled_faces.npz")
    names = np.unique(detected["identities"][few_shot_identities(detected, seed)])
    report = names[~split_half(names, seed)]
    made = []
    for c in range(classes):
        root = out / f"class{chr(ord('A') + c)}"
        for ident in np.random.default_rng(c + 1).choice(report, min(size, len(report)), replace=False):
            folder = root / ident.replace("/", "__")
            folder.mkdir(parents=True, exist_ok=True)
            for f in sorted((data / ident).glob("*.jpg")):
                if not (folder / f.name).exists():
                    (folder / f.name).symlink_to(f.resolve())
        made.append(root)
    return made
