"""Progress and cancel for long loads, the same for the window and the CLI.

A loader takes an optional ``LoadProgress``; it calls ``update(done, total, text)`` as work completes and ``check()``
between pieces of work. The callback runs on the loading thread, at most ``hz`` times a second plus once at the
end of each phase; ``check`` raises ``LoadCancelled`` once the cancel event is set, and the caller keeps whatever it
had before (loaders build a new Dataset and change nothing else)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

ProgressCallback = Callable[[int, int, str], None]  # (done, total, what is being done)


class LoadCancelled(Exception):
    """The load was cancelled on request; nothing was changed."""


class LoadProgress:
    def __init__(
        self, callback: ProgressCallback | None = None, cancel: threading.Event | None = None, hz: float = 10.0
    ):
        self.callback = callback
        self.cancel = cancel if cancel is not None else threading.Event()
        self._period = 1.0 / hz
        self._last = -float("inf")

    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def check(self) -> None:
        """Raise LoadCancelled if cancel was requested."""
        if self.cancel.is_set():
            raise LoadCancelled("cancelled")

    def update(self, done: int, total: int, text: str) -> None:
        """Report ``done`` of ``total`` (rate-limited; a phase's last update always goes out), then ``check()``."""
        now = time.monotonic()
        if self.callback is not None and (done >= total or now - self._last >= self._period):
            self._last = now
            self.callback(done, total, text)
        self.check()
