"""The starter's tokenizer, retrained on its corpus: byte-level BPE with rltab's FIM sentinels
(model/tokenizer.py). Its pre-tokenizer keeps a run of spaces (less the last, which goes with the
next word) as one piece, so BPE learns indentation as single tokens ("\n" plus 7 spaces is one);
`indentation` reports how many tokens each common indent takes.

The vocabulary size is chosen by measurement among CANDIDATES: each is trained on a sample of
the training text and measured on the held-out files (bytes per token); the smallest whose
compression is within TOLERANCE of the best wins. A larger vocabulary compresses better but costs
embedding parameters (size × width) that the ~30 M budget would rather spend on layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer

from rltab.policy.model import tokenizer as T

CANDIDATES = (8192, 12288, 16384)
TOLERANCE = 0.03  # 3 % fewer bytes per token is worth a bigger table; less is not


@dataclass(frozen=True)
class Measured:
    vocab_size: int
    bytes_per_token: float


def train(texts: Sequence[str], vocab_size: int) -> Tokenizer:
    return T.train_tokenizer(texts, vocab_size)


def indentation(tok: Tokenizer) -> dict[int, int]:
    """Tokens per common indent (4 to 24 spaces) at a line's start: 1 for each, on a code corpus."""
    return {n: len(tok.encode("\n" + " " * (n - 1), add_special_tokens=False).ids) for n in (4, 8, 12, 16, 20, 24)}


def bytes_per_token(tok: Tokenizer, texts: Sequence[str]) -> float:
    encoded = tok.encode_batch(list(texts), add_special_tokens=False)
    n = sum(len(e.ids) for e in encoded)
    return sum(len(t.encode()) for t in texts) / max(1, n)


def choose(
    train_texts: Sequence[str], heldout_texts: Sequence[str], candidates=CANDIDATES
) -> tuple[Tokenizer, list[Measured]]:
    """The tokenizer of the chosen size, and every size's measurement."""
    trained = {v: train(train_texts, v) for v in candidates}
    measured = [Measured(v, round(bytes_per_token(tok, heldout_texts), 4)) for v, tok in trained.items()]
    best = max(m.bytes_per_token for m in measured)
    pick = min(m.vocab_size for m in measured if m.bytes_per_token >= best * (1 - TOLERANCE))
    return trained[pick], measured
