"""The typing-replay benchmark, short: both modes, the JSON contract, learning publishes."""

import json
import re
import subprocess
import sys

import pytest

from rltab.policy.evaluation.evaluate import click_dir

FIELDS = {
    "chars_typed",
    "shown",
    "accepted",
    "partial",
    "rejected",
    "accept_rate",
    "chars_saved_per_100",
    "latency_ms",
    "fresh_prefill_tokens",
    "thirds",
    "model_versions",
}


def run(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "rltab.server.cli", "replay", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def corpus():
    return str(click_dir() / "termui.py")


def test_frozen_and_learning_replays(tmp_path, corpus, starter):
    frozen, learn = tmp_path / "frozen.json", tmp_path / "learn.json"
    r = run(corpus, "--frozen", "--limit-chars", "2500", "--json", str(frozen), "--home", str(tmp_path / "h1"))
    assert r.returncode == 0, r.stderr[-2000:]
    r = run(
        corpus,
        "--learn",
        "--limit-chars",
        "1600",
        "--every",
        "40",
        "--json",
        str(learn),
        "--home",
        str(tmp_path / "h2"),
        "--config",
        # Two or three cycles are enough to see a version published; the guard's HumanEval check
        # runs on 10 tasks (tests/test_learning*.py cover it).
        json.dumps({"min_events": 8, "guard_pass_tasks": 10}),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    frozen_out, learn_out = json.loads(frozen.read_text()), json.loads(learn.read_text())
    for out in (frozen_out, learn_out):
        assert set(out) >= FIELDS
        assert set(out["latency_ms"]) == {"p50", "p95"} and "median" in out["fresh_prefill_tokens"]
        assert len(out["thirds"]) == 3 and all(
            {"shown", "accept_rate", "chars_saved_per_100"} <= set(t) for t in out["thirds"]
        )
        assert out["shown"] == out["accepted"] + out["partial"] + out["rejected"] > 0
    assert frozen_out["model_versions"] == ["starter"]
    assert any(u["published"] for u in learn_out["updates"]), learn_out["updates"]
    # each third counts the versions published while it was typed
    assert sum(t["published"] for t in learn_out["thirds"]) == sum(1 for u in learn_out["updates"] if u["published"])
    assert (
        all(0 <= u["fraction"] <= 1 for u in learn_out["updates"])
        and sum(t["published"] for t in frozen_out["thirds"]) == 0
    )
    assert len(learn_out["model_versions"]) >= 2 and learn_out["model_versions"][0] == "starter"
    # the same run again gives the same figures (deterministic)
    again = tmp_path / "frozen2.json"
    assert (
        run(
            corpus, "--frozen", "--limit-chars", "2500", "--json", str(again), "--home", str(tmp_path / "h3")
        ).returncode
        == 0
    )
    g = json.loads(again.read_text())
    assert (g["shown"], g["accepted"], g["partial"], g["chars_saved_per_100"]) == (
        frozen_out["shown"],
        frozen_out["accepted"],
        frozen_out["partial"],
        frozen_out["chars_saved_per_100"],
    )
    png = tmp_path / "cmp.png"
    assert run("--compare", str(frozen), str(learn), "--plot", str(png)).returncode == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_replay_usage_errors(tmp_path):
    assert run("--learn").returncode == 2
    assert run(str(tmp_path / "missing.py"), "--frozen").returncode == 2
    assert run(str(tmp_path), "--learn", "--frozen").returncode == 2


def _in_a_terminal(args: list[str], timeout: float = 300) -> str:
    """Run `args` with a pseudo-terminal for stdout and stderr, as a user at a shell does."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal 120 columns wide (a new pty has none, and tqdm draws nothing)
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
        os.execv(args[0], args)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 1.0)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
    finally:
        os.waitpid(pid, 0)
    return out.decode("utf-8", "replace")


def test_replay_shows_progress_on_a_terminal_and_only_its_json_in_a_pipe(tmp_path, corpus, starter):
    args = [sys.executable, "-m", "rltab.server.cli", "replay", corpus, "--frozen", "--limit-chars", "1500"]
    screen = _in_a_terminal([*args, "--home", str(tmp_path / "tty")])
    assert "rltab replay: typing" in screen
    assert re.search(r" (\d+)/\1 \[", screen), screen[-500:]  # every character typed, of how many, ETA
    assert "Warning" not in screen and "Downloading" not in screen  # the libraries keep quiet
    piped = run(corpus, "--frozen", "--limit-chars", "1500", "--home", str(tmp_path / "pipe"))
    assert piped.returncode == 0 and "rltab replay: typing" not in piped.stderr
    assert json.loads(piped.stdout)["chars_typed"] <= 1500
