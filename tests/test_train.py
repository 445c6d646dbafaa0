"""The training script end to end on a tiny subset: prepare -> fit one epoch -> export -> calibrate,
and the exported model runs in the bot's embedder."""
import json

import cv2
import numpy as np

import pytest

from bot.embed import Embedder
from bot.train.augment import augment
from bot.train.cli import main
from bot.train.data import load_cache, split_identities


# training needs TensorFlow (and dlib for its teacher): `pip install -e '.[train]'`; .ci/run installs it
# after the bot's own suite and runs this module again
TRAIN_EXTRA = "pip install -e '.[train]'"


def test_split_holds_out_whole_identities():
    ids = np.array(["lfw-faces/a"] * 3 + ["lfw-faces/b"] * 2 + ["celeba-faces/c"] * 4 + ["extra-faces/d"] * 2 + [""] * 5)
    held = split_identities(ids, seed=0, frac=0.5)
    for name in set(ids) - {""}:
        assert len(set(held[ids == name])) == 1, name  # all or none of an identity
    assert not held[ids == ""].any()                 # unlabelled faces never held out
    assert held.any()


def test_augment_keeps_shape_and_range():
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 255, (16, 112, 112, 3), dtype=np.uint8)
    out = augment(faces, 96, rng)
    assert out.shape == (16, 96, 96, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    assert not np.allclose(out.mean(), np.stack([f[:96, :96] for f in faces]).astype(np.float32).mean(), atol=0.01)


def test_recolour_surround_changes_the_hijab_not_the_face(data_dir):
    from bot.faces import FaceDetector, find_faces
    from bot.train.augment import _recolour_surround
    photo = sorted((data_dir / "seed-faces" / "Novia Evianti").iterdir())[0]
    face = find_faces(FaceDetector(), cv2.imread(str(photo)))[0].aligned
    out = _recolour_surround(face, np.random.default_rng(3))
    diff = np.abs(out.astype(int) - face.astype(int)).sum(2)
    assert out.shape == face.shape and out.dtype == np.uint8
    assert diff[45:80, 40:72].mean() < 2        # eyes, nose, mouth as they were
    assert diff[:12].mean() > 10 and diff[:, :8].mean() > 10  # the hijab above and beside: another colour


def test_tiny_training_run_end_to_end(tmp_path, data_dir, capsys):
    pytest.importorskip("keras", reason=TRAIN_EXTRA)
    cache, run, models = tmp_path / "aligned.npz", tmp_path / "run", tmp_path / "models"
    models.mkdir()
    assert main(["all", "--data", str(data_dir), "--cache", str(cache), "--run", str(run), "--models", str(models),
                 "--limit-ids", "3", "--epochs", "1", "--batch", "16", "--size", "64"]) == 0
    z = np.load(cache)
    assert len(z["faces"]) > 20 and z["faces"].shape[1:] == (112, 112, 3)
    assert not any("seed-faces" in p for p in z["paths"])
    history = json.loads((run / "history.json").read_text())
    assert history[-1]["epoch"] == 1.0
    th = json.loads((models / "thresholds.json").read_text())
    assert {"t_verify", "margin", "far", "quick"} <= th.keys() and th["quick"]["gap"] >= 0.05
    emb = Embedder(models / "face_embed.tflite").embed(z["faces"][:4])
    assert emb.shape == (4, 1280)  # the pooled features, not the 128-d training head
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    head = tmp_path / "head.tflite"
    assert main(["export", "--run", str(run), "--out", str(head), "--cache", str(cache), "--vector", "embedding"]) == 0
    assert Embedder(head).embed(z["faces"][:4]).shape == (4, 128)
    # int8 weights and activations: a file a third the size or less that the embedder runs (how near its
    # vectors come to the float model's is measured on the real model: models/README.md, "int8 export")
    q = tmp_path / "int8.tflite"
    assert main(["export", "--run", str(run), "--out", str(q), "--cache", str(cache), "--int8"]) == 0
    assert q.stat().st_size < 0.4 * (models / "face_embed.tflite").stat().st_size
    fq = Embedder(q).embed(z["faces"][:4])
    assert fq.shape == (4, 1280) and np.allclose(np.linalg.norm(fq, axis=1), 1, atol=1e-3)
    # resuming a finished run trains no further step
    assert main(["fit", "--cache", str(cache), "--run", str(run), "--epochs", "1"]) == 0
    assert json.loads((run / "history.json").read_text()) == history
    # a weights-only snapshot (what is committed) starts a new run on another machine
    snap = tmp_path / "snap"
    assert main(["snapshot", "--run", str(run), "--out", str(snap)]) == 0
    run2 = tmp_path / "run2"
    assert main(["fit", "--cache", str(cache), "--run", str(run2), "--epochs", "1", "--batch", "16", "--size", "64",
                 "--init-from", str(snap)]) == 0
    assert json.loads((run2 / "history.json").read_text())[-1]["epoch"] == 1.0
    # two runs' last checkpoints averaged: a run folder that exports
    stems = [str(sorted((r / "ckpt").glob("step-*.json"))[-1].with_suffix("")) for r in (run, run2)]
    avg = tmp_path / "avg"
    assert main(["average", "--run", str(run), "--out", str(avg), "--cache", str(cache), *stems]) == 0
    assert main(["export", "--run", str(avg), "--out", str(tmp_path / "avg.tflite"), "--cache", str(cache)]) == 0
    a = Embedder(tmp_path / "avg.tflite").embed(z["faces"][:4])
    b = Embedder(models / "face_embed.tflite").embed(z["faces"][:4])
    assert a.shape == b.shape and not np.allclose(a, b, atol=1e-3)  # neither run's model: their mean
    # a run stopped by the clock resumes at the step it saved, from the small travelling pack too
    packed = tmp_path / "packed.npz"
    assert main(["pack", "--cache", str(cache), "--out", str(packed)]) == 0
    again = load_cache(packed)
    assert again["faces"].shape == z["faces"].shape and list(again["paths"]) == list(z["paths"])
    assert np.abs(again["faces"].astype(int) - z["faces"]).mean() < 4  # WebP q85: near the original
    run3 = tmp_path / "run3"
    args = ["fit", "--cache", str(packed), "--run", str(run3), "--epochs", "2", "--batch", "16", "--size", "64"]
    assert main(args + ["--max-minutes", "0.0001"]) == 0
    first = json.loads((run3 / "history.json").read_text())
    assert len(first) == 1 and 0 < first[0]["step"] < json.loads((run2 / "history.json").read_text())[-1]["step"] * 2
    capsys.readouterr()
    assert main(args) == 0
    assert f"resumed at step {first[0]['step']}" in capsys.readouterr().out
    assert json.loads((run3 / "history.json").read_text())[-1]["epoch"] == 2.0
    # blended faces with dlib's vectors of them, trained on beside the others
    blends = tmp_path / "blends.npz"
    assert main(["blends", "--data", str(data_dir), "--cache", str(cache), "--out", str(blends), "-n", "6",
                 "--workers", "1"]) == 0
    made = np.load(blends)
    assert len(made["lam"]) == 6 and set(made["a"]) | set(made["b"]) <= set(z["paths"])
    run4 = tmp_path / "run4"
    assert main(["fit", "--cache", str(cache), "--run", str(run4), "--epochs", "1", "--batch", "16", "--size", "64",
                 "--mix", "0.5", "--blends", str(blends)]) == 0
    assert json.loads((run4 / "config.json").read_text())["mix"] == 0.5
    assert json.loads((run4 / "history.json").read_text())[-1]["epoch"] == 1.0


def _four_identities():
    """Six faces each, all directions orthogonal unless said: 0 and 1 each one direction (always
    themselves), 2 six unrelated directions (like nobody, itself included), 3 a look-alike of 0 (0's
    direction plus its own noise: 0.89 to 0's faces, 0.80 to its own)."""
    eye = np.eye(16, dtype=np.float32)
    faces = [eye[0]] * 6 + [eye[1]] * 6 + [eye[2 + i] for i in range(6)]
    faces += [(eye[0] + 0.5 * eye[8 + i]) / np.sqrt(1.25) for i in range(6)]
    return np.stack(faces), np.repeat(np.arange(4), 6)


def test_class_outcomes_follow_the_verdict_rules():
    from bot.decide import Thresholds
    from bot.train.calibrate import _class_outcomes
    emb, lab = _four_identities()
    th = Thresholds(t_verify=0.5, margin=0.05, top_k=3)
    out = _class_outcomes(emb, lab, th, size=3, seed=0, trials=600)
    assert out["class_size"] == 3
    # 3 of the 4 identities per class, 2 probes each. 3's probes are a mismatch whenever 0 is in the class
    # (half the classes, a third of their probes): 1/6; 2's are unknown_face: 1/4; the rest verified
    assert abs(out["mismatch"] - 1 / 6) < 0.03, out
    assert abs(out["unknown_face"] - 1 / 4) < 0.03, out
    assert abs(out["verified"] - 7 / 12) < 0.03, out
    # the outsider passes when it is 3 shown as 0 or 0 shown as 3: 1/4 x 1/3 twice
    assert abs(out["outsider_verified"] - 1 / 6) < 0.03, out


def test_quick_gap_lies_past_every_verdict_the_other_views_changed():
    """Four identities in fixed directions (all views). On the first view alone identity 3 leans toward
    0 (cosine 0.62 to 0's direction): outside the class and shown as 0 it is verified on that view
    (lead over t_verify 0.32, the nearest-lead then) but unknown on all views, so the gap is twice that."""
    from bot.decide import Thresholds
    from bot.train.calibrate import quick_gap
    eye = np.eye(8, dtype=np.float32)
    lab = np.repeat(np.arange(4), 6)
    emb = eye[lab]
    th = Thresholds(t_verify=0.3, margin=0.05, top_k=3)
    gap, share = quick_gap(emb, emb.copy(), lab, th, size=3, seed=0, trials=40)
    assert gap == 0.05 and share == 1.0  # one view says what all say: the floor, every own face settled
    first = emb.copy()
    first[lab == 3] = (eye[3] + 0.8 * eye[0]) / np.sqrt(1.64)
    gap, share = quick_gap(emb, first, lab, th, size=3, seed=0, trials=40)
    assert abs(gap - 2 * (0.8 / np.sqrt(1.64) - 0.3)) < 1e-4
    # identities 0-2 under their own names lead by 0.7 >= gap; 3's own lead is 0.156: not settled
    assert 0.6 < share < 1.0


def test_head_margin_is_the_far_quantile_of_other_members_leads():
    from bot.decide import class_scores, fit_head
    from bot.train.calibrate import class_trials, head_margin
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(12, 32))
    lab = np.repeat(np.arange(12), 9)
    emb = centres[lab] + rng.normal(scale=2.0, size=(len(lab), 32))  # hard enough that 5% of leads are > 0
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    m = head_margin(emb, lab, 0.05, 1.0, 3, size=6, far=0.05, seed=0, trials=40, floor=0.0)
    ahead = total = 0
    for members, enrolled, probes in class_trials(lab, 6, 0, 40):
        index = {int(v): i for i, v in enumerate(members)}
        owner, own = (np.array([index[int(v)] for v in lab[ix]]) for ix in (enrolled, probes))
        _, rank = class_scores(emb[probes] @ emb[enrolled].T, owner, 6, 3, fit_head(emb[enrolled], owner, 6, 0.05), 1.0)
        lead = rank - rank[np.arange(len(probes)), own][:, None]
        lead[np.arange(len(probes)), own] = -np.inf
        ahead += int((lead > m).sum())
        total += len(probes) * 5
    assert m > 0.5 and 0.03 < ahead / total <= 0.05
    assert head_margin(emb, lab, 0.05, 1.0, 3, size=6, far=0.05, seed=0, trials=40, floor=9.0) == 9.0


def test_leave_one_out_scores_match_a_direct_count():
    from bot.train.calibrate import leave_one_out_scores
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(11, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    lab = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 3])
    for top_k in (0, 1, 3):
        got = leave_one_out_scores(emb, lab, top_k)
        for i in range(len(emb)):
            for k in range(4):
                gal = [j for j in np.flatnonzero(lab == k) if j != i]
                if not gal:
                    assert got[i, k] == -np.inf
                    continue
                if top_k == 0:
                    p = emb[gal].sum(0)
                    want = p @ emb[i] / np.linalg.norm(p)
                else:
                    want = np.sort(emb[gal] @ emb[i])[::-1][:top_k].mean()
                assert abs(got[i, k] - want) < 1e-5, (top_k, i, k)


def test_relational_loss_is_zero_exactly_when_pooled_cosines_are_the_teachers():
    keras = pytest.importorskip("keras", reason=TRAIN_EXTRA)
    from bot.train.network import build_backbone, training_model
    backbone = build_backbone(32, 0.35, 8)
    model = training_model(backbone, n_classes=3, dim=8, ce_weight=0.0, distill=0.0, s=32, m=0.35, relational=1.0)
    x = np.random.default_rng(0).uniform(0, 255, (6, 32, 32, 3)).astype(np.float32)
    emb, pooled = (keras.ops.convert_to_numpy(v) for v in model(x, training=True))  # batch statistics: an
    # untrained network in inference mode gives features of ~1e-13
    p = pooled.reshape(6, -1)
    p = p - p.mean(0)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    # teacher vectors of the head's width (8) with exactly the pooled features' cosines
    lam, u = np.linalg.eigh(p @ p.T)
    t = np.zeros((6, 8), np.float32)
    t[:, :6] = u * np.sqrt(np.clip(lam, 0, None))
    y = {"labels": np.full(6, -1), "teacher": t, "has_teacher": np.ones(6, bool)}
    loss = lambda y: float(model.compute_loss(y=y, y_pred=(emb, pooled)))  # noqa: E731
    assert loss(y) < 1e-6
    swapped = {**y, "teacher": t[[5, 1, 2, 3, 4, 0]]}  # faces 0 and 5 given each other's teacher vector
    assert loss(swapped) > 1e-3
    # only pairs that both have a teacher vector count: (0, 5) alone keeps its cosine
    assert loss({**swapped, "has_teacher": np.array([1, 0, 0, 0, 0, 1], bool)}) < 1e-6


def test_cut_off_repeats_the_edge_beyond_the_line(data_dir):
    from bot.faces import FaceDetector, find_faces
    from bot.train.augment import _cut_off
    photo = sorted((data_dir / "seed-faces" / "Siti Zubaidah").iterdir())[0]
    face = find_faces(FaceDetector(), cv2.imread(str(photo)))[0].aligned
    seen = set()
    for seed in range(40):
        out = _cut_off(face, np.random.default_rng(seed))
        assert out.shape == face.shape and not np.array_equal(out, face)
        rows = np.flatnonzero((out == out[:1]).all(axis=(1, 2)))        # rows equal to the first
        cols = np.flatnonzero((out == out[:, :1]).all(axis=(0, 2)))
        rcols = np.flatnonzero((out == out[:, -1:]).all(axis=(0, 2)))
        if len(rows) > 20:
            seen.add("top")
            assert (out[rows.max() + 1:] == face[rows.max() + 1:]).all()  # below the line: the face untouched
        elif len(cols) > 20:
            seen.add("left")
        else:
            assert len(rcols) > 20
            seen.add("right")
    assert seen == {"top", "left", "right"}


def test_misalign_moves_the_face_as_landmark_noise_does(data_dir):
    """A pixel or two, a few percent, a few degrees: measured back by locating the eyes again."""
    from bot.faces import FaceDetector, find_faces
    from bot.train.augment import _misalign
    det = FaceDetector()
    photo = sorted((data_dir / "seed-faces" / "Siti Zubaidah").iterdir())[3]
    face = find_faces(det, cv2.imread(str(photo)))[0].aligned
    moves = []
    for seed in range(12):
        out = _misalign(face, np.random.default_rng(seed))
        assert out.shape == face.shape and out.dtype == np.uint8
        shift, _ = cv2.phaseCorrelate(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).astype(np.float64),
                                      cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).astype(np.float64))
        moves.append(np.hypot(*shift))
    assert 0.5 < np.median(moves) < 3.5 and max(moves) < 6, moves
    # augment applies it to the share of faces it is given
    batch = np.repeat(face[None], 8, axis=0)
    plain = augment(batch, 112, np.random.default_rng(5))
    moved = augment(batch, 112, np.random.default_rng(5), jitter=1.0)
    assert not np.array_equal(plain, moved)



def test_blend_into_replaces_a_share_of_the_batch_with_blends():
    from bot.train.fit import blend_into
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (10, 8, 8, 3)).astype(np.uint8)
    t = rng.normal(size=(5, 128)).astype(np.float32)
    blends = {"a": np.array([0, 1, 2, 3, 4]), "b": np.array([5, 6, 7, 8, 9]),
              "lam": np.array([0.2, 0.4, 0.5, 0.6, 0.8], np.float32), "teacher": t}
    n = 64
    faces = pool[rng.integers(0, 10, n)]
    y = {"labels": np.arange(n, dtype=np.int32), "teacher": np.zeros((n, 128), np.float32),
         "has_teacher": np.zeros(n, bool)}
    out, oy = blend_into(faces, y, pool, blends, 0.5, np.random.default_rng(1))
    blended = oy["labels"] == -1
    assert 15 < blended.sum() < 50
    assert np.array_equal(out[~blended], faces[~blended]) and not oy["has_teacher"][~blended].any()
    assert y["labels"].min() == 0 and not y["has_teacher"].any()  # the caller's batch as it was
    for i in np.flatnonzero(blended):
        r = int(np.flatnonzero((t == oy["teacher"][i]).all(1))[0])  # which record, by its target
        want = blends["lam"][r] * pool[r].astype(np.float32) + (1 - blends["lam"][r]) * pool[r + 5]
        assert np.abs(out[i] - want).max() <= 0.5 + 1e-3 and oy["has_teacher"][i]


def test_blend_teacher_vectors_are_dlibs_own(data_dir, tmp_path):
    """A blend weighted wholly to one face gives that face's vector in teacher-dlib.npz (the chip is cut as
    face_recognition cuts it), and an even blend of two people a vector unlike either."""
    pytest.importorskip("dlib", reason=TRAIN_EXTRA)
    from bot.train.blends import _blend_shard
    z = np.load(data_dir / "teacher-dlib.npz")
    pa, pb = str(z["paths"][3]), str(z["paths"][5000])
    part = _blend_shard((data_dir, [(pa, pb, 1.0), (pa, pb, 0.0), (pa, pb, 0.5)], tmp_path / "s.npz"))
    got = np.load(part)["teacher"].astype(np.float32)
    want_a, want_b = (z["vectors"][i].astype(np.float32) for i in (3, 5000))
    assert np.abs(got[0] - want_a).max() < 2e-3 and np.abs(got[1] - want_b).max() < 2e-3
    assert np.linalg.norm(got[2] - want_a) > 0.1 and np.linalg.norm(got[2] - want_b) > 0.1
