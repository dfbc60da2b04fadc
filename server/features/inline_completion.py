"""textDocument/inlineCompletion (LSP 3.18): one ghost-text suggestion, or none."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..service import Served

if TYPE_CHECKING:  # the server class imports these modules
    from ..app import RltabServer

ACCEPT_COMMAND = "rltab.accepted"


def item(ls: RltabServer, served: Served, position: types.Position) -> types.InlineCompletionItem:
    return types.InlineCompletionItem(
        insert_text=served.text,
        range=types.Range(start=position, end=position),  # the served position (past a line's end: its end)
        command=types.Command(title="rltab: accepted", command=ACCEPT_COMMAND, arguments=[served.suggestion_id]),
    )


def register(server: RltabServer) -> None:
    # pygls advertises inlineCompletionProvider only when the feature has options.
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: RltabServer, params: types.InlineCompletionParams):
        served = await ls.complete(params.text_document.uri, params.position)
        if served is None or not served.text:  # silence is recorded, never shown
            return types.InlineCompletionList(items=[])
        return types.InlineCompletionList(items=[item(ls, served, ls.position_of(params.text_document.uri, served))])
