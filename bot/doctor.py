"""`rollcall doctor`: each dependency of a session checked on its own, with what is wrong."""
from __future__ import annotations

import tempfile
from pathlib import Path

from .config import Settings


def _try(fn):
    try:
        return True, fn()
    except Exception as e:  # noqa: BLE001 - every failure becomes a line of the report
        return False, str(e).splitlines()[0] if str(e) else type(e).__name__


def checks(home: Path, settings: Settings) -> list[tuple[str, bool, str]]:
    """(name, ok, detail) for each check, in the order a session needs them."""
    rows = []
    for name, check in CHECKS:
        ok, detail = _try(lambda: check(home, settings))
        rows.append((name, ok, detail))
    return rows


def _model(home: Path, settings: Settings) -> str:
    from .decide import load_thresholds
    from .embed import Embedder
    rec = settings.recognition
    e = Embedder(rec.model_path())
    th = load_thresholds(rec.thresholds_path(), rec.t_verify, rec.margin)
    return f"{rec.model_path()} ({e.dim}-d, input {e.side}px), t_verify {th.t_verify:.3f}, margin {th.margin:.3f}"


def _enrolled(home: Path, settings: Settings) -> str:
    """Every enrolled vector made by this face model and this verifier recipe, and nobody enrolled
    before the verifier."""
    from .embed import VIEWS, fingerprint
    from .home_files import DB_NAME
    from .store import Store, is_verifier_model, made_by_another
    from .verify import Verifier
    rec = settings.recognition
    if not (home / DB_NAME).exists():
        return "nobody enrolled yet: rollcall enroll PHOTOS_DIR"
    with Store(home) as store:
        made_by = store.embedding_models()
        face_ids, _ = store.embeddings()
        verifier_ids, _ = store.embeddings(verifier=True)
    total = sum(n for m, n in made_by.items() if not is_verifier_model(m))
    stale = made_by_another(made_by, fingerprint(rec.model_path(), VIEWS))
    if stale:
        raise RuntimeError(f"{stale} of {total} enrolled photo vectors were made by another face model: "
                           "run `rollcall enroll PHOTOS_DIR` again")
    older = made_by_another(made_by, Verifier.load().fingerprint, verifier=True)
    if older:
        raise RuntimeError(f"{older} enrolled verifier vectors were made by another verifier recipe: "
                           "run `rollcall enroll PHOTOS_DIR` again")
    unverified = set(face_ids.tolist()) - set(verifier_ids.tolist())
    if unverified:
        raise RuntimeError(f"{len(unverified)} students were enrolled before the verifier: "
                           "run `rollcall enroll PHOTOS_DIR` again")
    return f"{total} enrolled photo vectors, all made by this model, and the verifier's"


def _detector(home: Path, settings: Settings) -> str:
    from .faces import DETECTOR_FILE, FaceDetector
    FaceDetector()
    return str(DETECTOR_FILE)


def _ocr(home: Path, settings: Settings) -> str:
    from .ocr import NameReader
    NameReader()
    return "rapidocr models load from its wheel"


def _display(home: Path, settings: Settings) -> str:
    from .sources import ScreenSource
    cap = settings.capture
    frame = ScreenSource(cap.monitor, cap.region, cap.every_s).grab()
    return f"captured {frame.shape[1]}x{frame.shape[0]}"


def _writable(home: Path, settings: Settings) -> str:
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=home):
        pass
    return f"{home} is writable"


# each check on its own: (name, check(home, settings) -> detail, raising what is wrong)
CHECKS = (("model", _model), ("enrolled", _enrolled), ("detector", _detector), ("ocr", _ocr),
          ("display", _display), ("home", _writable))
