"""One prepared run of the starter's training, for the lent GPU machine (16 cores, an H200, no
network, one command of at most 10 minutes): the corpus from the Python installed there, filtered
and deduplicated, a tokenizer retrained on it (or the starting weights' own), pre-tokenized
shards, a fixed wall-clock of training, the held-out loss, and the weights in files of at most
16 MB, everything recorded in run.json.

    python -m rltab.policy.pretraining.gpu_run --out $OUT --minutes 5.5          # on the GPU machine
    python -m rltab.policy.pretraining.gpu_run --out runs/next --init runs/prev  # a second run adds up
    python -m rltab.policy.pretraining.gpu_run --out /tmp/dry --tiny             # the same on CPU, tiny

`--tiny` is the dry run (and tests/test_pretraining.py runs it): a few files of each root, a
small tokenizer, a two-layer model, seconds of training on the CPU; every stage the same code.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from rltab.policy.model import tokenizer as T

from . import bpe, crossfile, dedup, shards, sources, trainer

TINY_SHAPE = trainer.Shape(hidden=64, layers=2, heads=2, kv_heads=1, mlp=128, max_positions=1024)
TINY_RECIPE = trainer.Recipe(minutes=0.2, seq_len=128, batch=4, eval_rows=8, eval_every_s=1e9)


def stage(report: dict, name: str, t0: float, log) -> None:
    report.setdefault("seconds", {})[name] = round(time.perf_counter() - t0, 1)
    log(f"[{time.perf_counter() - report['_start']:.0f} s] {name} done")


def corpus_stage(args, procs: int, report: dict) -> tuple[list[str], list[str], sources.Collected]:
    """The training and held-out texts, filtered and deduplicated, each stage recorded."""
    collected = sources.collect(limit_files=40 if args.tiny else None)
    train_set = dedup.exact(collected.train)
    collected.record("exact duplicates removed", train_set)
    train_set = dedup.near(train_set, against=collected.heldout, processes=procs)
    collected.record("near-duplicates removed (MinHash, line shingles)", train_set)
    report["held_out_packages"] = collected.held_out_packages
    report["heldout_files"] = len(collected.heldout)
    return [s.text for s in train_set], [s.text for s in collected.heldout], collected


def tokenizer_stage(args, texts: list[str], heldout: list[str], collected: sources.Collected, report: dict):
    """The starting weights' tokenizer, or one retrained here at the size measured best."""
    if args.init and (Path(args.init) / "tokenizer.json").exists():
        tok = T.load_tokenizer(Path(args.init))  # the weights' own: a continued run keeps it
        report["tokenizer"] = {"from": str(args.init), "vocab_size": tok.get_vocab_size()}
    else:
        sample = random.Random(1).sample(texts, min(len(texts), args.tokenizer_files))
        tok, measured = bpe.choose(sample, heldout[:200], (512, 768) if args.tiny else bpe.CANDIDATES)
        report["tokenizer"] = {"measured": [asdict(m) for m in measured], "vocab_size": tok.get_vocab_size()}
    report["tokenizer"]["indentation_tokens"] = bpe.indentation(tok)
    per_token = bpe.bytes_per_token(tok, texts[:500] or ["x"])
    report["stages"] = [{**asdict(s), "tokens_estimated": round(s.bytes / per_token)} for s in collected.stages]
    return tok


def shards_stage(args, tok, texts: list[str], heldout: list[str], out: Path, procs: int, report: dict) -> list[int]:
    """The training shards (with the cross-file rows mixed in); the held-out tokens."""
    spec = shards.ExampleSpec(tok.to_str(), chunk_chars=args.chunk_chars, fim_rate=args.fim_rate, spm_rate=0.5, seed=0)
    ids = {n: T.token_id(tok, n) for n in T.SPECIAL_TOKENS}
    encode = lambda s: tok.encode(s, add_special_tokens=False).ids
    ctx, files = crossfile.stdlib_context("train", limit=40 if args.tiny else None)
    cross = crossfile.example_stream(ctx, files, 0, encode, ids)
    report["shards"] = shards.write(texts, spec, out / "shards", procs, extra=cross, extra_tokens=args.crossfile_tokens)
    return [i for text in heldout for i in [*encode(text), ids[T.EOS]]]


def training_stage(args, tok, heldout_ids: list[int], out: Path, report: dict, log):
    """The model, from `--init` or from scratch, trained for the budget; returns it."""
    from transformers import LlamaForCausalLM

    ids = {n: T.token_id(tok, n) for n in T.SPECIAL_TOKENS}
    shape = TINY_SHAPE if args.tiny else trainer.Shape()
    shape.vocab_size = tok.get_vocab_size()
    recipe = TINY_RECIPE if args.tiny else trainer.Recipe(minutes=training_minutes(args, report))
    if args.init and (Path(args.init) / "config.json").exists():
        model = LlamaForCausalLM.from_pretrained(args.init, dtype=torch.float32)
        report["init"] = str(args.init)
    else:
        torch.manual_seed(recipe.seed)
        model = LlamaForCausalLM(trainer.llama_config(shape, {"eos": ids[T.EOS], "pad": ids[T.FIM_PAD]}))
    report["parameters"] = sum(p.numel() for p in model.parameters())
    report["shape"] = asdict(shape)
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    rows = shards.Rows(out / "shards", recipe.seq_len, recipe.batch, recipe.seed)
    heldout = trainer.heldout_rows(heldout_ids, recipe.seq_len, recipe.eval_rows)
    report["training"] = trainer.train(
        model, rows, heldout, recipe, ids[T.EOS], device, log=log, compile=device != "cpu"
    )
    report["device"] = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu"
    return model


def training_minutes(args, report: dict) -> float:
    """`--minutes`, or less where the data steps took long: the whole run ends by `--deadline`
    (the machine's one command may run 10 minutes), a minute left to score and save."""
    spent = (time.perf_counter() - report["_start"]) / 60
    return max(0.5, min(args.minutes, args.deadline - spent - 1.0))


def run(args: argparse.Namespace, log=print) -> dict:
    report: dict = {"_start": time.perf_counter(), "machine": platform.node(), "python": sys.version.split()[0]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    procs = args.processes or os.cpu_count() or 1
    t = time.perf_counter()
    texts, heldout, collected = corpus_stage(args, procs, report)
    stage(report, "corpus", t, log)
    t = time.perf_counter()
    tok = tokenizer_stage(args, texts, heldout, collected, report)
    stage(report, "tokenizer", t, log)
    t = time.perf_counter()
    heldout_ids = shards_stage(args, tok, texts, heldout, out, procs, report)
    stage(report, "shards", t, log)
    t = time.perf_counter()
    model = training_stage(args, tok, heldout_ids, out, report, log)
    stage(report, "training", t, log)
    result = report["training"]
    meta = {
        "name": "starter",
        "version": "starter",
        "languages": ["python"],
        "heldout_loss_new_split": result["heldout_loss"],
        "trained_tokens": result["tokens"],
        "recipe": result["recipe"],
        "shape": report["shape"],
    }
    report["files"] = {p.name: p.stat().st_size for p in trainer.save(model, tok, out / "model", meta)}
    for p in (out / "shards").glob("*.npy"):
        p.unlink()  # the shards stay on the machine that made them: only the model comes back
    report["total_seconds"] = round(time.perf_counter() - report.pop("_start"), 1)
    (out / "run.json").write_text(json.dumps(report, indent=2, default=str))
    log(f"wrote {out / 'model'} ({sum(report['files'].values()) / 2**20:.1f} MiB), held-out {result['heldout_loss']}")
    return report


def main(argv: list[str] | None = None) -> int:
    from rltab.policy.runtime import offline

    offline.seal()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="run directory: model/ (weights, tokenizer), run.json")
    ap.add_argument("--minutes", type=float, default=6.0, help="training wall clock (the data steps come first)")
    ap.add_argument("--deadline", type=float, default=8.5, help="minutes the whole run must end within")
    ap.add_argument("--init", help="a model directory to continue from (its tokenizer is kept)")
    ap.add_argument("--tiny", action="store_true", help="the CPU dry run: every stage, at toy size")
    ap.add_argument("--processes", type=int, default=0, help="worker processes (default: every core)")
    ap.add_argument("--fim-rate", type=float, default=0.7, help="share of fill-in-the-middle examples (0.5-0.9)")
    ap.add_argument("--chunk-chars", type=int, default=3000, help="characters an example is cut from")
    ap.add_argument("--crossfile-tokens", type=int, default=2_000_000, help="tokens of cross-file rows")
    ap.add_argument("--tokenizer-files", type=int, default=20_000, help="files the tokenizer is trained on")
    args = ap.parse_args(argv)
    if not 0.5 <= args.fim_rate <= 0.9:
        ap.error("--fim-rate must be within 0.5 and 0.9")
    if args.tiny:
        args.crossfile_tokens = min(args.crossfile_tokens, 20_000)
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
