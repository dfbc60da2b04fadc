"""Drop the end of a completion that repeats what already follows the cursor: `b)` typed inside
`foo(a, |)` becomes `b`; lines that repeat the next document lines are cut."""

from ..context import CursorContext
from .balance_brackets import scan


def _balance(text: str) -> tuple[int, bool]:
    stack, bad = scan(text)
    return len(stack), bad is not None


def drop_suffix_overlap(text: str, ctx: CursorContext) -> str:
    suffix = ctx.line_suffix.strip()
    lines = text.split("\n")
    if suffix and len(lines) == 1:
        t = text.rstrip()
        natural = _balance(ctx.line_prefix + ctx.line_suffix)
        # Longest tail of the completion equal to a head of the suffix whose removal leaves the
        # line's brackets as balanced as they were: `bar(|)` + `foo(a)` keeps its `)`.
        for n in range(min(len(t), len(suffix)), 0, -1):
            if t.endswith(suffix[:n]) and _balance(ctx.line_prefix + t[:-n] + ctx.line_suffix) == natural:
                return t[:-n]
        return text
    # Multi-line: stop where the completion starts to repeat the document's next lines.
    nxt = [line.strip() for line in ctx.after.split("\n")[1:] if line.strip()][:2]
    if nxt:
        for i in range(1, len(lines)):
            if lines[i].strip() == nxt[0] and (len(nxt) < 2 or i + 1 >= len(lines) or lines[i + 1].strip() == nxt[1]):
                return "\n".join(lines[:i])
    return text
