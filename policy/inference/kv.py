"""A request's KV cache in the two parts the graph takes (model/export.py): `past`, which every
step reads where it lies, and `recent`, the tokens run since, which each step returns with its
own appended. Only the recent part is copied per step; it joins the past (one copy) when it
grows past RECENT_MAX tokens. A step that returned the whole cache copied every token of it,
every step: most of a decoding step at a long prompt (issue 30, BENCHMARKS "KV in place").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rltab.policy.model.formats import KEY_TOKEN_AXIS, VALUE_TOKEN_AXIS

RECENT_MAX = 64
"""Recent tokens kept apart before they join the past: a one-line or 24-token completion never
settles mid-request; a long one copies its cache once per 64 tokens instead of every token."""


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens two prompts share from the start: what a cached prompt's cache can serve."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _axis(j: int) -> int:
    """The token axis of the j-th array: keys are kept transposed ([B, Hkv, D, L]), values not."""
    return KEY_TOKEN_AXIS if j % 2 == 0 else VALUE_TOKEN_AXIS


def _cut(x: np.ndarray, j: int, n: int) -> np.ndarray:
    """The first `n` tokens of the j-th array, contiguous (what onnxruntime reads without a copy)."""
    return np.ascontiguousarray(x[(slice(None),) * _axis(j) + (slice(0, n),)])


@dataclass(frozen=True)
class KVCache:
    past: tuple[np.ndarray, ...]  # per layer: key [B, Hkv, D, P], value [B, Hkv, P, D]; contiguous
    recent: tuple[np.ndarray, ...]  # the same layouts, S tokens

    @staticmethod
    def empty(layers2: int, kv_heads: int, head_dim: int, batch: int = 1) -> KVCache:
        """No tokens yet, for a graph with `layers2` (2 per layer) key/value inputs of each part."""
        key, value = (batch, kv_heads, head_dim, 0), (batch, kv_heads, 0, head_dim)
        nothing = tuple(np.zeros(key if j % 2 == 0 else value, np.float32) for j in range(layers2))
        return KVCache(nothing, nothing)

    @property
    def length(self) -> int:
        """Tokens the cache holds: the positions the next run's tokens start at."""
        return self.past[1].shape[2] + self.recent[1].shape[2]

    def feeds(self, past_names: list[str], recent_names: list[str]) -> dict[str, np.ndarray]:
        return {**dict(zip(past_names, self.past)), **dict(zip(recent_names, self.recent))}

    def after(self, presents: list[np.ndarray]) -> KVCache:
        """The cache after a run that returned `presents` (the recent part with its tokens)."""
        return KVCache(self.past, tuple(presents))

    def settled(self) -> KVCache:
        """The recent part moved into the past where it has grown past RECENT_MAX (a past that
        is empty takes it as it is, without a copy)."""
        if self.recent[1].shape[2] <= RECENT_MAX:
            return self
        if self.past[1].shape[2] == 0:
            return KVCache(self.recent, _none(self.recent))
        joined = tuple(np.concatenate([p, r], axis=_axis(j)) for j, (p, r) in enumerate(zip(self.past, self.recent)))
        return KVCache(joined, _none(self.recent))

    def trimmed(self, n: int) -> KVCache:
        """The first `n` tokens' cache (a copy of what is kept, where a part is cut)."""
        p = self.past[1].shape[2]
        if n >= self.length:
            return self
        if n >= p:
            return KVCache(self.past, tuple(_cut(r, j, n - p) for j, r in enumerate(self.recent)))
        return KVCache(tuple(_cut(x, j, n) for j, x in enumerate(self.past)), _none(self.recent))

    def repeated(self, m: int) -> KVCache:
        """The same cache for `m` rows of a batch (one draft each)."""
        return KVCache(
            tuple(np.repeat(x, m, axis=0) for x in self.past), tuple(np.repeat(x, m, axis=0) for x in self.recent)
        )


def _none(like: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Empty arrays of `like`'s layouts."""
    return tuple(
        np.zeros(tuple(0 if a == _axis(j) else d for a, d in enumerate(x.shape)), np.float32)
        for j, x in enumerate(like)
    )
