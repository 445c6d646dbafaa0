"""rollcall's command line: parses arguments, calls the library, prints. No pipeline logic here."""
from __future__ import annotations

import json
import logging
import math
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__
from .config import MAX_DAYS, MAX_EVERY_S, ConfigError, Settings, load_settings
from .display import VERBOSE_ENV, PlainConsole, VisibleFormatter, quiet_native_libraries, styled, visible
from .errors import RollcallError

class UserError(RollcallError):
    """A bad argument the user gave; str() is the one line shown."""


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Check that each student on a Zoom / Google Meet gallery is really that student.")
roster_app = typer.Typer(no_args_is_help=True, help="The class roster (student_id, name, aliases, email).")
alerts_app = typer.Typer(no_args_is_help=True, help="Alert channels.")
app.add_typer(roster_app, name="roster")
app.add_typer(alerts_app, name="alerts")

# markup off and hidden characters written out: names and paths printed here are user data
out = PlainConsole()
err = PlainConsole(stderr=True)


class Ctx:
    def __init__(self, home: Path, config: Path | None, verbose: bool, quiet: bool):
        self.home, self.config_path, self.verbose, self.quiet = home, config, verbose, quiet
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            path = self.config_path
            if path is None and (self.home / "settings.toml").exists():
                path = self.home / "settings.toml"
            self._settings = load_settings(path)
        return self._settings

    def store(self):
        from .store import Store
        # a settings file that does not load stops every command before the store is opened, even
        # one (forget, roster import) that needs no setting: the user meant some other setup
        return Store(self.home, reference_faces=self.settings.retention.reference_faces).open()

    def progress(self) -> Progress:
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err, disable=self.quiet or not err.is_terminal, transient=False)


def _default_home() -> Path:
    if os.environ.get("ROLLCALL_HOME"):
        return Path(os.environ["ROLLCALL_HOME"])
    from platformdirs import user_data_dir
    return Path(user_data_dir("rollcall"))


def _version(value: bool):
    if value:
        out.print(f"rollcall {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    home: Optional[Path] = typer.Option(None, "--home", help="Data folder (default $ROLLCALL_HOME, else the user data dir)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Settings file (default <home>/settings.toml, else packaged defaults)."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="More detail, per-capture lines."),
    quiet: bool = typer.Option(False, "--quiet", help="Only errors and results."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
):
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    quiet_native_libraries()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(VisibleFormatter("%(levelname)s %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
                        handlers=[handler])
    logging.getLogger("rapidocr").setLevel(logging.WARNING)
    # a dropped tick (capture slower than the interval) is expected and counted, not worth a line each
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    ctx.obj = Ctx((home or _default_home()).expanduser(), config, verbose, quiet)


def _pipeline(c: Ctx, ocr: bool = True, live: bool = True):
    """Models, roster and enrolled gallery, loaded once before the first capture. Not `live` (a replay,
    one screenshot): the verifier has no time budget, every face waiting for it is judged in the
    capture that shows it, so a recording's verdicts do not depend on how busy the machine is."""
    import dataclasses

    from .session import Pipeline, enrolled_galleries, load_models
    from .store import made_by_another
    settings = c.settings
    if not live:
        settings = dataclasses.replace(settings, recognition=dataclasses.replace(
            settings.recognition, verifier_budget_ms=math.inf, capture_budget_ms=math.inf))
    models = load_models(settings, ocr=ocr)
    with c.store() as store:
        roster = store.list_students()
        ids, vecs = store.embeddings()
        vids, vvecs = store.embeddings(verifier=True)
        made_by = store.embedding_models()
    if len(ids) and vecs.shape[1] != models.embedder.dim:
        raise ConfigError(f"{settings.recognition.model}: the model gives {models.embedder.dim}-d vectors but the "
                          f"students were enrolled with {vecs.shape[1]}-d ones; run `rollcall enroll` again")
    stale = made_by_another(made_by, models.embedder.fingerprint)
    if stale:
        raise ConfigError(f"{settings.recognition.model}: {stale} of the {len(ids)} enrolled photo vectors were made "
                          "by another face model; run `rollcall enroll PHOTOS_DIR` again (it replaces them)")
    if models.verifier is not None:
        older = made_by_another(made_by, models.verifier.fingerprint, verifier=True)
        if older:
            raise ConfigError(f"{c.home / 'rollcall.db'}: {older} enrolled verifier vectors were made by another "
                              "verifier recipe; run `rollcall enroll PHOTOS_DIR` again (it replaces them)")
        missing = sorted(set(ids.tolist()) - set(vids.tolist()))
        if missing:
            raise ConfigError(f"{c.home / 'rollcall.db'}: {len(missing)} enrolled students ({', '.join(missing[:3])}"
                              f"{', ...' if len(missing) > 3 else ''}) were enrolled before the verifier; run "
                              "`rollcall enroll PHOTOS_DIR` again (it keeps what is stored and adds the rest)")
    return Pipeline(settings, models, roster, *enrolled_galleries(models, ids, vecs, vids, vvecs))


# ------------------------------------------------------------------------------------- enroll, roster
@app.command()
def enroll(ctx: typer.Context,
           photos_dir: Path = typer.Argument(..., help="PHOTOS_DIR/<Student Name>/*.jpg|png"),
           roster: Optional[Path] = typer.Option(None, "--roster", help="Roster CSV (student_id,name,aliases,email)."),
           class_name: Optional[str] = typer.Option(None, "--class", help="Class name to file the students under."),
           max_photos: Optional[int] = typer.Option(None, "--max-photos", min=1,
                                                    help="At most N photos per student, spread evenly over the folder (name order).")):
    """Enroll students from photo folders: stores face embeddings, never the photos."""
    from .decide import load_thresholds
    from .embed import Embedder
    from .enroll import enroll_folder, mean_similarity, photos_of, plan
    from .faces import FaceDetector
    from .roster import load_roster
    from .verify import Verifier
    c: Ctx = ctx.obj
    settings = c.settings
    students = load_roster(roster) if roster else None
    pairs = plan(photos_dir, students)
    embedder = Embedder(settings.recognition.model_path())
    alike = load_thresholds(settings.recognition.thresholds_path()).alike
    detector = FaceDetector()
    verifier = Verifier.load()
    results = []
    with c.store() as store:
        if students:
            store.upsert_students(students, class_name)
        store.upsert_students([s for _, s in pairs], class_name)
        total = sum(len(photos_of(f, max_photos)) for f, _ in pairs)
        with c.progress() as prog:
            task = prog.add_task("enrolling", total=total)
            for folder, student in pairs:
                r = enroll_folder(folder, student, detector, embedder, settings.faces,
                                  tick=lambda: prog.advance(task), max_photos=max_photos, verifier=verifier)
                if r.usable:
                    store.add_embeddings(student.student_id, np.stack(r.vectors), r.hashes, r.qualities, r.thumbs,
                                         model=embedder.fingerprint)
                    store.add_embeddings(student.student_id, np.stack(r.verifier_vectors), r.hashes,
                                         r.qualities, model=verifier.fingerprint)
                results.append(r)
    table = Table(title=f"enrolled from {photos_dir}")
    for col in ("student", "id", "photos", "usable", "skipped"):
        table.add_column(col)
    failed = []
    for r in results:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(r.skipped.items())) or "-"
        table.add_row(r.name, r.student_id, str(r.photos), str(r.usable), skipped)
        if not r.usable:
            failed.append(r)
    out.print(table)
    for r in results:
        sim = mean_similarity(r.vectors)
        if alike is not None and sim is not None and r.usable >= 5 and sim >= alike:
            err.print(f"rollcall: note: {photos_dir / r.name}: the {r.usable} photos of {r.name} look taken at one "
                      f"sitting (mean similarity {sim:.2f} >= {alike:.2f}); add photos from other days, rooms "
                      "and clothes, or this student may go unrecognised in another look", soft_wrap=True)
    for r in failed:
        err.print(f"rollcall: error: {photos_dir / r.name}: no usable face photo for {r.name} ({r.photos} photos)",
                  soft_wrap=True)
    if failed:
        raise typer.Exit(1)


@roster_app.command("import")
def roster_import(ctx: typer.Context, csv: Path = typer.Argument(..., help="Roster CSV."),
                  class_name: Optional[str] = typer.Option(None, "--class", help="Class name.")):
    """Add or update students from a roster CSV."""
    from .roster import load_roster
    students = load_roster(csv)
    with ctx.obj.store() as store:
        n = store.upsert_students(students, class_name)
    out.print(f"{n} students imported from {csv}")


@roster_app.command("list")
def roster_list(ctx: typer.Context):
    """List enrolled students and how many photo embeddings each has."""
    with ctx.obj.store() as store:
        students = store.list_students()
        ids, _ = store.embeddings()
    counts = {sid: int((ids == sid).sum()) for sid in set(ids.tolist())} if len(ids) else {}
    table = Table()
    for col in ("student_id", "name", "aliases", "embeddings"):
        table.add_column(col)
    for s in students:
        table.add_row(s.student_id, s.name, ";".join(s.aliases), str(counts.get(s.student_id, 0)))
    out.print(table)


# ------------------------------------------------------------------------------------- run, replay
def _session(c: Ctx, source: str, interval: float, class_name: str | None, live: bool):
    from .alerts import build_channels
    from .alerts.worker import AlertDispatcher
    from .session import Session, delivery_recorder
    settings = c.settings
    channels = build_channels(settings.alerts, print_fn=lambda line: err.print(line, soft_wrap=True))
    pipeline = _pipeline(c, live=live)
    store = c.store()
    dispatcher = AlertDispatcher(settings.alerts, channels, record=delivery_recorder(store))
    sess = Session(pipeline, store, dispatcher, settings, class_name, source, interval)
    return sess


def _finish(c: Ctx, sess, status: str) -> None:
    pending = sess.dispatcher.close(timeout=10)
    sess.close(status)
    if pending:
        err.print(f"rollcall: {pending} alert deliveries still pending at exit (recorded as not delivered)")
    sess.store.close()
    if not c.quiet:
        skipped = f", {sess.skipped} not stored (see the warnings)" if sess.skipped else ""
        out.print(f"session {sess.id}: {sess.captures} captures{skipped}, {sess.alerts} alerts  "
                  f"(rollcall report {sess.id})")


@app.command()
def replay(ctx: typer.Context,
           source: Path = typer.Argument(..., help="A video file or a folder of screenshots."),
           every: Optional[float] = typer.Option(None, "--every", help="Seconds of video time between samples."),
           class_name: Optional[str] = typer.Option(None, "--class", help="Class name for the session.")):
    """Run the bot over a recording (video sampled every N s) or a folder of screenshots."""
    from .session import replay as run_replay
    from .sources import open_source, source_label
    c: Ctx = ctx.obj
    interval = _positive(every, "--every", MAX_EVERY_S, "seconds") or c.settings.capture.every_s
    frames = open_source(source, interval)
    first = next(frames, None)
    if first is None:
        raise UserError(f"{source}: no frames could be read")
    sess = _session(c, source_label(source), interval, class_name, live=False)
    status = "done"
    try:
        with c.progress() as prog:
            task = prog.add_task("replaying", total=_frame_count(source, interval))
            run_replay(sess, _chain(first, frames), tick=lambda: prog.advance(task))
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        _finish(c, sess, status)


def _positive(value: float | None, option: str, high: float, unit: str) -> float | None:
    """An option's number checked before anything is stored: finite, above 0, at most `high`."""
    if value is not None and not (math.isfinite(value) and 0 < value <= high):
        raise UserError(f"{option}: must be a number of {unit} above 0 and at most {high:g}, got {value}")
    return value


def _chain(first, rest):
    yield first
    yield from rest


def _frame_count(source: Path, every: float) -> int | None:
    """How many frames a replay will take (for the progress bar)."""
    import cv2
    from .sources import IMAGE_SUFFIXES
    if source.is_dir():
        return sum(1 for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    cap = cv2.VideoCapture(str(source))
    n, fps = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return int(n / fps / every) + 1 if n > 0 and fps > 0 else None


@app.command()
def run(ctx: typer.Context,
        monitor: Optional[int] = typer.Option(None, "--monitor", help="Monitor number (1 = first, 0 = all)."),
        region: Optional[str] = typer.Option(None, "--region", help="X,Y,W,H of the screen to capture."),
        every: Optional[float] = typer.Option(None, "--every", help="Seconds between captures."),
        class_name: Optional[str] = typer.Option(None, "--class", help="Class name for the session."),
        minutes: Optional[float] = typer.Option(None, "--minutes", help="Stop after this many minutes.")):
    """Watch the live screen until Ctrl-C, SIGTERM or --minutes."""
    from .sources import ScreenSource
    c: Ctx = ctx.obj
    cap = c.settings.capture
    every = _positive(every, "--every", MAX_EVERY_S, "seconds")
    minutes = _positive(minutes, "--minutes", MAX_DAYS * 24 * 60, "minutes")
    reg = cap.region
    if region:
        try:
            reg = tuple(int(v) for v in region.split(","))
            assert len(reg) == 4
        except (ValueError, AssertionError):
            raise UserError(f"--region: expected X,Y,W,H in whole pixels, got {region!r}") from None
    screen = ScreenSource(monitor if monitor is not None else cap.monitor, reg, every or cap.every_s)
    screen.grab()  # no display -> one clear line before any model loads or session row is written
    sess = _session(c, f"screen:{screen.monitor}", screen.every_s, class_name, live=True)
    status = "done"
    try:
        screen.run(lambda t, frame: sess.capture(frame, datetime.now(timezone.utc)), minutes=minutes)
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        _finish(c, sess, status)


@app.command()
def demo(ctx: typer.Context):
    """The bundled class and lecture: enrolled and replayed in a new home; prints the report and the
    alert, writes the HTML report."""
    from types import SimpleNamespace

    from . import report as rep
    from .demo import bundled, new_home
    from .report import terminal
    from .report.metrics import session_report
    c: Ctx = ctx.obj
    d = bundled()
    home = new_home()
    here = SimpleNamespace(obj=Ctx(home, c.config_path, c.verbose, c.quiet))
    out.print(f"Enrolling the demo class from {d.photos} into {home}")
    enroll(here, d.photos, roster=d.roster, class_name=d.class_name, max_photos=None)
    out.print(f"Replaying {d.lecture.name}: one capture every {d.every_s:g} s of video")
    replay(here, d.lecture, every=d.every_s, class_name=d.class_name)
    with here.obj.store() as store:
        terminal.print_summary(session_report(store, "last"), out)
        path = rep.write(store, "last", "html", home / "report.html")
    out.print(f"wrote {path}")
    out.print(f"this demo's data stays in {home}: `rollcall --home {home} report last`, or delete the folder")


# ------------------------------------------------------------------------------------- reports
@app.command()
def sessions(ctx: typer.Context):
    """List sessions: id, class, source, start, end, captures, alerts."""
    from .report.terminal import stamp

    with ctx.obj.store() as store:
        rows = store.sessions()
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), collapse_padding=True, pad_edge=False)
    for col in ("id", "class", "source", "start", "end", "captures", "alerts", "status"):
        table.add_column(col, no_wrap=True, overflow="ellipsis", max_width=20 if col == "source" else None)
    for s in rows:
        # to the minute, the end's day left out when the session started that day: 80 columns hold it
        table.add_row(str(s.id), s.class_name or "", s.source, stamp(s.started, seconds=False),
                      stamp(s.ended, s.started, seconds=False), str(s.captures), str(s.alerts), s.status or "")
    out.print(table)


@app.command()
def report(ctx: typer.Context,
           session: str = typer.Argument(..., help="Session id or `last`."),
           fmt: Optional[str] = typer.Option(None, "--format",
                                             help="json, csv or html (default: -o's suffix, else json)."),
           output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write to this file.")):
    """Participation report of one session: a summary table in the terminal; with --format, that
    format on stdout; with -o, a file."""
    from . import report as rep
    from .report import terminal
    from .report.metrics import session_report
    if fmt is not None and fmt not in rep.FORMATS:
        raise UserError(f"--format: {fmt!r} is not one of {', '.join(rep.FORMATS)}")
    ref: int | str = int(session) if session.isdigit() else session
    with ctx.obj.store() as store:
        if output is None and fmt is None:
            terminal.print_summary(session_report(store, ref), out)
            return
        if output is None:
            # plain text, not rich: `report last --format json | jq` must get the JSON as it is
            sys.stdout.write(rep.render(store, ref, fmt))
            return
        suffix = output.suffix.lower().lstrip(".")
        path = rep.write(store, ref, fmt or (suffix if suffix in rep.FORMATS else "json"), output)
    out.print(f"wrote {path}")


# ------------------------------------------------------------------------------------- evaluate
@app.command()
def evaluate(ctx: typer.Context,
             directory: Path = typer.Argument(..., help="DIR/<Name>/*.jpg: one folder per identity."),
             folds: int = typer.Option(5, "--folds", help="K folds by photo within each identity."),
             as_json: bool = typer.Option(False, "--json", help="Print the JSON of DESIGN.md."),
             peer: bool = typer.Option(False, "--peer", help="Also the dlib face_recognition peer on the same folds."),
             shrink: Optional[int] = typer.Option(None, "--shrink-px", help="Probe faces shrunk to this width (px), JPEG q40."),
             enroll: Optional[int] = typer.Option(None, "--enroll",
                                                  help="K photos per identity enrolled at random, the rest judged by the cascade."),
             draws: int = typer.Option(5, "--draws", help="With --enroll: random draws of the enrolled photos.")):
    """Face-model accuracy: K-fold identification, or K enrolled photos judged by the bot's cascade."""
    from . import evaluate as ev
    from .decide import load_thresholds
    c: Ctx = ctx.obj
    rec = c.settings.recognition
    # identities are scored by the rule the bot's thresholds were calibrated for
    th = load_thresholds(rec.thresholds_path(), rec.t_verify, rec.margin)
    if enroll is not None and shrink is not None:
        raise UserError("--shrink-px: not with --enroll")
    total = len(ev.list_photos(directory)[1]) if directory.is_dir() else None
    with c.progress() as prog:
        task = prog.add_task("evaluating", total=total)
        if enroll is None:
            result = ev.evaluate(directory, rec.model_path(), folds=folds, peer=peer, shrink_px=shrink,
                                 tick=lambda: prog.advance(task), top_k=th.top_k, head=th.head)
        else:
            from .few_shot import evaluate_enrolled
            result = evaluate_enrolled(directory, enroll, th, rec.model_path(), draws=draws, peer=peer,
                                       tick=lambda: prog.advance(task), faces=c.settings.faces)
    if as_json:
        out.print_json(json.dumps(result))
    else:
        _print_eval(result)


def _print_eval(r: dict) -> None:
    how = f"{r['folds']} folds" if "folds" in r else f"{r['enroll']} enrolled each, {r['draws']} draws"
    table = Table(title=f"{r['dir']}: {r['identities']} identities, {r['photos']} photos, {how}")
    for col in ("", "faces found", "identified", "TAR@FAR1%", "TAR@FAR0.1%", "ms/face"):
        table.add_column(col)
    rows = [("rollcall", r)] + ([("peer (dlib)", r["peer"])] if r.get("peer") else [])
    pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    for name, x in rows:
        table.add_row(name, pct(x["faces_found"]), pct(x["identification_accuracy"]),
                      pct(x["tar_at_far"]["0.01"]), pct(x["tar_at_far"]["0.001"]),
                      "-" if x["ms_per_face"] is None else f"{x['ms_per_face']:.1f}")
    out.print(table)
    if "own_face" in r:
        out.print(f"verifier ran on {r['verifier_share']:.1%} of faces")
        for key, label in (("own_face", "own face under own name"), ("other_face", "another's face under a name")):
            out.print(f"{label}: " + ", ".join(f"{v} {r[key][v]:.2%}" for v in r[key]))


# ------------------------------------------------------------------------------------- alerts, privacy
@alerts_app.command("test")
def alerts_test(ctx: typer.Context):
    """Send one test alert through every configured channel and print each result."""
    from .alerts import build_channels
    from .alerts.worker import send_test
    c: Ctx = ctx.obj
    results = send_test(build_channels(c.settings.alerts, print_fn=lambda line: out.print(line)))
    for r in results:
        status = styled("ok", "green") if r.ok else styled(f"failed: {r.error}", "red")
        out.print(f"{r.channel}: ", status, f" ({r.ms:.0f} ms)", sep="")
    failed = [r for r in results if not r.ok]
    if len(failed) == 1:
        raise UserError(f"alerts.{failed[0].channel}: {failed[0].error}")
    if failed:
        raise UserError(f"alerts.channels: {len(failed)} channels failed: "
                        + ", ".join(r.channel for r in failed))


@app.command()
def purge(ctx: typer.Context,
          older_than: Optional[float] = typer.Option(None, "--older-than", help="Days (default retention.days).")):
    """Delete observations, alerts and evidence older than DAYS; VACUUM so the bytes are gone."""
    c: Ctx = ctx.obj
    days = older_than if older_than is not None else c.settings.retention.days
    if not math.isfinite(days) or not 0 <= days <= MAX_DAYS:
        raise UserError(f"--older-than: must be a number of days from 0 to {MAX_DAYS:g}, got {days}")
    with c.store() as store:
        counts = store.purge(days)
    out.print("purged: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command()
def forget(ctx: typer.Context, student: str = typer.Argument(..., help="student_id or exact name.")):
    """Delete everything about one student (roster, embeddings, observations, alerts, evidence)."""
    with ctx.obj.store() as store:
        counts = store.forget(student)
    out.print(f"forgot {student}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


# ------------------------------------------------------------------------------------- inspect, doctor
@app.command()
def inspect(ctx: typer.Context,
            image: Path = typer.Argument(..., help="A screenshot of a meeting gallery."),
            as_json: bool = typer.Option(False, "--json", help="Print the JSON of DESIGN.md."),
            annotated: Optional[Path] = typer.Option(None, "-o", "--output", help="Write an annotated PNG.")):
    """One screenshot through the whole pipeline (nothing stored): tiles, names, faces, verdicts."""
    import cv2
    from .inspect_view import annotate, inspect_json
    c: Ctx = ctx.obj
    frame = cv2.imread(str(image))
    if frame is None:
        raise UserError(f"{image}: not a readable image")
    pipeline = _pipeline(c, live=False)
    obs, ms = pipeline.process(frame)
    if annotated:
        if not cv2.imwrite(str(annotated), annotate(frame, obs, pipeline.last_layout)):
            raise UserError(f"{annotated}: cannot write the annotated image")
    data = inspect_json(str(image), frame, obs, ms, pipeline.last_layout)
    if as_json:
        out.print_json(json.dumps(data))
    else:
        table = Table(title=f"{image}: {len(obs)} tiles, read as {pipeline.last_layout}"
                      + (" (not judged: the layout cannot be trusted)" if pipeline.last_layout.uncertain else ""))
        for col in ("#", "name", "student", "verdict", "sim", "face px"):
            table.add_column(col)
        for t in data["tiles"]:
            table.add_row(str(len(table.rows)), t["display_name"], t["student_id"] or "", t["verdict"],
                          "" if t["similarity"] is None else f"{t['similarity']:.2f}", str(t["face_px"]))
        out.print(table)


@app.command()
def doctor(ctx: typer.Context):
    """Check model, detector, OCR, display and home: each OK or what is wrong."""
    from .doctor import checks
    ok = True
    for name, good, detail in checks(ctx.obj.home, ctx.obj.settings):
        out.print(f"{name:10} ", styled("OK", "green") if good else styled("FAIL", "red"), f"  {detail}", sep="")
        ok &= good
    if not ok:
        raise typer.Exit(1)


# ------------------------------------------------------------------------------------- errors
def main(argv: list[str] | None = None) -> int:
    try:
        rc = app(args=argv, standalone_mode=False)
        return rc if isinstance(rc, int) else 0
    except RollcallError as e:
        err.print(visible(f"rollcall: error: {e}", one_line=True), soft_wrap=True)
        return 1
    except typer.Exit as e:
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        # usage errors of the click that typer vendors: shown as click shows them, exit 2
        if hasattr(e, "show") and getattr(e, "exit_code", None) == 2:
            e.show()
            return 2
        if type(e).__name__ == "Abort":
            return 130
        raise

if __name__ == "__main__":
    sys.exit(main())
