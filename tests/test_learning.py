"""Learning happens: synthetic users, the real updater, the real publish path (starter model)."""
import numpy as np
import pytest

from rltab.feedback.ledger import Ledger, SuggestionRecord
from rltab.policy.model_store import current_version, load_model
from rltab.policy.updater import UpdaterConfig, train_cycle

HEAD = "import os\n\n\ndef main(args):\n"
QUOTE_CONTEXTS = ["    raise ValueError(", "    print(", "    logger.info(", "    if mode == ", "    parser.add_argument("]


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


def serve_round(home, contexts, judge, kind="line", n=4, seed=0, single_line=True):
    """Sample n suggestions per context from the current model (as served: int8, healed) and let
    the synthetic user judge each; everything lands in the ledger as the server records it."""
    model = load_model(home)
    ledger = Ledger(home / "ledger.db")
    served = []
    for k, ctx in enumerate(contexts):
        g = model.engine.generate(model.encode(HEAD + ctx), n=n, temperature=1.0, seed=seed * 100 + k,
                                  max_new_tokens=12, single_line=single_line, heal=True)
        served += [(g.prompt, c) for c in g.candidates]
    # A user moves between contexts: the ledger sees them interleaved, not one context at a time.
    for i in np.random.default_rng(seed).permutation(len(served)):
        prompt, c = served[i]
        sid = ledger.record_suggestion(SuggestionRecord(
            model.version, kind, len(c.text), 1.0, prompt_ids=prompt, completion_ids=c.token_ids,
            logprobs=c.logprobs, completion_text=c.text, healed=c.healed))
        if c.text:  # an empty answer is silence: nothing shown, nothing judged (reward 0)
            ok = judge(c.text)
            ledger.record_outcome(sid, "accepted" if ok else "rejected", len(c.text) if ok else 0)
    ledger.close()


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def test_a_user_who_likes_single_quotes_teaches_them(home, starter):
    likes = lambda b: b.lstrip(b" ").startswith(b"'")  # noqa: E731
    before = [first_text_probs(starter, c, likes) for c in QUOTE_CONTEXTS]
    published = []
    for k in range(3):
        serve_round(home, QUOTE_CONTEXTS, lambda t: t.lstrip().startswith("'"), seed=k)
        r = train_cycle(home, UpdaterConfig(min_events=8), log=lambda m: None)
        assert r.published or r.reason.startswith("guard"), r.reason
        published += [r.published] if r.published else []
    assert published, "at least one update must pass the guard"
    served = load_model(home)
    assert served.version == current_version(home) == published[-1]
    after = [first_text_probs(served, c, likes) for c in QUOTE_CONTEXTS]
    assert np.mean(after) > np.mean(before) + 0.05, (before, after)
    assert max(text_kl(served, starter, c) for c in QUOTE_CONTEXTS) < 1.0


def test_a_user_who_rejects_everything_in_blocks_gets_silence_there(home, starter):
    block_contexts = ["    for item in args:", "    if not args:", "    while True:", "    try:", "    with open(args[0]) as f:"]
    stop = set(starter.engine.stop_ids)

    def p_silent(model):
        out = []
        for c in block_contexts:
            logits, _, _ = model.engine.prefill(model.encode(HEAD + c))
            p = np.exp(logits - logits.max())
            out.append(float(p[sorted(stop)].sum() / p.sum()))
        return float(np.mean(out))

    before = p_silent(starter)
    for k in range(3):
        serve_round(home, block_contexts, lambda t: False, kind="block", seed=k, single_line=False)
        r = train_cycle(home, UpdaterConfig(min_events=8), log=lambda m: None)
        assert r.published or r.reason.startswith("guard"), r.reason
    served = load_model(home)
    after = p_silent(served)
    assert after > before * 2 and after > before + 0.02, (before, after)
    # and the served model now answers nothing in most of those contexts
    empty = sum(served.engine.generate(served.encode(HEAD + c), single_line=False, max_new_tokens=8).candidates[0].text == ""
                for c in block_contexts)
    assert empty >= 3, (before, after, empty)
