"""A minimal synchronous LSP client over a server's stdin/stdout.

The typing simulator (`rltab demo`, `rltab replay`) drives `rltab serve` with it exactly as an
editor would; the tests use it where a typed client cannot go (malformed params, kill -9).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path


class StdioClient:
    def __init__(self, home, model=None, env=None, extra_args=()) -> None:
        args = [sys.executable, "-m", "rltab.server.cli", "serve", "--home", str(home), *extra_args]
        if model:
            args += ["--model", str(model)]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        self.inbox: queue.Queue = queue.Queue()
        self.notifications: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()
        self._id = 0

    def _read(self):
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    self.inbox.put(None)
                    return
                if line.startswith(b"Content-Length:"):
                    length = int(line.split(b":")[1])
                elif line in (b"\r\n", b"\n"):
                    break
            msg = json.loads(out.read(length))
            if "id" in msg and "method" not in msg:
                self.inbox.put(msg)
            else:
                self.notifications.append(msg)

    def send(self, msg: dict) -> None:
        body = json.dumps(msg).encode()
        stdin = self.proc.stdin
        assert stdin is not None  # opened with stdin=PIPE
        stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        stdin.flush()

    def request(self, method: str, params, timeout: float = 60.0) -> dict:
        self._id += 1
        self.send({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params})
        while True:
            msg = self.inbox.get(timeout=timeout)
            if msg is None:
                raise ConnectionError("server closed its output")
            if msg.get("id") == self._id:
                return msg

    def notify(self, method: str, params) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def initialize(self, options=None, folders: list[str] | None = None) -> dict:
        """`folders`: workspace folder paths (the server indexes them for repository context)."""
        caps: dict = {"textDocument": {"inlineCompletion": {}}}
        uris = [Path(f).resolve().as_uri() for f in folders or []]
        r = self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": uris[0] if uris else None,
                "capabilities": caps,
                "workspaceFolders": [{"uri": u, "name": Path(f).name} for u, f in zip(uris, folders or [])] or None,
                "initializationOptions": options or {},
            },
        )
        self.notify("initialized", {})
        return r

    def change(self, uri: str, version: int, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
        self.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [
                    {
                        "range": {
                            "start": {"line": start[0], "character": start[1]},
                            "end": {"line": end[0], "character": end[1]},
                        },
                        "text": text,
                    }
                ],
            },
        )

    def command(self, name: str, *args) -> dict:
        return self.request("workspace/executeCommand", {"command": name, "arguments": list(args)})

    def open(self, uri: str, text: str, version: int = 1) -> None:
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": version, "text": text}},
        )

    def inline(self, uri: str, line: int, character: int) -> dict:
        return self.request(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": character},
                "context": {"triggerKind": 2},
            },
        )

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=20)
            self.notify("exit", None)
            self.proc.wait(timeout=20)
        except Exception:
            self.proc.kill()
            self.proc.wait()
