"""Golden cases for the pure completion rules: context kind and each post-processing filter."""

import pytest

from rltab.policy.completion.context import BLOCK, LINE, NONE, cursor_context
from rltab.policy.completion.postprocess import postprocess
from rltab.policy.completion.postprocess.balance_brackets import balance_brackets
from rltab.policy.completion.postprocess.drop_repeated_line import drop_repeated_line
from rltab.policy.completion.postprocess.drop_repetition import drop_repetition
from rltab.policy.completion.postprocess.drop_suffix_overlap import drop_suffix_overlap
from rltab.policy.completion.postprocess.drop_unfinished_tail import drop_unfinished_tail
from rltab.policy.completion.postprocess.limit_block import limit_block
from rltab.policy.completion.postprocess.trim_whitespace import trim_whitespace


@pytest.mark.parametrize(
    "before,after,kind",
    [
        ("x = fo", "\n", LINE),
        ("def f(x):", "\n", BLOCK),
        ("def f(x):\n    ", "\n", BLOCK),
        ("def f(x):\n    return x\n", "", LINE),  # a new line at the same level: one line at a time
        ("print(a, ", ")\n", LINE),  # mid-line
        ("    # note:", "\n", LINE),  # a comment ending with ':' opens nothing
        ("for i in range(3):\n    # body\n    ", "", BLOCK),
        ("        self", ".x = x\n", NONE),  # before existing code: stay silent
        ("    ", "def f():\n", NONE),
        ('print("a', '")\n', LINE),
    ],
)
def test_context_kind(before, after, kind):
    assert cursor_context(before, after).kind == kind


@pytest.mark.parametrize(
    "before,after,text,want",
    [
        ("print(a, ", ")\n", "b)", "b"),  # the `)` already stands after the cursor
        ("bar(", ")\n", "foo(a)", "foo(a)"),  # ... but here the completion needs its own `)`
        ("if x", ":\n", " > 0:", " > 0"),
        ("x = ", "\n", "1", "1"),
    ],
)
def test_drop_suffix_overlap(before, after, text, want):
    assert drop_suffix_overlap(text, cursor_context(before, after)) == want


def test_drop_suffix_overlap_multiline_stops_at_existing_lines():
    ctx = cursor_context("def f(x):", "\n    y = x + 1\n    return y\n")
    assert drop_suffix_overlap("\n    y = x * 2\n    y = x + 1\n    return y", ctx) == "\n    y = x * 2"


@pytest.mark.parametrize(
    "prefix,text,want",
    [
        ("foo(", "a, b)", "a, b)"),
        ("x = ", "a) + 1", "a"),  # closes nothing: cut
        ("x = ", "f(')')", "f(')')"),  # quotes are respected
        ("d = {", "'a': [1, 2]}", "'a': [1, 2]}"),
    ],
)
def test_balance_brackets(prefix, text, want):
    assert balance_brackets(text, cursor_context(prefix, "\n")) == want


def test_limit_block_cuts_at_dedent():
    ctx = cursor_context("def f(x):", "\n")
    assert limit_block("\n    y = x\n    return y\n\ndef g():\n    pass", ctx) == "\n    y = x\n    return y\n"
    assert limit_block("\n    return x", ctx) == "\n    return x"


def test_limit_block_from_an_empty_body_line():
    ctx = cursor_context("class A:\n    def f(self):\n        ", "")
    assert limit_block("return 1\n    def g(self):\n        pass", ctx) == "return 1"


def test_drop_unfinished_tail():
    ctx = cursor_context("def f(x):", "\n")
    assert drop_unfinished_tail("\n    y = g(x)\n    if y:", ctx) == "\n    y = g(x)"
    assert drop_unfinished_tail("\n    y = g(x)\n    z = h(y,", ctx) == "\n    y = g(x)"
    assert drop_unfinished_tail("\n    return x", ctx) == "\n    return x"
    assert drop_unfinished_tail("x:", cursor_context("y = ", "\n")) == "x:"  # single line: untouched
    assert drop_unfinished_tail('\n    """Return the\n    area.', ctx) == ""  # a docstring never closed
    assert drop_unfinished_tail("\n    x = 1\n    # then", ctx) == "\n    x = 1"
    assert drop_unfinished_tail('\n    """Area."""\n    return w', ctx) == '\n    """Area."""\n    return w'


def test_drop_repetition():
    ctx = cursor_context("f(", ")\n")
    assert drop_repetition("a, other, other, other, other", ctx) == "a, other"
    assert drop_repetition("x == y", ctx) == "x == y"
    assert drop_repetition("'=========='", ctx) == "'=========='"  # separators are code
    assert drop_repetition("ab ab ab ab", ctx) == "ab "


def test_trim_whitespace():
    ctx = cursor_context("x = ", "\n")
    assert trim_whitespace("1   \n\n", ctx) == "1"
    assert trim_whitespace("   \n  ", ctx) == ""


def test_drop_repeated_line():
    ctx = cursor_context("    total += x\n    to", "\n")
    assert drop_repeated_line("tal += x", ctx) == ""
    assert drop_repeated_line("tal -= x", ctx) == "tal -= x"


def test_postprocess_pipeline_can_return_silence():
    assert postprocess("   ", cursor_context("x = ", "\n")) == ""
    assert postprocess(") + 2", cursor_context("x = ", "\n")) == ""
    assert postprocess("items)  ", cursor_context("for x in sorted(", "):\n")) == "items"
