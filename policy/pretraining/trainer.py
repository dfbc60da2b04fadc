"""The starter's trainer for a fixed wall-clock budget (modded-nanogpt's recipe, at ~30 M):
transformers' LlamaForCausalLM (what the exporter, the importer and llama.cpp's converter know),
bf16 autocast and torch.compile on a GPU, Muon on the hidden matrices and AdamW on embeddings,
head and norms, document-masked attention (a row holds several examples: each attends only
within itself, positions restart at each), and a warm-up / stable / decay schedule keyed to the
wall clock, so a run of N minutes ends decayed whatever its speed. Rows come from pre-tokenized
shards (shards.py). A run starts from given weights when there are some (several runs add up),
else from scratch.

`train` is one loop on purpose (nanoGPT's `train.py`, design.md §8): the whole run legible in one
place, from the rows to the checkpoint.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass
class Shape:
    """The model: Llama with tied embeddings (the ~30 M of issue 27 at the defaults)."""

    vocab_size: int = 12288
    """Set from the tokenizer."""
    hidden: int = 512
    """Model width."""
    layers: int = 8
    """Transformer blocks."""
    heads: int = 8
    """Attention heads (head dim = hidden / heads)."""
    kv_heads: int = 4
    """Key/value heads (grouped-query attention: a smaller KV cache to serve)."""
    mlp: int = 1408
    """SwiGLU width."""
    max_positions: int = 2048
    """Longest sequence served."""


@dataclass
class Recipe:
    """How long and how fast."""

    minutes: float = 7.0
    """Wall-clock budget of the run (the schedule is keyed to it)."""
    seq_len: int = 1024
    """Tokens per row."""
    batch: int = 64
    """Rows per step."""
    muon_lr: float = 0.02
    """Muon's learning rate (hidden matrices)."""
    adam_lr: float = 3e-3
    """AdamW's (embeddings and head, norms)."""
    warmup: float = 0.03
    """Share of the budget warming up."""
    decay: float = 0.35
    """Share of the budget at the end decaying to zero."""
    eval_rows: int = 64
    """Held-out rows scored at the end (and every `eval_every_s`)."""
    eval_every_s: float = 90.0
    """Seconds between held-out evaluations."""
    seed: int = 0
    """Row order and initialisation."""


def llama_config(shape: Shape, tok_ids: dict[str, int]):
    """The transformers config of `shape` (checkpoint.starter_config with this size and GQA)."""
    from rltab.policy.model.checkpoint import starter_config

    return starter_config(
        shape.vocab_size,
        hidden_size=shape.hidden,
        intermediate_size=shape.mlp,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=shape.max_positions,
        bos_token_id=None,
        eos_token_id=tok_ids["eos"],
        pad_token_id=tok_ids["pad"],
    )


def document_inputs(rows: torch.Tensor, eos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Position ids restarting after each end-of-text, and the 4-D attention mask that keeps each
    example to itself: causal, and only within the same example."""
    x = rows[:, :-1]
    ends = (x == eos).long()
    doc = torch.cumsum(ends, dim=1) - ends  # an example's end token belongs to it
    t = torch.arange(x.shape[1], device=x.device)
    start = torch.zeros_like(x)
    for b in range(x.shape[0]):  # first position of each position's example
        first = torch.zeros(int(doc[b].max()) + 1, dtype=torch.long, device=x.device)
        first.scatter_reduce_(0, doc[b], t, reduce="amin", include_self=False)
        start[b] = first[doc[b]]
    positions = t - start
    same = doc[:, :, None] == doc[:, None, :]
    causal = t[None, :, None] >= t[None, None, :]
    mask = torch.zeros(same.shape, dtype=torch.float32, device=x.device)
    mask.masked_fill_(~(same & causal), float("-inf"))
    return positions, mask[:, None]


def optimizers(model, recipe: Recipe) -> list[torch.optim.Optimizer]:
    """Muon for the blocks' matrices; AdamW for the (tied) embedding and the norms."""
    hidden = [p for n, p in model.named_parameters() if p.ndim == 2 and ".layers." in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim == 2 and ".layers." in n)]
    return [
        torch.optim.Muon(hidden, lr=recipe.muon_lr, momentum=0.95, weight_decay=0.0),
        torch.optim.AdamW(rest, lr=recipe.adam_lr, betas=(0.9, 0.95), weight_decay=0.0),
    ]


def schedule(fraction: float, recipe: Recipe) -> float:
    """The learning-rate multiplier at `fraction` of the wall-clock budget: warm-up, stable, decay."""
    if fraction < recipe.warmup:
        return max(fraction / recipe.warmup, 0.01)
    if fraction > 1 - recipe.decay:
        return max(0.0, (1 - fraction) / recipe.decay)
    return 1.0


@torch.no_grad()
def heldout_loss(model, rows: np.ndarray, eos: int, device: str, batch: int = 16) -> float:
    """Mean next-token loss (nats) over held-out rows, each example attending to itself only."""
    model.eval()
    total, n = 0.0, 0
    for i in range(0, len(rows), batch):
        chunk = torch.as_tensor(rows[i : i + batch], device=device)
        positions, mask = document_inputs(chunk, eos)
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=device != "cpu"):
            logits = model(input_ids=chunk[:, :-1], position_ids=positions, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), chunk[:, 1:].flatten(), reduction="sum")
        total, n = total + float(loss), n + chunk[:, 1:].numel()
    model.train()
    return total / max(1, n)


def train(
    model,
    rows: Iterator[np.ndarray],
    heldout: np.ndarray,
    recipe: Recipe,
    eos: int,
    device: str,
    log: Callable[[str], None] = print,
    compile: bool = True,
) -> dict:
    """Trains `model` in place for `recipe.minutes` of wall clock; returns the run's figures."""
    model.to(device).train()
    opts = optimizers(model, recipe)
    base = [[g["lr"] for g in o.param_groups] for o in opts]
    step_model = torch.compile(model) if compile else model
    budget = recipe.minutes * 60
    t0 = time.perf_counter()
    last_eval, step, tokens, curve = t0, 0, 0, []
    while (elapsed := time.perf_counter() - t0) < budget:
        factor = schedule(elapsed / budget, recipe)
        for o, lrs in zip(opts, base):
            for g, lr in zip(o.param_groups, lrs):
                g["lr"] = lr * factor
        batch = torch.as_tensor(next(rows), device=device)
        positions, mask = document_inputs(batch, eos)
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=device != "cpu"):
            logits = step_model(input_ids=batch[:, :-1], position_ids=positions, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten())
        if not math.isfinite(float(loss)):
            raise FloatingPointError(f"loss {float(loss)} at step {step}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for o in opts:
            o.step()
            o.zero_grad(set_to_none=True)
        step, tokens = step + 1, tokens + batch[:, 1:].numel()
        if step % 50 == 0 or time.perf_counter() - last_eval > recipe.eval_every_s:
            entry = {"step": step, "seconds": round(elapsed, 1), "loss": round(float(loss), 4), "tokens": tokens}
            if time.perf_counter() - last_eval > recipe.eval_every_s:
                entry["heldout"] = round(heldout_loss(model, heldout, eos, device), 4)
                last_eval = time.perf_counter()
            curve.append(entry)
            log(f"step {step} {entry}")
    seconds = time.perf_counter() - t0
    final = heldout_loss(model, heldout, eos, device)
    return {
        "steps": step,
        "tokens": tokens,
        "seconds": round(seconds, 1),
        "tokens_per_second": round(tokens / max(seconds, 1e-9)),
        "heldout_loss": round(final, 4),
        "curve": curve,
        "recipe": asdict(recipe),
    }


def heldout_rows(ids: list[int], seq_len: int, n: int) -> np.ndarray:
    """`n` rows of `seq_len + 1` held-out tokens, evenly spread."""
    arr = np.asarray(ids, dtype=np.int64)
    if len(arr) < seq_len + 1:
        arr = np.resize(arr, seq_len + 1)
    starts = np.linspace(0, len(arr) - seq_len - 1, num=n).astype(np.int64)
    return np.stack([arr[s : s + seq_len + 1] for s in starts])


def save(model, tokenizer, out_dir: Path, meta: dict, max_shard: str = "15MB") -> list[Path]:
    """fp16 safetensors in files of at most `max_shard` (what comes back from the GPU machine),
    the tokenizer and meta.json."""
    from rltab.policy.model import tokenizer as T
    from rltab.policy.model.checkpoint import write_meta

    out_dir.mkdir(parents=True, exist_ok=True)
    model.to("cpu").to(torch.float16).save_pretrained(out_dir, max_shard_size=max_shard, safe_serialization=True)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    T.save_for_transformers(tokenizer, out_dir)
    write_meta(out_dir, meta)
    return sorted(out_dir.iterdir())
