"""Deduplication of the starter's corpus: exact copies first (the same text after whitespace is
normalised), then near-duplicates by MinHash over line shingles (datasketch's LSH): a file whose
set of k-line shingles overlaps an earlier one's by at least `threshold` (estimated Jaccard) is
dropped, in path order. Copies of one module across packages, versions and vendored trees are
common in site-packages; they would be trained on many times and leak across the held-out split.
Signatures are computed on every core; the LSH index is filled in one process."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from multiprocessing import Pool

import numpy as np
from datasketch import MinHash, MinHashLSH

from .sources import Source

SHINGLE_LINES = 3
NUM_PERM = 64
THRESHOLD = 0.8
SCHEME = "affine32"  # datasketch 2.0's default, named: signatures cross process boundaries as values


def normalised(text: str) -> str:
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def exact(sources: Sequence[Source]) -> list[Source]:
    seen: set[bytes] = set()
    out = []
    for s in sources:
        key = hashlib.blake2b(normalised(s.text).encode(), digest_size=16).digest()
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def shingles(text: str, k: int = SHINGLE_LINES) -> list[bytes]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < k:
        return ["\n".join(lines).encode()]
    return list({"\n".join(lines[i : i + k]).encode() for i in range(len(lines) - k + 1)})


def _hashvalues(text: str) -> np.ndarray:
    m = MinHash(num_perm=NUM_PERM, seed=1, scheme=SCHEME)
    m.update_batch(shingles(text))
    return m.hashvalues


def signatures(texts: Sequence[str], processes: int = 1) -> list[MinHash]:
    if processes > 1 and len(texts) > 64:
        with Pool(processes) as pool:
            values = pool.map(_hashvalues, texts, chunksize=64)
    else:
        values = [_hashvalues(t) for t in texts]
    return [MinHash(num_perm=NUM_PERM, seed=1, hashvalues=v, scheme=SCHEME) for v in values]


def near(
    sources: Sequence[Source], against: Sequence[Source] = (), threshold: float = THRESHOLD, processes: int = 1
) -> list[Source]:
    """`sources` less near-duplicates of an earlier one or of any in `against` (the held-out
    files: a copy of a held-out module must not be trained on)."""
    sigs = signatures([s.text for s in [*against, *sources]], processes)
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    for i in range(len(against)):
        lsh.insert(f"h{i}", sigs[i])
    out = []
    for i, s in enumerate(sources):
        sig = sigs[len(against) + i]
        if lsh.query(sig):
            continue
        lsh.insert(f"t{i}", sig)
        out.append(s)
    return out
