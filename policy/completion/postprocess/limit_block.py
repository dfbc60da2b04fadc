"""A multi-line completion ends where its block ends: at the first non-empty line indented less
than the block body (or at the line limit the engine already applied)."""

from ..context import BLOCK, CursorContext, indent_of


def block_end(text: str, body_indent: int) -> int | None:
    """Index in `text` where the block ends, or None if it does not end inside `text`."""
    pos = 0
    for i, line in enumerate(text.split("\n")):
        if i > 0 and line.strip() and len(indent_of(line)) < body_indent:
            return max(0, pos - 1)
        pos += len(line) + 1
    return None


def limit_block(text: str, ctx: CursorContext) -> str:
    if ctx.kind != BLOCK:
        return text
    cut = block_end(text, len(ctx.block_indent))
    return text if cut is None else text[:cut]
