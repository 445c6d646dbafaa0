"""bot.layout: what a frame is read as (inspect --json's "layout"), and a frame whose layout cannot be
trusted (a gallery mid re-layout cut as one tile) gives no verdicts rather than one giant tile judged."""
import cv2
import numpy as np
import pytest

from bot import layout
from bot.config import TileSettings
from bot.session import Pipeline
from bot.tiles import segment
from bot.types import Tile

from scenes.gallery import MEET_BG, ZOOM_BG, iou, load_photo, make_specs, render_gallery, seed_photos
from scenes.layouts import relayout, teams_2020_gallery, zoom_speaker
from .test_pipeline import setup  # noqa: F401  (the module's pipeline fixture)


@pytest.mark.parametrize("name, want", [
    ("meeting-screens-more/meet-tiled-4x4-selfpip-pillarbox-taskbar-01.png", "gallery 4x4"),
    ("meeting-screens-more/zoom-gallery-2x2-portrait-pillarbox-01.jpg", "gallery 2x2"),
    ("meeting-screens-more/meet-tiled-3x2-selfpip-whitebar-browser-01.jpg", "gallery 2x3"),
])
def test_real_galleries_are_read_as_their_grid(data_dir, name, want):
    tiles = segment(cv2.imread(str(data_dir / name)), TileSettings())
    assert str(layout.read(tiles)) == want


def test_a_partial_last_row_and_a_speaker_strip(data_dir):
    photos = seed_photos(data_dir)
    frame, _ = render_gallery(make_specs(photos, 5, seed=3), (1920, 1080), seed=3)
    assert str(layout.read(segment(frame, TileSettings()))) == "gallery 2x3"
    big = Tile(box=(0, 0, 1500, 844))
    strip = [Tile(box=(1520, 10 + 200 * i, 340, 190)) for i in range(4)]
    assert layout.read([big] + strip).kind == "speaker + strip"
    assert layout.read([]).kind == "none"


def _pipeline(setup):  # noqa: F811
    settings, models, roster, gallery, _ = setup
    return Pipeline(settings, models, roster, gallery[0], gallery[1])


def _assert_first_tile_has_multiple_faces(setup, specs, seed: int) -> None:  # noqa: F811
    """The gallery of `specs` is judged (not an untrusted layout) and its first tile is multiple_faces."""
    frame, _ = render_gallery(specs, (1920, 1080), seed=seed)
    p = _pipeline(setup)
    obs, _ = p.process(frame)
    assert not p.last_layout.uncertain and len(obs) == len(specs)
    assert obs[0].verdict.verdict == "multiple_faces", [o.verdict for o in obs]


@pytest.mark.parametrize("mode, n, t", [("slide", 4, 0.5), ("slide", 9, 0.35), ("blend", 9, 0.6)])
def test_a_gallery_mid_relayout_gets_no_verdicts(setup, data_dir, mode, n, t):  # noqa: F811
    """Zoom re-laying its gallery: the finder cuts the moving tiles as one; the faces in it have the
    straight edges of videos between them, so that tile is not judged, and the next frame is cut afresh."""
    photos = seed_photos(data_dir)
    scene = relayout(photos, n=n, size=(1920, 1080), mode=mode, t=t, seed=7)
    p = _pipeline(setup)
    obs, _ = p.process(scene.image)
    largest = max(t.box[2] * t.box[3] for t in scene.tiles)
    giant = [o for o in obs if o.box[2] * o.box[3] > 1.05 * largest]     # more than one video in it
    assert p.last_layout.uncertain and giant
    assert all(o.verdict.verdict == "unjudged" and o.verdict.reason == "layout" for o in giant)
    settled = relayout(photos, n=n, size=(1920, 1080), mode="slide", t=1.0, seed=7)
    obs, _ = p.process(settled.image)
    assert not p.last_layout.uncertain and len(obs) == n + 1
    assert all(o.verdict.verdict != "multiple_faces" for o in obs)


def test_two_people_at_one_camera_are_still_multiple_faces(setup, data_dir):  # noqa: F811
    """Two students in one picture, on one wall: no straight seam between them, so the tile is judged
    (multiple_faces), not taken for a gallery cut as one tile."""
    photos = seed_photos(data_dir)
    names = sorted(photos)
    specs = make_specs(photos, 4, seed=5)
    room = np.full((720, 1280, 3), (150, 170, 185), np.uint8)
    for k, name in enumerate(names[:2]):
        face = cv2.resize(load_photo(photos[name][2]), (420, 560), interpolation=cv2.INTER_AREA)
        # feathered: the photo fades into the wall, as two people in one room have no border between them
        yy, xx = np.mgrid[0:560, 0:420]
        a = np.clip(np.minimum.reduce([xx, 419 - xx, yy, 559 - yy]) / 60.0, 0, 1)[..., None]
        x0 = 140 + k * 560
        part = room[100:660, x0:x0 + 420].astype(np.float32)
        room[100:660, x0:x0 + 420] = (a * face + (1 - a) * part).astype(np.uint8)
    specs[0].face = room
    _assert_first_tile_has_multiple_faces(setup, specs, 5)


def test_tiles_without_names_are_judged_by_face(setup, data_dir, tmp_path):  # noqa: F811
    """Teams shows no names on its gallery videos: each video tile is still judged by its face (the
    report's unlabeled rows, one per nameless tile, say whom it matched), and the strip's bubbles
    and avatar tiles are camera-off participants."""
    from datetime import datetime, timedelta, timezone

    from bot.report.metrics import unlabeled_rows
    from bot.session import Session
    from bot.store import Store

    settings, models, roster, gallery, _ = setup
    scene = teams_2020_gallery(seed_photos(data_dir), size=(1920, 1080), seed=3)
    start = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
    with Store(tmp_path) as store:
        store.upsert_students(roster, "T")
        session = Session(_pipeline(setup), store, None, settings, "T", "test", 5)
        for k in range(3):
            session.capture(scene.image, start + timedelta(seconds=5 * k))
        observations = store.observations(session.id)
    rows = {r["participant"]: r for r in unlabeled_rows(observations) if not r["display_name"]}
    ids = {s.name: s.student_id for s in roster}
    judged = 0
    for video in (t for t in scene.tiles if t.kind == "video"):
        mine = [o for o in observations if o["box"] and iou(tuple(o["box"]), video.box) >= 0.9]
        assert len(mine) == 3 and rows[mine[0]["participant"]]["captures"] == 3
        if not any(o["verdict"] == "unlabeled" for o in mine):
            continue        # no face judged there (a seed photo shows a drawing, its face cut off)
        assert rows[mine[0]["participant"]]["identified_as"] == ids[video.name], \
            (video, [(o["verdict"], o["faces"], o["reason"], o["similarity"]) for o in mine])
        judged += 1
    assert judged >= 3
    strip = [t for t in scene.tiles if t.kind in ("bubble", "camera_off")]
    per_capture = [o for o in observations if o["camera_off"]]
    assert len(per_capture) == 3 * len(strip)


def test_a_tablet_held_up_beside_a_face_is_multiple_faces_not_an_unjudged_capture(setup, data_dir):  # noqa: F811
    """A student showing another face on a tablet: its straight edge runs between the two faces, yet
    in a gallery of tiles that is one tile with two faces, and the rest of the gallery is judged."""
    photos = seed_photos(data_dir)
    names = sorted(photos)
    specs = make_specs(photos, 6, seed=11)
    room = np.full((540, 960, 3), (170, 180, 190), np.uint8)
    room[:, 150:454] = cv2.resize(load_photo(photos[names[0]][0]), (304, 540), interpolation=cv2.INTER_AREA)
    room[70:470, 600:825] = cv2.resize(load_photo(photos[names[1]][3]), (225, 400), interpolation=cv2.INTER_AREA)
    specs[0].face = room
    _assert_first_tile_has_multiple_faces(setup, specs, 11)


def test_circles_held_up_in_a_tile_are_no_teams_strip(data_dir):
    """A card of evenly spaced circles shown in the bottom-left tile (where Teams' strip would start):
    the tile stays a tile, with its student in it, and no bubble is made of the card."""
    photos = seed_photos(data_dir)
    specs = make_specs(photos, 9, seed=12)
    _, boxes = render_gallery(specs, (1920, 1080), chrome=False, seed=12)
    x, y, w, h = boxes[6]
    card = cv2.resize(load_photo(photos[sorted(photos)[2]][1]), (w, h), interpolation=cv2.INTER_AREA)
    card[h // 2:, :] = 30
    for k in range(5):
        cv2.circle(card, (60 + 90 * k, h * 3 // 4 - 20), 26, (200, 190, 230), -1, cv2.LINE_AA)
    specs[6].face = card
    frame, boxes = render_gallery(specs, (1920, 1080), chrome=False, seed=12)
    tiles = segment(frame, TileSettings())
    assert len(tiles) == 9
    assert max(iou(boxes[6], t.box) for t in tiles) >= 0.9


@pytest.mark.parametrize("tile, inset", [(4, 0.0), (8, 0.0), (2, 0.08)])
def test_a_framed_picture_held_up_in_a_tile_is_no_self_view(data_dir, tile, inset):
    """A photo with a thin grey border shown in a corner of a gallery tile (the middle one, the last,
    and the top-right one away from its very corner): no thumbnail is made of it, no tile is lost."""
    photos = seed_photos(data_dir)
    specs = make_specs(photos, 9, seed=14)
    _, boxes = render_gallery(specs, (1920, 1080), chrome=False, seed=14)
    x, y, w, h = boxes[tile]
    card = cv2.resize(load_photo(photos[sorted(photos)[tile % 3]][0]), (w, h), interpolation=cv2.INTER_AREA)
    fw, fh = w // 4, w // 4 * 9 // 16
    fx, fy = w - fw - int(inset * w), int(inset * h) if tile == 2 else h - fh
    card[fy:fy + fh, fx:fx + fw] = cv2.resize(load_photo(photos[sorted(photos)[-1]][1]), (fw, fh))
    cv2.rectangle(card, (fx, fy), (fx + fw - 1, fy + fh - 1), (90, 90, 90), 1)
    specs[tile].face = card
    frame, boxes = render_gallery(specs, (1920, 1080), chrome=False, seed=14)
    tiles = segment(frame, TileSettings())
    assert len(tiles) == 9 and not any(t.floating or t.covered for t in tiles), [t.box for t in tiles]
    assert max(iou(boxes[tile], t.box) for t in tiles) >= 0.9


def test_inspect_says_the_layout_and_draws_each_box(setup, data_dir):  # noqa: F811
    """inspect --json: the layout read, whether it can be trusted (a doubtful tile is not judged), and
    each tile's label box; -o draws the tile, label and face boxes."""
    from bot.inspect_view import annotate, inspect_json

    photos = seed_photos(data_dir)
    frame, _ = render_gallery(make_specs(photos, 6, seed=4), (1280, 720), seed=4)
    p = _pipeline(setup)
    obs, ms = p.process(frame)
    data = inspect_json("g.png", frame, obs, ms, p.last_layout)
    assert data["layout"] == "gallery 2x3" and data["layout_uncertain"] is False
    assert all(t["label_box"] for t in data["tiles"])
    drawn = annotate(frame, obs, p.last_layout)
    assert drawn.shape == frame.shape and (drawn != frame).any()
    scene = relayout(photos, n=9, size=(1920, 1080), mode="blend", t=0.6, seed=7)
    obs, ms = p.process(scene.image)
    data = inspect_json("r.png", scene.image, obs, ms, p.last_layout)
    assert data["layout"] == "unknown" and data["layout_uncertain"] is True
    assert all(t["verdict"] == "unjudged" for t in data["tiles"] if t["faces"] >= 2)


def test_a_speaker_holding_up_a_tablet_loses_only_their_own_verdict(setup, data_dir):  # noqa: F811
    """In speaker view the speaker's tile is as big as a gallery: a tablet with another face held up
    beside theirs (a straight edge between the faces) makes that tile unjudged, never the strip's."""
    photos = seed_photos(data_dir)
    names = sorted(photos)
    scene = zoom_speaker(photos, n=5, size=(1920, 1080), self_view=False, seed=5)
    frame = scene.image.copy()
    big = max(scene.tiles, key=lambda t: t.box[2] * t.box[3])
    x, y, w, h = big.box
    tablet = cv2.resize(load_photo(photos[names[1]][3]), (w // 4, h * 2 // 3), interpolation=cv2.INTER_AREA)
    frame[y + h // 6:y + h // 6 + tablet.shape[0], x + w * 2 // 3:x + w * 2 // 3 + tablet.shape[1]] = tablet
    p = _pipeline(setup)
    obs, _ = p.process(frame)
    speaker = max(obs, key=lambda o: o.box[2] * o.box[3])
    others = [o for o in obs if o is not speaker]
    assert len(others) == 4 and all(o.verdict.verdict not in ("unjudged", "no_face") for o in others), \
        [o.verdict for o in obs]
    assert speaker.verdict.verdict in ("unjudged", "multiple_faces"), speaker.verdict


def test_a_speaker_before_a_flat_virtual_background_is_judged(setup, data_dir):  # noqa: F811
    """A big tile that is mostly one flat colour looks like a shared slide to the tile finder; with a
    face in it, it is a participant all the same (a plain virtual background)."""
    photos = seed_photos(data_dir)
    names = sorted(photos)
    scene = zoom_speaker(photos, n=5, size=(1920, 1080), self_view=False, seed=6)
    frame = scene.image.copy()
    x, y, w, h = max(scene.tiles, key=lambda t: t.box[2] * t.box[3]).box
    frame[y:y + h, x:x + w] = (120, 160, 60)
    person = load_photo(photos[names[2]][5])
    ph = h * 4 // 5
    person = cv2.resize(person, (ph * person.shape[1] // person.shape[0], ph), interpolation=cv2.INTER_AREA)
    px = x + (w - person.shape[1]) // 2
    frame[y + h - ph:y + h, px:px + person.shape[1]] = person
    tiles = segment(frame, TileSettings(), with_shares=True)
    assert any(t.share and iou(t.box, (x, y, w, h)) >= 0.9 for t in tiles)   # taken for a screen...
    obs, _ = _pipeline(setup).process(frame)
    speaker = [o for o in obs if iou(o.box, (x, y, w, h)) >= 0.9]
    assert speaker and speaker[0].faces >= 1, [(o.box, o.faces, o.verdict.verdict) for o in obs]  # ...kept: a face shows


def _page_coloured_tile(data_dir, theme: str, n: int, size: tuple, frac: float, seed: int = 2):
    """A gallery whose last (bottom-right) tile's video is exactly the page's colour, a photo of
    another student in a 16:9 rectangle `frac` of its width in its outer corner: (frame, boxes)."""
    photos = seed_photos(data_dir)
    specs = make_specs(photos, n, seed=seed)
    _, boxes = render_gallery(specs, size, theme=theme, seed=seed, chrome=False)
    x, y, w, h = boxes[-1]
    video = np.empty((h, w, 3), np.uint8)
    video[:] = MEET_BG if theme == "meet" else ZOOM_BG
    rw = int(w * frac)
    rh = rw * 9 // 16
    video[h - rh - 2:h - 2, w - rw - 2:w - 2] = cv2.resize(load_photo(photos[sorted(photos)[0]][3]), (rw, rh))
    specs[-1].face = video
    return render_gallery(specs, size, theme=theme, seed=seed, chrome=False)


@pytest.mark.parametrize("theme", ["meet", "zoom"])
@pytest.mark.parametrize("n, size, frac", [(4, (1920, 1080), 0.4), (6, (1920, 1080), 0.4), (4, (1280, 720), 0.55),
                                           (6, (2560, 1440), 0.7), (4, (3840, 2160), 0.7), (6, (1280, 720), 0.4)])
def test_a_page_coloured_video_keeps_its_tile(data_dir, theme, n, size, frac):
    """A student's video exactly the page's colour, their face in a rectangle in its outer corner: the
    tile is still the tile (its name is read), not a floating self-view on the page (never named)."""
    frame, boxes = _page_coloured_tile(data_dir, theme, n, size, frac)
    tiles = segment(frame, TileSettings(), with_shares=True)
    assert len(tiles) == n and not any(t.floating for t in tiles), [(t.box, t.floating) for t in tiles]
    assert max(iou(boxes[-1], t.box) for t in tiles) >= 0.9



def test_a_band_of_the_page_colour_in_a_video_keeps_the_layout_standing(data_dir):
    """A student showing a band of the page's colour across their video (a gap across their tile, as a
    re-layout makes): cut afresh once, then the layout stands while the band comes and goes."""
    from bot.tiles import LayoutMemory

    photos = seed_photos(data_dir)
    frame, truth = render_gallery(make_specs(photos, 9, seed=1), theme="zoom", seed=1)
    mem = LayoutMemory()
    assert len(mem.segment(frame, TileSettings())) == 9
    x, y, w, h = truth[4]
    for band in (4, 8, 0, 4, 0):
        banded = frame.copy()
        banded[y + h // 2 - band // 2:y + h // 2 + band // 2, x:x + w] = ZOOM_BG
        tiles = mem.segment(banded, TileSettings())
        assert len(tiles) == 9 and all(max(iou(b, t.box) for t in tiles) >= 0.9 for b in truth)
    assert mem.counts == {"kept": 4, "found": 2}


@pytest.mark.parametrize("corner", ["tl", "bl"])
def test_a_framed_picture_in_a_lone_speakers_left_corner_is_no_self_view(data_dir, corner):
    """A lone speaker framing a face in a left corner of their video (an impostor framing their own face
    while holding up the named student's photo): no thumbnail is made of it, so both faces stay in the
    speaker's tile (multiple_faces), not one verified and one floating and never named."""
    photos = seed_photos(data_dir)
    scene = zoom_speaker(photos, n=1, size=(1920, 1080), chrome="none", self_view=False, seed=1)
    img = scene.image.copy()
    x, y, w, h = scene.tiles[0].box
    fw = w // 4
    fh = fw * 9 // 16
    fx, fy = x + w * 3 // 100, y + h * 4 // 100 if corner == "tl" else y + h - fh - h * 4 // 100
    img[fy:fy + fh, fx:fx + fw] = cv2.resize(load_photo(photos[sorted(photos)[2]][0]), (fw, fh))
    cv2.rectangle(img, (fx, fy), (fx + fw - 1, fy + fh - 1), (90, 90, 90), 2)
    tiles = segment(img, TileSettings(), with_shares=True)
    assert len(tiles) == 1 and not tiles[0].covered and not tiles[0].floating, [t.box for t in tiles]
    assert iou(scene.tiles[0].box, tiles[0].box) >= 0.9
