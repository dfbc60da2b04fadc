"""llama.cpp for rltab's tests and benchmarks: its server, its converters, from one pinned source.

The source is llama-cpp-python's sdist (PyPI carries llama.cpp only that way): `vendor/llama.cpp`
holds the server, `convert_hf_to_gguf.py`, `convert_lora_to_gguf.py` and `gguf-py`. Downloaded
once, built once (minutes on 2 cores), kept in the user's cache directory, outside any checkout.
Never part of the product: `rltab serve --engine URL` talks to whatever server the user runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from filelock import FileLock
from platformdirs import user_cache_dir

VERSION = "0.3.36"  # llama-cpp-python, as in bench/requirements-llama.txt
CMAKE_FLAGS = [
    # Portable (no -march=native): the AMX build crashed here (BENCHMARKS, vs llama.cpp).
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX2=ON",
    "-DGGML_AMX_TILE=OFF",
    "-DGGML_AMX_INT8=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    # Unoptimised: the tests' models are tiny, and CI's two cores build it in about 3 minutes
    # instead of 5 or more (measured here: 3 min 13 s wall, 5 min 24 s of CPU). Speed figures
    # come from llama-cpp-python's own optimised build (bench/vs_llama_cpp.py), never from this.
    "-DCMAKE_BUILD_TYPE=Release",
    "-DCMAKE_C_FLAGS_RELEASE=-O0 -DNDEBUG",
    "-DCMAKE_CXX_FLAGS_RELEASE=-O0 -DNDEBUG",
]


JOBS = "RLTAB_LLAMA_BUILD_JOBS"  # compile jobs (default: every core; the background build: one)


class Unavailable(RuntimeError):
    """llama.cpp cannot be had here (no network to PyPI, no cmake or compiler, a failed build)."""


def cache_dir() -> Path:
    return Path(os.environ.get("RLTAB_LLAMA_CPP_CACHE") or Path(user_cache_dir("rltab")) / f"llama.cpp-{VERSION}")


def _built() -> Path:
    return cache_dir() / "build" / "bin" / "llama-server"


def source() -> Path:
    """vendor/llama.cpp of the pinned sdist, downloaded and unpacked on first use."""
    root = cache_dir()
    src = root / "src" / f"llama_cpp_python-{VERSION}" / "vendor" / "llama.cpp"
    with FileLock(str(root.parent / f"{root.name}.lock")):
        if (src / "convert_hf_to_gguf.py").exists():
            return src
        root.mkdir(parents=True, exist_ok=True)
        dl = root / "download"
        r = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", str(dl)]
            + ["-q", f"llama-cpp-python=={VERSION}"],
            capture_output=True,
            text=True,
        )
        archives = sorted(dl.glob("llama_cpp_python-*.tar.gz"))
        if r.returncode != 0 or not archives:
            raise Unavailable(f"could not download llama-cpp-python=={VERSION}: {r.stderr.strip()[-300:]}")
        with tarfile.open(archives[0]) as tar:
            tar.extractall(root / "src", filter="data")
        if not (src / "convert_hf_to_gguf.py").exists():
            raise Unavailable(f"the sdist has no vendor/llama.cpp at {src}")
        return src


def server_binary() -> Path:
    """llama.cpp's `llama-server`, built on first use."""
    root = cache_dir()
    binary = _built()
    if binary.exists():
        return binary
    src = source()
    missing = [t for t in ("cmake", "c++") if shutil.which(t) is None]
    if missing:
        raise Unavailable(f"building llama-server needs {' and '.join(missing)}")
    with FileLock(str(root.parent / f"{root.name}.lock")):
        if binary.exists():
            return binary
        build = root / "build"
        log = root / "build.log"
        with log.open("w") as out:
            for cmd in (
                ["cmake", "-S", str(src), "-B", str(build), *CMAKE_FLAGS],
                [
                    "cmake",
                    "--build",
                    str(build),
                    "--target",
                    "llama-server",
                    "-j",
                    os.environ.get(JOBS, "") or str(os.cpu_count() or 2),
                ],
            ):
                if subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                    raise Unavailable(f"building llama-server failed; see {log}")
    return binary


def model_to_gguf(hf_dir: Path, out: Path, outtype: str = "f16", llama_cpp: Path | None = None) -> Path:
    """A Hugging Face checkpoint directory as one GGUF file (`outtype`: f32, f16, bf16, q8_0), by
    the converter of `llama_cpp` (a checkout; default: the pinned sdist's). rltab's tokenizer is not
    one the converter knows by hash: its pre-tokenizer is declared Qwen2's (prompts travel as token
    ids, so the server's own tokenization is never used on them)."""
    src = llama_cpp or source()
    shim = (
        "import sys; sys.path[:0] = sys.argv[1:3]; "
        "from conversion.base import TextModel; TextModel.get_vocab_base_pre = lambda self, tok: 'qwen2'; "
        "import convert_hf_to_gguf as C; sys.argv = ['convert', *sys.argv[3:]]; C.main()"
    )
    r = subprocess.run(
        [sys.executable, "-c", shim, str(src), str(src / "gguf-py"), str(hf_dir)]
        + ["--outtype", outtype, "--outfile", str(out)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise Unavailable(f"convert_hf_to_gguf failed: {r.stderr.strip()[-1500:]}")
    return out


def build_in_background(log: Path) -> subprocess.Popen | None:
    """Start building the server in a low-priority process, one compile job at a time (the test
    session does, at its start, so the build overlaps the tests before the ones that need it and
    leaves them a core). None: already built."""
    if _built().exists():
        return None
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "rltab.harness.llama_cpp"],
            env={**os.environ, JOBS: "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.nice(19),
        )


if __name__ == "__main__":
    try:
        print(server_binary())
    except Unavailable as e:
        print(f"llama.cpp unavailable: {e}", file=sys.stderr)
        sys.exit(1)
