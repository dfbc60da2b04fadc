"""Pre-tokenized training data: the corpus turned into examples once, on every core, and written
as uint16 token shards; training then only slices them (it never tokenizes a step).

An example is a chunk of one file, cut to fit a training row (context-level fill-in-the-middle:
the chunk is cut first, then transformed): at `fim_rate` a FIM example with a character-level
middle (corpus.fim_example: half suffix-prefix-middle, half prefix-suffix-middle), else the chunk
left to right. A share of examples are cross-file rows laid out exactly as the server prompts
(crossfile.py). Examples are separated by the end-of-text token, which also marks the document
boundaries the attention mask and the positions follow.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from rltab.policy.model import tokenizer as T

from . import corpus

SHARD_TOKENS = 1 << 24  # 16 M tokens (32 MB) a shard


@dataclass(frozen=True)
class ExampleSpec:
    tokenizer_json: str  # the tokenizer, as JSON text (workers rebuild it)
    chunk_chars: int
    fim_rate: float
    spm_rate: float
    seed: int


_WORKER: dict = {}


def _init(spec: ExampleSpec) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(spec.tokenizer_json)
    _WORKER["spec"], _WORKER["tok"] = spec, tok
    _WORKER["ids"] = {t: T.token_id(tok, t) for t in T.SPECIAL_TOKENS}


def _examples_of(item: tuple[int, str]) -> np.ndarray:
    """Every example of one file, end to end, each closed by end-of-text."""
    index, text = item
    spec, tok, ids = _WORKER["spec"], _WORKER["tok"], _WORKER["ids"]
    rng = random.Random(spec.seed * 1_000_003 + index)
    encode = lambda s: tok.encode(s, add_special_tokens=False).ids
    out: list[int] = []
    start = 0
    while start < len(text):
        end = (
            text.rfind("\n", start, start + spec.chunk_chars) + 1 if start + spec.chunk_chars < len(text) else len(text)
        )
        if end <= start:
            end = min(len(text), start + spec.chunk_chars)
        chunk = text[start:end]
        start = end
        if not chunk.strip():
            continue
        if rng.random() < spec.fim_rate and len(chunk) > 20:
            out += corpus.fim_example(
                chunk, rng, encode, ids, spec.spm_rate, prefix_chars=len(chunk), suffix_chars=len(chunk)
            )
        else:
            out += [*encode(chunk), ids[T.EOS]]
    return np.asarray(out, dtype=np.uint16)


def write(
    texts: Sequence[str],
    spec: ExampleSpec,
    out_dir: Path,
    processes: int = 1,
    extra: Iterator[list[int]] | None = None,
    extra_tokens: int = 0,
) -> dict:
    """Shards `train-NNN.npy` in `out_dir` from `texts` (and `extra_tokens` of `extra` examples:
    the cross-file rows); returns the counts written (also in `shards.json`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    items = list(enumerate(texts))
    random.Random(spec.seed).shuffle(items)
    if processes > 1:
        with Pool(processes, initializer=_init, initargs=(spec,)) as pool:
            parts = pool.imap(_examples_of, items, chunksize=16)
            arrays = list(parts)
    else:
        _init(spec)
        arrays = [_examples_of(i) for i in items]
    if extra is not None and extra_tokens:
        got, rows = 0, []
        for ex in extra:
            rows.append(np.asarray(ex, dtype=np.uint16))
            got += len(ex)
            if got >= extra_tokens:
                break
        # mixed in among the files' examples, not all at the end
        rng = random.Random(spec.seed + 1)
        for r in rows:
            arrays.insert(rng.randrange(len(arrays) + 1), r)
    tokens = np.concatenate(arrays) if arrays else np.zeros(0, np.uint16)
    names = []
    for i in range(0, max(1, len(tokens)), SHARD_TOKENS):
        name = f"train-{i // SHARD_TOKENS:03d}.npy"
        np.save(out_dir / name, tokens[i : i + SHARD_TOKENS])
        names.append(name)
    info = {"tokens": len(tokens), "shards": names, "documents": len(texts)}
    (out_dir / "shards.json").write_text(json.dumps(info, indent=2))
    return info


class Rows:
    """Random training rows from the shards: [batch, seq_len + 1] windows, memory-mapped."""

    def __init__(self, shard_dir: Path, seq_len: int, batch: int, seed: int):
        info = json.loads((shard_dir / "shards.json").read_text())
        self.shards = [np.load(shard_dir / n, mmap_mode="r") for n in info["shards"]]
        self.shards = [s for s in self.shards if len(s) > seq_len + 1]
        self.weights = np.asarray([len(s) for s in self.shards], dtype=np.float64)
        self.weights /= self.weights.sum()
        self.seq_len, self.batch = seq_len, batch
        self.rng = np.random.default_rng(seed)

    def __next__(self) -> np.ndarray:
        rows = np.empty((self.batch, self.seq_len + 1), dtype=np.int64)
        picks = self.rng.choice(len(self.shards), size=self.batch, p=self.weights)
        for r, k in enumerate(picks):
            shard = self.shards[k]
            a = int(self.rng.integers(0, len(shard) - self.seq_len - 1))
            rows[r] = shard[a : a + self.seq_len + 1]
        return rows

    def __iter__(self) -> Iterator[np.ndarray]:
        return self
