"""A model directory's int8 ONNX files: its own, or built at first use into the user's cache
(keyed by formats.weights_digest). `python -m rltab.policy.model.build_int8 MODEL_DIR OUT_DIR`
exports and quantizes (export.build_onnx); the server runs it in a process of its own when a
model's file is not cached yet, so that the serving process never loads torch, transformers or onnx.

Sealed offline before anything loads (policy/offline.py): onnx would otherwise ask for the
machine's MAC address through an AF_INET socket.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from rltab.policy.runtime import hugepages, offline

from .formats import EXPORT_FORMAT, LORA_ONNX, ONNX_FORMAT_FILE, PLAIN_ONNX, weights_digest
from .home import cache_dir


def onnx_path(model_path: Path, lora: bool = False) -> Path:
    """The int8 ONNX file of a model directory, exported and quantized on first use: the plain
    graph, or with `lora` the one that takes adapters at run time (export.py)."""
    name = LORA_ONNX if lora else PLAIN_ONNX
    own = model_path / name
    if own.exists() and own_format(model_path) == EXPORT_FORMAT:
        return own  # an imported model's, built at import (older formats are built again, cached)
    cached = cache_dir() / "onnx" / weights_digest(model_path) / name
    if not (cached.parent / PLAIN_ONNX).exists():  # written last: both files are there
        build_onnx_file(model_path, cached.parent)
    return cached


def own_format(model_path: Path) -> int | None:
    """The export format of a model directory's own ONNX files (None: written before it was recorded)."""
    try:
        return int((model_path / ONNX_FORMAT_FILE).read_text())
    except (OSError, ValueError):
        return None


class OnnxBuildError(Exception):
    """A model's int8 ONNX file is not built and cannot be built here."""


def build_onnx_file(model_path: Path, out_dir: Path) -> None:
    """Export and quantize, in this process where torch is loaded already (the updater), else in a
    process of its own: serving never loads torch, transformers or onnx."""
    if "torch" in sys.modules:
        from .export import build_onnx  # imports torch: only where it is loaded already

        build_onnx(model_path, out_dir)
        return
    done = subprocess.run(
        [sys.executable, "-m", "rltab.policy.model.build_int8", str(model_path), str(out_dir)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=hugepages.without(),
    )
    if done.returncode != 0:
        tail = ((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1]
        hint = (
            " (building it needs torch, transformers and onnx: install rltab with its dependencies, as its README says)"
            if "No module named" in tail
            else ""
        )
        raise OnnxBuildError(f"cannot build the int8 ONNX file of {model_path}: {tail}{hint}")


def main(argv: list[str] | None = None) -> int:
    offline.seal()
    from .export import build_onnx  # after the seal: onnx must not load before it

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model_dir")
    ap.add_argument("out_dir")
    args = ap.parse_args(argv)
    print(build_onnx(args.model_dir, args.out_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
