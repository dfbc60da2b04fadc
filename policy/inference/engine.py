"""The onnxruntime inference engine: prefill, decode, sampling, stop rules, KV-cache reuse.

One engine serves one model file. `generate` takes prompt token ids and returns candidates with
their token ids and per-token log-probs (under the model's own distribution at temperature 1:
the behaviour log-probs the updater needs for its importance ratio). When a prompt shares a token
prefix with the previous prompt of the same `cache_key` (a document), only the new tokens are
prefilled.

`Engine.generate` is one function on purpose: prefill, the silence check, healing and the two
decoders are one request's steps in order, sharing its prompt, cache and rules.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rltab.policy.model.formats import LOGIT_ROWS

from .copying import continuation, copy_candidates, nearer_first
from .generation import COPY_MAX_N, Candidate, Draft, Generation, RepeatSource
from .kv import KVCache, common_prefix
from .runner import Runner


@dataclass
class _Cached:
    tokens: list[int]
    past: KVCache  # len(tokens) positions


LOOKUP_TOKENS = LOGIT_ROWS - 1
"""Prompt lookup (greedy decoding): where the text written repeats the prompt, up to this many of
the tokens that followed there are run with the chosen token in one pass and kept as far as
decoding would have chosen them (`Engine.lookup_tokens`; 0: off)."""


def _logsumexp(x: np.ndarray) -> np.ndarray:
    """log sum exp over the last axis, kept as an axis: a token's log-prob is its logit less this
    (decoding needs one log-prob per step, not the whole row's)."""
    m = x.max(axis=-1, keepdims=True)
    return m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def _sample(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    if temperature <= 0:
        return int(np.argmax(logits))
    z = logits / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(-p)
        keep = order[: int(np.searchsorted(np.cumsum(p[order]), top_p) + 1)]
        q = np.zeros_like(p)
        q[keep] = p[keep]
        p = q / q.sum()
    return int(rng.choice(len(p), p=p))


class Engine:
    def __init__(
        self,
        onnx_path: str | Path,
        token_bytes: list[bytes],
        stop_ids: Sequence[int],
        threads: int = 1,
        cache_slots: int = 8,
        max_positions: int = 2048,
    ):
        self.runner = Runner(onnx_path, threads)
        self.session, self.threads, self.path = self.runner.session, threads, Path(onnx_path)
        self.adapter: Path | None = None
        self.token_bytes = token_bytes
        self.stop_ids = set(stop_ids)
        self.newline_ids = {i for i, b in enumerate(token_bytes) if b"\n" in b}
        self._no_early_stop = np.asarray(sorted(self.stop_ids | self.newline_ids), np.int64)
        self._extensions: dict[int, np.ndarray] = {}
        self.max_positions = max_positions
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._slots = cache_slots
        self._lock = threading.Lock()  # one run at a time per session keeps latency predictable
        self.lookup_tokens = LOOKUP_TOKENS
        self.lookup_counts = [0, 0]  # prompt lookup's guesses run, and kept (bench figures)

    def with_adapter(self, adapter_path: str | Path) -> Engine:
        """This engine's session and weights with a LoRA adapter (runner.py); its own prefix KV
        cache, since the adapter changes the keys."""
        import copy

        other = copy.copy(self)
        other.runner = self.runner.with_adapter(adapter_path)
        other.adapter = Path(adapter_path)
        other._cache = OrderedDict()
        return other

    # -- low level -------------------------------------------------------------------------
    def _run(self, ids: np.ndarray, past: KVCache) -> tuple[np.ndarray, KVCache]:
        """The next token's logits [B, V] after `ids` [B, T], and the cache."""
        rows, past = self._run_rows(ids, past)
        return rows[:, -1], past

    def _run_rows(self, ids: np.ndarray, past: KVCache) -> tuple[np.ndarray, KVCache]:
        """The logits [B, R, V] after each of the last R = min(T, LOGIT_ROWS) tokens, and the cache."""
        logits, past = self.runner.run(ids, past, self.max_positions)
        # Checkpoints pad their embedding past the tokenizer (Qwen2.5: 151,936 rows for 151,665
        # tokens); ids with no text are never produced.
        return logits[..., : len(self.token_bytes)], past

    def _with_copies(
        self,
        logits: np.ndarray,
        lse: np.ndarray,
        src: np.ndarray,
        drafts,
        weight: float,
        repeats: RepeatSource | None = None,
    ) -> np.ndarray:
        """Each draft's next-token logits as log((1 - w) p_model + w p_copy) where a copy applies:
        p_copy is what followed the longest repeats of the text written, in the prompt and in
        `repeats` (the rest of the workspace)."""
        out = None
        for r, c in enumerate(drafts):
            if c.finish is not None:
                continue
            tail = c.tail(src)
            n, nxt = copy_candidates(src, tail, COPY_MAX_N)
            if repeats is not None:
                n, nxt = nearer_first((n, nxt), repeats.find(tail, COPY_MAX_N))
            nxt = {t: k for t, k in nxt.items() if t not in self.stop_ids and t < logits.shape[1]}
            if not nxt:
                continue
            w = weight * min(1.0, n / 3)
            total = sum(nxt.values())
            logp = logits[r] - lse[r]
            mixed = logp + np.log1p(-w)  # p_copy is 0 but for the few candidates (masked ids stay -inf)
            for t, k in nxt.items():
                if np.isfinite(logits[r, t]):
                    mixed[t] = np.log((1 - w) * np.exp(logp[t]) + w * k / total)
            out = logits.copy() if out is None else out
            out[r] = mixed
        return logits if out is None else out

    def empty_past(self, batch: int = 1) -> KVCache:
        return self.runner.empty_cache(batch)

    def prefill(self, prompt: Sequence[int], cache_key: str | None = None):
        """Logits after `prompt` and its KV cache, re-using the cached prefix of `cache_key`."""
        reused, past = 0, self.empty_past()
        # The run writes into the cached buffers from the shared prefix on: the slot gives them
        # up (generate remembers the new prompt's cache), so no slot claims rows overwritten.
        hit = self._cache.pop(cache_key, None) if cache_key is not None else None
        if hit is not None:
            # At least one token must be run to get logits for the last position.
            reused = min(common_prefix(hit.tokens, prompt), len(prompt) - 1)
            if reused > 0:
                past = hit.past.trimmed(reused)
            else:
                reused = 0
        logits, past = self._run(np.asarray([prompt[reused:]], dtype=np.int64), past)
        return logits[0], past, reused

    def remember(self, cache_key: str, tokens: list[int], past: KVCache) -> None:
        self._cache[cache_key] = _Cached(tokens, past)
        self._cache.move_to_end(cache_key)
        while len(self._cache) > self._slots:
            self._cache.popitem(last=False)

    def extensions(self, token: int) -> np.ndarray:
        """Ids of the tokens whose bytes start with `token`'s bytes (itself included)."""
        ext = self._extensions.get(token)
        if ext is None:
            b = self.token_bytes[token]
            ext = np.array([i for i, t in enumerate(self.token_bytes) if t.startswith(b)], dtype=np.int64)
            self._extensions[token] = ext
        return ext

    def heal(self, prompt: list[int]) -> tuple[list[int], int, np.ndarray | None]:
        """Token healing: BPE would usually merge the prompt's last token with what follows
        (`(` + `'x` is normally `('` + `x`), so back up one token and let the first generated
        token be any that starts with it. Returns (prompt, bytes to hide, allowed first ids)."""
        last = prompt[-1]
        b = self.token_bytes[last]
        if len(prompt) < 2 or not b or last in self.stop_ids or b"\n" in b:
            return prompt, 0, None
        return prompt[:-1], len(b), self.extensions(last)

    # -- generation ------------------------------------------------------------------------
    def _silence(
        self, logits: np.ndarray, n: int, single_line: bool, temperature: float, top_p: float, rng
    ) -> list[Candidate | None]:
        """The silence decision, on the full prompt: each sample that picks a stop (or, single-line,
        a newline) as decoding would pick any token is an empty candidate; None where it did not."""
        gate = self.stop_ids | (self.newline_ids if single_line else set())
        lse = float(_logsumexp(logits)[0])
        out: list[Candidate | None] = [None] * n
        for r in range(n):
            tok = _sample(logits, temperature, top_p, rng)
            if tok in gate:
                out[r] = Candidate([tok], [float(logits[tok]) - lse], "", "eos" if tok in self.stop_ids else "newline")
        return out

    def _shaped(
        self, logits: np.ndarray, drafts: list[Draft], steps: int, rules: _Rules
    ) -> tuple[np.ndarray, np.ndarray]:
        """What decoding chooses from at step `steps` (one row per draft): the copy distribution
        mixed in, the first token one of `allowed` after token healing, no end before
        `min_new_tokens`; and each row's log-sum-exp, a token's behaviour log-prob (the model's own
        distribution) being its logit less that."""
        lse = _logsumexp(logits)[:, 0]
        if rules.copy_weight > 0:
            logits = self._with_copies(logits, lse, rules.src, drafts, rules.copy_weight, rules.repeats)
        if steps == 0 and rules.allowed is not None:
            masked = np.full_like(logits, -np.inf)
            masked[:, rules.allowed] = logits[:, rules.allowed]
            logits = masked
        if steps < rules.min_new_tokens:
            logits = logits.copy()
            logits[:, self._no_early_stop] = -np.inf
        return logits, lse

    def _decode(self, drafts: list[Draft], logits: np.ndarray, past: KVCache, rules: _Rules, rng) -> KVCache:
        """Decode the drafts (one row each) from the logits after `rules.src`; the first token is one
        of `rules.allowed` after token healing. Returns the KV cache of what was run."""
        m = len(drafts)
        if m > 1:
            past = past.repeated(m)
        logits = np.repeat(logits[None], m, axis=0)
        steps = 0
        while True:
            shaped, lse = self._shaped(logits, drafts, steps, rules)
            nxt = np.zeros((m, 1), np.int64)
            for r, c in enumerate(drafts):
                if c.finish is None:
                    tok = _sample(shaped[r], rules.temperature, rules.top_p, rng)
                    c.take(tok, float(logits[r, tok] - lse[r]), self, rules.stop, rules.max_new_tokens)
                nxt[r, 0] = c.ids[-1]
            steps += 1
            if all(c.finish for c in drafts) or (rules.cancelled is not None and rules.cancelled()):
                return past
            logits, past = self._run(nxt, past)

    def _decode_lookup(
        self, drafts: list[Draft], logits: np.ndarray, past: KVCache, rules: _Rules, rng=None
    ) -> KVCache:
        """`_decode` for one greedy draft, with prompt lookup: each run feeds the chosen token and
        the tokens that followed the text's tail where it repeats the prompt (`continuation`);
        their logits are then taken in turn, the chosen token each time exactly as `_decode`
        chooses it, for as long as it is the one that was fed. The cache keeps what was kept."""
        (c,) = drafts
        rows = logits[None]  # logits after each token of the last run
        fed: list[int] = []  # the run's tokens after the first: the lookup's guesses
        base = past.length - 1  # cache positions before the run's first token
        steps = 0
        while True:
            for j in range(len(rows)):
                row, lse = self._shaped(rows[j : j + 1], drafts, steps, rules)
                tok = int(np.argmax(row[0]))
                c.take(tok, float(rows[j, tok] - lse[0]), self, rules.stop, rules.max_new_tokens)
                steps += 1
                if c.finish or j == len(fed) or tok != fed[j]:
                    break
            self.lookup_counts[1] += j  # rows after the first were taken: their guesses were right
            kept = base + j + 1  # the run's tokens up to the one whose logits chose the last token
            if past.length > kept:  # guesses after the first miss
                past = past.trimmed(kept)
            if c.finish or (rules.cancelled is not None and rules.cancelled()):
                return past
            room = rules.max_new_tokens - len(c.ids) - 1
            tail = c.tail(rules.src)
            guesses = continuation(rules.src, tail, COPY_MAX_N, min(self.lookup_tokens, LOGIT_ROWS - 1, room))
            fed = self._guess(guesses, c.single_line)
            self.lookup_counts[0] += len(fed)
            run = np.asarray([[c.ids[-1], *fed]], dtype=np.int64)
            base = past.length
            out, past = self._run_rows(run, past)
            rows = out[0]

    def _guess(self, tokens: list[int], single_line: bool) -> list[int]:
        """The lookup's guesses up to the first that would end the completion (itself kept)."""
        for i, t in enumerate(tokens):
            if t in self.stop_ids or (single_line and t in self.newline_ids):
                return tokens[: i + 1]
        return tokens

    def generate(
        self,
        prompt: Sequence[int],
        *,
        max_new_tokens: int = 48,
        min_new_tokens: int = 0,
        single_line: bool = True,
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        cache_key: str | None = None,
        stop: Callable[[str], int | None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        heal: bool = False,
        copy_weight: float = 0.0,
        repeats: RepeatSource | None = None,
    ) -> Generation:
        """Complete `prompt`. Stops at a stop id (end of text), at a newline when `single_line`,
        where `stop(text)` returns a cut index (checked at each newline), or after max_new_tokens.
        Before `min_new_tokens`, stop tokens are masked out (as in transformers' generate).

        With `heal`, the model first decides on the full prompt whether to stop at once (the
        silence decision: a stop or, single-line, a newline, chosen as decoding would choose any
        token); if not, the prompt's last token is re-generated (see `heal`): the candidate's ids
        then start with its replacement (`healed` = 1) and the text leaves out the bytes the
        prompt already had."""
        prompt = list(prompt)
        if not prompt:
            raise ValueError("empty prompt")
        max_new_tokens = max(0, min(max_new_tokens, self.max_positions - len(prompt)))
        if max_new_tokens == 0:
            raise ValueError(f"prompt of {len(prompt)} tokens leaves no room (max {self.max_positions})")
        rng = np.random.default_rng(seed)
        t0 = time.perf_counter()
        with self._lock:
            logits, past, reused = self.prefill(prompt, cache_key)
            if cache_key is not None:
                self.remember(cache_key, prompt, past)
            silent: list[Candidate | None] = [None] * n
            hide, allowed, healed = 0, None, 0
            _, h, allow = self.heal(prompt) if heal and not min_new_tokens else (prompt, 0, None)
            if allow is not None:
                silent = self._silence(logits, n, single_line, temperature, top_p, rng)
                if any(c is None for c in silent):
                    # Back up one token: the cache already holds the prompt, so this is one step.
                    cut = len(prompt) - 2
                    logits, past = self._run(np.asarray([[prompt[-2]]], dtype=np.int64), past.trimmed(cut))
                    logits = logits[0]
                    hide, allowed, healed = h, allow, 1
            m = sum(c is None for c in silent)
            drafts = [Draft(single_line, hide) for _ in range(m)]
            if drafts:
                src = np.asarray(prompt[: len(prompt) - healed], np.int64)
                greedy_one = m == 1 and temperature <= 0 and self.lookup_tokens > 0
                rules = _Rules(
                    src,
                    allowed,
                    max_new_tokens,
                    min_new_tokens,
                    temperature,
                    top_p,
                    stop,
                    cancelled,
                    copy_weight,
                    repeats,
                )
                past = (self._decode_lookup if greedy_one else self._decode)(drafts, logits, past, rules, rng)
                if cache_key is not None and m == 1:
                    # The last sampled token was never fed: the cache covers what was run.
                    self.remember(cache_key, prompt[: len(prompt) - healed] + drafts[0].ids[:-1], past)
        t_end = time.perf_counter()
        results = iter(d.result(healed) for d in drafts)
        out = [c if c is not None else next(results) for c in silent]
        return Generation(
            candidates=out,
            prompt_tokens=len(prompt),
            reused_tokens=reused,
            latency_ms=(t_end - t0) * 1000,
            prompt=prompt,
        )


@dataclass(frozen=True)
class _Rules:
    """How one generate call decodes: what the two decoders and their helpers share."""

    src: np.ndarray  # the prompt the copy distribution and prompt lookup search (less a healed token)
    allowed: np.ndarray | None  # the first token's choices after token healing
    max_new_tokens: int
    min_new_tokens: int
    temperature: float
    top_p: float
    stop: Callable[[str], int | None] | None
    cancelled: Callable[[], bool] | None
    copy_weight: float
    repeats: RepeatSource | None
