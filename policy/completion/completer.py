"""From document text around the cursor to one suggestion (or silence)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from rltab.policy.inference.generation import RepeatSource
from rltab.policy.inference.loading import LoadedModel

from .context import BLOCK, NONE, cursor_context
from .postprocess import postprocess
from .postprocess.check_syntax import check_syntax
from .postprocess.limit_block import block_end
from .prompt import PREFIX_TOKENS, SUFFIX_TOKENS, RepoPrompt, Window, cursor_window, prompt_ids

TOKENS_PER_LINE = 20
ROOM_TO_COMPLETE = 48  # positions a prompt leaves free for the completion (a line's worth)
COPY_WEIGHT = 0.5
"""Weight of the copy distribution in decoding (Engine.generate): how much the model leans on
text that repeats what the prompt (the file and the repository context) or, with the context on,
the rest of the workspace already holds. Click replay, frozen, prompt-only copying: 0.3 saved
22.2 chars per 100, 0.5 22.2, 0.8 22.1; none 17.3."""


@dataclass
class Suggestion:
    text: str  # "" means silence
    kind: str
    model_version: str
    prompt_ids: list[int] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    raw_text: str = ""  # what the model produced before post-processing
    confidence: float = 0.0
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    prefill_tokens: int = 0
    healed: int = 0  # token_ids[0] replaces the prompt's last token
    window_before: str = ""  # the text the prompt was built from
    window_after: str = ""
    syntax_error: bool = False  # compiler feedback dropped it: it would have broken the parse
    tokenizer: str = ""  # the model's tokenizer (formats.tokenizer_digest): what the ids belong to


class ContextSource(Protocol):
    """The repository around one request (server/service.py); None where the context is off."""

    def prompt(self, win: Window, encode: Callable[[str], Sequence[int]]) -> RepoPrompt:
        """The snippets that go in front of the prompt showing `win`."""

    def repeats(self, win: Window) -> RepeatSource | None:
        """Where else decoding may copy from: the workspace, and the document above `win`."""


class Completer:
    def __init__(self, model: LoadedModel, prefix_tokens: int = PREFIX_TOKENS, suffix_tokens: int = SUFFIX_TOKENS):
        self.model = model
        # The repository context (up to workspace.repo_context.Budgets().total tokens) comes on top
        # of these windows, not out of them: measured on the click replay, a 224-token prefix
        # with 160 of context saved 21.3 chars per 100, 384 with 160 on top 22.2 (BENCHMARKS).
        self.prefix_tokens = prefix_tokens
        self.suffix_tokens = suffix_tokens

    def prompt(
        self, before: str, after: str, context: ContextSource | None = None
    ) -> tuple[list[int], Window, RepoPrompt]:
        m = self.model
        win = cursor_window(before, after, m.encode, self.prefix_tokens, self.suffix_tokens)
        repo = context.prompt(win, m.encode) if context else RepoPrompt()
        ids = prompt_ids(win.before, win.after, m.encode, m.token_id, m.template, repo)
        # A model with a short window (max_positions) drops context, first snippets first, to
        # leave room for the completion.
        room = m.engine.max_positions - ROOM_TO_COMPLETE
        while len(ids) > room and repo.snippets:
            repo = replace(repo, snippets=repo.snippets[1:])
            ids = prompt_ids(win.before, win.after, m.encode, m.token_id, m.template, repo)
        return ids, win, repo

    def complete(
        self,
        before: str,
        after: str,
        *,
        max_lines: int = 8,
        silence_threshold: float = 0.0,
        cache_key: str | None = None,
        cancelled: Callable[[], bool] | None = None,
        syntax_check: bool = True,
        language: str = "python",
        context: ContextSource | None = None,
    ) -> Suggestion:
        ctx = cursor_context(before, after)
        if ctx.kind == NONE:
            return Suggestion(text="", kind=NONE, model_version=self.model.version)
        ids, win, _ = self.prompt(before, after, context)
        block = ctx.kind == BLOCK
        body_indent = len(ctx.block_indent)

        def stop(text: str) -> int | None:
            cut = block_end(text, body_indent)
            if cut is None and text.count("\n") > max_lines:
                cut = len("\n".join(text.split("\n")[: max_lines + 1]))
            return cut

        gen = self.model.engine.generate(
            ids,
            max_new_tokens=TOKENS_PER_LINE * max_lines if block else 48,
            single_line=not block,
            cache_key=cache_key,
            stop=stop if block else None,
            cancelled=cancelled,
            heal=True,
            copy_weight=COPY_WEIGHT,
            repeats=context.repeats(win) if context else None,
        )
        cand = gen.candidates[0]
        text = postprocess(cand.text, ctx)
        syntax_error = False
        if text and syntax_check and language == "python":
            text = check_syntax(text, ctx)
            syntax_error = not text
        lps = cand.logprobs
        confidence = math.exp(sum(lps) / len(lps)) if lps else 0.0
        if confidence < silence_threshold:
            text = ""
        return Suggestion(
            text=text,
            kind=ctx.kind,
            model_version=self.model.version,
            prompt_ids=gen.prompt,
            token_ids=cand.token_ids,
            logprobs=cand.logprobs,
            healed=cand.healed,
            raw_text=cand.text,
            confidence=confidence,
            latency_ms=gen.latency_ms,
            prompt_tokens=gen.prompt_tokens,
            prefill_tokens=gen.prefill_tokens,
            window_before=win.before,
            window_after=win.after,
            syntax_error=syntax_error,
            tokenizer=self.model.tokenizer_digest,
        )
