"""textDocument/completion for clients without inline completion: the suggestion as one item
that replaces the word being typed with that word plus the suggestion. A client that shows inline
completions (VS Code, Neovim 0.12+) gets an empty list: in VS Code a list item opens the suggest
widget beside the ghost text, and Tab then takes the item instead of the ghost text."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lsprotocol import types

from .inline_completion import ACCEPT_COMMAND

if TYPE_CHECKING:  # the server class imports these modules
    from ..app import RltabServer

WORD_TAIL = re.compile(r"[A-Za-z0-9_]*$")


def register(server: RltabServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
    async def completion(ls: RltabServer, params: types.CompletionParams):
        if ls.inline_client:  # its ghost text is the suggestion; a list item would take Tab from it
            return types.CompletionList(is_incomplete=False, items=[])
        served = await ls.complete(params.text_document.uri, params.position)
        if served is None or not served.text:  # silence is recorded, never shown
            return types.CompletionList(is_incomplete=True, items=[])
        doc = ls.service.documents.get(params.text_document.uri)
        if doc is None:  # closed meanwhile
            return types.CompletionList(is_incomplete=True, items=[])
        line_start = doc.text.rfind("\n", 0, served.offset) + 1
        stem_match = WORD_TAIL.search(doc.text[line_start : served.offset])
        stem = stem_match.group(0) if stem_match else ""
        # Where the suggestion was made (a position past the end of a line means its end), less the
        # stem, which is ASCII and so the same length in every position encoding.
        end = ls.position_of(params.text_document.uri, served)
        start = types.Position(line=end.line, character=end.character - len(stem))
        first_line = served.text.split("\n", 1)[0]
        label = (stem + first_line).strip() or served.text.strip()
        return types.CompletionList(
            is_incomplete=True,
            items=[
                types.CompletionItem(
                    label=label[:80],
                    kind=types.CompletionItemKind.Snippet if "\n" in served.text else types.CompletionItemKind.Text,
                    detail=f"rltab {served.model_version}",
                    documentation=types.MarkupContent(
                        kind=types.MarkupKind.Markdown, value=f"```\n{stem}{served.text}\n```"
                    ),
                    filter_text=stem + first_line,
                    sort_text="0",
                    preselect=True,
                    insert_text_format=types.InsertTextFormat.PlainText,
                    text_edit=types.TextEdit(range=types.Range(start=start, end=end), new_text=stem + served.text),
                    command=types.Command(
                        title="rltab: accepted", command=ACCEPT_COMMAND, arguments=[served.suggestion_id]
                    ),
                    data={"rltab": served.suggestion_id},
                )
            ],
        )
