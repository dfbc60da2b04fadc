"""Held-out figures for a model: stdlib loss (torch) and single-line exact match (any generator)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from rltab.policy.completion.completer import Completer
from rltab.policy.inference.loading import load_model
from rltab.policy.model import tokenizer as T
from rltab.policy.model.checkpoint import STARTER_DIR, load_torch
from rltab.policy.model.fim import FimTemplate
from rltab.policy.pretraining import corpus

from . import humaneval


def heldout_rows(tok, seq_len: int = 512, max_rows: int = 48, eos: str = "<|endoftext|>"):
    """Fixed left-to-right rows from the held-out stdlib modules, [rows, seq_len + 1]."""
    import torch

    ids: list[int] = []
    eos_id = tok.token_to_id(eos)
    for text in corpus.read_sources(corpus.stdlib_files("heldout")):
        ids.extend(tok.encode(text, add_special_tokens=False).ids + ([eos_id] if eos_id is not None else []))
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
    cases: list[tuple[str, str, str]] = []
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


def click_dir() -> Path:
    """The installed `click` package: real code the starter model never saw."""
    import click

    return Path(click.__file__).parent


def model_card_figures(model_dir: Path, home: Path, n_cases: int = 200) -> dict:
    """Held-out stdlib loss (torch) and single-line exact match on click through the served path
    (int8 engine, FIM prompt, token healing, post-processing)."""
    import time
    from dataclasses import asdict, replace

    tok = T.load_tokenizer(model_dir)
    loss = heldout_loss(load_torch(model_dir), heldout_rows(tok, 512))
    served = load_model(home, model_path=model_dir)
    completer = Completer(served)
    cases = line_cases(click_dir(), n=n_cases)
    t = time.perf_counter()
    served_em = exact_match(lambda b, a: completer.complete(b, a, max_lines=1).text, cases)
    ms = (time.perf_counter() - t) * 1000 / len(cases)
    # Both prompt modes, whatever the model serves: FIM (text after the cursor too) and
    # left-to-right (only what comes before it).
    fim = FimTemplate(**{**asdict(served.template), "serve_fim": True})
    with_fim = exact_match(
        lambda b, a: Completer(replace(served, template=fim)).complete(b, a, max_lines=1).text, cases
    )
    l2r = exact_match(lambda b, a: completer.complete(b, "\n", max_lines=1).text, cases)

    he = humaneval.evaluate(served, humaneval.infill_tasks())
    return {
        "heldout_loss": round(loss, 4),
        "click_line_exact_match": round(served_em, 4),
        "click_exact_match_fim": round(with_fim, 4),
        "click_exact_match_left_to_right": round(l2r, 4),
        "serve_fim": served.template.serve_fim,
        "click_cases": len(cases),
        "ms_per_case": round(ms, 2),
        "humaneval_infill_pass_at_1": he["pass@1"],
        "humaneval_infill_exact_match": he["exact_match"],
    }


def main(argv=None) -> int:
    import argparse
    import json
    import tempfile

    ap = argparse.ArgumentParser(description="held-out figures for a model directory (default: the starter)")
    ap.add_argument("model_dir", nargs="?", default=str(STARTER_DIR))
    ap.add_argument("--cases", type=int, default=200)
    args = ap.parse_args(argv)
    print(json.dumps(model_card_figures(Path(args.model_dir), Path(tempfile.mkdtemp()), args.cases), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
