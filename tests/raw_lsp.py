"""A raw byte-level client for `rltab serve`: writes any bytes (broken frames, batches, bad
envelopes) and collects every response by id, so tests can count answers per request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict


def frame(obj, length: int | None = None) -> bytes:
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body) if length is None else length, body)


class RawServer:
    def __init__(self, home, env=None, extra_args=(), prefix=()):
        self.stderr_path = os.path.join(str(home), "..", f"serve-{os.getpid()}-{id(self)}.err")
        os.makedirs(home, exist_ok=True)
        self.stderr = open(self.stderr_path, "wb")  # noqa: SIM115 (open while the server runs)
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "rltab.server.cli", "serve", "--home", str(home), *extra_args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env={**os.environ, **(env or {})},
        )
        self.by_id: dict = defaultdict(list)  # id (as JSON text) -> responses
        self.null_errors: list[dict] = []
        self.notifications: list[dict] = []
        self.raw_out = bytearray()
        self.closed = threading.Event()
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                ch = out.read(1)
                if not ch:
                    self.closed.set()
                    with self._cv:
                        self._cv.notify_all()
                    return
                header += ch
            length = int(header.split(b":")[1].split(b"\r\n")[0])
            body = out.read(length)
            self.raw_out += body
            value = json.loads(body)
            with self._cv:
                for msg in value if isinstance(value, list) else [value]:
                    if "method" in msg:
                        self.notifications.append(msg)
                    elif msg.get("id") is None:
                        self.null_errors.append(msg)
                    else:
                        self.by_id[json.dumps(msg["id"])].append(msg)
                self._cv.notify_all()

    def write(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, obj) -> None:
        self.write(frame(obj))

    def wait(self, msg_id, timeout: float = 30.0) -> dict:
        key = json.dumps(msg_id)
        deadline = time.monotonic() + timeout
        with self._cv:
            while not self.by_id.get(key):
                left = deadline - time.monotonic()
                if left <= 0 or self.closed.is_set():
                    raise AssertionError(f"no response to id {msg_id!r} (server alive: {self.proc.poll() is None})")
                self._cv.wait(left)
            return self.by_id[key][0]

    def request(self, msg_id, method: str, params=None, timeout: float = 30.0) -> dict:
        msg = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return self.wait(msg_id, timeout)

    def notify(self, method: str, params) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def initialize(self, options=None) -> dict:
        r = self.request(
            "init",
            "initialize",
            {
                "processId": None,
                "rootUri": None,
                "capabilities": {"textDocument": {"inlineCompletion": {}}},
                "initializationOptions": options or {},
            },
        )
        self.notify("initialized", {})
        return r

    def open(self, uri: str, text: str) -> None:
        self.notify(
            "textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}}
        )

    def inline(self, msg_id, uri: str, line: int, character: int) -> dict:
        return self.request(
            msg_id,
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": character},
                "context": {"triggerKind": 2},
            },
        )

    def stderr_text(self) -> str:
        if not self.stderr.closed:
            self.stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def close(self) -> None:
        try:
            if self.proc.poll() is None and not self.closed.is_set():
                self.request("bye", "shutdown", timeout=20)
                self.notify("exit", None)
                self.proc.wait(timeout=20)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        finally:
            self.stderr.close()
