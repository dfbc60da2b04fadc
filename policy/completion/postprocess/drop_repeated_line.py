"""Small models like to repeat the line above; a completion that only does that is dropped."""

from ..context import CursorContext


def drop_repeated_line(text: str, ctx: CursorContext) -> str:
    prev = ctx.before.split("\n")[-2] if "\n" in ctx.before else None
    whole = (ctx.line_prefix + text.split("\n")[0]).strip()
    if prev is not None and whole and whole == prev.strip() and len(whole) > 3:
        return ""
    return text
