from rltab.harness.typing_sim import request_points, word_boundary_prefix


def test_request_points_are_line_starts_and_word_boundaries():
    text = "def f(x):\n    return x + 1\n"
    assert [text[p : p + 3] for p in request_points(text)] == [
        "def",
        " f(",
        "f(x",
        "(x)",
        "x):",
        "):\n",
        "ret",
        " x ",
        "x +",
        " + ",
        "1\n",
        "\n",
    ]


def test_partial_accepts_stop_at_word_boundaries():
    assert word_boundary_prefix("return x + 2", "return x + 1\n") == len("return x + ")
    assert word_boundary_prefix("foo_bar(1)", "foo_baz(1)") == 0
    assert word_boundary_prefix("self.x", "self.y") == len("self.")
    assert word_boundary_prefix(" is None", " default") == 0  # only whitespace: nothing taken
