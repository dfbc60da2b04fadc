"""What an engine hands back, the local one or a remote server: the candidates of one request
(token ids, log-probs, text, why they ended), and the Draft a candidate is decoded into (the stop
rules: a line's end, a block's cut, the token budget). Also the two things an engine is handed:
a vocabulary to decode with, and where repeats of the text come from (copying)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

COPY_MAX_N = 12  # the longest repeat the copy distribution looks for, in tokens


@dataclass
class Candidate:
    token_ids: list[int]
    logprobs: list[float]
    text: str
    finish: str  # "eos" | "newline" | "stop" | "length"
    healed: int = 0  # prompt tokens the first id replaces (token healing): 0 or 1


@dataclass
class Generation:
    candidates: list[Candidate]
    prompt_tokens: int
    reused_tokens: int  # prompt tokens whose KV came from the cache
    latency_ms: float
    prompt: list[int] = field(default_factory=list)  # the full prompt (a healed candidate replaces its last token)

    @property
    def prefill_tokens(self) -> int:
        return self.prompt_tokens - self.reused_tokens


class RepeatSource(Protocol):
    """Where else the copy distribution looks (workspace.repeats.RequestRepeats)."""

    def find(self, tail: Sequence[int], max_n: int, min_n: int = 2) -> tuple[int, dict[int, int]]: ...


class Vocabulary(Protocol):
    """What a draft needs of its engine (Engine, remote_engine.RemoteEngine)."""

    token_bytes: list[bytes]
    stop_ids: set[int]
    newline_ids: set[int]


class Draft:
    """A candidate being decoded (here, or by an inference server: remote_engine.py)."""

    def __init__(self, single_line: bool, hide: int = 0):
        self.single_line = single_line
        self.hide = hide  # leading bytes that repeat the prompt (token healing)
        self.ids: list[int] = []
        self.logprobs: list[float] = []
        self.buf = bytearray()
        self.finish: str | None = None
        self.cut: int | None = None

    def push(self, tok: int, logprob: float, engine: Vocabulary) -> None:
        self.ids.append(tok)
        self.logprobs.append(logprob)
        if tok in engine.stop_ids:
            self.finish = "eos"
            return
        piece = engine.token_bytes[tok] if tok < len(engine.token_bytes) else b""  # a server's padding id
        seen = len(self.buf)
        self.buf += piece
        if self.single_line and b"\n" in bytes(self.buf[max(seen, self.hide) :]):
            self.finish = "newline"

    def take(self, tok: int, logprob: float, engine: Vocabulary, stop, max_new_tokens: int) -> None:
        """Append `tok`; the draft ends at a stop id, a newline (single-line), where `stop(text)`
        cuts (checked at each newline), or at max_new_tokens."""
        self.push(tok, logprob, engine)
        if self.finish is None and stop is not None and tok in engine.newline_ids:
            cut_at = stop(self.text())
            if cut_at is not None:
                self.finish, self.cut = "stop", cut_at
        if self.finish is None and len(self.ids) >= max_new_tokens:
            self.finish = "length"

    def tail(self, src: np.ndarray) -> list[int]:
        """The last COPY_MAX_N tokens written: the prompt's end, then what this draft added."""
        return [*src[-COPY_MAX_N:].tolist(), *self.ids][-COPY_MAX_N:]

    def text(self) -> str:
        return bytes(self.buf[self.hide :]).decode("utf-8", errors="replace")

    def result(self, healed: int = 0) -> Candidate:
        text = self.text()
        if self.finish == "newline":
            text = text.split("\n", 1)[0]
        elif self.cut is not None:
            text = text[: self.cut]
        return Candidate(self.ids, self.logprobs, text, self.finish or "length", healed)
