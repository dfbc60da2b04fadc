"""Post-processing filters, one per module, applied in order. Each is a pure function
(completion text, cursor context) -> text; an empty result means silence."""

from __future__ import annotations

from ..context import CursorContext
from .balance_brackets import balance_brackets
from .drop_repeated_line import drop_repeated_line
from .drop_repetition import drop_repetition
from .drop_suffix_overlap import drop_suffix_overlap
from .drop_unfinished_tail import drop_unfinished_tail
from .limit_block import limit_block
from .trim_whitespace import trim_whitespace

FILTERS = (
    limit_block,
    drop_repetition,
    drop_suffix_overlap,
    balance_brackets,
    drop_unfinished_tail,
    drop_repeated_line,
    trim_whitespace,
)


def postprocess(text: str, ctx: CursorContext) -> str:
    for f in FILTERS:
        text = f(text, ctx)
        if not text:
            return ""
    return text
