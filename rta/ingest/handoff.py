"""Run a step on an event loop's thread and wait for it, from another thread.

The log's writer thread judges insert ids with numpy, and numpy lets the GIL go around most
calls. Beside a busy event loop each of those calls then waits for the loop thread's next
pause to get the GIL back: a group's claim took 0.7 ms alone and 8-90 ms beside a thread
decoding requests. Handed to the loop thread, the same work never waits for the GIL.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

T = TypeVar("T")
PATIENCE_SECONDS = 0.5  # a loop that has not started the step by then is stopped or blocked: run it here


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running on this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def run_on(loop: asyncio.AbstractEventLoop | None, step: Callable[[], T], patience: float = PATIENCE_SECONDS) -> T:
    """``step()``, run on ``loop``'s thread while it runs, else here; exactly once either way.

    >>> run_on(None, lambda: 42)
    42
    """
    if loop is None or loop.is_closed():
        return step()
    done: Future[T] = Future()
    started = threading.Lock()  # whoever takes it runs the step

    def run() -> None:
        if started.acquire(blocking=False):
            try:
                done.set_result(step())
            except BaseException as err:  # handed to the waiting thread
                done.set_exception(err)

    try:
        loop.call_soon_threadsafe(run)
    except RuntimeError:  # closed meanwhile
        return step()
    while True:
        try:
            return done.result(timeout=patience)
        except FutureTimeout:
            if started.acquire(blocking=False):  # the loop never got to it (stopping, or waiting on this thread)
                return step()
