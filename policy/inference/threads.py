"""How many threads the engine runs on: chosen by the machine and the model, overridable (the
`threads` setting, `rltab serve --threads`, RLTAB_THREADS).

A large model's decoding step is a few large matrix products that a second core nearly halves
(bench/vs_llama_cpp.py). The starter's step is ~290 small operators: half a millisecond, mostly
per-operator overhead that a second thread only adds to (BENCHMARKS "Threads": 0.50 ms on one
thread, 0.45-0.69 ms on two, run to run). So: one thread for a model under SMALL_MODEL_BYTES;
otherwise every core up to two, all but one (the editor's) above that, at most MAX_THREADS (past
eight a step is bound by memory, not by cores).
"""

from __future__ import annotations

import os

MAX_THREADS = 8
SMALL_MODEL_BYTES = 64 * 2**20  # the int8 file: the starter's is 6 MB, a 0.5B model's 475 MB


def cores_available() -> int:
    """The CPUs this process may run on (its affinity mask: a container's or taskset's limit)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def machine_threads(cores: int | None = None, model_bytes: int | None = None) -> int:
    """One for a small model; else every core up to two, all but one above; at most MAX_THREADS."""
    if model_bytes is not None and model_bytes < SMALL_MODEL_BYTES:
        return 1
    n = cores_available() if cores is None else cores
    return max(1, min(n if n <= 2 else n - 1, MAX_THREADS))


def engine_threads(setting: int = 0, model_bytes: int | None = None) -> int:
    """The `threads` setting where it is set (not 0), else RLTAB_THREADS, else machine_threads()."""
    if setting > 0:
        return setting
    raw = os.environ.get("RLTAB_THREADS", "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"RLTAB_THREADS={raw!r}: expected a whole number of threads, at least 1")
        return int(raw)
    return machine_threads(model_bytes=model_bytes)
