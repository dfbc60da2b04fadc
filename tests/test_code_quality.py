"""The house rules that tools check: ruff (lint and format) and mypy over the Python packages."""

import os
import subprocess
import sys

from layout import PACKAGES, ROOT


def run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, **kw)


def test_ruff_lint_and_format_are_clean():
    lint = run("ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout[-3000:]


def test_mypy_is_clean(tmp_path):
    # The folders install under rltab.* names (pyproject package-dir): mypy reads them through links.
    (tmp_path / "rltab").mkdir()
    for folder in PACKAGES:
        os.symlink(ROOT / folder, tmp_path / "rltab" / folder)
    args = [a for p in PACKAGES.values() for a in ("-p", p)]
    r = run("mypy", *args, "--cache-dir", str(ROOT / ".mypy_cache"), env={**os.environ, "MYPYPATH": str(tmp_path)})
    assert r.returncode == 0, r.stdout[-3000:]
