"""A second real client: Emacs' eglot (batch mode) against `rltab serve`."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import completable_doc
from lsp_helpers import ledger_rows

REPO = Path(__file__).resolve().parents[1]


def eglot_available() -> bool:
    if shutil.which("emacs") is None:
        return False
    r = subprocess.run(["emacs", "--batch", "--eval", "(require 'eglot)"], capture_output=True, timeout=60)
    return r.returncode == 0


@pytest.mark.skipif(
    not eglot_available(), reason="emacs with eglot is not installed (apt-get install emacs-nox elpa-eglot)"
)
@pytest.mark.parametrize("beside", [None, "pylsp"], ids=["alone", "beside-pylsp-through-rass"])
def test_eglot_completion_is_recorded(tmp_path, starter, beside):
    """eglot runs one server per major mode: alone, rltab replaces the user's; through the rass
    multiplexer (the documented way to keep both) its items still arrive and are recorded."""
    home, src = tmp_path / "home", tmp_path / "point.py"
    text, (line, _) = completable_doc(starter)
    src.write_text(text)
    bin_dir = Path(sys.executable).parent  # rass and pylsp come with the test dependencies
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "RLTAB_REPO": str(REPO),
        "RLTAB_PYTHON": sys.executable,
        "RLTAB_HOME": str(home),
        "RLTAB_FILE": str(src),
        "RLTAB_LINE": str(line),
        **({"RLTAB_EGLOT_WITH": beside} if beside else {}),
    }
    r = subprocess.run(
        ["emacs", "--batch", "-l", str(REPO / "tests/emacs/complete_and_accept.el")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    ids = [ln.split()[1] for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("ID ")]
    assert r.returncode == 0 and ids, r.stderr[-2000:]
    if beside:
        assert f"Server `{beside}+rltab' now managing" in r.stderr, r.stderr[-2000:]
    rows = ledger_rows(home, "select outcome from suggestion where id = ?", ids)
    assert rows and rows[0][0] == "accepted"
