"""How many threads the engine runs on: chosen by the machine, overridable (the `threads`
setting, `rltab serve --threads`, RLTAB_THREADS).

A decode step is a handful of small matrix products: a second core nearly halves it (bench
`rltab bench latency`, BENCHMARKS "Threads"), but the editor needs a core too where there are
more than two, and past eight threads a step is bound by memory, not by cores.
"""

from __future__ import annotations

import os

MAX_THREADS = 8


def cores_available() -> int:
    """The CPUs this process may run on (its affinity mask: a container's or taskset's limit)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def machine_threads(cores: int | None = None) -> int:
    """Every core up to two; above that, all but one (the editor's); at most MAX_THREADS."""
    n = cores_available() if cores is None else cores
    return max(1, min(n if n <= 2 else n - 1, MAX_THREADS))


def engine_threads(setting: int = 0) -> int:
    """The `threads` setting where it is set (not 0), else RLTAB_THREADS, else machine_threads()."""
    if setting > 0:
        return setting
    raw = os.environ.get("RLTAB_THREADS", "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"RLTAB_THREADS={raw!r}: expected a whole number of threads, at least 1")
        return int(raw)
    return machine_threads()
