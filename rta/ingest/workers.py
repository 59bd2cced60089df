"""Several collect API processes on one port, for the cores one Python process cannot use.

``rta serve ingest --workers N`` starts N processes. Each listens on the port with
``SO_REUSEPORT`` (the kernel spreads connections among them) and appends to its own log
partitions (p % N == k). They share one insert-id memory, in files under ``/dev/shm`` (the
project's ``.rta`` folder when that is too small for the memory's bound) behind a file lock,
so a retry counts once whichever process it reaches; they hash ids alike because they all
start with the same ``PYTHONHASHSEED``, a fresh random one per start.
The first process to start rebuilds that memory from the log while the others wait. Once
every process listens, the command says so on stderr: until then the kernel gives all
connections to the ones already up.

If a process dies, the others are stopped too and the command exits with its code: ids it
was writing would stay marked in flight, so the group restarts as a whole and rebuilds the
memory from what the log acknowledged.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rta.ingest.dedup import memory_bound

SHM = Path("/dev/shm")


def serve(root: Path, stream: str, host: str, port: int, workers: int) -> int:
    """Run ``workers`` collect API processes until one exits or this process is told to stop; returns the exit code."""
    shared = Path(tempfile.mkdtemp(prefix="rta-insert-ids-", dir=_memory_folder(root)))
    env = {**os.environ, "PYTHONHASHSEED": str(1 + secrets.randbelow(2**32 - 1))}
    command = [sys.executable, "-m", "rta.ingest.workers", str(root), stream, host, str(port), str(workers), str(shared)]
    processes: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(signum: int, frame: object) -> None:  # noqa: ARG001
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        processes = [subprocess.Popen([*command, str(k)], env=env) for k in range(workers)]
        announced = False
        while not stopping and all(p.poll() is None for p in processes):
            if not announced and len(list(shared.glob("listening-*"))) == workers:
                print(f"rta: all {workers} collect API processes are listening", file=sys.stderr, flush=True)
                announced = True
            time.sleep(0.1)
        code = next((p.returncode for p in processes if p.returncode), 0)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        shutil.rmtree(shared, ignore_errors=True)
    return code


def _memory_folder(root: Path) -> Path:
    """tmpfs when it has room for the insert-id memory at its bound (a container's is often 64 MB), else the project's disk."""
    if SHM.is_dir() and os.access(SHM, os.W_OK) and shutil.disk_usage(SHM).free >= memory_bound():
        return SHM
    folder = root / ".rta"
    folder.mkdir(exist_ok=True)
    return folder


def listening(host: str, port: int) -> socket.socket:
    """A socket on ``host:port`` that other processes of the group may bind as well."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    return sock


def main(argv: list[str]) -> None:
    """One process of the group: ``ROOT STREAM HOST PORT WORKERS SHARED INDEX``."""
    import uvicorn

    from rta.ingest.service import collect_app
    from rta.project import load_project

    root, stream, host, port, workers, shared, index = argv
    api, events = collect_app(load_project(root), stream, worker=(int(index), int(workers)), shared=Path(shared))
    try:
        sock = listening(host, int(port))
        (Path(shared) / f"listening-{index}").touch()  # connections from now on may come here
        config = uvicorn.Config(api, log_level="warning", lifespan="off", proxy_headers=False, access_log=False)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        events.close()


if __name__ == "__main__":
    main(sys.argv[1:])
