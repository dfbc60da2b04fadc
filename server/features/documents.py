"""textDocument/didOpen, didChange, didClose: keep our copy of each document and feed the edits
to outcome inference (and to the workspace index); workspace/didChangeWatchedFiles: files that
changed on disk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..protocol import ARRIVAL

if TYPE_CHECKING:  # the server class imports these modules
    from ..app import RltabServer


def register(server: RltabServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: RltabServer, params: types.DidOpenTextDocumentParams):
        d = params.text_document
        ls.service.open(d.uri, d.text, d.version, d.language_id)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: RltabServer, params: types.DidChangeTextDocumentParams):
        settled = ls.service.change(params.text_document.uri, params.text_document.version, params.content_changes)
        if settled:
            ls.send_status()

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: RltabServer, params: types.DidCloseTextDocumentParams):
        ls.service.close(params.text_document.uri, at=ARRIVAL.get())

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls: RltabServer, params: types.DidChangeWatchedFilesParams):
        ls.service.files_changed([c.uri for c in params.changes])
