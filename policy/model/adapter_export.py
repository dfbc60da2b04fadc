"""`rltab export-adapter`: a version's LoRA adapter in the format a shared inference server loads.

- `peft`: a PEFT adapter directory (adapter_config.json + adapter_model.safetensors), what vLLM
  loads at run time (`--enable-lora`, `/v1/load_lora_adapter`) and what llama.cpp's
  `convert_lora_to_gguf.py` reads.
- `gguf`: llama.cpp's adapter file (`llama-server --lora FILE`), made by that converter from the
  PEFT directory: the converter lives in every llama.cpp checkout (`--llama-cpp DIR`).

Both are named `formats.adapter_name` (version + digest of the weights), the name
`rltab serve --engine URL` asks the server for: unique across everyone sharing it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from .adapters import lora_settings, policy
from .formats import adapter_name
from .home import base_dir, model_dir


class ExportError(RuntimeError):
    """The version cannot be exported (a full model, a failed conversion)."""


def export_peft(home: Path, version: str, out_dir: Path) -> Path:
    """out_dir/<adapter name>/ with the PEFT files; the base's config beside them is not copied
    (the server has the base)."""

    path = model_dir(home, version)
    if lora_settings(path) is None:
        raise ExportError(f"{version} is a full model, not an adapter version: serve its directory as the base")
    target = Path(out_dir) / adapter_name(path)
    model = policy(home, path)
    model.save_pretrained(str(target))
    return target


def export_gguf(home: Path, version: str, out_dir: Path, llama_cpp: Path) -> Path:
    """out_dir/<adapter name>.gguf, converted by `llama_cpp`/convert_lora_to_gguf.py."""
    llama_cpp = Path(llama_cpp)
    script = llama_cpp / "convert_lora_to_gguf.py"
    if not script.exists():
        raise ExportError(f"no convert_lora_to_gguf.py in {llama_cpp} (a llama.cpp checkout)")
    base = base_dir(home, model_dir(home, version))
    out = Path(out_dir) / f"{adapter_name(model_dir(home, version))}.gguf"
    with tempfile.TemporaryDirectory(prefix="rltab-peft-") as tmp:
        peft_dir = export_peft(home, version, Path(tmp))
        env_path = [str(llama_cpp), str(llama_cpp / "gguf-py")]  # the checkout's own gguf package
        shim = (
            "import runpy, sys; sys.path[:0] = sys.argv[1:3]; sys.argv = [sys.argv[3], *sys.argv[4:]]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')"
        )
        r = subprocess.run(
            [sys.executable, "-c", shim, *env_path, str(script), str(peft_dir), "--base", str(base)]
            + ["--outtype", "f32", "--outfile", str(out)],
            capture_output=True,
            text=True,
        )
    if r.returncode != 0 or not out.exists():
        lines = (r.stderr or r.stdout).strip().splitlines()
        raise ExportError(f"convert_lora_to_gguf.py failed: {lines[-1] if lines else r.returncode}")
    return out


def export(home: Path, version: str, out_dir: Path, fmt: str, llama_cpp: Path | None = None) -> Path:
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    if fmt == "peft":
        return export_peft(home, version, out_dir)
    if llama_cpp is None:
        raise ExportError("--format gguf needs --llama-cpp DIR (a llama.cpp checkout, for its converter)")
    return export_gguf(home, version, out_dir, llama_cpp)
