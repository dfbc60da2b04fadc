"""Huge pages for the model's weights and caches (Linux, glibc).

Every decoding step reads every weight once: the starter's 5 MB from the CPU's caches, a 0.5B
model's 474 MB from memory. With 4 KB pages that is one page-table walk per 4 KB; 2 MB pages (the
kernel's transparent huge pages) take most of them away. Measured here (AMD EPYC, THP `madvise`):
the 0.5B shape's step 40.5-41.9 -> 35.4-37.0 ms on one thread, the starter's reuse completion
14.6 -> 12.1 ms (BENCHMARKS "Huge pages").

onnxruntime allocates through malloc, and glibc's malloc asks for huge pages only when told so at
process start (the `glibc.malloc.hugetlb=1` tunable, glibc >= 2.35), so the commands that run
the engine (`serve`, `complete`, `bench`) start themselves again once with it set (`reexec`, before
anything is read from stdin: an editor's pipes are the same after exec). The processes the server
starts that run torch (the updater, the int8 build) go without it (`without`): torch's many
short-lived allocations are slower on 2 MB pages. Elsewhere (macOS, Windows, musl, THP `never`)
nothing changes. RLTAB_HUGEPAGES=0 turns it off.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path

TUNABLE = "glibc.malloc.hugetlb=1"
THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _glibc_at_least(major: int, minor: int) -> bool:
    name, version = platform.libc_ver()
    if name != "glibc" or not version:
        return False
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    return parts >= (major, minor)


def available(env: Mapping[str, str] = os.environ) -> bool:
    """Whether malloc can be told to use transparent huge pages here, and is allowed to."""
    if env.get("RLTAB_HUGEPAGES", "1") == "0" or sys.platform != "linux" or not _glibc_at_least(2, 35):
        return False
    try:
        return "[never]" not in THP_MODE.read_text()
    except OSError:
        return False


def environment(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """`env` with the tunable added where huge pages are available (for a process to start)."""
    out = dict(env)
    if available(env) and "glibc.malloc.hugetlb" not in out.get("GLIBC_TUNABLES", ""):
        out["GLIBC_TUNABLES"] = ":".join(t for t in (out.get("GLIBC_TUNABLES"), TUNABLE) if t)
    return out


def without(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """`env` less the tunable, for a process that runs torch: its many short-lived allocations are
    slower on 2 MB pages (the starter's int8 build 6.8-7.0 -> 7.3-7.5 s; one update, trigger to
    live, 218 -> 229 s in bench/updater.py)."""
    out = dict(env)
    kept = [t for t in out.get("GLIBC_TUNABLES", "").split(":") if t and t != TUNABLE]
    if kept:
        out["GLIBC_TUNABLES"] = ":".join(kept)
    else:
        out.pop("GLIBC_TUNABLES", None)
    return out


def reexec() -> None:
    """Start this process again with the tunable, where it is available and not yet set (once:
    the new process finds it set). Returns only where nothing was done."""
    env = environment()
    if env.get("GLIBC_TUNABLES") == os.environ.get("GLIBC_TUNABLES"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, list(sys.orig_argv), env)
    except OSError:  # an interpreter that cannot be started again: go on with small pages
        return
