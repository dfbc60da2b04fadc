"""A multi-line completion must not end half-way: drop trailing lines that open a block with no
body (`if x:`), or leave brackets open that nothing after the cursor closes."""
from ..context import BLOCK, CursorContext
from .balance_brackets import scan


def drop_unfinished_tail(text: str, ctx: CursorContext) -> str:
    if ctx.kind != BLOCK or "\n" not in text:
        return text
    lines = text.split("\n")
    while len(lines) > 1:
        tail = lines[-1].rstrip()
        stack, _ = scan(ctx.line_prefix + "\n".join(lines))
        if tail.endswith(":") or tail.endswith("\\") or stack:
            lines.pop()
            continue
        if not tail.strip():
            lines.pop()
            continue
        break
    return "\n".join(lines)
