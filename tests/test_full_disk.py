"""A home that cannot be written: a 2 MB tmpfs filled to the last byte, and one mounted read-only.
Completions go on unrecorded, the user is told once, and recording resumes by itself when space
(or write access) comes back. Found that way (issue 26): a full disk failed 218 of 252 requests
with -32603 and 13 more after space came back; a read-only home stopped the server at start."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import completable_doc
from raw_lsp import RawServer

URI = "file:///work/demo/point.py"
RETRY_S = "1"  # how soon recording is tried again (default 10 s)


@contextmanager
def tmpfs(path: Path, size: str = "2m"):
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.decode().strip()[:120]}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def fill(path: Path) -> Path:
    """Takes every free byte of the file system under `path`."""
    filler = path / "filler"
    fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:  # no space left
        pass
    finally:
        os.close(fd)
    return filler


def rows(home: Path) -> int:
    if not (home / "ledger.db").exists():
        return 0
    db = sqlite3.connect(f"file:{home / 'ledger.db'}?mode=ro", uri=True)
    try:
        return db.execute("select count(*) from suggestion").fetchone()[0]
    finally:
        db.close()


def messages(server: RawServer, words: str) -> list[str]:
    return [
        n["params"]["message"]
        for n in server.notifications
        if n.get("method") == "window/showMessage" and words in n["params"]["message"]
    ]


def ask(server: RawServer, n: int, src: str, cursor: tuple[int, int], start: int = 0) -> None:
    """`n` completions, each after an edit; every one answered with a result."""
    for i in range(start, start + n):
        server.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": URI, "version": i + 2}, "contentChanges": [{"text": f"# {i}\n{src}"}]},
        )
        r = server.inline(f"q{i}", URI, cursor[0] + 1, cursor[1])
        assert "result" in r, r


def test_a_full_disk_costs_records_not_completions(tmp_path, starter):
    src, cursor = completable_doc(starter)
    with tmpfs(tmp_path / "home") as home:
        server = RawServer(home, env={"RLTAB_RECORD_RETRY_S": RETRY_S})
        try:
            server.initialize({"learning": {"enabled": True}})
            server.open(URI, src)
            ask(server, 2, src, cursor)
            before = rows(home)
            assert before == 2
            filler = fill(home)
            ask(server, 30, src, cursor, start=2)  # learning on: prompts and text fill the ledger fast
            assert len(messages(server, "cannot record")) == 1, server.notifications
            assert rows(home) < before + 30  # some went unrecorded
            filler.unlink()
            time.sleep(float(RETRY_S) + 0.2)
            ask(server, 3, src, cursor, start=32)
            assert messages(server, "again"), server.notifications
            recorded = rows(home)
            ask(server, 3, src, cursor, start=35)
            assert rows(home) == recorded + 3  # every one recorded again
            assert server.stderr_text().count("Traceback") == 0
        finally:
            server.close()


def test_a_read_only_home_serves_unrecorded_then_records_when_writable(tmp_path, starter):
    src, cursor = completable_doc(starter)
    with tmpfs(tmp_path / "home", size="64m") as home:
        remount(home, "ro")
        server = RawServer(home, env={"RLTAB_RECORD_RETRY_S": RETRY_S})
        try:
            server.initialize()
            server.open(URI, src)
            r = server.inline("first", URI, *cursor)
            assert r["result"]["items"], r  # it started, and it serves
            deadline = time.monotonic() + 10
            while not messages(server, "cannot record") and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(messages(server, "cannot record")) == 1, server.notifications
            assert not (home / "ledger.db").exists()
            remount(home, "rw")
            time.sleep(float(RETRY_S) + 0.2)
            ask(server, 3, src, cursor)
            assert rows(home) >= 2  # the ledger was made, and records again
            assert messages(server, "again"), server.notifications
        finally:
            server.close()
            os.sync()


@pytest.mark.skipif(shutil.which("mount") is None, reason="needs mount")
def test_the_retry_interval_is_validated(tmp_path):
    r = subprocess.run(
        [os.sys.executable, "-m", "rltab.server.cli", "serve", "--home", str(tmp_path / "h")],
        env={**os.environ, "RLTAB_RECORD_RETRY_S": "soon"},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "RLTAB_RECORD_RETRY_S" in r.stderr, r.stderr
