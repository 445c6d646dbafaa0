import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Real data lives beside the project (../shared/data); never copied into it.
DATA = Path(os.environ.get("ROLLCALL_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"shared data not found at {DATA} (set ROLLCALL_DATA)")
    return DATA


@pytest.fixture(scope="session")
def roster(data_dir):
    """The seed class's roster, read as `rollcall` reads a roster."""
    from bot.roster import load_roster

    return load_roster(data_dir / "seed-roster.csv")


@pytest.fixture(scope="session")
def detector():
    """The face detector, loaded once for the suite (it keeps no state between calls)."""
    from bot.faces import FaceDetector

    return FaceDetector()


@pytest.fixture(scope="session")
def models():
    """The packaged models without the name reader (its label cache would carry from test to test),
    loaded once for the suite: detector, embedder, thresholds, verifier."""
    from bot.config import load_settings
    from bot.session import load_models

    return load_models(load_settings(), ocr=False)


@pytest.fixture(scope="session")
def verifier(models):
    """The verifier (dlib's ResNet), skipped where dlib is not installed."""
    if models.verifier is None:
        pytest.skip("the packaged thresholds have no verifier rule")
    return models.verifier
