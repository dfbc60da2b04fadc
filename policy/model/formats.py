"""The names and formats every part of a model's life agrees on: file names in a model directory
and a home, the graph's export format and logit rows, the digest that keys the int8 cache, the
name an adapter goes by on a shared server. Small and import-free on purpose: the modules that
write these files and those that read them all import it, and nothing else, from each other."""

from __future__ import annotations

import hashlib
from pathlib import Path

STARTER_VERSION = "starter"
EXPORT_FORMAT = 8  # bump when the graph changes: cached ONNX files of older formats are rebuilt
LOGIT_ROWS = 9  # the graph's logits cover the last 9 positions run: engine.LOOKUP_TOKENS + 1
CACHE_TOKEN_AXIS = 2  # the graph's cache buffers: keys and values [B, Hkv, capacity, D]
PLAIN_ONNX, LORA_ONNX = "model.int8.onnx", "model.int8.lora.onnx"
ONNX_FORMAT_FILE = "model.int8.format"  # beside a model directory's own ONNX files: their EXPORT_FORMAT
WEIGHT_FILES = ("config.json", "model.safetensors", "adapter.safetensors")
REQUEST_FILE = "train.request"  # in a home: `rltab.train` asks a watching updater to run a cycle now
TRAINING_FILE = "training.pid"  # in a home while an update cycle runs: the updater's pid


def weights_digest(model_dir: str | Path) -> str:
    """Identity of a model directory's weights, used as the ONNX cache key."""
    h = hashlib.sha256(f"format {EXPORT_FORMAT}".encode())
    for name in WEIGHT_FILES:
        p = Path(model_dir) / name
        h.update(p.read_bytes() if p.exists() else b"")
    return h.hexdigest()[:16]


def base_identity(model_dir: str | Path) -> str:
    """Which base a LoRA adapter was trained over: the base's config and weights (a new starter,
    or a model imported again under the same name, is another base; adapters do not carry over)."""
    h = hashlib.sha256()
    for name in WEIGHT_FILES[:2]:
        p = Path(model_dir) / name
        h.update(p.read_bytes() if p.exists() else b"")
    return h.hexdigest()[:16]


def tokenizer_digest(model_dir: str | Path) -> str:
    """Which tokenizer token ids belong to (ledger rows record it: ids of another tokenizer are
    never trained on as ids)."""
    p = Path(model_dir) / "tokenizer.json"
    return hashlib.sha256(p.read_bytes() if p.exists() else b"").hexdigest()[:16]


ADAPTER_ONNX = "adapter.onnx_adapter"  # a LoRA adapter version's files (adapters.py)
ADAPTER_WEIGHTS = "adapter.safetensors"


def adapter_name(model_path: Path) -> str:
    """The name a shared inference server knows an adapter version by: its version and a digest
    of its weights, so two users' v0003 never collide (`rltab export-adapter` writes it)."""
    digest = hashlib.sha256((Path(model_path) / ADAPTER_WEIGHTS).read_bytes()).hexdigest()[:12]
    return f"rltab-{Path(model_path).name}-{digest}"
