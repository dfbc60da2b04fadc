"""A synthetic user for measuring learning without an editor: serve suggestions from the current
model in fixed contexts, let a judge accept or reject each, and record everything in the ledger
exactly as the server would. Used by the learning tests and bench/updater_terms.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rltab.feedback.ledger import Ledger, SuggestionRecord
from rltab.policy.inference.loading import load_model
from rltab.policy.model.home import current_version

HEAD = "import os\n\n\ndef main(args):\n"
QUOTE_CONTEXTS = [
    "    raise ValueError(",
    "    print(",
    "    logger.info(",
    "    if mode == ",
    "    parser.add_argument(",
]


def first_text_probs(model, context: str, predicate) -> float:
    """P(the visible completion starts with something `predicate` accepts), healing included."""
    e = model.engine
    ids = model.encode(HEAD + context)
    prompt, hide, allowed = e.heal(ids)
    logits, _, _ = e.prefill(prompt)
    allowed = np.arange(len(logits)) if allowed is None else allowed
    z = logits[allowed]
    p = np.exp(z - z.max())
    p /= p.sum()
    return float(sum(pp for pp, i in zip(p, allowed) if predicate(e.token_bytes[i][hide:])))


def text_kl(new, base, context: str) -> float:
    """KL(new || base) of the first token of the shown text (healed, renormalised over the
    tokens healing allows): how far the suggestions themselves moved. The silence decision is
    measured on its own (and is meant to move when users reject most suggestions)."""
    ids = base.encode(HEAD + context)
    prompt, _, allowed = base.engine.heal(ids)
    dists = []
    for m in (new, base):
        logits, _, _ = m.engine.prefill(prompt)
        z = logits[allowed] if allowed is not None else logits
        p = np.exp(z - z.max())
        dists.append(p / p.sum())
    pa, pb = dists
    return float(np.sum(pa * (np.log(pa + 1e-12) - np.log(pb + 1e-12))))


def serve_round(home: Path, contexts, judge, kind="line", n=4, seed=0, single_line=True, repo=None):
    """Sample n suggestions per context from the model serving `repo` (as served: int8, healed)
    and let the synthetic user judge each; everything lands in the ledger as the server records
    it, under `repo`."""

    model = load_model(home, current_version(home, repo))
    ledger = Ledger(home / "ledger.db")
    served = []
    for k, ctx in enumerate(contexts):
        g = model.engine.generate(
            model.encode(HEAD + ctx),
            n=n,
            temperature=1.0,
            seed=seed * 100 + k,
            max_new_tokens=12,
            single_line=single_line,
            heal=True,
        )
        served += [(g.prompt, c) for c in g.candidates]
    # A user moves between contexts: the ledger sees them interleaved, not one context at a time.
    for i in np.random.default_rng(seed).permutation(len(served)):
        prompt, c = served[i]
        sid = ledger.record_suggestion(
            SuggestionRecord(
                model.version,
                kind,
                len(c.text),
                1.0,
                prompt_ids=prompt,
                completion_ids=c.token_ids,
                logprobs=c.logprobs,
                completion_text=c.text,
                prefix_text=HEAD + contexts[i // n],
                suffix_text="",
                healed=c.healed,
                repo=repo or "",
                tokenizer=model.tokenizer_digest,
            )
        )
        if c.text:  # an empty answer is silence: nothing shown, nothing judged (reward 0)
            ok = judge(c.text)
            ledger.record_outcome(sid, "accepted" if ok else "rejected", len(c.text) if ok else 0)
    ledger.close()
