"""A GPU run's model becomes the shipped starter: its weights in one fp16 `model.safetensors` (the
run writes files of at most 16 MB to bring them back), its tokenizer, and meta.json with the run's
figures, where `serve_fim` is chosen by measurement: single-line exact match through the served
path (int8 engine, healing, filters), with a fill-in-the-middle prompt and with a left-to-right
one, on held-out code (the first held-out site-package installed here; never a benchmark corpus).

    python -m rltab.policy.pretraining.publish runs/gpu/model              # into policy/starter
    python -m rltab.policy.pretraining.publish runs/gpu/model --to DIR     # anywhere else
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

from rltab.policy.completion.completer import Completer
from rltab.policy.evaluation.evaluate import exact_match, line_cases
from rltab.policy.inference.loading import load_model
from rltab.policy.model import tokenizer as T
from rltab.policy.model.checkpoint import STARTER_DIR, read_meta, save_model_dir
from rltab.policy.model.fim import FimTemplate

from .sources import HELD_OUT_PACKAGES


def heldout_package() -> Path:
    """The first held-out site-package installed here (its code was never trained on)."""
    for name in HELD_OUT_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            return Path(next(iter(spec.submodule_search_locations)))
    raise SystemExit(f"none of the held-out packages is installed here: {', '.join(HELD_OUT_PACKAGES)}")


def prompt_modes(model_dir: Path, n_cases: int) -> dict:
    """Exact match of the rest of the line, FIM prompt and left-to-right prompt."""
    served = load_model(Path(tempfile.mkdtemp(prefix="rltab-publish-")), model_path=model_dir)
    cases = line_cases(heldout_package(), n=n_cases)
    fim = replace(served, template=FimTemplate(**{**asdict(served.template), "serve_fim": True}))
    l2r = replace(served, template=FimTemplate(**{**asdict(served.template), "serve_fim": False}))
    return {
        "cases": len(cases),
        "exact_match_fim": round(exact_match(lambda b, a: Completer(fim).complete(b, a, max_lines=1).text, cases), 4),
        "exact_match_left_to_right": round(
            exact_match(lambda b, a: Completer(l2r).complete(b, a, max_lines=1).text, cases), 4
        ),
    }


def publish(run_model: Path, to: Path = STARTER_DIR, n_cases: int = 200) -> dict:
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(run_model)
    meta = read_meta(run_model)
    staged = Path(tempfile.mkdtemp(prefix="rltab-starter-"))
    save_model_dir(model, T.load_tokenizer(run_model), staged, meta, tokenizer_from=run_model)
    (staged / "tokenizer.json").write_bytes((run_model / "tokenizer.json").read_bytes())
    modes = prompt_modes(staged, n_cases)
    meta = {**meta, "serve_fim": modes["exact_match_fim"] > modes["exact_match_left_to_right"], "prompt_modes": modes}
    save_model_dir(model, T.load_tokenizer(run_model), to, meta, tokenizer_from=run_model)
    (to / "tokenizer.json").write_bytes((run_model / "tokenizer.json").read_bytes())
    for stale in to.glob("model-*.safetensors"):
        stale.unlink()
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_model", help="a gpu_run's model/ directory")
    ap.add_argument("--to", default=str(STARTER_DIR), help="where the starter goes (default: the package's)")
    ap.add_argument("--cases", type=int, default=200, help="held-out lines to choose the prompt mode on")
    args = ap.parse_args(argv)
    meta = publish(Path(args.run_model), Path(args.to), args.cases)
    print(json.dumps({"serve_fim": meta["serve_fim"], **meta["prompt_modes"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
