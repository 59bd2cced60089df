"""What the flow cannot read from the event log is moved aside, with its reason, and never blocks what follows.

Nothing the collect API writes should land here (its lines are canonical, see
:mod:`rta.contract.segment`): a record means damage on disk, a log of an incompatible version,
or a bug. Each record is one JSON line of ``quarantine.jsonl`` in the partition's folder: where
it was (source, offset, line), why, how many events it held and the bytes themselves (base64),
so it can be inspected and, once fixed, loaded with ``rta load``. A replay of the same group
finds its records already there and adds none.
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

FILE = "quarantine.jsonl"
_lock = threading.Lock()


def _known(path: Path) -> set[tuple[str, int, int]]:
    if not path.exists():
        return set()
    known = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            known.add((record["source"], record["offset"], record["line"]))
        except (ValueError, KeyError, TypeError):
            continue
    return known


def set_aside(path: Path, source: str, offset: int, items: list[tuple[int, bytes, str]], events: int | None = None) -> int:
    """Record ``items`` (line index or -1 for a whole frame, bytes, reason) of the frame or group at ``offset``.

    Returns how many events they held: one per line, or ``events`` for a whole frame.
    """
    if not items:
        return 0
    with _lock:
        known = _known(path)
        now = datetime.now(UTC).isoformat()
        records = [
            json.dumps(
                {
                    "source": source,
                    "offset": offset,
                    "line": index,
                    "at": now,
                    "reason": reason,
                    "bytes": len(data),
                    "data": base64.b64encode(data).decode(),
                }
            )  # fmt: skip
            for index, data, reason in items
            if (source, offset, index) not in known
        ]
        if records:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write("".join(r + "\n" for r in records))
    return sum(1 if index >= 0 else (events or 0) for index, _, _ in items)


def count(path: Path) -> int:
    """Records held in a quarantine file."""
    return len(_known(path))
