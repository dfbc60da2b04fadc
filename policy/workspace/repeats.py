"""The workspace as the copy distribution's second source (policy/copying.py): the prompt holds
~160 tokens of repository context; decoding can also copy from every other workspace file and
from the current document above the prompt, so a sibling module's names and call patterns are
written out even when the context left them out.

The table (copying.TokenTable) is rebuilt in the background when the index changes, re-encoding
only files whose text changed; a request uses the last table built and never waits for one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rltab.feedback.secrets import contains_secret
from rltab.policy.inference.copying import TokenTable, copy_candidates, nearer_first

from .index import WorkspaceIndex

log = logging.getLogger(__name__)

MAX_TOKENS = 3_000_000
"""The table's size bound (16 bytes a token: ids, keys, positions; ~10 MB of code); files past it
are left out."""
REFRESH_S = 30.0
"""Least time between two rebuilds while the workspace keeps changing: a rebuild of a large
workspace sorts millions of keys (~0.5 s), and the document being typed is searched apart
(`head`), so the table can lag behind the others' edits."""
HEAD_CHUNK_LINES = 64
"""The current document's head is encoded in chunks of lines, so typing re-encodes one chunk."""


class WorkspaceRepeats:
    """The workspace's token table for one tokenizer, kept current in the background."""

    def __init__(
        self,
        index: WorkspaceIndex,
        encode: Callable[[str], Sequence[int]],
        vocab_size: int,
        refresh_s: float = REFRESH_S,
    ):
        self.index = index
        self.refresh_s = refresh_s
        self.encode = encode
        self.vocab_size = vocab_size
        self._table: TokenTable | None = None
        self._built_generation = -1
        self._built_ready = False
        self._encoded: dict[str, tuple[str, np.ndarray]] = {}  # path -> (the text encoded, its ids)
        self._heads: dict[str, dict[str, np.ndarray]] = {}  # path -> its head's chunks (text -> ids)
        self._building = threading.Lock()
        self._last_build = -refresh_s  # the first table is built at once
        self.build_seconds = 0.0

    def table(self) -> TokenTable | None:
        """The last table built (None before the first); starts a rebuild when the index moved on."""
        due = time.monotonic() - self._last_build >= self.refresh_s or (
            self.index.ready.is_set() and not self._built_ready
        )  # the first full index: at once
        if self.index.generation != self._built_generation and due and self._building.acquire(blocking=False):
            threading.Thread(target=self._rebuild, name="rltab-repeats", daemon=True).start()
        return self._table

    def settled(self) -> bool:
        """A table of the complete index has been built."""
        return self._built_ready

    def rebuild_now(self) -> TokenTable:
        """Build at once (tests, benchmarks)."""
        with self._building:
            self._build()
        assert self._table is not None
        return self._table

    def _rebuild(self) -> None:
        try:
            self._build()
        except Exception:
            log.exception("cannot build the workspace token table")
        finally:
            self._last_build = time.monotonic()
            self._building.release()

    def _build(self) -> None:
        t0 = time.perf_counter()
        generation, ready = self.index.generation, self.index.ready.is_set()
        files, total = {}, 0
        for path in self.index.paths():
            text = self.index.text(path)
            if text is None:
                continue
            hit = self._encoded.get(path)
            if hit is None or hit[0] is not text:
                # A file holding a credential is left out: decoding never copies from it.
                ids = np.zeros(0, np.int32) if contains_secret(text, path) else np.asarray(self.encode(text), np.int32)
                hit = self._encoded[path] = (text, ids)
            if total + hit[1].size > MAX_TOKENS:
                continue
            files[path] = hit[1]
            total += hit[1].size
        for gone in set(self._encoded) - set(files):
            del self._encoded[gone]
        self._table = TokenTable.build(files, self.vocab_size)
        self._built_generation, self._built_ready = generation, ready
        self.build_seconds = time.perf_counter() - t0

    def head(self, path: str, lines: list[str], end_line: int) -> np.ndarray:
        """The current document's lines [0, end_line) (above the prompt) as tokens; chunks already
        encoded are reused, so typing at the end of a long file encodes one chunk."""
        known = self._heads.get(path, {})
        chunks: dict[str, np.ndarray] = {}  # only this head's chunks are kept
        parts = []
        for a in range(0, end_line, HEAD_CHUNK_LINES):
            chunk = "\n".join(lines[a : min(end_line, a + HEAD_CHUNK_LINES)]) + "\n"
            ids = known.get(chunk)
            if ids is None:
                ids = np.asarray(self.encode(chunk), np.int64)
            chunks[chunk] = ids
            parts.append(ids)
        self._heads[path] = chunks
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def forget(self, path: str) -> None:
        """A document closed: its head's chunks go."""
        self._heads.pop(path, None)


@dataclass(frozen=True)
class RequestRepeats:
    """One request's view: the workspace's other files, and its own document above the prompt."""

    table: TokenTable | None
    path: str
    head: np.ndarray

    def find(self, tail: Sequence[int], max_n: int, min_n: int = 2) -> tuple[int, dict[int, int]]:
        own = copy_candidates(self.head, tail, max_n, min_n) if self.head.size else (0, {})
        if self.table is None:
            return own
        return nearer_first(own, self.table.find(tail, max_n, min_n, exclude=self.path))
