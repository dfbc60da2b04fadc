"""The starter model's architecture and the on-disk layout of a model directory.

A model directory holds a transformers checkpoint (config.json, fp16 model.safetensors),
tokenizer.json (+ tokenizer config) and meta.json. It is the unit that gets trained, published,
exported to ONNX and served. torch/transformers are imported lazily: the server never needs them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .formats import STARTER_VERSION
from .tokenizer import save_for_transformers

# The shipped starter (package data of rltab.policy); RLTAB_STARTER_DIR names another (tests of an
# upgrade, a starter tried before it ships).
STARTER_DIR = Path(os.environ.get("RLTAB_STARTER_DIR") or Path(__file__).resolve().parents[1] / "starter")


def starter_config(vocab_size: int, **overrides: Any):
    """A ~5 M-parameter Llama: 4 layers, d=256; small enough for 1 ms/token decode on a laptop."""
    from transformers import LlamaConfig

    kw: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=4,
    )
    kw.update(overrides)
    return LlamaConfig(**kw)


def read_meta(model_dir: str | Path) -> dict:
    p = Path(model_dir) / "meta.json"
    return json.loads(p.read_text()) if p.exists() else {}


def write_meta(model_dir: str | Path, meta: dict) -> None:
    p = Path(model_dir) / "meta.json"
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    tmp.replace(p)


def load_torch(model_dir: str | Path, dtype=None):
    """Load the transformers model (fp32 by default) for training or reference."""
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        str(model_dir), dtype=dtype or torch.float32, local_files_only=True, attn_implementation="sdpa"
    ).eval()


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def save_model_dir(
    model, tokenizer, model_dir: str | Path, meta: dict, fp16: bool = True, tokenizer_from: str | Path | None = None
) -> Path:
    """Write a complete model directory (weights in fp16 to keep the repo light). The tokenizer
    files are copied from `tokenizer_from` when given (a trained version keeps its parent's,
    special-token settings included), else written for rltab's own tokenizer."""
    import copy
    import shutil

    import torch

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    out = copy.deepcopy(model).to(torch.float16) if fp16 else model
    out.save_pretrained(str(model_dir), safe_serialization=True)
    if tokenizer_from is not None:
        for name in TOKENIZER_FILES:
            if (Path(tokenizer_from) / name).exists():
                shutil.copy2(Path(tokenizer_from) / name, model_dir / name)
    else:
        save_for_transformers(tokenizer, model_dir)
    write_meta(model_dir, meta)
    return model_dir


def model_languages(model_path: Path) -> tuple[str, ...] | None:
    """The languages a full model knows: meta.json's "languages" (language ids, as LSP names them),
    else Python for rltab's own starter; None for an imported model that does not say."""
    meta = read_meta(model_path)
    if isinstance(meta.get("languages"), list):
        return tuple(str(x) for x in meta["languages"])
    return ("python",) if meta.get("name") == STARTER_VERSION else None


def max_positions(model_path: Path) -> int:
    """The longest sequence the model takes (its config: max_position_embeddings or n_positions)."""
    config = json.loads((model_path / "config.json").read_text())
    return config.get("max_position_embeddings") or config.get("n_positions") or 2048
