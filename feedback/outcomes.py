"""Infer what became of a suggestion from the edits that follow it (architecture.md §3), for any client.

Feed it `shown` when a suggestion is displayed and `changed` for every content change (offsets
into the text *before* that change). At the suggestion's anchor:
  - the whole suggestion inserted at once                  -> accepted
  - a chunk of it inserted (several characters at once)    -> partial so far (word/line accept)
  - its characters typed one by one to the end             -> accepted (typed through)
  - anything else                                          -> rejected, or partial if a chunk was taken
Accepted text is then followed through later edits and checked at 30 s, 2, 5 and 10 minutes
(retention). Whatever became of a suggestion, even an empty one (the model stayed silent), what
the user then wrote at its place becomes a demonstration: the true text there, for supervised steps.
Pure state machine: the clock is injected, nothing here touches the ledger or the network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .rewards import ACCEPTED, PARTIAL, REJECTED, retention

RETENTION_DELAYS = (30.0, 120.0, 300.0, 600.0)
DEMONSTRATION_DELAY = 30.0


@dataclass
class Resolution:
    suggestion_id: str
    outcome: str
    accepted_chars: int


@dataclass
class RetentionCheck:
    suggestion_id: str
    retention: float
    text: str  # what stands where the accepted text was
    final: bool


@dataclass
class Demonstration:
    suggestion_id: str
    text: str  # ends with "\n" when the user finished its last line (so the model learns to stop)


@dataclass
class _Pending:
    suggestion_id: str
    anchor: int
    text: str
    progress: int = 0  # characters of `text` the user has put in place so far
    chunks: int = 0  # insertions of more than one character (explicit accepts)


@dataclass
class _Region:
    """A span of a document followed through edits."""

    suggestion_id: str
    uri: str
    start: int
    end: int
    original: str  # accepted text (retention) or "" (demonstration)
    due: list[float] = field(default_factory=list)
    grows: bool = False  # demonstrations take in what is typed at their end
    lines: int = 1  # a demonstration keeps at most this many lines

    def apply(self, s: int, e: int, new: str) -> None:
        delta = len(new) - (e - s)
        if self.grows and s == e == self.end:
            self.end += len(new)
        elif e <= self.start and not (s == e == self.start == self.end):
            self.start += delta
            self.end += delta
        elif s >= self.end and not (self.grows and s == self.end):
            return
        else:
            self.start = min(self.start, s)
            self.end = max(self.end, e) + delta


def effective_insertion(before: str, s: int, e: int, new: str) -> tuple[int, str] | None:
    """A change as a pure insertion (position, text), if it is one. Clients that complete a word
    replace the typed stem with stem + completion: that is an insertion after the stem."""
    old = before[s:e]
    if new.startswith(old):
        return e, new[len(old) :]
    return None


class OutcomeTracker:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        retention_delays=RETENTION_DELAYS,
        demonstration_delay: float = DEMONSTRATION_DELAY,
    ):
        self.clock = clock
        self.delays = tuple(retention_delays)
        self.demo_delay = demonstration_delay
        self.pending: dict[str, _Pending] = {}
        self.regions: list[_Region] = []
        self.closed_text: dict[str, str] = {}

    # -- inputs ------------------------------------------------------------------------------
    def shown(self, suggestion_id: str, uri: str, anchor: int, text: str, demo_lines: int = 0) -> list[Resolution]:
        """A suggestion is on screen (empty `text`: the model stayed silent there); the one shown
        before it in this document is settled. What the user writes at `anchor` from now on is
        followed as a demonstration of `demo_lines` lines (0: as many as the suggestion has)."""
        out = self._settle(uri)
        self.regions.append(
            _Region(
                suggestion_id,
                uri,
                anchor,
                anchor,
                "",
                [self.clock() + self.demo_delay],
                grows=True,
                lines=demo_lines or text.count("\n") + 1,
            )
        )
        if text:
            self.pending[uri] = _Pending(suggestion_id, anchor, text)
        return out

    def changed(self, uri: str, before: str, s: int, e: int, new: str) -> list[Resolution]:
        """One content change: text[s:e] of `before` replaced by `new`."""
        ins = effective_insertion(before, s, e, new)
        for r in self.regions:  # followed spans move with the edit (a stem rewritten is an insertion)
            if r.uri == uri:
                r.apply(*((ins[0], ins[0], ins[1]) if ins is not None else (s, e, new)))
        p = self.pending.get(uri)
        if p is None:
            return []
        rest = p.text[p.progress :]
        if ins is not None and ins[1] and ins[0] == p.anchor + p.progress and rest.startswith(ins[1]):
            p.progress += len(ins[1])
            p.chunks += len(ins[1]) > 1
            return self._settle(uri) if p.progress == len(p.text) else []
        return self._settle(uri)

    def rejected(self, suggestion_id: str) -> None:
        """The client said the suggestion was dismissed (rltab.rejected): stop inferring for it.
        Explicit accepts need nothing here: clients send the insertion (didChange) before the
        command, and inference has already followed it."""
        for uri, p in list(self.pending.items()):
            if p.suggestion_id == suggestion_id:
                p.progress, p.chunks = 0, 0
                self._settle(uri)

    def closed(self, uri: str, text: str) -> list[Resolution]:
        self.closed_text[uri] = text
        return self._settle(uri)

    def opened(self, uri: str) -> None:
        self.closed_text.pop(uri, None)

    # -- outputs -----------------------------------------------------------------------------
    def due(self, text_of: Callable[[str], str | None]) -> list[RetentionCheck | Demonstration]:
        """Checks whose time has come; `text_of(uri)` is the document's current text."""
        now = self.clock()
        out: list[RetentionCheck | Demonstration] = []
        keep = []
        for r in self.regions:
            if not r.due or r.due[0] > now:
                keep.append(r)
                continue
            text = text_of(r.uri)
            text = self.closed_text.get(r.uri) if text is None else text
            if text is None:
                continue
            span = text[max(0, r.start) : max(0, r.end)]
            while r.due and r.due[0] <= now:
                r.due.pop(0)
            if r.grows:
                lines = span.split("\n")
                finished = len(lines) > r.lines or text[max(0, r.end) : max(0, r.end) + 1] == "\n"
                out.append(Demonstration(r.suggestion_id, "\n".join(lines[: r.lines]) + ("\n" if finished else "")))
            else:
                out.append(RetentionCheck(r.suggestion_id, retention(r.original, span), span, final=not r.due))
            if r.due:
                keep.append(r)
        self.regions = keep
        return out

    def next_due(self) -> float | None:
        times = [r.due[0] for r in self.regions if r.due]
        return min(times) if times else None

    # -- internals ---------------------------------------------------------------------------
    def _settle(self, uri: str) -> list[Resolution]:
        p = self.pending.pop(uri, None)
        if p is None:
            return []
        if p.progress == len(p.text):
            self._track(p, uri, p.progress)
            return [Resolution(p.suggestion_id, ACCEPTED, p.progress)]
        if p.progress and p.chunks:
            self._track(p, uri, p.progress)
            return [Resolution(p.suggestion_id, PARTIAL, p.progress)]
        # Rejected (characters typed one by one that later diverged were the user's own typing).
        return [Resolution(p.suggestion_id, REJECTED, 0)]

    def _track(self, p: _Pending, uri: str, chars: int) -> None:
        now = self.clock()
        self.regions.append(
            _Region(p.suggestion_id, uri, p.anchor, p.anchor + chars, p.text[:chars], [now + d for d in self.delays])
        )
