"""A request's KV cache: per layer a key and a value buffer [B, Hkv, C, D] of some capacity C, the
first `length` positions filled. The graph (model/export.py) writes a run's rows into the buffers
it is given, at `length`..; the engine binds each buffer as both the run's input and its output,
so a decoding step copies nothing (issue 30, BENCHMARKS "KV in place"). Buffers are copied only
to grow (by half again, at least GROW_TOKENS more) and for a batch of drafts.

Runs write in place: a cache that a later run was given is changed from its `length` on. Where
a request continues another's cache (the engine's per-document slots), the older owner gives it
up first (Engine.prefill).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rltab.policy.model.formats import CACHE_TOKEN_AXIS

GROW_TOKENS = 128
"""Room made beyond what a run needs when buffers are (re)allocated: a 24-token completion after a
prompt never reallocates mid-request; a long one reallocates once per half again of its length."""


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens two prompts share from the start: what a cached prompt's cache can serve."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass(frozen=True)
class KVCache:
    buffers: tuple[np.ndarray, ...]  # per layer: key, value [B, Hkv, C, D], C-contiguous
    length: int  # positions filled: where the next run's rows go

    @staticmethod
    def empty(layers2: int, kv_heads: int, head_dim: int, batch: int = 1) -> KVCache:
        """No tokens and no room yet, for a graph with `layers2` (2 per layer) buffers."""
        return KVCache(tuple(np.zeros((batch, kv_heads, 0, head_dim), np.float32) for _ in range(layers2)), 0)

    @property
    def capacity(self) -> int:
        return self.buffers[0].shape[CACHE_TOKEN_AXIS]

    @property
    def batch(self) -> int:
        return self.buffers[0].shape[0]

    def room_for(self, tokens: int, limit: int) -> KVCache:
        """This cache, with buffers that hold `tokens` more (new ones, the filled rows copied,
        where these are too small); never more than `limit` positions unless a run needs them."""
        need = self.length + tokens
        if need <= self.capacity:
            return self
        capacity = max(need, min(limit, max(need + GROW_TOKENS, self.capacity * 3 // 2)))
        grown = []
        for x in self.buffers:
            y = np.empty(x.shape[:2] + (capacity,) + x.shape[3:], np.float32)
            y[:, :, : self.length] = x[:, :, : self.length]
            grown.append(y)
        return KVCache(tuple(grown), self.length)

    def extended(self, tokens: int) -> KVCache:
        """The cache after a run that wrote `tokens` rows into these buffers."""
        return KVCache(self.buffers, self.length + tokens)

    def trimmed(self, n: int) -> KVCache:
        """The first `n` tokens' cache: the same buffers (the next run overwrites what follows)."""
        return self if n >= self.length else KVCache(self.buffers, n)

    def repeated(self, m: int) -> KVCache:
        """The same cache for `m` rows of a batch (one draft each): new buffers."""
        return KVCache(tuple(np.repeat(x, m, axis=0) for x in self.buffers), self.length)
