"""Where the cursor is, and what kind of completion fits there (pure)."""

from __future__ import annotations

from dataclasses import dataclass

LINE, BLOCK, NONE = "line", "block", "none"
# Mid-line completions only make sense when all that follows the cursor on its line is closing
# punctuation (what auto-closing editors put there); before real code, stay silent.
CLOSERS = set(")]}>'\"`:;, \t")


def indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


@dataclass(frozen=True)
class CursorContext:
    before: str  # document text before the cursor
    after: str  # document text after the cursor
    kind: str  # LINE (rest of this line), BLOCK (several lines, to the block's end) or NONE

    @property
    def line_prefix(self) -> str:
        return self.before.rsplit("\n", 1)[-1]

    @property
    def line_suffix(self) -> str:
        return self.after.split("\n", 1)[0]

    @property
    def block_indent(self) -> str:
        """Indentation the multi-line completion's lines should keep (at least)."""
        if self.line_prefix.strip():
            # Right after `...:` the body goes one level deeper than this line.
            return indent_of(self.line_prefix) + " "
        return self.line_prefix


def previous_code_line(before: str) -> str:
    lines = before.split("\n")[:-1]
    for line in reversed(lines):
        if line.strip() and not line.strip().startswith("#"):
            return line
    return ""


def cursor_context(before: str, after: str) -> CursorContext:
    """Multi-line after a `:` at the line's end, or on an empty line that opens an empty block
    body; nothing before code on the same line; the rest of the line everywhere else."""
    prefix = before.rsplit("\n", 1)[-1]
    suffix = after.split("\n", 1)[0]
    kind = LINE
    if not set(suffix) <= CLOSERS:
        kind = NONE
    elif not suffix.strip():
        if prefix.rstrip().endswith(":") and not prefix.lstrip().startswith("#"):
            kind = BLOCK
        elif not prefix.strip():
            prev = previous_code_line(before)
            body_empty = len(indent_of(prefix)) > len(indent_of(prev))
            if prev.rstrip().endswith(":") and body_empty:
                kind = BLOCK
    return CursorContext(before, after, kind)
