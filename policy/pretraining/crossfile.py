"""Cross-file examples: the starter learns to use the repository context it is served with.

The standard library is the workspace (its training split only): each example cuts a middle out
of one module, and builds its prompt exactly as the server would (prefix and suffix windows, the
same three context sources by the same code, the same layout), so that what the model learns to
read is what it will be shown.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from rltab.policy.completion.prompt import RepoPrompt, cursor_window, prompt_ids
from rltab.policy.model import tokenizer as T
from rltab.policy.model.fim import RLTAB_TEMPLATE
from rltab.policy.workspace.index import WorkspaceIndex
from rltab.policy.workspace.repo_context import RepoContext, Where

from . import corpus

# The serving windows (fim.PREFIX_TOKENS, SUFFIX_TOKENS) with the context on top: a prompt reaches
# ~670 tokens, so these examples are trained in rows of 768 (train_starter.TrainConfig.seq_len).
MIN_CHARS, MAX_MIDDLE = 200, 300  # files too short to cut from; the longest middle


def stdlib_context(split: str = "train", limit: int | None = None) -> tuple[RepoContext, list[tuple[str, str]]]:
    """The standard library's `split` as a workspace: its context builder and its (path, text) files.
    Context always comes from the training split, so held-out text never leaks into a prompt.
    `limit`: the first N files only (a dry run)."""
    root = corpus.stdlib_dir()
    train = dict(corpus.read_files(corpus.stdlib_files("train")[:limit]))
    files = list(train.items()) if split == "train" else corpus.read_files(corpus.stdlib_files("heldout")[:limit])
    return RepoContext(WorkspaceIndex.of_texts(root, train)), files


def middle(text: str, rng: random.Random) -> tuple[int, int] | None:
    """Where the completion goes in `text` (as starter training cuts it, at most MAX_MIDDLE
    characters); None for a file too short to cut from."""
    if len(text) < MIN_CHARS:
        return None
    a, b = corpus.middle_span(text, rng)
    return a, min(b, a + MAX_MIDDLE)


def prompt_and_middle(
    ctx: RepoContext, path: str, text: str, a: int, b: int, encode, token_id, context: bool = True
) -> tuple[list[int], list[int]]:
    """The served prompt for a cursor at `a` whose completion is text[a:b], and that completion's ids."""
    before, after = text[:a], text[b:]
    win = cursor_window(before, after, encode)
    repo = RepoPrompt()
    if context:
        where = Where.around(path, before + after, before.count("\n"), win, "python")
        repo = RepoPrompt(tuple(ctx.snippets(where, encode)), ctx.display(path), "cpython")
    return prompt_ids(win.before, win.after, encode, token_id, RLTAB_TEMPLATE, repo), list(encode(text[a:b]))


def example_stream(
    ctx: RepoContext, files: list[tuple[str, str]], seed: int, encode, ids: dict[str, int]
) -> Iterator[list[int]]:
    """Endless cross-file examples: prompt (with context), middle, end-of-text."""
    rng = random.Random(seed)
    weights = [len(t) for _, t in files]
    token_id = ids.__getitem__
    while True:
        path, text = rng.choices(files, weights=weights)[0]
        span = middle(text, rng)
        if span is None:
            continue
        prompt, completion = prompt_and_middle(ctx, path, text, *span, encode, token_id)
        yield [*prompt, *completion, ids[T.EOS]]


def heldout_middle_loss(model, tok, n: int = 200, seed: int = 0) -> dict:
    """Mean loss (nats per token) of held-out middles given the served prompt, with the repository
    context and without it: the figure that says whether the model uses what it is shown."""
    import torch

    ctx, files = stdlib_context("heldout")
    encode = lambda s: tok.encode(s).ids
    token_id = tok.token_to_id
    rng = random.Random(seed)
    device = next(model.parameters()).device
    totals = {"with_context": [0.0, 0], "without_context": [0.0, 0]}
    with torch.no_grad():
        for _ in range(n):
            path, text = rng.choice(files)
            span = middle(text, rng)
            if span is None:
                continue
            for key, on in (("with_context", True), ("without_context", False)):
                prompt, completion = prompt_and_middle(ctx, path, text, *span, encode, token_id, context=on)
                target = [*completion, token_id(T.EOS)]
                x = torch.tensor([prompt + target[:-1]], device=device)
                logits = model(input_ids=x).logits[0, len(prompt) - 1 :].float()
                loss = torch.nn.functional.cross_entropy(logits, torch.tensor(target, device=device), reduction="sum")
                totals[key][0] += loss.item()
                totals[key][1] += len(target)
    return {k: round(s / max(1, c), 4) for k, (s, c) in totals.items()}
