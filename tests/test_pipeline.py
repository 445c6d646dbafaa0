"""bot.session.Pipeline on galleries rendered from the real class photos: what it does capture to
capture (work saved on still tiles must not change a verdict)."""
import dataclasses

import numpy as np
import pytest

from bot.config import load_settings
from bot.enroll import embed_photo
from bot.roster import load_roster
from bot.session import Pipeline, enrolled_galleries, load_models
from bot.types import BAD

from scenes.gallery import make_specs, render_gallery, seed_photos


def unhurried():
    """The packaged settings with no time budget for the verifier: every face waiting for it is judged
    in the capture that shows it, so what a capture's verdicts are does not depend on this machine's speed."""
    settings = load_settings()
    return dataclasses.replace(settings, recognition=dataclasses.replace(settings.recognition,
                                                                         verifier_budget_ms=1e9,
                                                                         capture_budget_ms=1e9))


@pytest.fixture(scope="module")
def setup(data_dir, models, roster):
    settings = unhurried()
    by_name = {s.name: s.student_id for s in roster}
    photos = seed_photos(data_dir)
    ids, vecs, vvecs = [], [], []
    for name, paths in photos.items():
        for p in paths[-6:]:
            got = embed_photo(p, models.detector, models.embedder, settings.faces, models.verifier)
            if isinstance(got, tuple):
                ids.append(by_name[name])
                vecs.append(got[0])
                vvecs.append(got[3])
    gallery = enrolled_galleries(models, ids, vecs, ids, vvecs)
    frames = [render_gallery(make_specs(photos, 6, seed=s), (1280, 720), seed=s)[0] for s in (0, 1)]
    return settings, models, roster, gallery, frames


class Counting:
    """Face views the embedder has made since this was made (bot.embed.Embedder.made)."""

    def __init__(self, embedder):
        self.embedder, self.start = embedder, embedder.made

    @property
    def made(self) -> int:
        return self.embedder.made - self.start


def _verdicts(obs):
    return [(o.verdict.verdict, o.verdict.identified_as, o.face_box) for o in obs]


def test_still_tiles_keep_their_vectors_and_verdicts(setup):
    settings, models, roster, gallery, (a, b) = setup
    counting = Counting(models.embedder)
    pipe = Pipeline(settings, models, roster, *gallery)
    first, _ = pipe.process(a)
    judged = sum(o.verdict.verdict not in ("no_face", "unjudged", "multiple_faces", "camera_off") for o in first)
    assert judged >= 4 and counting.made == judged * len(models.embedder.views)  # no name: no view settles
    again, _ = pipe.process(a.copy())
    assert counting.made == judged * len(models.embedder.views)  # nothing embedded again
    assert _verdicts(again) == _verdicts(first)
    # other photos in the same tiles: every face embedded afresh, and judged as a fresh pipeline does
    other, _ = pipe.process(b)
    assert counting.made > judged * len(models.embedder.views)
    fresh, _ = Pipeline(settings, models, roster, *gallery).process(b)
    assert [(v, who) for v, who, _ in _verdicts(other)] == [(v, who) for v, who, _ in _verdicts(fresh)]


def test_a_face_half_off_its_tile_is_unjudged_on_a_real_capture(setup, data_dir):
    """zoom-gallery-clipped-01: the window's edge cuts one tile, and half of that student's face with it."""
    import cv2
    settings, models, roster, gallery, _ = setup
    frame = cv2.imread(str(data_dir / "meeting-screens" / "zoom-gallery-clipped-01.png"))
    obs, _ = Pipeline(settings, models, roster, *gallery).process(frame)
    # four tiles: a whole face (judged; no OCR here, so unlabeled), the cut one, two that show no face
    assert [(o.verdict.verdict, o.verdict.reason) for o in obs] == [
        ("unlabeled", ""), ("unjudged", "cut"), ("no_face", ""), ("no_face", "")]
    assert frame.shape[1] - (obs[1].box[0] + obs[1].box[2]) <= 2  # the tile the window's edge cuts


def test_a_face_settled_on_one_view_is_judged_as_on_all(setup, data_dir):
    """With names read, a class's own faces clearly like their enrolled photos are verified on their
    first view alone (decide.settled) and their other views are not made; every verdict, an
    impersonation's mismatch included, is the one all views give."""
    from scenes.gallery import TileSpec, load_photo
    from scenes.recording import webcam_view
    from bot.enroll import spread
    settings, _, roster, _, _ = setup
    models = load_models(settings)
    assert models.thresholds.quick is not None  # the shipped thresholds.json has the rule
    photos = seed_photos(data_dir)
    names = sorted(photos)
    # enrolled on 10 photos spread over each student's folder (as `enroll --max-photos 10`); tiles show others
    enrolled = {n: spread(p, 10) for n, p in photos.items()}
    ids, vecs, vvecs = [], [], []
    for st in roster:
        for p in enrolled.get(st.name, []):
            got = embed_photo(p, models.detector, models.embedder, settings.faces, models.verifier)
            if isinstance(got, tuple):
                ids.append(st.student_id)
                vecs.append(got[0])
                vvecs.append(got[3])
    gallery = enrolled_galleries(models, ids, vecs, ids, vvecs)
    others = {n: [p for p in photos[n] if p not in enrolled[n]] for n in names}
    frames = []
    for seed in (8, 10):
        rng = np.random.default_rng(seed)
        specs = []
        for i in range(6):
            who = names[3] if i == 1 else names[i % 5]  # tile 1 shows another student's face under its name
            view = None
            while view is None:  # a webcam's framing of a photo the gallery was not enrolled from
                photo = load_photo(others[who][int(rng.integers(len(others[who])))])
                view = webcam_view(photo, models.detector, rng)
            specs.append(TileSpec(names[i % 5] if i < 5 else f"{names[0]} 2", view, "none", False))
        frames.append(render_gallery(specs, (1280, 720), seed=seed)[0])
    runs = {}
    for rule in ("quick", "all views"):
        th = models.thresholds if rule == "quick" else dataclasses.replace(models.thresholds, quick=None)
        counting = Counting(models.embedder)
        pipe = Pipeline(settings, dataclasses.replace(models, thresholds=th), roster, *gallery)
        runs[rule] = ([[(o.student_id, o.verdict.verdict, o.verdict.identified_as) for o in pipe.process(f)[0]]
                       for f in frames], counting.made)
    (quick, quick_views), (full, full_views) = runs["quick"], runs["all views"]
    assert quick == full
    impostor = next(st.student_id for st in roster if st.name == names[3])
    assert [frame[1][1:] for frame in full] == [("mismatch", impostor)] * 2
    assert sum(v == "verified" for frame in full for _, v, _ in frame) >= 5
    assert quick_views <= full_views - 2 * 3  # three faces or more settled on one view of three


def test_participant_keys_part_tiles_under_one_name():
    from bot.types import NameMatch
    from bot.stages import participant_keys

    m = [NameMatch("Siti Zubaidah", "S1", "exact"), NameMatch("Mareta", "S2", "exact"),
         NameMatch("siti zubaidah", "S1", "exact"), NameMatch("iPhone", None, "none"),
         NameMatch("iPhone", None, "none"), NameMatch("", None, "none"), NameMatch("", None, "none")]
    assert participant_keys(m) == ["S1", "S2", "S1#2", "name:iphone", "name:iphone#2", "tile:5", "tile:6"]


def _three_sitters(data_dir, settings, models, seed: int, per: int = 1):
    """A gallery of Siti, Mareta and Novia enrolled on 20 photos each, and `per` webcam views of those
    photos per student (tests of what the pipeline does, not of the face model)."""
    from bot.enroll import spread

    from scenes.gallery import load_photo
    from scenes.recording import webcam_view

    roster = load_roster(data_dir / "seed-roster.csv")
    by_name = {s.name: s.student_id for s in roster}
    photos = seed_photos(data_dir)
    names = ("Siti Zubaidah", "Mareta Aliana", "Novia Evianti")
    ids, vecs, vvecs = [], [], []
    for name in names:
        for p in spread(photos[name], 20):
            got = embed_photo(p, models.detector, models.embedder, settings.faces, models.verifier)
            if isinstance(got, tuple):
                ids.append(by_name[name])
                vecs.append(got[0])
                vvecs.append(got[3])
    gallery = enrolled_galleries(models, ids, vecs, ids, vvecs)
    rng = np.random.default_rng(seed)
    views = {n: [v for v in (webcam_view(load_photo(p), models.detector, rng) for p in spread(photos[n], 20))
                 if v is not None][:per] for n in names}
    return roster, by_name, gallery, views


def test_an_impostor_under_a_present_students_name_alerts_once(data_dir, tmp_path):
    """Siti Zubaidah on camera, and a second tile also labelled "Siti Zubaidah" showing Mareta Aliana:
    the second tile is its own participant, so its mismatches fill a window of their own and alert
    once; Siti's own tile never alerts. Sharing one window (3 of 4), the two would take turns in it
    and nothing would alert. The tiles show enrolled photos: this is about tracking, not the face model."""
    from datetime import datetime, timedelta, timezone

    from bot.session import Session
    from bot.store import Store

    settings = unhurried()
    settings = dataclasses.replace(settings, tracking=dataclasses.replace(settings.tracking, confirm_n=3, window_m=4))
    models = load_models(settings)
    roster, by_name, gallery, views = _three_sitters(data_dir, settings, models, seed=0, per=3)
    from scenes.gallery import TileSpec

    frames = []
    for k in range(6):
        face = {n: v[k % len(v)] for n, v in views.items()}
        specs = [TileSpec("Siti Zubaidah", face["Siti Zubaidah"]), TileSpec("Mareta Aliana", face["Mareta Aliana"]),
                 TileSpec("Siti Zubaidah", face["Mareta Aliana"]), TileSpec("Novia Evianti", face["Novia Evianti"])]
        frames.append(render_gallery(specs, (1280, 720), seed=k)[0])
    start = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
    with Store(tmp_path) as store:
        sess = Session(Pipeline(settings, models, roster, *gallery), store, None, settings, None, "test", 10.0)
        seen = [sess.capture(f, start + timedelta(seconds=10 * k)) for k, f in enumerate(frames)]
        alerts = list(store.db.execute("SELECT kind, student_id, identified_as, participant FROM alerts"))
    siti, mareta = by_name["Siti Zubaidah"], by_name["Mareta Aliana"]
    # the pipeline saw what the test drew: both Siti tiles named, the second tile Mareta's face
    assert all([o.student_id for o in obs] == [siti, mareta, siti, by_name["Novia Evianti"]] for obs in seen)
    assert sum(obs[2].verdict.verdict == "mismatch" for obs in seen) >= 5
    own = [obs[0].verdict.verdict for obs in seen]
    assert own.count("verified") >= 4 and not {"mismatch", "unknown_face"} & set(own)
    assert alerts == [("mismatch", siti, mareta, f"{siti}#2")], alerts
    assert [o.participant for o in seen[0]][:3] == [siti, mareta, f"{siti}#2"]


def test_vector_memory_keeps_only_a_verified_vector_of_a_face_that_barely_changed(data_dir, models):
    from bot.embed import VectorMemory
    from bot.faces import find_faces

    from scenes.recording import moved_view

    settings = unhurried()
    _, _, _, views = _three_sitters(data_dir, settings, models, seed=3)
    views = {n: v[0] for n, v in views.items()}
    detector = models.detector
    rng = np.random.default_rng(0)
    siti = find_faces(detector, views["Siti Zubaidah"])[0].aligned
    siti_moved = [find_faces(detector, moved_view(views["Siti Zubaidah"], rng))[0].aligned for _ in range(3)]
    mareta = find_faces(detector, views["Mareta Aliana"])[0].aligned
    key, vec = (1, 2, 3, 4), np.ones(8, np.float32)
    mem = VectorMemory(refresh_every=3)
    mem.keep(key, siti, vec, "S1")
    mem.keep(key, siti, vec, "S1")  # made again: age 0, whatever the first sight's stagger
    assert mem.recall(key, siti, "S2") is vec  # the very same face: the very same vector, always
    assert mem.recall(key, siti_moved[0], "S1") is None  # not yet judged verified
    mem.judged(key, True)
    assert mem.recall(key, mareta, "S1") is None  # another face under the same name
    assert mem.recall(key, siti_moved[0], "S2") is None  # the tile now names someone else
    assert mem.recall(key, siti_moved[0], "S1") is vec
    assert mem.recall(key, siti_moved[1], "S1") is vec
    assert mem.recall(key, siti_moved[2], "S1") is None  # refresh_every: made afresh on the third
    mem.judged(key, False)
    mem.keep(key, siti_moved[2], vec, "S1")
    assert mem.recall(key, siti_moved[1], "S1") is None  # a vector that did not verify is never kept
    mem.only(set())
    assert mem.recall(key, siti_moved[2], "S1") is None
    assert mem.counts == {"same": 1, "near": 2, "made": 3}


def test_sitters_who_barely_move_keep_their_vectors_and_an_impostor_is_judged_at_once(data_dir):
    """Three named tiles whose sitters move a few pixels from capture to capture: verified faces keep
    their vectors (fewer views made than at the first capture), and when Siti's face appears in
    Mareta's tile it is embedded afresh and judged a mismatch on that very capture and every one after."""
    from scenes.gallery import TileSpec
    from scenes.recording import moved_view

    settings = unhurried()
    models = load_models(settings)
    roster, by_name, gallery, views = _three_sitters(data_dir, settings, models, seed=3)
    views = {n: v[0] for n, v in views.items()}
    counting = Counting(models.embedder)
    pipe = Pipeline(settings, models, roster, *gallery)
    rng = np.random.default_rng(1)
    made, seen = [], []
    for k in range(7):
        face = {n: moved_view(v, rng) if k else v for n, v in views.items()}
        shown = face["Siti Zubaidah"] if k >= 4 else face["Mareta Aliana"]
        specs = [TileSpec("Siti Zubaidah", face["Siti Zubaidah"]), TileSpec("Mareta Aliana", shown),
                 TileSpec("Novia Evianti", face["Novia Evianti"])]
        before = counting.made
        obs, _ = pipe.process(render_gallery(specs, (1280, 720), seed=k)[0])
        made.append(counting.made - before)
        seen.append([(o.verdict.verdict, o.verdict.identified_as) for o in obs])
    siti, mareta, novia = by_name["Siti Zubaidah"], by_name["Mareta Aliana"], by_name["Novia Evianti"]
    assert seen[:4] == [[("verified", siti), ("verified", mareta), ("verified", novia)]] * 4, seen
    # three captures of the sitters cost fewer views than the first (each face every capture: ~3x)
    assert sum(made[1:4]) <= made[0] and pipe.embed.memory.counts["near"] >= 3, (made, pipe.embed.memory.counts)
    assert [s[1] for s in seen[4:]] == [("mismatch", siti)] * 3, seen
    assert made[4] >= 1


def test_the_memories_settings_reach_the_stages(setup, tmp_path):
    """faces.full_pass_every = 1: every tile searched whole with the full detector every capture (none
    kept as still, none followed with the short-range model); the packaged 6 keeps still tiles."""
    _, models, roster, gallery, (a, _) = setup
    cfg = tmp_path / "settings.toml"
    cfg.write_text("[faces]\nfull_pass_every = 1\n[names]\nreread_every = 2\n[recognition]\nvector_refresh = 3\n"
                   "verifier_budget_ms = 1e9\ncapture_budget_ms = 1e9\n")
    rng = np.random.default_rng(0)
    frames = [np.clip(a + rng.normal(0, 1, a.shape), 0, 255).astype(np.uint8) for _ in range(3)]
    counts = {}
    for name, settings in (("every", load_settings(cfg)), ("packaged", unhurried())):
        pipe = Pipeline(settings, models, roster, *gallery)
        for frame in frames:
            pipe.process(frame)
        counts[name] = dict(pipe.faces.memory.counts)
    assert counts["every"]["still"] == counts["every"]["roi"] == 0 and counts["every"]["full"] == 18, counts
    assert counts["packaged"]["still"] + counts["packaged"]["roi"] >= 6, counts
    assert (pipe.names.memory.max_age, pipe.embed.memory.refresh_every) == (30, 4)
    pipe = Pipeline(load_settings(cfg), models, roster, *gallery)
    assert (pipe.names.memory.max_age, pipe.embed.memory.refresh_every) == (2, 3)


def test_the_verifier_gets_what_the_capture_left_of_its_budget(setup, tmp_path, monkeypatch):
    """The identity stage is told what the capture's other stages spent (their times, as timed), and a
    recognition.capture_budget_ms they used up leaves one verifier run a capture (the other faces wait,
    none accused); with the budget lifted every face is judged in the first capture."""
    _, models, roster, gallery, (a, _) = setup
    cfg = tmp_path / "settings.toml"
    judged, told = {}, []
    for budget in ("0", "1e9"):
        cfg.write_text(f"[recognition]\nverifier_budget_ms = 1e9\ncapture_budget_ms = {budget}\n")
        pipe = Pipeline(load_settings(cfg), models, roster, *gallery)
        ident = pipe.identity.cascade
        judge = ident.judge
        monkeypatch.setattr(ident, "judge", lambda faces, spent_ms=0.0: told.append(spent_ms) or judge(faces, spent_ms))
        obs, ms = pipe.process(a)
        assert told[-1] == pytest.approx(sum(ms[k] for k in ("segment", "names", "detect", "embed")), abs=0.1)
        assert told[-1] > 0 and not [o for o in obs if o.verdict.verdict in BAD]
        faces = [o for o in obs if o.verdict.verdict != "no_face"]
        judged[budget] = (sum(o.verdict.model == "verifier" for o in faces), len(faces), ident.runs - ident.second_looks)
    assert judged["0"][0] == judged["0"][2] == 1 and judged["0"][1] >= 3, judged
    assert judged["1e9"][0] == judged["1e9"][1] == judged["1e9"][2], judged
