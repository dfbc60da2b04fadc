"""A watchdog for one HTTP exchange with an inference server: it shuts the connection's socket
when the completion's deadline passes or the editor cancels the request, wherever a read or write
on it is blocked (a server that never answers, or drips a byte at a time)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

WATCH_EVERY_S = 0.05


class Watch:
    """Shuts a connection's socket when `deadline` passes or `cancelled()` turns true, wherever
    a read or write on it is blocked; `why` says which (None: neither)."""

    def __init__(self, sock: socket.socket, deadline: float, cancelled: Callable[[], bool] | None = None):
        self.sock, self.deadline, self.cancelled = sock, deadline, cancelled
        self.seconds = max(0.0, deadline - time.monotonic())  # for the message
        self.why: str | None = None
        self._done = threading.Event()

    def reason(self, e: BaseException) -> str:
        """Why a read or write failed: the watchdog's reason, else the socket's own."""
        if self.why:
            return self.why
        if isinstance(e, TimeoutError):  # the socket's timeout (the time left) ran out first
            return f"no complete answer within {self.seconds:.1f} s"
        return str(e)

    def __enter__(self) -> Watch:
        threading.Thread(target=self._watch, name="rltab-remote-watch", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(WATCH_EVERY_S):
            if self.cancelled is not None and self.cancelled():
                self.why = "cancelled"
            elif time.monotonic() > self.deadline:
                self.why = f"no complete answer within {self.seconds:.1f} s"
            if self.why:
                with contextlib.suppress(OSError):  # closed meanwhile
                    # A read blocked with nothing to read wakes at the shutdown; one fed a byte
                    # at a time (Linux still delivers after SHUT_RD) fails at its next recv.
                    self.sock.settimeout(1e-3)
                    self.sock.shutdown(socket.SHUT_RDWR)
                return
