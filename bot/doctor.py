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
    from .decide import load_thresholds
    from .embed import VIEWS, Embedder, fingerprint
    from .faces import DETECTOR_FILE, FaceDetector
    from .ocr import NameReader
    from .sources import ScreenSource

    rec = settings.recognition
    rows = []

    def model():
        e = Embedder(rec.model_path())
        th = load_thresholds(rec.thresholds_path(), rec.t_verify, rec.margin)
        return f"{rec.model_path()} ({e.dim}-d, input {e.side}px), t_verify {th.t_verify:.3f}, margin {th.margin:.3f}"

    def enrolled():
        from .store import DB_NAME, Store, is_verifier_model, made_by_another
        from .verify import Verifier
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

    def detector():
        FaceDetector()
        return str(DETECTOR_FILE)

    def ocr():
        NameReader()
        return "rapidocr models load from its wheel"

    def display():
        frame = ScreenSource(settings.capture.monitor, settings.capture.region, settings.capture.every_s).grab()
        return f"captured {frame.shape[1]}x{frame.shape[0]}"

    def writable():
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=home):
            pass
        return f"{home} is writable"

    for name, fn in (("model", model), ("enrolled", enrolled), ("detector", detector), ("ocr", ocr),
                     ("display", display), ("home", writable)):
        ok, detail = _try(fn)
        rows.append((name, ok, detail))
    return rows
