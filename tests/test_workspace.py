"""Issue 14: the workspace index (ignore rules, secrets, binaries, huge files, nothing outside the
workspace, incremental updates), the context sources, the prompt layout per model family, and a
real server putting a sibling file's code in front of the model."""

import json
import re
import sqlite3
import time
from pathlib import Path

import pytest

from rltab.harness.lsp_client import ServerSession
from rltab.policy.completion.prompt import RepoPrompt, Snippet, commented, prompt_ids
from rltab.policy.model.fim import FimTemplate
from rltab.policy.workspace import python_defs as P
from rltab.policy.workspace.files import Limits
from rltab.policy.workspace.index import WorkspaceIndex
from rltab.policy.workspace.repo_context import STRIDE_LINES, RepoContext, Where

SIBLING = "def connect(host, port):\n    client = Client(host, port)\n    client.enable_quux_retries(limit=3)\n    return client\n"


def write(root: Path, rel: str, data) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    (p.write_bytes if isinstance(data, bytes) else p.write_text)(data)
    return p


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    write(root, ".gitignore", "build/\n*.log\nignored.py\n")
    write(root, "a.py", "def alpha_value():\n    return 1\n")
    write(root, "ignored.py", "x = 1\n")
    write(root, "sub/.gitignore", "local.py\n")
    write(root, "sub/local.py", "y = 2\n")
    write(root, "sub/b.py", "from a import alpha_value\n")
    write(root, "build/gen.py", "z = 3\n")
    write(root, "notes.log", "log\n")
    write(root, ".env", "TOKEN=abc\n")
    write(root, "secrets.json", "{}\n")
    write(root, "blob.py", b"\x00\x01binary")
    write(root, "big.py", "w = 0\n" * 400)
    write(root, "node_modules/dep.js", "module.exports = 1\n")
    write(root, "image.png", b"\x89PNG")
    outside = write(tmp_path, "outside/private.py", "SECRET_PLAN = 1\n")
    (root / "link.py").symlink_to(outside)
    return root


def indexed(index: WorkspaceIndex, root: Path) -> set[str]:
    return {Path(p).relative_to(root).as_posix() for p in index.paths()}


def test_index_keeps_to_what_git_would_track_and_is_safe_to_read(repo):
    index = WorkspaceIndex(Limits(max_file_bytes=1000))
    index.start([repo])
    assert index.wait_ready(10)
    # Not: .gitignore'd (root and nested), ignored directories, secret-named, binary, over the size
    # limit, not source, or a symlink to a file outside the workspace.
    assert indexed(index, repo) == {"a.py", "sub/b.py"}
    assert index.stats()["files"] == 2


def test_index_never_reads_outside_the_workspace(repo, tmp_path):
    index = WorkspaceIndex()
    index.start([repo])
    index.wait_ready(10)
    outside = tmp_path / "outside" / "private.py"
    index.file_changed(str(outside))  # a watcher event for a path outside every folder
    index.file_changed(str(repo / "link.py"))  # inside, but resolving outside
    index.file_changed(str(repo / ".." / "outside" / "private.py"))
    index.drain()
    assert index.text(str(outside)) is None and index.text(str(repo / "link.py")) is None
    assert all("SECRET_PLAN" not in (index.text(p) or "") for p in index.paths())


def test_index_follows_documents_and_file_events(repo):
    index = WorkspaceIndex()
    index.start([repo])
    index.wait_ready(10)
    a = str(repo / "a.py")
    index.document(a, "def alpha_value():\n    return 2  # edited, unsaved\n")
    index.drain()
    assert "unsaved" in index.text(a)  # the editor's text wins while the document is open
    index.file_changed(a)  # a disk event for an open document does not replace the editor's text
    index.drain()
    assert "unsaved" in index.text(a)
    index.document(a, None)  # closed: the disk's copy again
    index.drain()
    assert index.text(a) == (repo / "a.py").read_text()

    new = write(repo, "sub/c.py", "def gamma_thing(alpha, beta):\n    return alpha + beta\n")
    index.file_changed(str(new))
    write(repo, "sub/skip.log", "no\n")
    index.file_changed(str(repo / "sub/skip.log"))
    (repo / "sub/b.py").unlink()
    index.file_changed(str(repo / "sub/b.py"))
    index.drain()
    assert indexed(index, repo) == {"a.py", "big.py", "sub/c.py"}  # big.py: under the default size limit
    hits = index.similar({"gamma_thing"}, k=3)
    assert hits and hits[0].window.path == str(new)

    index.document(str(repo / ".env"), "TOKEN=abc\n")  # a secret-named document is never indexed
    index.drain()
    assert index.text(str(repo / ".env")) is None


def test_index_stays_within_its_limits(tmp_path):
    root = tmp_path / "many"
    for i in range(30):
        write(root, f"m{i:02d}.py", f"def f{i}():\n    return {i}\n")
    index = WorkspaceIndex(Limits(max_files=10))
    index.start([root])
    index.wait_ready(10)
    assert index.stats()["files"] == 10


def test_python_imports_resolve_inside_the_workspace(tmp_path):
    root = tmp_path / "proj"
    write(root, "pkg/__init__.py", "")
    core = write(
        root,
        "pkg/core.py",
        "class Engine(Base):\n    def __init__(self, size: int,\n                 name: str = ''):\n"
        "        pass\n    def start_engine(self):\n        pass\n    def _private(self):\n"
        "        pass\n\n\ndef make_engine(size):\n    return Engine(size)\n\nLIMIT = 10\n",
    )
    main = write(root, "pkg/cli.py", "")
    text = "import os\nfrom .core import (Engine,\n    make_engine)\nimport pkg.core as pc\n\ndef run(:\n    pc.LIMIT\n"
    imports = P.imports_of(text)  # the file does not parse: each import line is read alone
    assert [i.module for i in imports] == ["os", ".core", "pkg.core"]
    modules = {"pkg": str(root / "pkg/__init__.py"), "pkg.core": str(core), "pkg.cli": str(main)}
    assert P.resolve(imports[1], main, modules) == [(str(core), ("Engine", "make_engine"))]
    assert P.resolve(imports[2], main, modules) == [(str(core), ())]
    assert P.resolve(imports[0], main, modules) == []  # not in the workspace
    defs = P.definitions(core.read_text())
    assert defs["Engine"] == (
        "class Engine(Base):\n    def __init__(self, size: int, name: str = ''):\n    def start_engine(self):"
    )
    assert defs["make_engine"] == "def make_engine(size):" and defs["LIMIT"] == "LIMIT = 10"
    assert P.used_attributes(text, "pc") == ["LIMIT"]


def _encode(s: str) -> list[int]:
    return list(s.encode())


def _words(s: str) -> list[str]:
    """A stand-in tokenizer for budgets: a token per word or symbol, as BPE roughly counts code."""
    return re.findall(r"\w+|\S", s)


def test_context_sources_and_their_stability(tmp_path):
    root = tmp_path / "proj"
    write(root, "helpers.py", "def load_zorblax_settings(path, strict=False):\n    return {}\n")
    write(root, "net.py", SIBLING)
    body = "from helpers import load_zorblax_settings\n" + "\n".join(f"x{i} = {i}" for i in range(60)) + "\n"
    index = WorkspaceIndex.of_texts(
        root, {str(root / "helpers.py"): (root / "helpers.py").read_text(), str(root / "net.py"): SIBLING}
    )
    ctx = RepoContext(index)
    path = str(root / "main.py")
    text = body + "def open_conn(host, port):\n    client = Client(host, port)\n    client."
    line = text.count("\n")
    where = Where(path, text, line, (line - 5, line + 1), "python")
    snippets = ctx.snippets(where, _words)
    got = {s.path: s.text for s in snippets}
    assert got["helpers.py"] == "def load_zorblax_settings(path, strict=False):"  # by import
    assert "enable_quux_retries" in got["net.py"]  # by similarity to the lines before the cursor
    # Typing on within the same block of lines: the very same context (the KV cache holds).
    typed = text + "enable"
    assert ctx.snippets(Where(path, typed, line, (line - 5, line + 1), "python"), _words) is snippets
    # Recently edited lines outside the prompt's window come in as a third source.
    ctx.edited(path, 3)
    moved = line + STRIDE_LINES
    later = typed + "\n" * STRIDE_LINES
    again = ctx.snippets(Where(path, later, moved, (moved - 5, moved + 1), "python"), _words)
    assert again is not snippets
    assert any(s.path == "main.py" and "x2 = 2" in s.text for s in again)


def test_prompt_layout_per_family():
    enc = _encode
    ids = {"<|repo_name|>": -10, "<|file_sep|>": -11, "<repo_name>": -20, "<file_sep>": -21}
    tid = lambda t: ids.get(t, -1)
    repo = RepoPrompt((Snippet("lib/util.py", "def helper():"),), "app/main.py", "proj")
    # The starter (no repository tokens): commented snippets with their paths open the prefix.
    starter = prompt_ids("x = ", "", enc, tid, FimTemplate(), repo)
    assert bytes(starter).decode() == "# lib/util.py\n# def helper():\nx = "
    assert commented(repo.snippets) == "# lib/util.py\n# def helper():\n"
    # Qwen2.5-Coder: <|repo_name|>, a <|file_sep|> per file, the current file's path, then FIM.
    qwen = FimTemplate(
        prefix="<|fim_prefix|>",
        suffix="<|fim_suffix|>",
        middle="<|fim_middle|>",
        spm=False,
        stops=("<|fim_pad|>", "<|file_sep|>", "<|repo_name|>"),
    )
    got = prompt_ids("x = ", "\ny = 1\n", enc, tid, qwen, repo)
    assert got[0] == -10 and got.count(-11) == 2
    head = got[: got.index(-1)]  # up to the FIM prefix token
    assert bytes(t for t in head if t >= 0).decode() == "proj\nlib/util.py\ndef helper():\napp/main.py\n"
    # StarCoder2: the same with its own tokens.
    star = FimTemplate(
        prefix="<fim_prefix>",
        suffix="<fim_suffix>",
        middle="<fim_middle>",
        spm=False,
        stops=("<fim_pad>", "<file_sep>", "<filename>", "<repo_name>"),
    )
    got = prompt_ids("x = ", "\ny = 1\n", enc, tid, star, repo)
    assert got[0] == -20 and got.count(-21) == 2
    # A vocabulary with a file separator but no repository-name token: commented snippets.
    partial = FimTemplate(
        prefix="<|fim_prefix|>",
        suffix="<|fim_suffix|>",
        middle="<|fim_middle|>",
        spm=False,
        stops=("<|fim_pad|>", "<|file_sep|>"),
    )
    assert partial.repo_tokens is None and -11 not in prompt_ids("x = ", "\ny = 1\n", enc, tid, partial, repo)
    # No context: exactly the prompt of before.
    assert prompt_ids("x = ", "\ny = 1\n", enc, tid, qwen) == prompt_ids(
        "x = ", "\ny = 1\n", enc, tid, qwen, RepoPrompt()
    )


def _decoded_prompts(home: Path) -> list[str]:
    from rltab.policy.model import tokenizer as T
    from rltab.policy.model.checkpoint import STARTER_DIR

    tok = T.load_tokenizer(STARTER_DIR)
    db = sqlite3.connect(home / "ledger.db")
    rows = db.execute("select prompt_ids from suggestion where prompt_ids is not null").fetchall()
    db.close()
    return [tok.decode(json.loads(r[0]), skip_special_tokens=False) for r in rows]


def test_copy_candidates_follow_the_longest_repeat():
    import numpy as np

    from rltab.policy.inference.copying import copy_candidates

    src = np.array([5, 6, 7, 8, 1, 6, 7, 9, 2, 7, 3])
    assert copy_candidates(src, [4, 6, 7], 6) == (2, {8: 1, 9: 1})  # "6 7" was followed by 8 and by 9
    assert copy_candidates(src, [5, 6, 7], 6) == (3, {8: 1})  # the longer repeat wins
    assert copy_candidates(src, [0, 7], 6) == (0, {})  # one token is not a repeat
    assert copy_candidates(src, [2, 7, 3], 6) == (0, {})  # the prompt's own end has nothing after it


@pytest.mark.parametrize("context", [True, False])
def test_server_puts_the_sibling_file_in_the_prompt(tmp_path, starter, context):
    """A real server over stdio, started on a workspace folder: the completion's prompt (as the
    ledger keeps it with learning on) holds the sibling's code; with context off it does not;
    a sibling's code that holds a secret never goes into a prompt."""
    root = tmp_path / "proj"
    write(root, "net.py", SIBLING)
    write(
        root,
        "keys.py",
        "def open_vault(host):\n    password = 'hunter2-correct-horse-battery'\n"
        "    aws_secret_access_key = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'\n",
    )
    home = tmp_path / "home"
    client = ServerSession(home)
    try:
        client.initialize({"learning": {"enabled": True}, "context": context}, [str(root)])
        uri = (root / "main.py").as_uri()
        text = "def open_conn(host, port):\n    client = Client(host, port)\n    client."
        client.open(uri, text)
        time.sleep(0.5)
        r = client.inline(uri, 2, len("    client."))
        items = r["result"]["items"]
        completion = items[0]["insertText"] if items else ""
        uri2 = (root / "vault.py").as_uri()
        text2 = "def open_vault(host):\n    password = "
        client.open(uri2, text2)
        r2 = client.inline(uri2, 1, len("    password = "))
        assert "result" in r2
    finally:
        client.close()
    # The name is defined only in the sibling: with context the model completes it.
    assert ("enable_quux_retries" in completion) is context, completion
    prompts = _decoded_prompts(home)
    assert len(prompts) == 2
    assert ("client.enable_quux_retries(limit=3)" in prompts[0]) is context
    assert ("# net.py" in prompts[0]) is context
    assert all("hunter2" not in p and "EXAMPLEKEY" not in p for p in prompts)


def test_token_table_finds_what_a_scan_finds():
    """The workspace's sorted trigram table answers as a scan of the same files does (longest
    repeat, its next tokens and their counts), and never from the file it is told to leave out."""
    import numpy as np

    from rltab.policy.inference.copying import SEP, TokenTable, copy_candidates

    rng = np.random.default_rng(0)
    files = {f"f{i}.py": rng.integers(0, 12, 400) for i in range(5)}
    table = TokenTable.build(files, vocab_size=12)
    for trial in range(300):
        exclude = f"f{trial % 6}.py"  # f5.py is not in the table: nothing left out
        joined = np.concatenate([x for p, ids in files.items() if p != exclude for x in (ids, [SEP])])
        tail = rng.integers(0, 12, int(rng.integers(2, 9))).tolist()
        assert table.find(tail, 6, exclude=exclude) == copy_candidates(joined, tail, 6), (trial, tail)
    only = TokenTable.build({"a.py": np.array([1, 2, 3, 4]), "b.py": np.array([9, 2, 3, 7])}, 10)
    assert only.find([2, 3], 6) == (2, {4: 1, 7: 1})
    assert only.find([1, 2, 3], 6) == (3, {4: 1})  # the longer repeat wins
    assert only.find([1, 2, 3], 6, exclude="a.py") == (2, {7: 1})
    assert only.find([3, 4], 6) == (0, {})  # a file's last token has nothing after it


def test_workspace_repeats_follow_the_index_and_leave_secrets_out(tmp_path):
    from rltab.policy.model import tokenizer as T
    from rltab.policy.model.checkpoint import STARTER_DIR
    from rltab.policy.workspace.repeats import RequestRepeats, WorkspaceRepeats

    tok = T.load_tokenizer(STARTER_DIR)
    calls = []

    def encode(s):
        calls.append(s)
        return tok.encode(s).ids

    net, keys = str(tmp_path / "net.py"), str(tmp_path / "keys.py")
    index = WorkspaceIndex.of_texts(tmp_path, {net: SIBLING, keys: "token = 'ghp_" + "a1B2" * 9 + "'\n"})
    repeats = WorkspaceRepeats(index, encode, tok.get_vocab_size(), refresh_s=0)
    table = repeats.rebuild_now()
    tail = encode("    client = Client(host, port)\n    client.")
    n, nxt = table.find(tail, 12)
    assert n >= 8 and tok.decode(list(nxt)) == "enable", (n, nxt)
    assert table.find(tail, 12, exclude=net) == (0, {})
    assert table.find(encode("token = 'ghp_"), 12) == (0, {})  # a file holding a credential is left out
    # An edit to a file reaches the table on a later request, without waiting for it.
    index.document(net, SIBLING.replace("enable_quux_retries", "disable_quux_retries"))
    deadline = time.time() + 10
    while time.time() < deadline:
        t = repeats.table()
        if t is not table and t is not None and t.find(tail, 12)[0]:
            break
        time.sleep(0.05)
    assert tok.decode(list(repeats.table().find(tail, 12)[1])).startswith("dis")
    # The document above the prompt, encoded in chunks: typing further down re-encodes one chunk.
    lines = [f"value_{i} = compute_{i}(x)" for i in range(200)]
    calls.clear()
    head = repeats.head("doc.py", lines, 150)
    assert len(calls) == 3 and tok.decode(head.tolist()).startswith("value_0 = compute_0(x)")
    calls.clear()
    repeats.head("doc.py", lines, 170)
    assert len(calls) == 1
    req = RequestRepeats(None, "doc.py", head)
    n, nxt = req.find(encode("value_7 = compute"), 12)
    assert n >= 4 and tok.decode(list(nxt)) == "_"


def test_decoding_copies_from_the_workspace_beyond_the_prompt(tmp_path, starter):
    """A name defined only in a sibling file, with no snippet of it in the prompt: the copy
    distribution finds it in the workspace's token table and the starter writes it out."""
    import numpy as np

    from rltab.policy.completion.completer import Completer
    from rltab.policy.workspace.repeats import RequestRepeats, WorkspaceRepeats

    index = WorkspaceIndex.of_texts(tmp_path, {str(tmp_path / "net.py"): SIBLING})
    table = WorkspaceRepeats(index, starter.encode, starter.tokenizer.get_vocab_size()).rebuild_now()

    class Workspace:  # the repository around the request: no snippets, the table to copy from
        def __init__(self, table):
            self.table = table

        def prompt(self, win, encode):
            return RepoPrompt()

        def repeats(self, win):
            return RequestRepeats(self.table, str(tmp_path / "main.py"), np.zeros(0, np.int64))

    before = "def open_conn(host, port):\n    client = Client(host, port)\n    client."
    with_table = Completer(starter).complete(before, "\n", context=Workspace(table), cache_key=None)
    without = Completer(starter).complete(before, "\n", context=Workspace(None), cache_key=None)
    assert with_table.text.startswith("enable_quux_retries"), with_table.text
    assert "enable_quux_retries" not in without.text, without.text
