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
