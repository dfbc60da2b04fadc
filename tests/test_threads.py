"""The engine's thread count (issue 30): chosen by the machine and the model's size, overridable
in settings, by `--threads` and by RLTAB_THREADS; a change of setting reloads the model with it."""

import os
import subprocess
import sys

import pytest
from helpers import completable_doc
from lsp_helpers import inline, lsp_session, open_doc, wait_until
from lsprotocol import types

from rltab.policy.inference.threads import SMALL_MODEL_BYTES, engine_threads, machine_threads

URI = "file:///work/demo/threads.py"


def test_every_core_up_to_two_then_all_but_the_editors_at_most_eight():
    assert [machine_threads(n) for n in (1, 2, 3, 4, 8, 32)] == [1, 2, 2, 3, 7, 8]
    big = 500 * 2**20
    assert [machine_threads(n, model_bytes=big) for n in (1, 2, 4)] == [1, 2, 3]


def test_a_small_model_runs_on_at_most_two_threads(starter):
    """The starter's step is a few dozen small kernels: a second thread helps, more only synchronise."""
    size = starter.engine.path.stat().st_size
    assert size < SMALL_MODEL_BYTES
    assert [machine_threads(n, model_bytes=size) for n in (1, 2, 3, 32)] == [1, 2, 2, 2]


def test_the_setting_then_the_environment_then_the_machine(monkeypatch):
    monkeypatch.delenv("RLTAB_THREADS", raising=False)
    assert engine_threads(0) == machine_threads()
    assert engine_threads(0, model_bytes=1000) == machine_threads(model_bytes=1000) <= 2
    monkeypatch.setenv("RLTAB_THREADS", "3")
    assert engine_threads(0) == 3 and engine_threads(0, model_bytes=1000) == 3
    assert engine_threads(5) == 5
    monkeypatch.setenv("RLTAB_THREADS", "many")
    with pytest.raises(ValueError, match="RLTAB_THREADS"):
        engine_threads(0)


def test_a_bad_rltab_threads_is_one_line_and_exit_2(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "rltab.server.cli", "serve", "--home", str(tmp_path)],
        env={**os.environ, "RLTAB_THREADS": "0"},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "RLTAB_THREADS" in r.stderr


def os_threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


async def test_the_threads_setting_reloads_the_engine_on_that_many_threads(starter, tmp_path):
    doc, cursor = completable_doc(starter)
    async with lsp_session(tmp_path, env={"RLTAB_THREADS": ""}) as c:
        open_doc(c, URI, doc)

        async def served_on() -> int:
            r = await inline(c, URI, *cursor)
            assert r.items
            seen = len(c.statuses)
            await c.workspace_execute_command_async(
                types.ExecuteCommandParams("rltab.rejected", [r.items[0].command.arguments[0]])
            )
            await wait_until(lambda: len(c.statuses) > seen)  # the status after the outcome
            return c.statuses[-1]["threads"]

        small = machine_threads(model_bytes=starter.engine.path.stat().st_size)
        assert await served_on() == small  # the starter is small (test_a_small_model_runs_on_at_most_two_threads)
        before = os_threads(c._server.pid)
        c.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"rltab": {"threads": 5}}))
        assert await served_on() == 5
        # onnxruntime's pool: the new session's four workers, where the old one's (small - 1) may be gone.
        assert os_threads(c._server.pid) >= before - (small - 1) + 4
