"""A real client: headless Neovim's built-in LSP client against `rltab serve`."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import completable_doc
from lsp_helpers import ledger_rows

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("nvim") is None, reason="neovim is not installed (apt-get install neovim)")
def test_neovim_completion_is_recorded_as_accepted(tmp_path, starter):
    home, src, out = tmp_path / "home", tmp_path / "point.py", tmp_path / "out.txt"
    text, (line, col) = completable_doc(starter)
    src.write_text(text)
    env = {
        **os.environ,
        "RLTAB_REPO": str(REPO),
        "RLTAB_PYTHON": sys.executable,
        "RLTAB_HOME": str(home),
        "RLTAB_FILE": str(src),
        "RLTAB_NVIM_OUT": str(out),
        "RLTAB_LINE": str(line),
        "RLTAB_COL": str(col),
    }
    r = subprocess.run(
        ["nvim", "--headless", "--clean", "-c", f"luafile {REPO / 'tests/nvim/complete_and_accept.lua'}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert r.returncode == 0 and out.exists(), r.stderr
    sid, after = out.read_text().split("\n", 1)
    last = text.split("\n")[line]
    assert after.split("\n")[line].startswith(last) and len(after.split("\n")[line]) > len(last)
    deadline = time.time() + 10
    while time.time() < deadline:
        rows = ledger_rows(home, "select outcome from suggestion where id = ?", [sid])
        if rows and rows[0][0] == "accepted":
            break
        time.sleep(0.1)
    assert rows and rows[0][0] == "accepted"
    kinds = {k for (k,) in ledger_rows(home, "select source from event where suggestion_id = ?", [sid])}
    assert "inferred" in kinds  # seen in the edit itself, not only in the command
