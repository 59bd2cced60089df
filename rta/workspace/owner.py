"""Who owns a project's embedded store, and how the other processes of the project reach it.

Only one process may open a chdb data dir. The process that opens it (``rta run``, or a notebook
kernel that called ``rta.connect``) serves the query API on loopback and publishes where, with a
read key, in ``.rta/run.json``; every other process of the project (a second notebook, the CLI)
reads that file and asks the owner (:class:`~rta.workspace.remote.RemoteWorkspace`). The key ends
with its process; one a crashed owner left is revoked by the next owner (``run_key``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from rta.contract.keys import KeyStore, run_key

RUN_FILE = Path(".rta") / "run.json"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Owner:
    """A live process serving a project's store: where it listens, with a read key."""

    pid: int
    url: str
    key: str
    kind: str = "rta run"  # or "notebook"
    collect: bool = False  # it also receives events (the collect API)

    def __str__(self) -> str:
        return f"{self.kind} (pid {self.pid}) at {self.url}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_owner(root: Path) -> Owner | None:
    """The live owner that published itself in ``root``'s run file (None for none, or a dead one's file)."""
    try:
        found = json.loads((root / RUN_FILE).read_text())
        kind, collect = str(found.get("kind", "rta run")), found.get("collect") is True
        owner = Owner(int(found["pid"]), str(found["url"]), str(found["key"]), kind, collect)
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    return owner if owner.pid != os.getpid() and _alive(owner.pid) else None


@contextlib.contextmanager
def published(root: Path, url_of: Callable[[str], str], kind: str = "rta run", *, collect: bool = False) -> Iterator[str]:
    """A read key for this process, published with ``url_of(key)``'s address in the run file while
    the block runs; yields the key's secret. The file goes, and the key is revoked, when it ends."""
    run_file = root / RUN_FILE
    with run_key(KeyStore(root), run_file) as (_, secret):
        url = url_of(secret)
        tmp = run_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "url": url, "key": secret, "kind": kind, "collect": collect}))
        os.chmod(tmp, 0o600)
        tmp.replace(run_file)
        try:
            yield secret
        finally:
            with contextlib.suppress(FileNotFoundError, ValueError):
                if json.loads(run_file.read_text()).get("pid") == os.getpid():  # never another owner's file
                    run_file.unlink()


def quietly(attempt: Callable[[], T]) -> T:
    """Run ``attempt`` with the process's stdout and stderr (the file descriptors: chdb's engine
    writes there itself) held back; what it printed is let through only if it succeeded.

    A store locked by another process makes chdb print ``Code: 76. DB::Exception: Cannot lock
    file ...`` before it raises; the caller turns that into one clear sentence, or asks the owner.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved, held = [], []
    try:
        for fd in (1, 2):
            copy = tempfile.TemporaryFile()
            saved.append((fd, os.dup(fd)))
            held.append(copy)
            os.dup2(copy.fileno(), fd)
    except OSError:  # no such descriptors (an embedded interpreter): nothing to hold back
        for fd, original in saved:
            os.dup2(original, fd)
            os.close(original)
        return attempt()
    ok = False
    try:
        result = attempt()
        ok = True
        return result
    finally:
        for (fd, original), copy in zip(saved, held, strict=True):
            os.dup2(original, fd)
            os.close(original)
            if ok:
                copy.seek(0)
                with contextlib.suppress(OSError):
                    os.write(fd, copy.read())
            copy.close()
