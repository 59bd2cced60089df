"""Project API keys: read keys query, write keys only ingest. Stored hashed in ``.rta/keys.json``."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from rta.errors import ConfigError

Kind = Literal["read", "write", "share", "admin"]
# share keys open one dashboard's page (named dashboard:NAME) and nothing else; admin keys erase people and nothing else
KINDS: tuple[Kind, ...] = ("read", "write", "share", "admin")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record; the secret itself is shown once, at creation, and stored only as a hash."""

    id: str
    name: str
    kind: Kind
    digest: str
    created: str
    revoked: str | None = None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_from(authorization: str) -> str:
    """The key in an Authorization header: a Bearer token, or the Basic user name (Segment SDKs)."""
    scheme, _, value = authorization.partition(" ")
    secret = value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(secret, validate=True).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            raise ValueError("malformed Basic credentials") from None
    return secret if scheme.lower() == "bearer" else ""


class KeyStore:
    """The keys of one project."""

    def __init__(self, root: Path) -> None:
        self.path = root / ".rta" / "keys.json"
        self._cached: tuple[float, list[ApiKey]] | None = None

    def _load(self) -> list[ApiKey]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        if self._cached is not None and self._cached[0] == mtime:  # re-read only when the file changed
            return list(self._cached[1])
        try:
            keys = [ApiKey(**item) for item in json.loads(self.path.read_text())]
        except (ValueError, TypeError) as err:
            msg = f"{self.path}: unreadable key file ({err}); restore it or delete it and create new keys"
            raise ConfigError(msg) from None
        self._cached = (mtime, keys)
        return list(keys)

    def _save(self, keys: list[ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(k) for k in keys], indent=1))
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)

    def create(self, kind: Kind, name: str = "") -> tuple[ApiKey, str]:
        """A new key and its secret (``rta_<kind>_...``)."""
        if kind not in KINDS:
            msg = f"unknown key kind {kind!r}; valid kinds are: {', '.join(KINDS)}"
            raise ConfigError(msg)
        secret = f"rta_{kind}_{secrets.token_urlsafe(24)}"
        digest = _digest(secret)
        key = ApiKey(digest[:10], name or kind, kind, digest, datetime.now(UTC).isoformat(timespec="seconds"))
        self._save([*self._load(), key])
        return key, secret

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included."""
        return self._load()

    def revoke_where(self, which: Callable[[ApiKey], bool]) -> tuple[ApiKey, ...]:
        """Revoke every live key ``which`` picks, in one write; returns them."""
        keys = self._load()
        now = datetime.now(UTC).isoformat(timespec="seconds")
        picked = [i for i, key in enumerate(keys) if key.revoked is None and which(key)]
        for i in picked:
            keys[i] = replace(keys[i], revoked=now)
        if picked:
            self._save(keys)
        return tuple(keys[i] for i in picked)

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by id; it stops working at once."""
        keys = self._load()
        for i, key in enumerate(keys):
            if key.id == key_id:
                keys[i] = replace(key, revoked=datetime.now(UTC).isoformat(timespec="seconds"))
                self._save(keys)
                return keys[i]
        msg = f"no key with id {key_id!r}; `rta keys list` shows the ids"
        raise ConfigError(msg)

    def check(self, secret: str) -> ApiKey | None:
        """The live key matching ``secret``, if any (compared in constant time)."""
        digest = _digest(secret)
        for key in self._load():
            if key.revoked is None and hmac.compare_digest(key.digest, digest):
                return key
        return None


# The read key each `rta run` creates for itself, named after its process; older runs named it "this process".
RUN_KEY_NAME = re.compile(r"rta run \((?:pid (\d+)|this process)\)")


def _alive(pid: int) -> bool:
    if pid == os.getpid():  # a crashed run's pid, now ours (a restarted container's pid 1)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _left_by_dead_run(key: ApiKey) -> bool:
    found = RUN_KEY_NAME.fullmatch(key.name)
    return bool(found and found.group(1) and not _alive(int(found.group(1))))


@contextmanager
def run_key(keys: KeyStore, published: Path) -> Iterator[tuple[ApiKey, str]]:
    """A read key for this `rta run`, revoked when the run ends, after revoking what crashed runs left.

    A run killed by ``kill -9`` (or the OOM killer, or a power cut) cannot revoke its key, whose
    secret is in ``published`` (``.rta/run.json``) and in the dashboard links it printed. So
    every run holds ``.rta/run.lock`` while it lives, which the kernel releases however the
    process ends: a run that finds no other holder knows every run key still live was left by a
    dead run, whatever its pid became since. With another run alive (two runs on one
    ClickHouse server), only keys whose process is gone are revoked, and the one ``published``
    names when the pid written beside it is gone.
    """
    lock = keys.path.parent / "run.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except OSError:
            alone = False
        stale = _published_secret(published)
        left = keys.check(stale) if stale else None
        keys.revoke_where(lambda k: (alone and RUN_KEY_NAME.fullmatch(k.name) is not None) or _left_by_dead_run(k) or k == left)
        fcntl.flock(handle, fcntl.LOCK_SH)  # held until the run ends: later runs see it alive
        key, secret = keys.create("read", f"rta run (pid {os.getpid()})")
        try:
            yield key, secret
        finally:
            keys.revoke(key.id)


def _published_secret(published: Path) -> str | None:
    """The key in a run file whose process is gone (None while that process lives, or with no file)."""
    try:
        found = json.loads(published.read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(found, dict) or not isinstance(found.get("key"), str):
        return None
    pid = found.get("pid")
    return None if isinstance(pid, int) and _alive(pid) else found["key"]
