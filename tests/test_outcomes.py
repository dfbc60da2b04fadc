"""The outcome state machine, driven by edits as an editor would send them (fake clock)."""

from rltab.feedback.outcomes import Demonstration, OutcomeTracker, RetentionCheck


class Doc:
    """A document that forwards each edit to the tracker, as the server does."""

    def __init__(self, tracker, text="", uri="file:///a.py"):
        self.t, self.text, self.uri = tracker, text, uri
        self.resolutions = []

    def edit(self, s, e, new):
        self.resolutions += self.t.changed(self.uri, self.text, s, e, new)
        self.text = self.text[:s] + new + self.text[e:]

    def type(self, chars, at):
        for i, ch in enumerate(chars):
            self.edit(at + i, at + i, ch)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def setup(text="x = "):
    clock = Clock()
    t = OutcomeTracker(clock)
    return t, Doc(t, text), clock


def checks(t, doc, kind=RetentionCheck):
    """The checks that fall due now, of one kind."""
    return [c for c in t.due(lambda uri: doc.text) if isinstance(c, kind)]


def outcomes(doc):
    return [(r.suggestion_id, r.outcome, r.accepted_chars) for r in doc.resolutions]


def test_whole_insertion_is_accepted_then_retention_checked():
    t, doc, clock = setup()
    t.shown("s1", doc.uri, 4, "foo(1)")
    doc.edit(4, 4, "foo(1)")
    assert outcomes(doc) == [("s1", "accepted", 6)]
    doc.edit(0, 0, "# top\n")  # an edit above moves the accepted text
    clock.now += 31
    [check] = checks(t, doc)
    assert check.retention == 1.0 and not check.final
    doc.edit(6 + 4 + 4, 6 + 4 + 5, "2")  # foo(1) -> foo(2)
    clock.now += 600
    [check] = checks(t, doc)
    assert check.text == "foo(2)" and abs(check.retention - (1 - 1 / 6)) < 1e-9 and check.final
    assert t.due(lambda uri: doc.text) == [] and t.next_due() is None


def test_chunk_then_divergence_is_partial():
    t, doc, _ = setup()
    t.shown("s1", doc.uri, 4, "compute(a, b)")
    doc.edit(4, 4, "compute")  # word accept
    assert doc.resolutions == []
    doc.type("[x", 11)
    assert outcomes(doc) == [("s1", "partial", 7)]


def test_typed_through_counts_as_accepted():
    t, doc, _ = setup()
    t.shown("s1", doc.uri, 4, "abc")
    doc.type("abc", 4)
    assert outcomes(doc) == [("s1", "accepted", 3)]


def test_typing_something_else_is_rejected_and_yields_a_demonstration():
    t, doc, clock = setup("x = \n")
    t.shown("s1", doc.uri, 4, "foo()")
    doc.type("bar", 4)
    assert outcomes(doc) == [("s1", "rejected", 0)]
    doc.type("(2)", 7)
    clock.now += 31
    [demo] = checks(t, doc, Demonstration)
    assert demo.suggestion_id == "s1" and demo.text == "bar(2)\n"  # the line ends there: learn to stop


def test_every_request_yields_a_demonstration_of_what_was_typed_there():
    """Silent, accepted or partly accepted: the true text at the request's place is learnt from."""
    t, doc, clock = setup("")
    t.shown("silent", doc.uri, 0, "")
    doc.type("def f(", 0)
    t.shown("taken", doc.uri, 6, "x):")
    doc.edit(6, 6, "x):")  # accepted whole
    doc.type("\n    return x", 9)  # the user goes on typing past the line end
    t.shown("partly", doc.uri, 22, " + 1 if x else 0")
    doc.edit(22, 22, " + 1")
    doc.type(" - 2", 26)
    clock.now += 31
    demos = {d.suggestion_id: d.text for d in checks(t, doc, Demonstration)}
    assert demos == {"silent": "def f(x):\n", "taken": "x):\n", "partly": " + 1 - 2"}


def test_a_multi_line_demonstration_keeps_as_many_lines_as_asked():
    t, doc, clock = setup("")
    t.shown("s1", doc.uri, 0, "", demo_lines=2)
    doc.type("a = 1\nb = 2\nc = 3", 0)
    clock.now += 31
    [demo] = checks(t, doc, Demonstration)
    assert demo.text == "a = 1\nb = 2\n"


def test_a_rewritten_stem_counts_as_typed_at_the_demonstration():
    """Word-completion clients replace the stem `fo` with `foo(1)`: the demonstration is `o(1)`."""
    t, doc, clock = setup("x = fo")
    t.shown("s1", doc.uri, 6, "")
    doc.edit(4, 6, "foo(1)")
    clock.now += 31
    [demo] = checks(t, doc, Demonstration)
    assert demo.text == "o(1)"


def test_typing_part_by_hand_then_diverging_is_rejected():
    t, doc, _ = setup()
    t.shown("s1", doc.uri, 4, "abcdef")
    doc.type("abx", 4)
    assert outcomes(doc) == [("s1", "rejected", 0)]


def test_deletion_rejects_and_a_new_suggestion_settles_the_old():
    t, doc, _ = setup("x = 1")
    t.shown("s1", doc.uri, 5, "23")
    doc.edit(4, 5, "")
    t.shown("s2", doc.uri, 4, "7")
    res = t.shown("s3", doc.uri, 4, "8")
    assert outcomes(doc) == [("s1", "rejected", 0)]
    assert [(r.suggestion_id, r.outcome) for r in res] == [("s2", "rejected")]


def test_word_completion_replacing_the_stem_is_an_insertion():
    """Completion clients replace the typed stem `fo` with `foo(1)`."""
    t, doc, _ = setup("x = fo")
    t.shown("s1", doc.uri, 6, "o(1)")
    doc.edit(4, 6, "foo(1)")
    assert outcomes(doc) == [("s1", "accepted", 4)]


def test_explicit_rejection_stops_inference():
    t, doc, _ = setup()
    t.shown("s1", doc.uri, 4, "abc")
    t.rejected("s1")
    doc.edit(4, 4, "abc")
    assert doc.resolutions == []


def test_closed_document_keeps_its_last_text_for_checks():
    t, doc, clock = setup()
    t.shown("s1", doc.uri, 4, "foo")
    doc.edit(4, 4, "foo")
    t.closed(doc.uri, doc.text)
    clock.now += 31
    [check] = [c for c in t.due(lambda uri: None) if isinstance(c, RetentionCheck)]
    assert check.retention == 1.0
