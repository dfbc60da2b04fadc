"""Train the starter model on CPython's standard library with fill-in-the-middle.

    python -m rltab.policy.pretraining.train_starter --minutes 80          # CPU, one thread, resumable
    python -m rltab.policy.pretraining.train_starter --device cuda --minutes 30 --batch-size 64
    python -m rltab.policy.pretraining.train_starter --publish             # copy the run's best into policy/starter

Training is never finished: a run resumes from its own checkpoint (runs/starter/ckpt.pt), or
else starts from the shipped starter weights, or else from scratch (new tokenizer too).
`--publish` replaces the shipped model only when the run's held-out loss beats it.

`train` is one loop on purpose (nanoGPT's `train.py`, design.md §8): the whole run legible in
one place, from the data to the checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rltab.policy.evaluation import evaluate
from rltab.policy.model import tokenizer as T
from rltab.policy.model.checkpoint import STARTER_DIR, load_torch, read_meta, save_model_dir, starter_config, write_meta

from . import corpus, crossfile


@dataclass
class TrainConfig:
    out_dir: str = "runs/starter"
    """Run directory: ckpt.pt (resume state), tokenizer.json, best/ (best model so far)."""
    vocab_size: int = 8192
    """BPE vocabulary size; only used when training a tokenizer from scratch."""
    seq_len: int = 768
    """Tokens per packed training row (512 until step 6,300; a prompt with repository context
    reaches ~670 tokens, and the model must learn those positions)."""
    batch_size: int = 8
    """Rows per optimizer step."""
    lr: float = 2e-3
    """Peak learning rate (AdamW); decays as 1/sqrt(step) after warm-up, so runs can go on forever."""
    warmup_steps: int = 100
    """Linear warm-up steps (also after resuming from shipped weights, which have no optimizer state)."""
    weight_decay: float = 0.1
    """AdamW weight decay on matrices."""
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    fim_rate: float = 0.6
    """Fraction of examples turned into fill-in-the-middle; the rest are left-to-right."""
    spm_rate: float = 0.6
    """Fraction of FIM examples in suffix-prefix-middle order (what serving uses)."""
    eval_every: int = 150
    """Steps between held-out evaluations (and best-model snapshots)."""
    save_every: int = 25
    """Steps between resume checkpoints."""
    minutes: float = 80.0
    """Wall-clock budget of this invocation."""
    max_steps: int = 0
    """Stop at this global step (0: no limit)."""
    threads: int = 1
    """CPU threads for torch (one, so the machine keeps a core for everything else)."""
    device: str = "cpu"
    """cpu or cuda."""
    seed: int = 0
    """Seed for data order and initialisation."""
    context_rate: float = 0.5
    """Fraction of examples built with repository context, as the server prompts (crossfile.py):
    definitions of what the module imports, similar windows of other modules, in comments."""
    context_eval_cases: int = 100
    """Held-out middles scored with and without context at each evaluation (0: skip)."""
    tests_rate: float = 0.0
    """Fraction of the plain examples cut from the standard library's own test suite (less the
    tests of held-out modules): more code against over-fitting 600 library files (from step
    7,500, where training loss was 1.9 and held-out 3.5)."""
    extra_sources: list[str] = field(default_factory=list)
    """More local directories of .py files to train on (never the benchmark corpora)."""


def score_name(cfg: TrainConfig) -> str:
    """What the best snapshot minimises: held-out loss, plus the held-out middles' loss with
    repository context when that is evaluated (the model must read the context it is served)."""
    return "heldout+middles_with_context" if cfg.context_eval_cases else "heldout"


def score_of(meta: dict) -> float:
    return meta.get("heldout_loss", float("inf")) + meta.get("heldout_middle_loss", {}).get("with_context", 0.0)


def lr_at(step: int, cfg: TrainConfig, start_step: int) -> float:
    warm = min(1.0, (step - start_step + 1) / cfg.warmup_steps)
    return cfg.lr * warm * math.sqrt(cfg.warmup_steps / max(step, cfg.warmup_steps))


def batches(stream, rows: int, seq_len: int):
    """Pack examples end to end into [rows, seq_len + 1] id tensors."""
    buf: list[int] = []
    need = rows * (seq_len + 1)
    for ex in stream:
        buf.extend(ex)
        while len(buf) >= need:
            yield torch.tensor(buf[:need], dtype=torch.long).view(rows, seq_len + 1)
            buf = buf[need:]


def mixed(plain, with_context, rate: float, seed: int):
    """Examples from `with_context` at `rate`, else from `plain`."""
    rng = random.Random(seed)
    while True:
        yield next(with_context) if rng.random() < rate else next(plain)


def _load_texts(cfg: TrainConfig) -> list[str]:
    paths = corpus.stdlib_files("train")
    for d in cfg.extra_sources:
        paths += sorted(Path(d).rglob("*.py"))
    return corpus.read_sources(paths)


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(cfg: TrainConfig) -> None:
    from tqdm import tqdm
    from transformers import LlamaForCausalLM

    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = _load_texts(cfg)
    ckpt_path = out / "ckpt.pt"

    if ckpt_path.exists():  # resume this run exactly
        state = torch.load(ckpt_path, weights_only=False)
        tok = T.load_tokenizer(out)
        model = LlamaForCausalLM(starter_config(tok.get_vocab_size()))
        model.load_state_dict(state["model"])
        step, start_step, best = state["step"], state["start_step"], state["best_loss"]
        if state.get("best_score") != score_name(cfg):  # the run changed what "best" means
            best = float("inf")
        tokens_seen, seconds = state["tokens_seen"], state["seconds"]
        print(f"resuming {ckpt_path} at step {step}")
    elif (STARTER_DIR / "model.safetensors").exists():  # continue the shipped model
        tok = T.load_tokenizer(STARTER_DIR)
        tok.save(str(out / "tokenizer.json"))
        model = LlamaForCausalLM.from_pretrained(str(STARTER_DIR), dtype=torch.float32)
        meta = read_meta(STARTER_DIR)
        step = start_step = meta.get("step", 0)
        # The run's best starts empty: its score (held-out + middles) is not the shipped meta's
        # held-out alone, and --publish compares against the shipped model anyway.
        best, tokens_seen, seconds = float("inf"), meta.get("tokens_seen", 0), meta.get("train_seconds", 0.0)
        state = None
        print(f"continuing the shipped starter model from step {step} (held-out loss {meta.get('heldout_loss')})")
    else:  # from scratch
        tok = T.train_tokenizer(texts, cfg.vocab_size)
        tok.save(str(out / "tokenizer.json"))
        torch.manual_seed(cfg.seed)
        model = LlamaForCausalLM(starter_config(tok.get_vocab_size()))
        step = start_step = tokens_seen = 0
        best, seconds, state = float("inf"), 0.0, None
        print("training from scratch")

    model.to(cfg.device).train()  # type: ignore[arg-type]
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
        fused=False,
    )
    if state is not None:
        opt.load_state_dict(state["optimizer"])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params / 1e6:.2f} M parameters, {len(texts)} training files")

    ids = {s: T.token_id(tok, s) for s in T.SPECIAL_TOKENS}
    encode = lambda s: tok.encode(s).ids
    # Seed by step so a resumed run sees new data rather than repeating the first batches.
    stream = corpus.example_stream(texts, cfg.seed * 1_000_003 + step, encode, ids, cfg.fim_rate, cfg.spm_rate)
    if cfg.tests_rate > 0:
        tests = corpus.read_sources(corpus.stdlib_files("tests"))
        print(f"{len(tests)} test files at rate {cfg.tests_rate}")
        stream = mixed(
            stream,
            corpus.example_stream(tests, cfg.seed * 31 + step, encode, ids, cfg.fim_rate, cfg.spm_rate),
            cfg.tests_rate,
            cfg.seed * 17 + step,
        )
    if cfg.context_rate > 0:
        ctx, files = crossfile.stdlib_context("train")
        stream = mixed(
            stream,
            crossfile.example_stream(ctx, files, cfg.seed * 7_919 + step, encode, ids),
            cfg.context_rate,
            cfg.seed + step,
        )
    data = batches(stream, cfg.batch_size, cfg.seq_len)
    heldout = evaluate.heldout_rows(tok, 512)  # the model card's figure, whatever the training rows

    t0, deadline = time.time(), time.time() + cfg.minutes * 60
    bar = tqdm(desc="train", unit="step", initial=step, dynamic_ncols=True)
    last_loss = float("nan")

    def checkpoint() -> None:
        _atomic_save(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "start_step": start_step,
                "best_loss": best,
                "best_score": score_name(cfg),
                "tokens_seen": tokens_seen,
                "seconds": seconds + time.time() - t0,
                "config": dataclasses.asdict(cfg),
            },
            ckpt_path,
        )

    while time.time() < deadline and (not cfg.max_steps or step < cfg.max_steps):
        batch = next(data).to(cfg.device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg, start_step)
        logits = model(input_ids=batch[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        tokens_seen += batch.numel()
        last_loss = 0.9 * last_loss + 0.1 * loss.item() if last_loss == last_loss else loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{last_loss:.3f}", tok_s=f"{(tokens_seen) / (seconds + time.time() - t0 + 1e-9):.0f}")

        if step % cfg.save_every == 0:
            checkpoint()
        if step % cfg.eval_every == 0:
            model.eval()
            h = evaluate.heldout_loss(model, heldout, cfg.device)
            with_ctx = (
                crossfile.heldout_middle_loss(model, tok, cfg.context_eval_cases) if cfg.context_eval_cases else {}
            )
            model.train()
            score = h + with_ctx.get("with_context", 0.0)
            print(
                f"\nstep {step}: train {last_loss:.3f} held-out {h:.4f} middles {with_ctx} "
                f"score {score:.4f} (best {best:.4f})",
                flush=True,
            )
            if score < best:
                best = score
                meta = {
                    "name": "starter",
                    "step": step,
                    "tokens_seen": tokens_seen,
                    "heldout_loss": round(h, 4),
                    "heldout_middle_loss": with_ctx,
                    "train_seconds": round(seconds + time.time() - t0, 1),
                    "params": n_params,
                    "device": cfg.device,
                    "config": dataclasses.asdict(cfg),
                }
                save_model_dir(model, tok, out / "best", meta)
            checkpoint()
    checkpoint()
    bar.close()
    print(f"stopped at step {step}, {tokens_seen} tokens, best held-out {best:.4f}")


def publish(cfg: TrainConfig) -> int:
    """Copy the run's best model into the package if it beats the shipped one on held-out loss."""
    best = Path(cfg.out_dir) / "best"
    new, old = read_meta(best), read_meta(STARTER_DIR)
    if not new:
        print(f"no best model in {best}")
        return 2
    if old and "heldout_middle_loss" in new and "heldout_middle_loss" not in old:  # score the shipped one alike
        old["heldout_middle_loss"] = crossfile.heldout_middle_loss(
            load_torch(STARTER_DIR), T.load_tokenizer(STARTER_DIR), cfg.context_eval_cases
        )
    if old and (score_of(new) >= score_of(old) or new["heldout_loss"] >= old["heldout_loss"] * 1.01):
        print(
            f"not published: held-out {new['heldout_loss']} + middles {new.get('heldout_middle_loss')} does not "
            f"beat shipped {old['heldout_loss']} + {old.get('heldout_middle_loss')}"
        )
        return 1
    import tempfile

    # Serve whichever prompt mode completes held-out code (click) better, FIM or left-to-right.
    figures = evaluate.model_card_figures(best, Path(tempfile.mkdtemp()))
    serve_fim = figures["click_exact_match_fim"] > figures["click_exact_match_left_to_right"]
    figures.update(
        {
            "serve_fim": serve_fim,
            "click_line_exact_match": figures[
                "click_exact_match_fim" if serve_fim else "click_exact_match_left_to_right"
            ],
        }
    )
    new.update({"serve_fim": serve_fim, "eval": figures})
    STARTER_DIR.mkdir(exist_ok=True)
    for f in best.iterdir():
        shutil.copy2(f, STARTER_DIR / f.name)

    write_meta(STARTER_DIR, new)
    print(f"published step {new['step']} (held-out {new['heldout_loss']}) to {STARTER_DIR}: {json.dumps(figures)}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "extra_sources":
            ap.add_argument(flag, nargs="*", default=[])
        else:
            ap.add_argument(flag, type=type(f.default), default=f.default)
    ap.add_argument("--publish", action="store_true", help="copy the best model into policy/starter")
    args = vars(ap.parse_args(argv))
    do_publish = args.pop("publish")
    cfg = TrainConfig(**args)
    if do_publish:
        return publish(cfg)
    train(cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
