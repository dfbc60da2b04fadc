"""`python -m rltab.policy.build_int8 MODEL_DIR OUT_DIR`: export and quantize a model directory's
int8 ONNX files (export.build_onnx). The server runs this in a process of its own when a model's
file is not cached yet, so that the serving process never loads torch, transformers or onnx.

Sealed offline before anything loads (policy/offline.py): onnx would otherwise ask for the
machine's MAC address through an AF_INET socket.
"""

from __future__ import annotations

import argparse

from . import offline


def main(argv: list[str] | None = None) -> int:
    offline.seal()
    from .export import build_onnx

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model_dir")
    ap.add_argument("out_dir")
    args = ap.parse_args(argv)
    print(build_onnx(args.model_dir, args.out_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
