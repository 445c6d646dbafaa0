"""The rollcall home's folder and its files beside the database (alerts' evidence JPEGs, running sessions'
lock files), kept to the user alone: nothing followed through a symbolic link, nobody else's file touched."""
from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from .errors import StoreError

try:                                    # the lock that shows a session's process is alive
    import fcntl
except ImportError:                     # Windows
    fcntl = None
    import msvcrt

DB_NAME = "rollcall.db"
EVIDENCE_DIR = "evidence"
RUNNING_DIR = "running"                 # <home>/running/<session>.lock, held while a session runs
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
EVIDENCE_REL = re.compile(EVIDENCE_DIR + r"/(\d+)/(\d+)\.jpg")


def is_evidence_rel(rel) -> bool:
    """Whether `rel` has the one shape rollcall gives evidence paths: evidence/<session>/<alert>.jpg."""
    return isinstance(rel, str) and EVIDENCE_REL.fullmatch(rel) is not None


def real_dir(path: Path) -> bool:
    """A directory that is not a symbolic link (nothing is followed out of the home)."""
    return not path.is_symlink() and path.is_dir()


def tighten(path: Path, mode: int) -> None:
    """Take away every permission bit outside `mode` (group and other access); a symlink, a file of
    another user (who alone can change it) or one already private is left as it is."""
    if path.is_symlink() or not path.exists():
        return
    st = path.stat()
    if st.st_mode & 0o777 & ~mode == 0 or (hasattr(os, "geteuid") and st.st_uid != os.geteuid()):
        return
    try:
        os.chmod(path, st.st_mode & mode)
    except OSError as e:
        raise StoreError(f"{path}: cannot make it private ({e.strerror or e})") from e


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a new file readable by the user alone; a symlink in its place is refused."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_BINARY", 0), PRIVATE_FILE)
    with os.fdopen(fd, "wb") as fh:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, PRIVATE_FILE)   # the umask may have taken bits away, never added any
        fh.write(data)


def try_lock(fd: int) -> bool:
    """Take the exclusive lock on an open lock file without waiting; False if a process holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return True
    except OSError:
        return False


class HomeFiles:
    """The files under one rollcall home other than the database's rows: the folder itself, evidence
    JPEGs under evidence/<session>/<alert>.jpg, and the lock file each running session holds."""

    def __init__(self, home: Path):
        self.home = home
        self.db_path = home / DB_NAME
        self.evidence_root = home / EVIDENCE_DIR
        self._held: dict[int, int] = {}    # session id -> fd of its held lock file

    # ------------------------------------------------------------------------- folder and database
    def make(self) -> None:
        """The home folder, private to the user (an existing one is tightened), and the database file
        created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the same mode."""
        try:
            self.home.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        except OSError as e:
            raise StoreError(f"{self.home}: cannot create the rollcall home ({e.strerror or e})") from e
        if not self.home.is_dir():
            raise StoreError(f"{self.home}: not a directory")
        tighten(self.home, PRIVATE_DIR)
        if not os.access(self.home, os.W_OK | os.X_OK):
            raise StoreError(f"{self.home}: not writable")
        if not self.db_path.exists() and not self.db_path.is_symlink():
            try:
                os.close(os.open(self.db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
            except FileExistsError:
                pass                       # another process made it first
            except OSError as e:
                raise StoreError(f"{self.db_path}: cannot create ({e.strerror or e})") from e

    def make_private(self) -> None:
        """Group and other access taken from the database files and rollcall's evidence."""
        for suffix in ("", "-wal", "-shm"):
            tighten(self.home / (DB_NAME + suffix), PRIVATE_FILE)
        for folder in (self.evidence_root, self.home / RUNNING_DIR):
            if real_dir(folder):
                tighten(folder, PRIVATE_DIR)
        for session_dir, files in self.evidence_tree():
            tighten(session_dir, PRIVATE_DIR)
            for f in files:
                tighten(f, PRIVATE_FILE)

    # -------------------------------------------------------------------------------- evidence
    def write_evidence(self, session_id: int, alert_id: int, jpeg: bytes) -> tuple[str, Path]:
        """Write an alert's evidence JPEG (0600, in 0700 folders): its path relative to home and the
        file. A failed write (a full disk) leaves no partial file and raises StoreError."""
        rel = f"{EVIDENCE_DIR}/{int(session_id)}/{int(alert_id)}.jpg"
        folder = self._evidence_folder(int(session_id))
        path, tmp = folder / f"{int(alert_id)}.jpg", folder / f"{int(alert_id)}.tmp"
        try:
            write_private(tmp, jpeg)
            os.replace(tmp, path)  # a reader never sees half a file
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise StoreError(f"{path}: cannot write evidence ({e.strerror or e})") from e
        return rel, path

    def _evidence_folder(self, session_id: int) -> Path:
        """<home>/evidence/<session>, made private; a symlink (or a file) in either place is refused."""
        folder = self.evidence_root / str(int(session_id))
        for d in (self.evidence_root, folder):
            try:
                d.mkdir(mode=PRIVATE_DIR, exist_ok=True)
            except OSError as e:
                raise StoreError(f"{d}: cannot create the evidence folder ({e.strerror or e})") from e
            if not real_dir(d):
                raise StoreError(f"{d}: not a folder of rollcall's own (a symbolic link or a file); "
                                 "evidence is not written through it")
        return folder

    def evidence_path(self, rel: str | None) -> Path | None:
        """The file an alert's recorded evidence path names, if it is one rollcall wrote: the shape
        evidence/<session>/<alert>.jpg, a regular file in real folders under home; else None (a path
        edited to `../../etc/passwd` or a symlink is never read or deleted)."""
        if not is_evidence_rel(rel):
            return None
        path = self.home / rel
        if not (real_dir(self.evidence_root) and real_dir(path.parent)):
            return None
        if path.is_symlink() or not path.is_file():
            return None
        return path

    def read_evidence(self, rel: str | None) -> bytes | None:
        """The evidence JPEG of `rel` (see evidence_path), or None if it is not rollcall's or is gone."""
        path = self.evidence_path(rel)
        if path is None:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
            with os.fdopen(fd, "rb") as fh:
                return fh.read()
        except OSError:
            return None

    def delete_evidence(self, rels: list[str]) -> int:
        """Delete the recorded evidence files that are rollcall's (evidence_path); others stay."""
        n = 0
        for rel in rels:
            path = self.evidence_path(rel)
            if path is not None:
                path.unlink(missing_ok=True)
                n += 1
        return n

    def evidence_tree(self) -> list[tuple[Path, list[Path]]]:
        """rollcall's evidence under home: (session folder, its <alert>.jpg / <alert>.tmp files), real
        folders and regular files of those names only; nothing behind a symlink, nobody else's file."""
        if not real_dir(self.evidence_root):
            return []
        tree = []
        for folder in sorted(self.evidence_root.iterdir()):
            if not folder.name.isdigit() or not real_dir(folder):
                continue
            files = [f for f in sorted(folder.iterdir())
                     if re.fullmatch(r"\d+\.(jpg|tmp)", f.name) and not f.is_symlink() and f.is_file()]
            tree.append((folder, files))
        return tree

    def sweep_evidence(self, recorded: set[str], alert_ids: set[int]) -> int:
        """Delete rollcall's evidence files that no alert row records (`recorded` paths) nor belongs to
        (`alert_ids`), and session folders left empty. Files and folders of other names, and anything
        behind a symlink, are left alone."""
        n = 0
        for folder, files in self.evidence_tree():
            for f in files:
                rel = f"{EVIDENCE_DIR}/{folder.name}/{f.name}"
                if rel in recorded or int(f.name.split(".")[0]) in alert_ids:
                    continue
                f.unlink(missing_ok=True)
                n += 1
            if not any(folder.iterdir()):
                folder.rmdir()
        return n

    # --------------------------------------------------------------------------- session locks
    def lock_path(self, session_id: int) -> Path:
        return self.home / RUNNING_DIR / f"{int(session_id)}.lock"

    def hold(self, session_id: int) -> None:
        """Take the session's lock file, held until release (or this process ends)."""
        path = self.lock_path(session_id)
        try:
            path.parent.mkdir(mode=PRIVATE_DIR, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE)
        except OSError as e:
            raise StoreError(f"{path}: cannot create the session's lock file ({e.strerror or e})") from e
        if not try_lock(fd):
            os.close(fd)
            raise StoreError(f"{path}: held by another process")
        self._held[int(session_id)] = fd

    def release(self, session_id: int) -> None:
        fd = self._held.pop(int(session_id), None)
        if fd is not None:
            self.lock_path(session_id).unlink(missing_ok=True)
            os.close(fd)               # closing lets the lock go

    def release_all(self) -> None:
        for sid in list(self._held):
            self.release(sid)

    def is_running(self, session_id: int) -> bool:
        """Whether a live process holds the session's lock file (this one, or another process)."""
        if int(session_id) in self._held:
            return True
        try:
            fd = os.open(self.lock_path(session_id), os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return False               # no lock file: its process is gone (or predates lock files)
        try:
            return not try_lock(fd)
        finally:
            os.close(fd)
