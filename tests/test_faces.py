"""Detection, alignment and the size / blur gates on real photos."""
import cv2
import numpy as np
import pytest

from bot.faces import TEMPLATE_4, DetectorError, FaceDetector, blur_score, find_faces, similarity_transform


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


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
