"""Trailing whitespace on any line, and trailing blank lines, are never worth a Tab."""

from ..context import CursorContext


def trim_whitespace(text: str, ctx: CursorContext) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    while len(lines) > 1 and not lines[-1]:
        lines.pop()
    out = "\n".join(lines)
    return out if out.strip() else ""
