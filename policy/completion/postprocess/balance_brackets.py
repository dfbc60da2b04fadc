"""Cut a completion at a closing bracket that closes nothing (neither in the completion nor
earlier on the line): past that point the model is writing someone else's code."""

from ..context import CursorContext

PAIRS = {")": "(", "]": "[", "}": "{"}


def scan(text: str, stack: list[str] | None = None) -> tuple[list[str], int | None]:
    """Brackets left open after `text` (quotes respected), and the index of the first closer
    that closes nothing (None if there is none)."""
    stack = list(stack or [])
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            stack.append(ch)
        elif ch in PAIRS:
            if not stack or stack[-1] != PAIRS[ch]:
                return stack, i
            stack.pop()
    return stack, None


def balance_brackets(text: str, ctx: CursorContext) -> str:
    stack, _ = scan(ctx.line_prefix)
    _, bad = scan(text, stack)
    return text if bad is None else text[:bad]
