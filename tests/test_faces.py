"""Detection, alignment and the size / blur gates on real photos."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from bot.faces import TEMPLATE_4, DetectorError, FaceDetector, blur_score, find_faces, similarity_transform


@pytest.fixture(scope="module")
def photos(data_dir):
    return sorted((data_dir / "seed-faces").glob("*/*.jpg"))[::50]


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (4, 2))
    a, s, t = 0.3, 1.7, np.array([5.0, -8.0])
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = (s * rot @ src.T).T + t
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], s * rot, atol=1e-4) and np.allclose(m[:, 2], t, atol=1e-3)


def test_finds_one_face_per_class_photo(detector, photos):
    found = [len(find_faces(detector, cv2.imread(str(p)))) >= 1 for p in photos]
    assert sum(found) >= len(found) - 1, found


def test_landmarks_land_on_the_template(detector, photos):
    img = cv2.imread(str(photos[0]))
    face = find_faces(detector, img)[0]
    m = similarity_transform(face.landmarks[:4], TEMPLATE_4)
    moved = (m[:, :2] @ face.landmarks[:4].T).T + m[:, 2]
    assert np.abs(moved - TEMPLATE_4).max() < 6  # px on the 112 grid
    assert face.aligned.shape == (112, 112, 3) and face.aligned.dtype == np.uint8
    # the aligned face is found again, centred where the template puts it
    again = find_faces(detector, cv2.cvtColor(face.aligned, cv2.COLOR_RGB2BGR))
    assert again and abs(again[0].landmarks[2][0] - TEMPLATE_4[2][0]) < 8


def test_face_coordinates_follow_the_image(detector, photos):
    img = cv2.imread(str(photos[1]))
    f1 = find_faces(detector, img)[0]
    shifted = cv2.copyMakeBorder(img, 40, 0, 70, 0, cv2.BORDER_CONSTANT, value=(30, 30, 30))
    f2 = find_faces(detector, shifted)[0]
    assert abs((f2.box[0] - f1.box[0]) - 70) < 6 and abs((f2.box[1] - f1.box[1]) - 40) < 6


def test_a_face_running_off_the_image_is_cut_and_not_judged(detector, photos, tmp_path):
    from bot.config import FaceSettings
    from bot.decide import gate
    from bot.embed import Embedder
    from bot.enroll import embed_photo
    img = cv2.imread(str(photos[3]))
    whole = find_faces(detector, img)[0]
    assert whole.in_view == 1.0 and gate(whole, FaceSettings()) == ""
    x, y, w, h = (int(v) for v in whole.box)
    # forehead out of frame, as with a student close to the webcam; then also half the face off the side
    brows_off = img[y + int(0.35 * h):]
    cut = find_faces(detector, brows_off)[0]
    assert 0.5 < cut.in_view < 0.8 and gate(cut, FaceSettings()) == "cut"
    half_off = img[:, x + w // 2:]
    assert find_faces(detector, half_off)[0].in_view < 0.7
    slightly = find_faces(detector, img[y + int(0.05 * h):])[0]
    assert slightly.in_view > 0.9 and gate(slightly, FaceSettings()) == ""
    # a cut-off photo is no enrollment photo either
    p = tmp_path / "cut.jpg"
    cv2.imwrite(str(p), brows_off)
    model = Path(__file__).resolve().parents[1] / "models" / "face_embed.tflite"
    assert embed_photo(p, detector, Embedder(model), FaceSettings()) == "face cut off"


def test_blur_gate_sees_defocus(detector, photos):
    face = find_faces(detector, cv2.imread(str(photos[2])))[0]
    sharp = blur_score(face.aligned)
    blurred = blur_score(cv2.GaussianBlur(face.aligned, (0, 0), 3))
    assert blurred < sharp / 4


def test_small_face_still_found_at_meeting_size(detector, photos):
    img = cv2.imread(str(photos[3]))
    face = find_faces(detector, img)[0]
    scale = 48 / face.box[2]
    small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    tile = np.full((216, 384, 3), 40, np.uint8)
    h, w = small.shape[:2]
    tile[:min(h, 216), :min(w, 384)] = small[:216, :384]
    found = find_faces(detector, tile)
    assert found and 36 < found[0].box[2] < 62


def test_a_head_cropped_tight_to_the_photo_is_found_inside_a_border(detector, data_dir):
    """BlazeFace misses a face against the photo's edges (an ID photo, a close selfie): find_faces
    searches a photo in which it found nothing again inside a black border. Nanda's 044 (a selfie
    turned on its side, cropped tight) and a class photo cropped to the head's box."""
    nanda = cv2.imread(str(data_dir / "seed-faces" / "Nanda Nurahmanita Putri" / "044.jpg"))
    assert detector.detect(nanda) == []
    (face,) = find_faces(detector, nanda)
    assert face.in_view > 0.9 and face.box[2] > 0.4 * nanda.shape[1]
    plain = framed = 0
    paths = sorted((data_dir / "seed-faces").glob("*/*.jpg"))[::25]
    for path in paths:
        img = cv2.imread(str(path))
        whole = find_faces(detector, img)
        if not whole:
            continue
        x, y, w, h = whole[0].box
        side = 1.1 * w  # the head cropped to its box and a tenth
        x0, y0 = int(max(0, x + w / 2 - side / 2)), int(max(0, y + h / 2 - side / 2))
        head = img[y0:int(y + h / 2 + side / 2), x0:int(x + w / 2 + side / 2)]
        plain += bool(detector.detect(head))
        found = find_faces(detector, head)
        if found:
            framed += 1
            assert abs(found[0].box[2] - w) < 0.3 * w, path  # the same face, in the crop's own pixels
    assert framed >= 0.9 * len(paths) and plain <= 0.7 * len(paths), (plain, framed, len(paths))


def test_no_face_in_a_blank_tile(detector):
    assert find_faces(detector, np.full((216, 384, 3), 30, np.uint8)) == []
    assert find_faces(detector, np.zeros((4, 4, 3), np.uint8)) == []


def test_missing_or_damaged_detector(tmp_path):
    with pytest.raises(DetectorError, match="not found"):
        FaceDetector(tmp_path / "none.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(DetectorError, match="bad.tflite"):
        FaceDetector(bad)


# --- short range near a known face, and the per-tile memory (FaceMemory) ---------------------------

from bot.face_memory import FaceMemory  # noqa: E402
from bot.places import place  # noqa: E402
from bot.faces import FaceDetector, roll_degrees, ssd_anchors  # noqa: E402

TILE = (216, 384)


def _tile(detector, photo_path, face_w=72, at=(150, 50), size=TILE):
    """A meeting tile: the photo scaled so its face is `face_w` px wide, its face's corner put at `at`."""
    img = cv2.imread(str(photo_path))
    x, y, w, _ = find_faces(detector, img)[0].box
    s = face_w / w
    small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    tile = np.full((*size, 3), 40, np.uint8)
    ox, oy = int(at[0] - x * s), int(at[1] - y * s)  # where the photo's corner lands
    sx0, sy0 = max(0, -ox), max(0, -oy)
    dx0, dy0 = max(0, ox), max(0, oy)
    h, w_ = min(small.shape[0] - sy0, size[0] - dy0), min(small.shape[1] - sx0, size[1] - dx0)
    tile[dy0:dy0 + h, dx0:dx0 + w_] = small[sy0:sy0 + h, sx0:sx0 + w_]
    return tile


def _primed(mem, detector, box, tile):
    """Two captures of the same tile: the first sees it, the second (a full pass, as still_diff=0 turns
    the still check off) checks the short-range model against the full one there."""
    mem.find(detector, box, tile)
    return mem.find(detector, box, tile)


def _x0y0x1y1(face):
    x, y, w, h = face.box
    return np.array([x, y, x + w, y + h])


def test_anchors_follow_mediapipe_layout():
    full = ssd_anchors(192, [4], 1)
    assert full.shape == (2304, 2) and np.allclose(full[0], [0.5 / 48, 0.5 / 48])
    assert np.allclose(full[1], [1.5 / 48, 0.5 / 48])  # row-major
    short = ssd_anchors(128, [8, 16, 16, 16], 2)
    assert short.shape == (896, 2)
    # stride 8: two anchors per cell of a 16x16 grid; then stride 16: six per cell of an 8x8 grid
    assert np.allclose(short[0], short[1]) and np.allclose(short[0], [1 / 32, 1 / 32])
    assert np.allclose(short[2], [3 / 32, 1 / 32])
    assert np.allclose(short[512:518], [1 / 16, 1 / 16]) and np.allclose(short[518], [3 / 16, 1 / 16])


def test_near_finds_the_face_the_full_pass_finds(detector, photos):
    for p in photos[:6]:
        tile = _tile(detector, p)
        full = find_faces(detector, tile)
        assert len(full) == 1, p
        box = _x0y0x1y1(full[0])
        near = detector.detect_near(tile, box)
        assert len(near) == 1 and not near[0].cut, p
        w = box[2] - box[0]
        eye = np.linalg.norm(full[0].landmarks[0] - full[0].landmarks[1])
        assert np.abs(near[0].box - box).max() < 0.12 * w, (p, near[0].box, box)
        assert np.abs(near[0].landmarks[:4] - full[0].landmarks[:4]).max() < 0.25 * eye, p


def test_near_sees_nothing_where_the_face_is_not(detector, photos):
    tile = _tile(detector, photos[0], at=(270, 60))
    assert detector.detect_near(tile, np.array([20, 60, 92, 132])) == []


def test_memory_follows_a_moving_face_with_the_short_model(detector, photos):
    mem = FaceMemory(full_every=10, still_diff=0)
    box = (0, 0, TILE[1], TILE[0])
    first = _primed(mem, detector, box, _tile(detector, photos[1], at=(150, 50)))
    moved = mem.find(detector, box, _tile(detector, photos[1], at=(190, 62)))
    assert mem.counts == {"still": 0, "roi": 1, "full": 2}
    assert len(first) == len(moved) == 1
    dx, dy = moved[0].box[0] - first[0].box[0], moved[0].box[1] - first[0].box[1]
    assert abs(dx - 40) < 6 and abs(dy - 12) < 6, (dx, dy)
    assert moved[0].aligned.shape == (112, 112, 3) and moved[0].blur > 0
    # a face that jumped out of the region is found again by the full pass
    far = mem.find(detector, box, _tile(detector, photos[1], at=(10, 120)))
    assert mem.counts["full"] == 3 and len(far) == 1 and far[0].box[0] < 30


def test_memory_reuses_a_still_tile_and_redetects_a_changed_one(detector, photos):
    mem = FaceMemory(full_every=10)
    box = (400, 0, TILE[1], TILE[0])
    tile = _tile(detector, photos[2])
    first = mem.find(detector, box, tile)
    noisy = np.clip(tile.astype(np.int16) + np.random.default_rng(0).integers(-3, 4, tile.shape), 0, 255)
    again = mem.find(detector, box, noisy.astype(np.uint8))
    assert mem.counts["still"] == 1 and again is first
    # someone else sits down in the same place: looked at afresh, never the old face reused
    other = mem.find(detector, box, _tile(detector, photos[5]))
    assert mem.counts["still"] == 1 and len(other) == 1 and other is not first
    assert np.abs(other[0].aligned.astype(int) - first[0].aligned.astype(int)).mean() > 10
    # the participant leaves: the stale face must not stay
    assert mem.find(detector, box, np.full_like(tile, 40)) == []
    # another tile position is its own memory
    assert len(mem.find(detector, (0, 300, TILE[1], TILE[0]), tile)) == 1


def test_memory_sees_a_second_person_within_two_periods(detector, photos):
    every = 3
    mem = FaceMemory(full_every=every, still_diff=0)
    box = (0, 0, TILE[1], TILE[0])
    one = _tile(detector, photos[1], face_w=64, at=(40, 60))  # a face both models agree on
    assert len(_primed(mem, detector, box, one)) == 1
    two = one.copy()
    other = _tile(detector, photos[4], face_w=64, at=(270, 60))
    two[:, 230:] = other[:, 230:]
    # a tile's first period is stretched by up to full_every - 1 captures (staggering)
    counts = [len(mem.find(detector, box, two)) for _ in range(2 * every)]
    assert counts[0] == 1 and counts[-1] == 2, counts  # the region alone misses the newcomer


def test_memory_without_the_short_model_is_the_full_pass(photos):
    plain = FaceDetector(roi_model_path=None)
    mem = FaceMemory()
    tile = _tile(plain, photos[3])
    a = mem.find(plain, (0, 0, TILE[1], TILE[0]), tile)
    b = mem.find(plain, (0, 0, TILE[1], TILE[0]), np.roll(tile, 20, axis=1))
    assert mem.counts["roi"] == 0 and len(a) == len(b) == 1
    assert np.allclose(b[0].box, find_faces(plain, np.roll(tile, 20, axis=1))[0].box)


def test_find_all_on_two_threads_matches_one(detector, photos):
    boxes = [(i * 400, 0, TILE[1], TILE[0]) for i in range(4)]
    first = [_tile(detector, p) for p in photos[:4]]
    moved = [np.roll(t, 16, axis=1) for t in first]
    one, two = FaceMemory(threads=1, still_diff=0), FaceMemory(threads=2, still_diff=0)
    a = [one.find_all(detector, boxes, tiles) for tiles in (first, first, moved)]
    b = [two.find_all(detector, boxes, tiles) for tiles in (first, first, moved)]
    assert one.counts == two.counts and two.counts["roi"] >= 1
    for x, y in zip(a[2], b[2]):
        assert len(x) == len(y) == 1 and np.allclose(x[0].box, y[0].box) and np.array_equal(x[0].aligned, y[0].aligned)
    assert len(detector.workers(2)) == 2 and detector.workers(2)[1] is detector.workers(2)[1]


def test_tiles_where_the_models_disagree_stay_on_the_full_model(detector, photos):
    used = []
    for n, p in enumerate(photos[:6]):
        mem = FaceMemory(full_every=10, still_diff=0)
        box = (0, 0, TILE[1], TILE[0])
        tile = _tile(detector, p)
        full = _primed(mem, detector, box, tile)[0]
        near = detector.detect_near(tile, _x0y0x1y1(full))[0]
        eye = np.linalg.norm(full.landmarks[1] - full.landmarks[0])
        agree = np.abs(near.landmarks[:4] - full.landmarks[:4]).max() <= mem.roi_agree * eye
        mem.find(detector, box, np.roll(tile, 12, axis=1))
        used.append(mem.counts["roi"] == 1)
        assert used[-1] == agree, (p, used[-1], agree)
    assert any(used) and not all(used), used  # both kinds among the class photos


def test_a_tile_seen_once_is_not_yet_trusted_to_the_short_model(detector, photos):
    mem = FaceMemory(full_every=10, still_diff=0)
    box = (0, 0, TILE[1], TILE[0])
    mem.find(detector, box, _tile(detector, photos[1], at=(150, 50)))
    mem.find(detector, box, _tile(detector, photos[1], at=(160, 50)))
    assert mem.counts == {"still": 0, "roi": 0, "full": 2}


def _turned(tile, face, angle):
    x, y, w, h = face.box
    m = cv2.getRotationMatrix2D((x + w / 2, y + h / 2), angle, 1.0)
    return cv2.warpAffine(tile, m, (tile.shape[1], tile.shape[0]), borderMode=cv2.BORDER_REPLICATE)


def test_near_searches_a_tilted_head_upright(detector, photos):
    """A head known to be tilted is searched on the square turned upright: one short-range pass gives
    landmarks as level as the full pass's upright ones, so `upright` has nothing left to do."""
    level = 0
    for p in photos[:6]:
        flat = _tile(detector, p)
        tile = _turned(flat, find_faces(detector, flat)[0], 22)
        full = find_faces(detector, tile)
        assert len(full) == 1, p
        roll = roll_degrees(full[0].landmarks)
        assert abs(roll) > 10, (p, roll)
        near = detector.detect_near(tile, _x0y0x1y1(full[0]), roll=roll)
        assert len(near) == 1 and not near[0].cut, p
        w = full[0].box[2]
        eye = np.linalg.norm(full[0].landmarks[0] - full[0].landmarks[1])
        # the box is the face's own size, measured upright: the full model's box of a tilted face is
        # smaller by up to a quarter
        centre = (near[0].box[:2] + near[0].box[2:]) / 2 - (_x0y0x1y1(full[0])[:2] + _x0y0x1y1(full[0])[2:]) / 2
        assert np.abs(centre).max() < 0.12 * w and 0.9 < (near[0].box[2] - near[0].box[0]) / w < 1.4, (p, near[0].box, full[0].box)
        assert np.abs(near[0].landmarks[:4] - full[0].landmarks[:4]).max() < 0.25 * eye, p
        level += near[0].level
        if near[0].level:
            assert detector.upright(tile, near[0]) is near[0]
        # not turned, the same search leaves the landmarks to `upright`
        assert not any(d.level for d in detector.detect_near(tile, _x0y0x1y1(full[0])))
    assert level >= 5


def test_memory_follows_a_tilted_head_without_the_full_model(photos):
    det = FaceDetector()
    calls = []
    full_detect = det.full.detect
    det.full.detect = lambda img: calls.append(1) or full_detect(img)
    mem = FaceMemory(full_every=10, still_diff=0)
    box = (0, 0, TILE[1], TILE[0])
    flat = _tile(det, photos[0], face_w=64, at=(150, 50))
    tile = _turned(flat, find_faces(det, flat)[0], 20)
    first = _primed(mem, det, box, tile)
    assert len(first) == 1 and abs(roll_degrees(first[0].landmarks)) > 12
    del calls[:]
    moved = mem.find(det, box, np.roll(tile, 14, axis=1))
    assert mem.counts["roi"] == 1 and calls == [], (mem.counts, calls)
    assert len(moved) == 1 and abs(moved[0].box[0] - first[0].box[0] - 14) < 5
    assert abs(roll_degrees(moved[0].landmarks) - roll_degrees(first[0].landmarks)) < 4


@pytest.mark.parametrize("start, then", [(0, 28), (25, 0), (-25, 20)])
def test_memory_follows_a_head_that_tilts_between_captures(photos, start, then):
    """A head that tilted (or straightened) since the last look is looked for again turned as it is
    now, with the short-range model: no full pass over the tile (an upright pass on the square about
    a face still tilted a little may follow, as on any face), its landmarks as tilted as the head."""
    det = FaceDetector()
    calls = []
    full_detect = det.full.detect
    det.full.detect = lambda img: calls.append(img.shape[:2]) or full_detect(img)
    box = (0, 0, TILE[1], TILE[0])
    followed = 0
    for p in photos[:6]:
        flat = _tile(det, p, face_w=64, at=(150, 50))
        face = find_faces(det, flat)[0]
        mem = FaceMemory(full_every=10, still_diff=0)
        first = _primed(mem, det, box, _turned(flat, face, start) if start else flat)
        if not (len(first) == 1 and mem._seen[place(box)].trusted):
            continue  # the two models part on this face: it stays on the full one (_agrees)
        del calls[:]
        tile = _turned(flat, face, then) if then else flat
        now = mem.find(det, box, tile)
        assert mem.counts["roi"] == 1 and tile.shape[:2] not in calls, (p, mem.counts, calls)
        truth = find_faces(det, tile)[0]
        assert len(now) == 1 and abs(roll_degrees(now[0].landmarks) - roll_degrees(truth.landmarks)) < 5, p
        eye = np.linalg.norm(truth.landmarks[0] - truth.landmarks[1])
        assert np.abs(now[0].landmarks[:4] - truth.landmarks[:4]).max() < 0.25 * eye, p
        followed += 1
    assert followed >= 3


def test_a_tilted_head_is_aligned_upright(data_dir):
    """Class photos turned by 20 and -25 degrees: BlazeFace's landmarks on the turned photo miss the
    turn by several degrees (18 on one), those found again upright (FaceDetector.upright) by less."""
    from bot.faces import FaceDetector, roll_degrees
    det = FaceDetector()
    first, upright = [], []
    for p in sorted((data_dir / "seed-faces").glob("*/*.jpg"))[::60][:12]:
        img = cv2.imread(str(p))
        h, w = img.shape[:2]
        base = det.detect(img)
        if not base:
            continue
        truth = roll_degrees(base[0].landmarks)
        for angle in (20, -25):
            turned = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), (w, h))
            found = det.detect(turned)
            assert found, p
            first.append(abs(roll_degrees(found[0].landmarks) - (truth - angle)))
            upright.append(abs(roll_degrees(det.upright(turned, found[0]).landmarks) - (truth - angle)))
    assert len(first) >= 20
    assert np.mean(upright) < 0.75 * np.mean(first) and max(upright) < 0.5 * max(first), (first, upright)
    # an upright face is left as it is
    img = cv2.imread(str(sorted((data_dir / "seed-faces").glob("*/*.jpg"))[0]))
    d = det.detect(img)[0]
    assert det.upright(img, d, min_roll=90.0) is d
