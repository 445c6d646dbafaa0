"""bot.session.Pipeline on galleries rendered from the real class photos: what it does capture to
capture (work saved on still tiles must not change a verdict)."""
import dataclasses

import numpy as np
import pytest

from bot.config import load_settings
from bot.decide import Gallery
from bot.enroll import embed_photo
from bot.roster import load_roster
from bot.session import Pipeline, load_models

from .gallery import make_specs, render_gallery, seed_photos


@pytest.fixture(scope="module")
def setup(data_dir):
    settings = load_settings()
    models = load_models(settings, ocr=False)
    roster = load_roster(data_dir / "seed-roster.csv")
    by_name = {s.name: s.student_id for s in roster}
    photos = seed_photos(data_dir)
    ids, vecs = [], []
    for name, paths in photos.items():
        for p in paths[-6:]:
            got = embed_photo(p, models.detector, models.embedder, settings.faces)
            if isinstance(got, tuple):
                ids.append(by_name[name])
                vecs.append(got[0])
    gallery = Gallery.from_embeddings(np.array(ids), np.stack(vecs), models.thresholds.top_k, models.thresholds.head)
    frames = [render_gallery(make_specs(photos, 6, seed=s), (1280, 720), seed=s)[0] for s in (0, 1)]
    return settings, models, roster, gallery, frames


class Counting:
    """The embedder, counting the faces it is given."""

    def __init__(self, embedder):
        self.inner, self.faces = embedder, 0

    def embed(self, faces):
        self.faces += len(faces)
        return self.inner.embed(faces)


def _verdicts(obs):
    return [(o.verdict.verdict, o.verdict.identified_as, o.face_box) for o in obs]


def test_still_tiles_keep_their_vectors_and_verdicts(setup):
    settings, models, roster, gallery, (a, b) = setup
    counting = Counting(models.embedder)
    pipe = Pipeline(settings, dataclasses.replace(models, embedder=counting), roster, gallery)
    first, _ = pipe.process(a)
    judged = sum(o.verdict.verdict not in ("no_face", "unjudged", "multiple_faces", "camera_off") for o in first)
    assert judged >= 4 and counting.faces == judged
    again, _ = pipe.process(a.copy())
    assert counting.faces == judged  # nothing embedded again
    assert _verdicts(again) == _verdicts(first)
    # other photos in the same tiles: every face embedded afresh, and judged as a fresh pipeline does
    other, _ = pipe.process(b)
    assert counting.faces > judged
    fresh, _ = Pipeline(settings, models, roster, gallery).process(b)
    assert [(v, who) for v, who, _ in _verdicts(other)] == [(v, who) for v, who, _ in _verdicts(fresh)]


def test_a_face_half_off_its_tile_is_unjudged_on_a_real_capture(setup, data_dir):
    """zoom-gallery-clipped-01: the window's edge cuts one tile, and half of that student's face with it."""
    import cv2
    settings, models, roster, gallery, _ = setup
    frame = cv2.imread(str(data_dir / "meeting-screens" / "zoom-gallery-clipped-01.png"))
    obs, _ = Pipeline(settings, models, roster, gallery).process(frame)
    # four tiles: a whole face (judged; no OCR here, so unlabeled), the cut one, two that show no face
    assert [(o.verdict.verdict, o.verdict.reason) for o in obs] == [
        ("unlabeled", ""), ("unjudged", "cut"), ("no_face", ""), ("no_face", "")]
    assert frame.shape[1] - (obs[1].box[0] + obs[1].box[2]) <= 2  # the tile the window's edge cuts
