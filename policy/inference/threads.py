"""How many threads the engine runs on: chosen by the machine and the model, overridable (the
`threads` setting, `rltab serve --threads`, RLTAB_THREADS).

A large model's decoding step is a few large matrix products that a second core nearly halves
(bench/vs_llama_cpp.py): every core up to two, all but one (the editor's) above that, at most
MAX_THREADS (past eight a step is bound by memory, not by cores). A model under SMALL_MODEL_BYTES
(the starter) runs on at most SMALL_MODEL_THREADS: its step is a few dozen small kernels since
export format 7, which a second thread speeds up (BENCHMARKS "Export format 7": prefill of 1,024
tokens 74-76 -> 37-50 ms, the reuse completion mostly faster) and more threads would only
synchronise. (On format 6's ~290 operators a second thread had only added overhead.)
"""

from __future__ import annotations

import os

MAX_THREADS = 8
SMALL_MODEL_BYTES = 64 * 2**20  # the int8 file: the starter's is 6 MB, a 0.5B model's 474 MiB
SMALL_MODEL_THREADS = 2


def cores_available() -> int:
    """The CPUs this process may run on (its affinity mask: a container's or taskset's limit)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def machine_threads(cores: int | None = None, model_bytes: int | None = None) -> int:
    """Every core up to two, all but one above; at most MAX_THREADS (SMALL_MODEL_THREADS for a
    small model)."""
    n = cores_available() if cores is None else cores
    most = SMALL_MODEL_THREADS if model_bytes is not None and model_bytes < SMALL_MODEL_BYTES else MAX_THREADS
    return max(1, min(n if n <= 2 else n - 1, most))


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
