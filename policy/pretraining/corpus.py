"""Training and evaluation text: CPython's standard library, split by module.

HELD_OUT modules are never trained on; they give the held-out loss that the model card and the
updater's guard report. Benchmark corpora (click, attrs: pip-installed packages) are never read here.
"""

from __future__ import annotations

import os
import random
import sysconfig
from collections.abc import Iterator, Sequence
from pathlib import Path

from rltab.policy.model import tokenizer as T

HELD_OUT = (
    "argparse.py",
    "csv.py",
    "textwrap.py",
    "difflib.py",
    "string.py",
    "shlex.py",
    "fractions.py",
    "heapq.py",
    "calendar.py",
    "dataclasses.py",
    "json/",
    "zipfile.py",
)
# Tests and vendored/generated code would dominate by size without teaching much about how
# people write library code.
SKIP_PARTS = ("test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "encodings")


def stdlib_dir() -> Path:
    """This Python's standard library, or RLTAB_STDLIB's tree: a trainer on another Python version
    (a GPU machine's, say) then reads the same files, so held-out figures stay comparable."""
    return Path(os.environ.get("RLTAB_STDLIB") or sysconfig.get_paths()["stdlib"])


def _held_out(rel: str) -> bool:
    return any(rel == h or (h.endswith("/") and rel.startswith(h)) for h in HELD_OUT)


TEST_DIRS = ("test", "tests", "idle_test")


def tests_a_held_out_module(rel: str) -> bool:
    stems = [h.rstrip("/").removesuffix(".py") for h in HELD_OUT]
    return any(part.startswith(f"test_{s}") for part in rel.split("/") for s in stems)


def stdlib_files(split: str = "train", root: Path | None = None) -> list[Path]:
    """Sorted .py files of the standard library for `split` in {"train", "heldout", "tests"}:
    "tests" is its own test suite (more code to train on), less the tests of held-out modules."""
    root = root or stdlib_dir()
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        dirs = rel.split("/")[:-1]
        if split == "tests":
            if (
                any(d in TEST_DIRS for d in dirs)
                and not any(d in SKIP_PARTS and d not in TEST_DIRS for d in dirs)
                and not tests_a_held_out_module(rel)
            ):
                out.append(path)
            continue
        if any(part in SKIP_PARTS for part in dirs):
            continue
        if _held_out(rel) == (split == "heldout"):
            out.append(path)
    return out


def read_files(paths: Sequence[Path]) -> list[tuple[str, str]]:
    """(path, text) of each readable UTF-8 file."""
    out = []
    for p in paths:
        try:
            out.append((str(p), p.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, OSError):
            continue
    return out


def read_sources(paths: Sequence[Path]) -> list[str]:
    return [text for _, text in read_files(paths)]


def middle_span(text: str, rng: random.Random) -> tuple[int, int]:
    """Pick the span the model must fill: half the time random characters (so it learns to
    continue mid-token), else from a point in a line to that line's end, sometimes more lines
    (what serving asks for)."""
    n = len(text)
    if rng.random() < 0.5:
        a, b = sorted(rng.randrange(n + 1) for _ in range(2))
        return a, min(b, a + 400)
    a = rng.randrange(n)
    b = text.find("\n", a)
    b = n if b < 0 else b
    while rng.random() < 0.3 and b < n:
        nxt = text.find("\n", b + 1)
        b = n if nxt < 0 else nxt
    return a, b


def fim_example(
    text: str,
    rng: random.Random,
    encode,
    ids: dict[str, int],
    spm_rate: float = 0.5,
    prefix_chars: int = 1600,
    suffix_chars: int = 600,
) -> list[int]:
    """One FIM training example (token ids, ending with EOS) cut from `text`."""
    a, b = middle_span(text, rng)
    prefix, middle, suffix = text[max(0, a - prefix_chars) : a], text[a:b], text[b : b + suffix_chars]
    pre, mid, suf = encode(prefix), encode(middle), encode(suffix)
    if rng.random() < spm_rate:
        return [ids[T.FIM_SUFFIX], *suf, ids[T.FIM_PREFIX], *pre, ids[T.FIM_MIDDLE], *mid, ids[T.EOS]]
    return [ids[T.FIM_PREFIX], *pre, ids[T.FIM_SUFFIX], *suf, ids[T.FIM_MIDDLE], *mid, ids[T.EOS]]


def example_stream(
    texts: Sequence[str],
    seed: int,
    encode,
    ids: dict[str, int],
    fim_rate: float = 0.5,
    spm_rate: float = 0.5,
    chunk_chars: int = 2400,
) -> Iterator[list[int]]:
    """Endless training examples: files drawn in proportion to their length, a line-aligned
    chunk of each, then FIM (PSM or SPM) or plain left-to-right."""
    rng = random.Random(seed)
    weights = [len(t) for t in texts]
    while True:
        text = rng.choices(texts, weights=weights)[0]
        start = 0
        if len(text) > chunk_chars:
            start = text.rfind("\n", 0, rng.randrange(len(text) - chunk_chars)) + 1
        chunk = text[start : start + chunk_chars]
        if not chunk.strip():
            continue
        if rng.random() < fim_rate:
            yield fim_example(chunk, rng, encode, ids, spm_rate)
        else:
            tail = [ids[T.EOS]] if start + chunk_chars >= len(text) else []
            yield [*encode(chunk), *tail]
