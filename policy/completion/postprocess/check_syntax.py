"""Compiler feedback (issue 8): a Python suggestion must not break the top-level statement
around the cursor where that statement was valid before: it parses or, at the end of what has
been written, it is a valid beginning that more lines can complete (what the REPL's `codeop`
calls incomplete: `def f(x):` with no body yet, an open bracket). A breaking multi-line suggestion is cut back to its longest run of whole
lines that stays valid (a repair); if none does, it is dropped, and the caller logs it with a
negative automatic reward. Where the code was already broken there is nothing to compare with and
the text passes."""

import ast
import codeop
import warnings

from ..context import CursorContext

MAX_CHARS = 20_000  # a statement this long is not worth the parse on the typing path


def parses(source: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like
            ast.parse(source)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def valid(source: str) -> bool:
    """Parses, or is a valid beginning that more lines could complete."""
    if parses(source):
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            codeop.compile_command(source, "<suggestion>", "exec")  # None: incomplete but valid so far
        return True
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError):
        return False


def _starts_statement(line: str) -> bool:
    return bool(line) and not line[0].isspace() and not line.startswith(("#", ")", "]", "}"))


def enclosing_statement(before: str, after: str) -> tuple[str, str]:
    """(the text from the start of the top-level statement holding the cursor, the text up to
    the next top-level statement): a unit that parses on its own."""
    lines = before.split("\n")
    start = len(lines) - 1
    while start > 0 and not _starts_statement(lines[start]):
        start -= 1
    head = "\n".join(lines[start:])
    rest = after.split("\n")
    end = 1
    while end < len(rest) and not _starts_statement(rest[end]):
        end += 1
    return head, "\n".join(rest[:end])


def check_syntax(text: str, ctx: CursorContext) -> str:
    head, tail = enclosing_statement(ctx.before, ctx.after)
    # Code below the cursor is fixed: there the statement must parse; at the end, it may go on.
    ok = valid if not ctx.after.strip() else parses
    if len(head) + len(tail) > MAX_CHARS or not ok(head + tail) or ok(head + text + tail):
        return text
    lines = text.split("\n")
    for keep in range(len(lines) - 1, 0, -1):
        cut = "\n".join(lines[:keep])
        if cut.strip() and ok(head + cut + tail):
            return cut
    return ""
