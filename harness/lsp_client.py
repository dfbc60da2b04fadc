"""A real `rltab serve` driven over stdio through pygls' LanguageClient, synchronously.

The typing simulator (`rltab demo`, `rltab replay`), the benchmarks and the end-to-end tests
talk to the server exactly as an editor would. pygls is asyncio-based; the simulator types at its
own pace, one step after another, so this runs the client's event loop on a thread of its own and
waits for each answer. Messages go out in the order the calls are made. Answers come back as
plain JSON (`{"result": ...}` or `{"error": {...}}`), what the wire carried.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient


class ServerSession:
    def __init__(self, home, model=None, env=None, extra_args=()) -> None:
        args = ["-m", "rltab.server.cli", "serve", "--home", str(home), *extra_args]
        if model:
            args += ["--model", str(model)]
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="rltab-lsp-client", daemon=True).start()
        self.client = LanguageClient("rltab-harness", "1.0")
        self.notifications: list[dict] = []
        for method in ("rltab/status", types.WINDOW_SHOW_MESSAGE, types.WINDOW_LOG_MESSAGE):
            self.client.feature(method)(self._keeper(method))
        self._call(self._start(args, {**os.environ, **(env or {})}))
        self.proc = self.client._server  # the server process (an asyncio Process): pid, send_signal

    def _keeper(self, method: str):
        def keep(params) -> None:
            self.notifications.append({"method": method, "params": self._plain(params)})

        return keep

    async def _start(self, args: list[str], env: dict) -> None:
        await self.client.start_io(sys.executable, *args, env=env)
        server = self.client._server
        assert server is not None and server.stderr is not None
        # pygls pipes the server's stderr; drain it so the server never blocks on a full pipe.
        self._drain = asyncio.ensure_future(self._discard(server.stderr))

    @staticmethod
    async def _discard(stream: asyncio.StreamReader) -> None:
        while await stream.read(65536):
            pass

    def _call(self, coro, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _plain(self, value) -> Any:
        return self.client.protocol._converter.unstructure(value)

    # -- requests and notifications --------------------------------------------------------
    def request(self, method: str, params, timeout: float = 60.0) -> dict:
        """`{"result": ...}`, or `{"error": {"code", "message"}}` where the server answered one."""

        async def send():
            return await self.client.protocol.send_request_async(method, params)

        try:
            return {"result": self._plain(self._call(send(), timeout))}
        except JsonRpcException as e:
            return {"error": {"code": e.code, "message": e.message}}

    def notify(self, method: str, params) -> None:
        self._loop.call_soon_threadsafe(self.client.protocol.notify, method, params)

    def initialize(self, options=None, folders: list[str] | None = None) -> dict:
        """`folders`: workspace folder paths (the server indexes them for repository context)."""
        uris = [Path(f).resolve().as_uri() for f in folders or []]
        params = types.InitializeParams(
            process_id=os.getpid(),
            root_uri=uris[0] if uris else None,
            capabilities=types.ClientCapabilities(
                text_document=types.TextDocumentClientCapabilities(
                    inline_completion=types.InlineCompletionClientCapabilities()
                )
            ),
            workspace_folders=[types.WorkspaceFolder(u, Path(f).name) for u, f in zip(uris, folders or [])] or None,
            initialization_options=options or {},
        )
        r = self.request(types.INITIALIZE, params)
        self.notify(types.INITIALIZED, types.InitializedParams())
        return r

    def open(self, uri: str, text: str, version: int = 1) -> None:
        doc = types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)
        self.notify(types.TEXT_DOCUMENT_DID_OPEN, types.DidOpenTextDocumentParams(text_document=doc))

    def change(self, uri: str, version: int, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
        edit = types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(*start), types.Position(*end)), text=text
        )
        params = types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version), content_changes=[edit]
        )
        self.notify(types.TEXT_DOCUMENT_DID_CHANGE, params)

    def close_document(self, uri: str) -> None:
        params = types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        self.notify(types.TEXT_DOCUMENT_DID_CLOSE, params)

    def inline(self, uri: str, line: int, character: int) -> dict:
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        )
        return self.request(types.TEXT_DOCUMENT_INLINE_COMPLETION, params)

    def command(self, name: str, *args) -> dict:
        params = types.ExecuteCommandParams(command=name, arguments=list(args))
        return self.request(types.WORKSPACE_EXECUTE_COMMAND, params)

    def close(self) -> None:
        """shutdown and exit, as an editor closes; the process is killed if it does not go."""

        async def stop():
            try:
                await asyncio.wait_for(self.client.shutdown_async(None), 20)
                self.client.exit(None)
                await asyncio.wait_for(self.client._server.wait(), 20)
            except Exception:
                if self.client._server.returncode is None:
                    self.client._server.kill()
                    await self.client._server.wait()
            await self.client.stop()

        try:
            self._call(stop(), timeout=60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
