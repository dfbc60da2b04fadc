"""Fill-in-the-middle prompt layout and the windows around the cursor.

Serving uses SPM order (suffix, then prefix, then the middle marker): as the user types, the
prefix grows at the *end* of the prompt, so consecutive prompts share a long token prefix and
the engine re-uses its KV cache (only the new tokens are prefilled). The prefix window starts on
a line that is a multiple of `stride_lines`, so it stays put while the user types and only jumps
when the token budget is exceeded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rltab.policy.model.fim import RLTAB_TEMPLATE, FimTemplate

Encode = Callable[[str], Sequence[int]]


PREFIX_TOKENS, SUFFIX_TOKENS = 384, 128  # the serving windows around the cursor


@dataclass(frozen=True)
class Snippet:
    """Code from elsewhere in the repository, shown before the file being completed."""

    path: str  # as the model sees it: relative to the workspace folder
    text: str


@dataclass(frozen=True)
class RepoPrompt:
    """The repository part of a prompt: snippets, and the names the repository formats want."""

    snippets: tuple[Snippet, ...] = ()
    path: str = ""  # the current file, relative to its workspace folder
    repo: str = ""  # the workspace folder's name


def commented(snippets: Sequence[Snippet]) -> str:
    """Snippets as comments with their paths (for models without repository tokens): the
    current file's code then reads on as if they were its first lines."""
    out = []
    for s in snippets:
        out.append(f"# {s.path}\n")
        out.extend(f"# {line}\n" if line.strip() else "#\n" for line in s.text.split("\n"))
    return "".join(out)


@dataclass(frozen=True)
class Window:
    """The text the model sees: `before` ends at the cursor, `after` starts there."""

    before: str
    after: str
    first_line: int  # 0-based document line where `before` starts


def cursor_window(
    text_before: str,
    text_after: str,
    encode: Encode,
    prefix_tokens: int = PREFIX_TOKENS,
    suffix_tokens: int = SUFFIX_TOKENS,
    stride_lines: int = 16,
) -> Window:
    """Cut prefix/suffix windows by token budget, aligned to lines so they stay stable."""
    lines = text_before.split("\n")
    # Start from a generous character estimate, then step forward in strides until it fits.
    budget_chars = prefix_tokens * 6
    start, total = len(lines) - 1, len(lines[-1])
    while start > 0 and total + len(lines[start - 1]) + 1 <= budget_chars:
        start -= 1
        total += len(lines[start]) + 1
    start = -(-start // stride_lines) * stride_lines if start > 0 else 0
    last = len(lines) - 1
    start = min(start, last // stride_lines * stride_lines)
    before = "\n".join(lines[start:])
    n = len(encode(before))
    while n > prefix_tokens and start < last:
        # Whole strides keep the window stable; near the cursor step line by line.
        start = start + stride_lines if start + stride_lines <= last else start + 1
        before = "\n".join(lines[start:])
        n = len(encode(before))
    while n > prefix_tokens:  # one very long line: keep its tail
        before = before[len(before) - max(1, len(before) * prefix_tokens // n - 1) :]
        n = len(encode(before))

    after_lines = text_after.split("\n")
    after, keep = "", 0
    for i, line in enumerate(after_lines):
        piece = line if i == 0 else "\n" + line
        if keep + len(piece) > suffix_tokens * 4 and i > 0:
            break
        after += piece
        keep += len(piece)
    ids = encode(after)
    if len(ids) > suffix_tokens:
        after = after[: max(1, len(after) * suffix_tokens // len(ids))]
    return Window(before=before, after=after, first_line=start)


def prompt_ids(
    before: str,
    after: str,
    encode: Encode,
    token_id: Callable[[str], int],
    template: FimTemplate = RLTAB_TEMPLATE,
    repo_prompt: RepoPrompt = RepoPrompt(),
) -> list[int]:
    """Token ids of a FIM prompt; plain left-to-right when the template has no FIM tokens or
    nothing but whitespace follows the cursor (the end of what has been written: there the
    model is at its best without FIM markers).

    `context` goes first, so it stays put while the user types: in the family's repository
    format where it has one (Qwen2.5-Coder `<|repo_name|>`/`<|file_sep|>`, StarCoder2
    `<repo_name>`/`<file_sep>`), else as commented snippets at the start of the prefix."""
    bos = [token_id(template.bos)] if template.bos else []
    head: list[int] = []
    repo_tokens, context = template.repo_tokens, repo_prompt.snippets
    if context and repo_tokens:
        name, sep = (token_id(t) for t in repo_tokens)
        head = [name, *encode(f"{repo_prompt.repo or 'workspace'}\n")]
        for snip in context:
            head += [sep, *encode(f"{snip.path}\n{snip.text}\n")]
        head += [sep, *encode(f"{repo_prompt.path or 'untitled'}\n")]
    elif context:
        before = commented(context) + before
    pre = list(encode(before)) if before else []
    if not template.has_fim or not template.serve_fim or not after.strip():
        # An empty document starts after end-of-text, as documents did in training.
        return bos + head + pre if head or pre else bos or [token_id(template.eos)]
    suf = list(encode(after)) if after else []
    assert template.prefix and template.suffix and template.middle  # has_fim
    p, s, m = token_id(template.prefix), token_id(template.suffix), token_id(template.middle)
    if template.spm:
        return [*bos, *head, s, *suf, p, *pre, m]
    return [*bos, *head, p, *pre, s, *suf, m]
