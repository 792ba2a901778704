"""Safe output places: writability checked up front, run directories claimed with a lock, umask-respecting files.

A run directory is *claimed* by creating ``RUN_DIR/run.lock`` exclusively (a
hard link of a finished temporary file, so the lock is never seen half
written).  The lock holds the pid, the host name and the start time of the run
that holds it, and is removed when the run ends (normally or with an error).
A second run into the same directory is refused while the holder lives; a lock
left by a killed run (its pid is not alive on this host) is taken over, with a
``note:`` on stderr.  A lock from another host cannot be checked and is
refused; delete the file if that run is known to be dead.

Only one process claims: under DDP the launching process (rank 0), before the
other ranks are started.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

LOCK_FILE = "run.lock"


def file_mode() -> int:
    """The mode a newly created file gets under the current umask (0o644 under 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable(path: str | Path, what: str = "--out", folder: bool = False) -> None:
    """Refuse, in one sentence, an output that cannot be written — before any data are read.

    ``path`` is a file to write (``folder=False``: its folder must be writable, or creatable in
    its nearest existing ancestor) or a folder to create or write in (``folder=True``).  The check
    writes and removes a probe file, so it also sees read-only file systems (where root's
    permissions do not help).
    """
    path = Path(path).expanduser()
    if path.is_dir() and not folder:
        raise ConfigError(f"{what} {path}: is a folder; expected a file name.")
    if path.exists() and folder and not path.is_dir():
        raise ConfigError(f"{what} {path}: is a file, not a folder; choose another {what}.")
    start = path if folder else path.parent
    probe_dir = _existing_ancestor(start.absolute())
    if not probe_dir.is_dir():
        raise ConfigError(f"{what} {path}: {probe_dir} is a file, not a folder; choose another {what}.")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe_dir, prefix=".contrastkit-probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot write in {probe_dir} ({exc.strerror or exc}); "
                          f"choose another {what}.") from None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _read_lock(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text())
        return holder if isinstance(holder, dict) else {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


@dataclass
class RunLock:
    """A claimed run directory; :meth:`release` removes the lock (and the directory if the claim made
    it and it is still empty)."""

    path: Path
    created_dir: bool = False
    released: bool = False

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        holder = _read_lock(self.path)
        if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)
        if self.created_dir:
            try:
                self.path.parent.rmdir()  # only if empty: a failure before anything was written leaves nothing
            except OSError:
                pass

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def claim_run_dir(out: str | Path) -> RunLock:
    """Create ``out`` if needed and claim it with ``out/run.lock`` (see the module docstring).

    A live holder is a ConfigError (one sentence, exit code 1); an unwritable place is one too.
    """
    out = Path(out)
    check_writable(out, "--out", folder=True)
    created = False
    try:
        if not out.is_dir():
            out.mkdir(parents=True)
            created = True
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create the run directory ({exc.strerror or exc}).") from None
    lock = out / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
          "argv": sys.argv[1:]}
    try:
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{LOCK_FILE}.", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        os.chmod(tmp, file_mode())
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write the lock file ({exc.strerror or exc}).") from None
    try:
        for _ in range(3):
            try:
                os.link(tmp, lock)  # atomic and exclusive: fails if a lock is there
                return RunLock(lock, created)
            except FileExistsError:
                pass
            holder = _read_lock(lock)
            if holder is None:
                continue  # released meanwhile: try again
            pid, host = holder.get("pid"), holder.get("host")
            if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
                # A killed run's lock: move it aside (only one claimant can), check it is the one judged dead.
                aside = out / f".{LOCK_FILE}.stale.{os.getpid()}"
                try:
                    os.rename(lock, aside)
                except FileNotFoundError:
                    continue
                if _read_lock(aside) != holder:  # another claimant's fresh lock: put it back and give way
                    try:
                        os.link(aside, lock)
                    except FileExistsError:
                        pass
                    aside.unlink(missing_ok=True)
                    continue
                aside.unlink(missing_ok=True)
                print(f"note: {out}: took over the lock of a run that is no longer alive (pid {pid}, started "
                      f"{holder.get('started', '?')}).", file=sys.stderr)
                continue
            if not holder:
                raise ConfigError(f"--out {out}: {lock} exists but cannot be read; if no run is writing there, "
                                  "delete it and try again.")
            where = "" if host == socket.gethostname() else f" on host {host}"
            raise ConfigError(f"--out {out}: another run (pid {pid}{where}, started {holder.get('started', '?')}) "
                              f"is writing there; wait for it to end or choose another --out.")
        raise ConfigError(f"--out {out}: could not claim the run directory ({lock} keeps changing); try again.")
    finally:
        Path(tmp).unlink(missing_ok=True)
        if created and not lock.exists():
            # refused: leave nothing we made
            try:
                out.rmdir()
            except OSError:
                pass
