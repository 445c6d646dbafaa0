"""The bundled demo recording is what the README promises: six tiles a capture, found by the pipeline."""
import cv2
import pytest

from bot.config import PROJECT_DIR, TileSettings
from bot.tiles import segment

DEMO = PROJECT_DIR / "demo" / "lecture.mp4"


def frames():
    cap = cv2.VideoCapture(str(DEMO))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        yield frame
    cap.release()


def test_demo_exists_and_is_small():
    assert DEMO.is_file() and DEMO.stat().st_size < 2_000_000


@pytest.mark.parametrize("index", [0, 5, 13])
def test_demo_frames_segment_into_six_tiles(index):
    frame = list(frames())[index]
    tiles = segment(frame, TileSettings())
    assert len(tiles) == 6, [t.box for t in tiles]
    assert [t.camera_off for t in tiles] == [False] * 5 + [True]
