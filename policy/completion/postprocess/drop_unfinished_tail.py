"""A multi-line completion must not end half-way: drop trailing lines that open a block with no
body (`if x:`), leave brackets open that nothing after the cursor closes, sit inside a
triple-quoted string that the completion never closes, or hold only comments."""

from ..context import BLOCK, CursorContext
from .balance_brackets import scan


def _open_triple_quote(text: str) -> int | None:
    """Index where an unclosed triple-quoted string starts, if there is one."""
    i, opened = 0, None
    while True:
        hits = [(text.find(q, i), q) for q in ('"""', "'''") if text.find(q, i) >= 0]
        if not hits:
            return opened[0] if opened else None
        pos, q = min(hits)
        if opened is None:
            opened = (pos, q)
        elif q == opened[1]:
            opened = None
        i = pos + 3


def drop_unfinished_tail(text: str, ctx: CursorContext) -> str:
    if ctx.kind != BLOCK or "\n" not in text:
        return text
    start = _open_triple_quote(text)
    if start is not None:
        text = text[: text.rfind("\n", 0, start) + 1].rstrip(" ")
    lines = text.split("\n")
    while len(lines) > 1:
        tail = lines[-1].rstrip()
        stack, _ = scan(ctx.line_prefix + "\n".join(lines))
        comment = tail.lstrip().startswith("#")  # a body of comments alone is no body
        if tail.endswith(":") or tail.endswith("\\") or stack or not tail.strip() or comment:
            lines.pop()
            continue
        break
    return "\n".join(lines)
