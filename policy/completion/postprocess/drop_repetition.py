"""Small models loop (`other, other, other, ...`): where a short unit with a word in it repeats
three or more times in a row, keep its first occurrence and cut the rest. Runs of punctuation
(`'======'` separators) are code, not loops."""

import re

from ..context import CursorContext

LOOP = re.compile(r"(.{2,24}?)\1{2,}", re.S)


def drop_repetition(text: str, ctx: CursorContext) -> str:
    for m in LOOP.finditer(text):
        if re.search(r"\w", m.group(1)):
            return text[: m.start() + len(m.group(1))]
    return text
