"""The VS Code extension's own checks (client-vscode: strict tsc, ESLint, node unit tests and the
protocol test that drives `rltab serve` with Microsoft's LSP client), run from the Python suite so
one test command covers everything."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parent.parent / "client-vscode"


def npm(*args, env=None, timeout=600):
    return subprocess.run(["npm", *args], cwd=CLIENT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(shutil.which("npm") is None, reason="needs node and npm (Node >= 20)")
def test_vscode_extension_typecheck_lint_unit_and_protocol_tests():
    if not (CLIENT / "node_modules" / ".package-lock.json").exists():
        done = npm("ci", "--no-audit", "--no-fund")
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    # The protocol test launches this interpreter's rltab (`python -m rltab.server.cli serve`).
    env = dict(os.environ, RLTAB_SERVER=sys.executable)
    done = npm("test", env=env)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "# fail 0" in out
    assert "protocol" in out or "inline completion, then the accept command" in out
