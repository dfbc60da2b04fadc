"""End-to-end: the real `rltab serve` over stdio, driven by pytest-lsp's client, the shipped
starter model, and a real ledger file."""

import asyncio
import os

import pytest
from filelock import FileLock, Timeout
from helpers import completable_doc
from lsp_helpers import edit, inline, ledger_rows, lsp_session, open_doc, wait_until
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import client_capabilities
from raw_lsp import RawServer

from rltab.feedback import rewards as R
from rltab.policy.inference.threads import cores_available

URI = "file:///work/demo/point.py"


@pytest.fixture(autouse=True)
def _doc(starter):
    """SRC / CURSOR: a document (ending at the cursor) where the shipped model answers."""
    global SRC, CURSOR
    SRC, CURSOR = completable_doc(starter)


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


async def suggest(client, uri=URI, pos=None):
    r = await inline(client, uri, *(pos or CURSOR))
    assert r.items, "the shipped model answers at this cursor (completable_doc checked it)"
    item = r.items[0]
    assert item.command.command == "rltab.accepted"
    return item.insert_text, item.command.arguments[0]


def outcome(home, sid):
    rows = ledger_rows(
        home, "select outcome, outcome_source, accepted_chars, reward from suggestion where id = ?", [sid]
    )
    return tuple(rows[0]) if rows and rows[0][0] is not None else None


async def test_capabilities_and_status(home):
    async with lsp_session(home) as c:
        caps = c.init_result.capabilities
        assert caps.inline_completion_provider is not None
        assert caps.completion_provider is not None
        assert set(caps.execute_command_provider.commands) == {
            "rltab.accepted",
            "rltab.partiallyAccepted",
            "rltab.rejected",
            "rltab.train",
            "rltab.rollback",
        }
        status = await wait_until(lambda: [s for s in c.statuses if s["modelVersion"]])
        assert status[0] == {
            "modelVersion": "starter",
            "learning": False,
            "acceptRate": 0.0,
            "pendingEvents": 0,
            "languages": ["python"],  # the starter knows Python: editors enable it there
            "learningPaused": False,
            "threads": min(2, cores_available()),  # the engine's: at most two for a model as small as the starter
            "training": False,
            "lastUpdate": None,
        }


async def test_accept_by_inserting_the_whole_text(home):
    async with lsp_session(home) as c:
        open_doc(c, URI, SRC)
        text, sid = await suggest(c)
        edit(c, URI, 2, CURSOR, CURSOR, text)
        assert await wait_until(lambda: outcome(home, sid)) == (
            "accepted",
            "inferred",
            len(text),
            R.reward("accepted", len(text), len(text)),
        )
        await wait_until(lambda: any(s["acceptRate"] == 1.0 for s in c.statuses))
    # What was written is counted (never kept): the accepted text is all of it here.
    [(version, chars)] = ledger_rows(home, "select model_version, sum(chars) from typing group by model_version")
    assert (version, chars) == ("starter", len(text))


async def test_reject_by_typing_something_else(home):
    async with lsp_session(home) as c:
        open_doc(c, URI, SRC)
        text, sid = await suggest(c)
        other = "zz" if not text.startswith("z") else "qq"
        edit(c, URI, 2, CURSOR, CURSOR, other[0])
        assert await wait_until(lambda: outcome(home, sid)) == ("rejected", "inferred", 0, R.reward("rejected"))


async def test_partial_then_divergence(home):
    async with lsp_session(home) as c:
        open_doc(c, URI, SRC)
        text, sid = await suggest(c)
        assert len(text) >= 3
        chunk = text[:2]
        edit(c, URI, 2, CURSOR, CURSOR, chunk)
        at = (CURSOR[0], CURSOR[1] + 2)
        edit(c, URI, 3, at, at, "\x01" if text[2] != "\x01" else "\x02")
        row = await wait_until(lambda: outcome(home, sid))
        assert row[0] == "partial" and row[2] == 2
        assert abs(row[3] - R.reward("partial", 2, len(text))) < 1e-9


async def test_typed_through_counts_as_accepted(home):
    async with lsp_session(home) as c:
        open_doc(c, URI, SRC)
        text, sid = await suggest(c)
        for i, ch in enumerate(text):
            at = (CURSOR[0], CURSOR[1] + i)
            edit(c, URI, 2 + i, at, at, ch)
        assert (await wait_until(lambda: outcome(home, sid)))[:3] == ("accepted", "inferred", len(text))


async def test_explicit_commands_and_their_errors(home):
    async with lsp_session(home) as c:
        open_doc(c, URI, SRC)
        text, sid = await suggest(c)
        r = await c.workspace_execute_command_async(
            types.ExecuteCommandParams(command="rltab.partiallyAccepted", arguments=[sid, 2])
        )
        assert r["outcome"] == "partial"
        r = await c.workspace_execute_command_async(
            types.ExecuteCommandParams(command="rltab.accepted", arguments=[sid])
        )
        assert r["outcome"] == "accepted" and r["reward"] == R.reward("accepted", len(text), len(text))
        assert outcome(home, sid)[:2] == ("accepted", "explicit")
        # A rejection never undoes text the user accepted.
        await c.workspace_execute_command_async(types.ExecuteCommandParams(command="rltab.rejected", arguments=[sid]))
        assert outcome(home, sid)[0] == "accepted"
        for args in ([], ["no-such-id"], [sid, "two"], [42]):
            cmd = "rltab.partiallyAccepted" if len(args) == 2 else "rltab.accepted"
            with pytest.raises(JsonRpcException):
                await c.workspace_execute_command_async(types.ExecuteCommandParams(command=cmd, arguments=args))
        # and the server still answers
        assert (await inline(c, URI, *CURSOR)) is not None


async def test_stale_request_is_answered_empty(home):
    async with lsp_session(home, init_options={"debounceMs": 300}) as c:
        open_doc(c, URI, SRC)
        pending = asyncio.ensure_future(inline(c, URI, *CURSOR))
        await asyncio.sleep(0.05)
        edit(c, URI, 2, CURSOR, CURSOR, "y")
        r = await pending
        assert not r.items
        assert ledger_rows(home, "select count(*) from suggestion")[0][0] == 0


async def test_cancelled_request_gets_an_answer(home):
    async with lsp_session(home, init_options={"debounceMs": 500}) as c:
        open_doc(c, URI, SRC)
        fut = asyncio.ensure_future(
            c.protocol.send_request_async(
                types.TEXT_DOCUMENT_INLINE_COMPLETION,
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=URI),
                    position=types.Position(*CURSOR),
                    context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
                ),
                msg_id="cancel-me",
            )
        )
        await asyncio.sleep(0.05)
        c.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="cancel-me"))
        with pytest.raises(JsonRpcException) as err:
            await asyncio.wait_for(fut, 10)
        assert "cancel" in str(err.value).lower()
        assert (await inline(c, URI, *CURSOR)).items is not None


def test_malformed_and_unknown_requests_get_errors(home):
    c = RawServer(home)  # raw messages: a typed client cannot send these
    try:
        c.initialize()
        c.open(URI, SRC)
        # params that do not deserialize: pygls alone would never answer these
        for k, params in enumerate(({"textDocument": 5}, {"position": "here"}, None, [1, 2])):
            r = c.request(f"bad{k}", "textDocument/inlineCompletion", params)
            assert r["error"]["code"] == -32602, r
        assert "not open" in c.inline("nope", "file:///nope.py", 0, 0)["error"]["message"]
        bad = c.inline("neg", URI, -1, 0)["error"]
        assert bad["code"] == -32602 and "position" in bad["message"], bad
        assert "error" in c.request("cmd", "workspace/executeCommand", {"command": "rltab.nope", "arguments": []})
        assert "error" in c.request("unknown", "no/suchMethod", {})
        assert c.inline("ok", URI, *CURSOR)["result"]["items"], "the server still answers"
    finally:
        c.close()


async def test_utf16_positions(home):
    """An emoji is two UTF-16 units: positions after it must land on the right character."""
    src = "class Point:\n    def __init__(self, x, y):\n        self.label = '🚀名'; self.\n"
    async with lsp_session(home) as c:
        open_doc(c, URI, src)
        col = len("        self.label = '🚀名'; self.".encode("utf-16-le")) // 2
        r = await inline(c, URI, 2, col)
        assert r.items
        text, sid = r.items[0].insert_text, r.items[0].command.arguments[0]
        edit(c, URI, 2, (2, col), (2, col), text)
        assert (await wait_until(lambda: outcome(home, sid)))[0] == "accepted"


async def test_completion_request_for_older_clients(home):
    async with lsp_session(home, caps="neovim") as c:
        open_doc(c, URI, SRC)
        r = await c.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=URI), position=types.Position(*CURSOR)
            )
        )
        assert r.is_incomplete and len(r.items) == 1
        item = r.items[0]
        sid = item.data["rltab"]
        assert list(item.command.arguments) == [sid]
        edit(
            c,
            URI,
            2,
            (item.text_edit.range.start.line, item.text_edit.range.start.character),
            CURSOR,
            item.text_edit.new_text,
        )
        assert (await wait_until(lambda: outcome(home, sid)))[0] == "accepted"


async def test_the_server_starts_with_the_flags_language_clients_append(home):
    """vscode-languageclient appends --stdio to a command it runs over stdio (and, for a node
    module, --clientProcessId=PID); `rltab serve` exited 2 on them and VS Code got no server."""
    async with lsp_session(home, extra_args=("--stdio", f"--clientProcessId={os.getpid()}")) as c:
        open_doc(c, URI, SRC)
        assert (await inline(c, URI, *CURSOR)).items


async def test_a_client_with_inline_completion_gets_no_plain_items(home):
    """VS Code shows plain items in its suggest widget beside the ghost text, and Tab then takes
    the item: a client that declares inlineCompletion is answered by ghost text alone."""
    caps = client_capabilities("visual-studio-code")
    caps.text_document.inline_completion = types.InlineCompletionClientCapabilities(dynamic_registration=True)
    async with lsp_session(home, caps=caps) as c:
        open_doc(c, URI, SRC)
        r = await c.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=URI), position=types.Position(*CURSOR)
            )
        )
        assert not r.items
        assert ledger_rows(home, "select count(*) from suggestion")[0][0] == 0  # the model was not asked
        assert (await inline(c, URI, *CURSOR)).items  # the ghost text still comes


async def test_learning_is_opt_in_and_secrets_are_never_stored(home):
    async with lsp_session(home) as c:
        open_doc(c, URI, SRC)
        _, sid = await suggest(c)
        row = ledger_rows(home, "select * from suggestion where id = ?", [sid])[0]
        assert row["prompt_ids"] is None and row["completion_text"] is None and row["prefix_text"] is None
    async with lsp_session(home, init_options={"learning": {"enabled": True}}) as c:
        open_doc(c, URI, SRC)
        text, sid = await suggest(c)
        row = ledger_rows(home, "select * from suggestion where id = ?", [sid])[0]
        assert row["prompt_ids"] and row["completion_text"] == text and row["logprobs"]
        secret_src = "KEY = 'AKIAABCDEFGHIJKLMNOP'\n" + SRC
        open_doc(c, "file:///work/demo/keys.py", secret_src)
        r = await inline(c, "file:///work/demo/keys.py", CURSOR[0] + 1, CURSOR[1])
        open_doc(c, "file:///work/demo/.env", "API_URL=http://localhost\nTOKEN=")
        r2 = await inline(c, "file:///work/demo/.env", 1, 6)
        ids = [x.items[0].command.arguments[0] for x in (r, r2) if x.items]
        for sid in ids:
            row = ledger_rows(home, "select * from suggestion where id = ?", [sid])[0]
            assert row["prompt_ids"] is None and row["completion_text"] is None


async def test_bad_settings_warn_and_fall_back(home):
    async with lsp_session(home, init_options={"maxLines": "many", "learning": {"enabled": "yes"}}) as c:
        await wait_until(lambda: len(c.messages) >= 2)
        assert all(m.type == types.MessageType.Warning for m in c.messages)
        c.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(
                settings={"rltab": {"learning": {"enabled": True}, "silenceThreshold": 7}}
            )
        )
        await wait_until(lambda: any(s["learning"] for s in c.statuses))
        await wait_until(lambda: any("silenceThreshold" in m.message for m in c.messages))


async def test_pausing_learning_holds_the_updater_and_clearing_it_restarts_it(home):
    """What an editor on battery power sends: learning keeps recording, the trainer waits."""

    def updater_holds_its_lock() -> bool:
        try:
            FileLock(home / "updater.lock").acquire(timeout=0).lock.release()
        except Timeout:
            return True
        return False

    async with lsp_session(home, init_options={"learning": {"enabled": True}}) as c:
        await wait_until(updater_holds_its_lock, timeout=60)
        c.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"rltab": {"learning": {"enabled": True, "paused": True}}})
        )
        await wait_until(lambda: any(s["learningPaused"] for s in c.statuses))
        await wait_until(lambda: not updater_holds_its_lock(), timeout=30)
        c.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"rltab": {"learning": {"paused": False}}})
        )
        await wait_until(updater_holds_its_lock, timeout=60)
        assert c.statuses[-1]["learning"] and not c.statuses[-1]["learningPaused"]


async def test_retention_checks_and_demonstrations(home):
    async with lsp_session(home, init_options={"learning": {"enabled": True}}) as c:
        open_doc(c, URI, SRC)
        text, sid = await suggest(c)
        edit(c, URI, 2, CURSOR, CURSOR, text)
        # the user edits the accepted text (its last character): retention drops below 1, and
        # what stands there now is kept as a demonstration
        end = (CURSOR[0], CURSOR[1] + len(text))
        last = (end[0], end[1] - 1)
        edit(c, URI, 3, last, end, "Z" if not text.endswith("Z") else "Y")
        # checks that fall due together are coalesced; wait for the final one
        await wait_until(
            lambda: ledger_rows(home, "select 1 from suggestion where id = ? and retention is not null", [sid]),
            timeout=15,
        )
        row = ledger_rows(home, "select reward, retention, demonstration from suggestion where id = ?", [sid])[0]
        want = 1 - 1 / len(text)
        assert abs(row["retention"] - want) < 1e-9
        assert abs(row["reward"] - R.reward("accepted", len(text), len(text), want)) < 1e-6
        # (ending with a newline when the user's line is complete: the model learns to stop there)
        assert row["demonstration"].rstrip("\n") == text[:-1] + ("Z" if not text.endswith("Z") else "Y")
        # a rejected suggestion: what the user wrote instead is kept as a demonstration
        line4 = SRC.count("\n")
        edit(c, URI, 4, (line4, 0), (line4, 0), "    def norm(self):\n        return ")
        r = await inline(c, URI, line4 + 1, 15)
        if r.items:
            sid2 = r.items[0].command.arguments[0]
            mine = "abs(self.x)" if not r.items[0].insert_text.startswith("abs") else "max(self.x)"
            edit(c, URI, 5, (line4 + 1, 15), (line4 + 1, 15), mine)
            demo = await wait_until(
                lambda: ledger_rows(
                    home, "select demonstration from suggestion where id = ? and demonstration is not null", [sid2]
                )
            )
            assert demo[0][0].rstrip("\n") == mine
