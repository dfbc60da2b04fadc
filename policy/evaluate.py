"""Held-out figures for a model: stdlib loss (torch) and single-line exact match (any generator)."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

from . import corpus


def heldout_rows(tok, seq_len: int = 512, max_rows: int = 48):
    """Fixed left-to-right rows from the held-out stdlib modules, [rows, seq_len + 1]."""
    import torch

    ids: list[int] = []
    eos = tok.token_to_id("<|endoftext|>")
    for text in corpus.read_sources(corpus.stdlib_files("heldout")):
        ids.extend(tok.encode(text).ids + [eos])
    n = min(max_rows, len(ids) // (seq_len + 1))
    # Spread the rows over the whole held-out set rather than taking only the first files.
    stride = len(ids) // n
    rows = [ids[i * stride : i * stride + seq_len + 1] for i in range(n)]
    return torch.tensor(rows, dtype=torch.long)


def heldout_loss(model, rows, device: str = "cpu", batch: int = 8) -> float:
    """Mean next-token loss (nats) of a torch causal LM on `rows`."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            b = rows[i : i + batch].to(device)
            logits = model(input_ids=b[:, :-1]).logits.float()
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), b[:, 1:].flatten(), reduction="sum")
            total += loss.item()
            count += b[:, 1:].numel()
    return total / count


def line_cases(root: Path, n: int = 200, seed: int = 0) -> list[tuple[str, str, str]]:
    """(text before cursor, text after cursor, expected rest of line) from files under `root`.

    The cursor sits at a random point inside a line of real code (after its indentation)."""
    rng = random.Random(seed)
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    texts = corpus.read_sources(files)
    cases = []
    while len(cases) < n:
        text = rng.choice(texts)
        lines = text.split("\n")
        i = rng.randrange(len(lines))
        line = lines[i]
        body = line.strip()
        if len(body) < 8 or body.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        col = rng.randrange(indent, len(line.rstrip()))
        before = "\n".join(lines[:i] + [line[:col]])
        after = "\n".join([""] + lines[i + 1 :])
        cases.append((before, after, line[col:].rstrip()))
    return cases


def exact_match(complete: Callable[[str, str], str], cases) -> float:
    """Fraction of cases where `complete(before, after)` equals the rest of the line exactly."""
    hits = sum(complete(b, a).split("\n")[0].rstrip() == want for b, a, want in cases)
    return hits / len(cases)
