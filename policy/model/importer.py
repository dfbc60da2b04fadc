"""`rltab import-model HF_DIR`: turn a local Hugging Face causal LM into an rltab model version.

Offline only (`local_files_only`): the checkpoint must be on disk. Steps: check the architecture
and memory, load the weights, detect the fill-in-the-middle template from the tokenizer, write
`models/<name>/` (fp16 weights, tokenizer, meta.json), export the int8 ONNX file with its KV cache
into it, and check the ONNX file against torch before the version becomes visible.

`import_model` is one function on purpose: the steps above in order, each with its own refusal,
on one checkpoint held in memory once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path

from rltab.policy.evaluation import evaluate
from rltab.policy.inference.loading import load_model
from rltab.policy.learning.guard import parity_check

from . import tokenizer as T
from .checkpoint import TOKENIZER_FILES, write_meta
from .export import build_onnx
from .families import detect_fim, family
from .home import make_private, set_current

WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt")


class ImportFailure(ValueError):
    """A checkpoint that cannot be imported; the message says why and what to do."""


def default_name(src: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", src.resolve().name).strip(".-").lower()
    return name or "imported"


def available_memory() -> int:
    """Bytes the OS says a new process can use without swapping (Linux), else a large number."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62


def weight_bytes(src: Path) -> int:
    files = [f for pattern in WEIGHT_PATTERNS for f in src.glob(pattern)]
    return sum(f.stat().st_size for f in files)


def needed_memory(src: Path, config: dict) -> int:
    """Export holds the fp32 model, the traced graph, the fp32 ONNX file and the quantizer's copies
    at once: six fp32 copies of the weights (measured by bench/import_sizes.py: 11.7 GB peak for
    Qwen2.5-Coder-0.5B's shape, whose fp32 weights are 2.0 GB)."""
    dtype = str(config.get("torch_dtype") or config.get("dtype") or "float32")
    bytes_per = 2 if ("16" in dtype) else 4
    return 6 * weight_bytes(src) * 4 // bytes_per


def check_source(src: Path) -> dict:
    """config.json parsed, or ImportFailure naming what is missing."""
    if not src.is_dir():
        raise ImportFailure(f"{src} is not a directory")
    if not (src / "config.json").exists():
        raise ImportFailure(f"{src} has no config.json: give the directory of a Hugging Face checkpoint")
    try:
        config = json.loads((src / "config.json").read_text())
    except ValueError as e:
        raise ImportFailure(f"{src / 'config.json'} is not valid JSON: {e}") from e
    if not isinstance(config, dict):
        raise ImportFailure(f"{src / 'config.json'} is not a model configuration (a JSON object)")
    family(config.get("model_type", "?"))  # raises for unsupported architectures
    if not weight_bytes(src):
        raise ImportFailure(f"{src} has no weights (model.safetensors or pytorch_model.bin)")
    if not any((src / f).exists() for f in ("tokenizer.json", "vocab.json", "tokenizer.model")):
        raise ImportFailure(f"{src} has no tokenizer (tokenizer.json, vocab.json+merges.txt or tokenizer.model)")
    return config


def import_model(
    src: str | Path, home: Path, name: str | None = None, make_current: bool = False, progress=None
) -> dict:
    """Import `src` as `models/<name>` under `home`; returns the new version's meta."""
    from tqdm import tqdm

    src = Path(src).expanduser()
    config = check_source(src)
    fam = family(config["model_type"])
    name = name or default_name(src)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or name in ("starter", "current"):
        raise ImportFailure(f"invalid version name {name!r}: letters, digits, '.', '_' and '-' only")
    root = home / "models"
    final = root / name
    if final.exists():
        raise ImportFailure(f"a model version named {name!r} exists already; pick another --name")
    need, have = needed_memory(src, config), available_memory()
    if need > have:
        raise ImportFailure(
            f"not enough memory: importing {src.name} needs about {need / 2**30:.1f} GiB, "
            f"{have / 2**30:.1f} GiB are available"
        )

    steps = ["load weights", "tokenizer", "write fp16 weights", "export int8 ONNX", "check ONNX"]
    bar = progress or tqdm(total=len(steps), desc="import", unit="step")
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-import-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        bar.set_postfix_str(steps[0])
        model = AutoModelForCausalLM.from_pretrained(str(src), local_files_only=True, dtype=torch.float32).eval()
        bar.update()

        bar.set_postfix_str(steps[1])
        hf_tok = AutoTokenizer.from_pretrained(str(src), local_files_only=True, use_fast=True)
        tmp.mkdir(parents=True)
        hf_tok.save_pretrained(str(tmp))  # writes tokenizer.json even for slow-only checkpoints
        for extra in tmp.iterdir():
            if extra.name not in TOKENIZER_FILES:
                extra.unlink()
        tok = T.load_tokenizer(tmp)
        tokens = set(tok.get_vocab(with_added_tokens=True))
        style, template = detect_fim(tokens, hf_tok.eos_token, hf_tok.bos_token)
        bar.update()

        bar.set_postfix_str(steps[2])
        model.to(torch.float16).save_pretrained(str(tmp), safe_serialization=True)
        model.float()
        fim = {k: v for k, v in asdict(template).items() if k != "serve_fim"}
        meta = {
            "version": name,
            "parent": None,
            "imported_from": str(src.resolve()),
            "family": fam.model_type,
            "fim_style": style,
            "fim": fim,
            "serve_fim": template.serve_fim,
            "parameters": sum(p.numel() for p in model.parameters()),
        }
        write_meta(tmp, meta)
        bar.update()

        bar.set_postfix_str(steps[3])
        build_onnx(tmp, tmp)
        bar.update()

        bar.set_postfix_str(steps[4])
        agreement = onnx_agreement(tmp, model, tok, template.eos)
        if agreement < 0.9:
            raise ImportFailure(f"the exported ONNX model disagrees with torch ({agreement:.0%} of next tokens)")
        meta["onnx_agreement"] = round(agreement, 4)
        write_meta(tmp, meta)
        bar.update()

        make_private(tmp)
        os.rename(tmp, final)  # atomic: the version is complete or absent
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if progress is None:
            bar.close()
    if make_current:
        set_current(home, name)
    return meta


def onnx_agreement(model_dir: Path, torch_model, tok, eos: str) -> float:
    """The updater guard's parity check on the new version: share of held-out prefixes where the
    int8 engine picks torch's next token (near-ties left out)."""

    rows = evaluate.heldout_rows(tok, 256, max_rows=8, eos=eos)
    return parity_check(load_model(model_dir.parent, model_path=model_dir, version=model_dir.name), torch_model, rows)
