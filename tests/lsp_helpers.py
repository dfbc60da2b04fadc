"""Start `rltab serve` over stdio and drive it with pytest-lsp's real LSP client."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from contextlib import asynccontextmanager
from pathlib import Path

from lsprotocol import types
from pytest_lsp import client_capabilities
from pytest_lsp.client import make_test_lsp_client


@asynccontextmanager
async def lsp_session(
    home: Path,
    model: Path | None = None,
    init_options: dict | None = None,
    env: dict | None = None,
    caps: str | types.ClientCapabilities = "visual-studio-code",
    extra_args=(),
):
    client = make_test_lsp_client()
    statuses: list[dict] = []

    @client.feature("rltab/status")
    def on_status(params):
        statuses.append(_plain(params))

    args = [sys.executable, "-m", "rltab.server.cli", "serve", "--home", str(home), *extra_args]
    if model is not None:
        args += ["--model", str(model)]
    await client.start_io(
        *args,
        env={**os.environ, "RLTAB_RETENTION_DELAYS": "0.4,0.8", "RLTAB_DEMONSTRATION_DELAY": "0.4", **(env or {})},
    )
    result = await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(caps) if isinstance(caps, str) else caps,
            initialization_options=init_options or {},
            workspace_folders=[],
        )
    )
    client.init_result = result
    client.statuses = statuses
    try:
        yield client
    finally:
        try:
            await asyncio.wait_for(client.shutdown_session(), 20)
        finally:
            await client.stop()


def open_doc(client, uri: str, text: str, version: int = 1, language: str = "python") -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)
        )
    )


def edit(client, uri: str, version: int, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(*start), end=types.Position(*end)), text=text
                )
            ],
        )
    )


async def inline(client, uri: str, line: int, character: int):
    return await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        )
    )


def ledger_rows(home: Path, sql: str, args=()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(home / "ledger.db")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def wait_until(predicate, timeout: float = 10.0, every: float = 0.05):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)


def _plain(x):
    """pygls hands custom notifications over as nested namedtuples: plain dicts and lists instead."""
    if hasattr(x, "_asdict"):
        x = x._asdict()
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return [_plain(v) for v in x] if isinstance(x, list | tuple) else x
