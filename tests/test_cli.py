import json
import subprocess
import sys

import pytest


def rltab(*args, home, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "rltab.server.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def source(tmp_path):
    p = tmp_path / "shapes.py"
    p.write_text("class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n")
    return p


def test_complete_json_contract(tiny_model_dir, session_home, source):
    r = rltab(
        "complete",
        str(source),
        "--line",
        "3",
        "--col",
        "19",
        "--json",
        "--model",
        str(tiny_model_dir),
        home=session_home,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"completion", "latency_ms", "model_version"}
    assert isinstance(out["completion"], str) and out["latency_ms"] > 0 and out["model_version"] == "tiny"


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--line", "99", "--col", "1"], "outside the file"),
        (["--line", "1", "--col", "200"], "outside line 1"),
    ],
)
def test_complete_bad_position_exits_2(tiny_model_dir, session_home, source, args, msg):
    r = rltab("complete", str(source), *args, "--model", str(tiny_model_dir), home=session_home)
    assert r.returncode == 2 and msg in r.stderr


def test_complete_missing_file_exits_2(session_home, tmp_path):
    r = rltab("complete", str(tmp_path / "nope.py"), "--line", "1", "--col", "1", home=session_home)
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_complete_missing_model_exits_2(session_home, source, tmp_path):
    r = rltab("complete", str(source), "--line", "1", "--col", "1", "--model", str(tmp_path), home=session_home)
    assert r.returncode == 2 and "no model" in r.stderr


def test_demo_types_through_a_real_server(tmp_path):
    """The README's first command: `rltab demo` (a few lines) drives a real server and reports."""
    out = tmp_path / "demo.json"
    r = rltab("demo", "--lines", "5", "--json", str(out), home=tmp_path / "home")
    assert r.returncode == 0, r.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["model_versions"] == ["starter"] and figures["chars_typed"] > 0
    assert "accept rate" in r.stdout and "the first 5 of" in r.stdout and "import-model" in r.stdout
    assert (tmp_path / "home" / "ledger.db").exists()  # --home given: kept
