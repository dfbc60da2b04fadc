"""A simulated developer who types files top to bottom through `rltab serve` (architecture.md §6).

At each line start (after the indentation) and each word boundary it asks for an inline
completion. It takes a suggestion only when it is a prefix of the text that really comes next;
otherwise it takes the longest part that matches up to a word boundary (a partial accept), or
types on. Accepts go through the editor path: the text is inserted (didChange) and the item's
command is run, so outcomes reach the ledger exactly as from an editor.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rltab.feedback.ledger import Ledger
from rltab.server.documents import position_at

from .lsp_client import ServerSession


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def request_points(text: str) -> list[int]:
    """Where the developer pauses to look at a suggestion: line starts after the indentation
    and transitions between word and non-word characters."""
    points = []
    line_start = 0
    for p in range(len(text)):
        ch = text[p]
        if p > 0 and text[p - 1] == "\n":
            line_start = p
        if ch in " \t" and not text[line_start:p].strip():
            continue  # inside the indentation
        if not text[line_start:p].strip():
            points.append(p)  # first character of the line's code (or an empty line)
        elif _is_word(text[p - 1]) != _is_word(ch) and not (text[p - 1] == " " and ch == " "):
            points.append(p)
    return points


def word_boundary_prefix(suggestion: str, truth: str) -> int:
    """Length of the longest common prefix of `suggestion` and `truth` that ends at a word
    boundary of the suggestion (what a word-by-word partial accept can take); 0 when that
    would take only whitespace."""
    n = 0
    while n < len(suggestion) and n < len(truth) and suggestion[n] == truth[n]:
        n += 1
    while n > 0 and n < len(suggestion) and _is_word(suggestion[n - 1]) == _is_word(suggestion[n]):
        n -= 1
    return n if suggestion[:n].strip() else 0


@dataclass
class Shown:
    """One suggestion the simulated developer saw."""

    file: str
    offset: int
    fraction: float  # how far through all the characters this happened
    text: str
    outcome: str  # accepted | partial | rejected
    chars: int  # characters taken from it
    latency_ms: float
    suggestion_id: str


@dataclass
class Session:
    chars_total: int = 0
    chars_typed: int = 0
    requests: int = 0
    shown: list[Shown] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


def _figures(shown: list[Shown], chars_total: float, chars_typed: int, latencies: list[float]) -> dict:
    acc = sum(s.outcome == "accepted" for s in shown)
    part = sum(s.outcome == "partial" for s in shown)
    rej = sum(s.outcome == "rejected" for s in shown)
    saved = sum(s.chars for s in shown)
    lat = sorted(latencies)
    return {
        "chars_typed": chars_typed,
        "shown": len(shown),
        "accepted": acc,
        "partial": part,
        "rejected": rej,
        "accept_rate": round((acc + part) / len(shown), 4) if shown else 0.0,
        "chars_saved_per_100": round(100 * saved / chars_total, 3) if chars_total else 0.0,
        "latency_ms": {"p50": round(percentile(lat, 50), 2), "p95": round(percentile(lat, 95), 2)},
    }


def percentile(xs: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted `xs`."""
    if not xs:
        return 0.0
    k = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
    return xs[k]


def summarize(session: Session, ledger: Ledger) -> dict:
    """Figures for the whole run and per third of the characters (a learning curve)."""
    out = _figures(session.shown, session.chars_total, session.chars_typed, session.latencies)
    rows = ledger.rows()
    fresh = [r["prefill_tokens"] for r in rows if r["prefill_tokens"] is not None]
    out["fresh_prefill_tokens"] = {"median": statistics.median(fresh) if fresh else 0}
    thirds = []
    for k in range(3):
        part = [s for s in session.shown if k / 3 <= s.fraction < (k + 1) / 3 or (k == 2 and s.fraction >= 1)]
        chars = session.chars_total / 3
        lat = [s.latency_ms for s in part]
        f = _figures(part, chars, 0, lat)
        f.pop("chars_typed")
        thirds.append(f)
    out["thirds"] = thirds
    versions: list[str] = []
    for r in rows:
        if r["model_version"] not in versions:
            versions.append(r["model_version"])
    out["model_versions"] = versions
    return out


class Typist:
    """Types files through a running server. `after_each` runs after every suggestion (the
    replay's learning hook); `on_shown` lets the demo print as it goes."""

    def __init__(
        self,
        client: ServerSession,
        on_shown: Callable[[Shown], None] | None = None,
        after_each: Callable[[], None] | None = None,
    ):
        self.client = client
        self.on_shown = on_shown
        self.after_each = after_each

    def type_files(self, files: list[tuple[str, str]]) -> Session:
        """`files`: (name, text) pairs, typed one after another."""
        session = Session(chars_total=sum(len(t) for _, t in files))
        done = 0
        for name, text in files:
            self._type_one(name, text, session, done)
            done += len(text)
        return session

    def _type_one(self, name: str, text: str, session: Session, done_before: int) -> None:
        c = self.client
        uri = Path(name).resolve().as_uri() if not name.startswith("file:") else name
        c.open(uri, "", 1)
        doc, version, pos = "", 1, 0

        def insert(chunk: str) -> None:
            nonlocal doc, version
            at = position_at(doc, len(doc))
            version += 1
            c.change(uri, version, at, at, chunk)
            doc += chunk

        for point in request_points(text):
            if point < pos:
                continue
            if point > pos:
                insert(text[pos:point])
                session.chars_typed += point - pos
                pos = point
            line, col = position_at(doc, pos)
            t0 = time.perf_counter()
            r = c.inline(uri, line, col)
            session.latencies.append((time.perf_counter() - t0) * 1000)
            session.requests += 1
            items = (r.get("result") or {}).get("items") or []
            if "error" in r:
                raise RuntimeError(f"server error at {name}:{line + 1}:{col + 1}: {r['error']}")
            if not items or not items[0]["insertText"]:
                continue
            s, sid = items[0]["insertText"], items[0]["command"]["arguments"][0]
            truth = text[pos:]
            if truth.startswith(s):
                insert(s)
                c.command("rltab.accepted", sid)
                outcome, n = "accepted", len(s)
            else:
                n = word_boundary_prefix(s, truth)
                if n:
                    insert(s[:n])
                    c.command("rltab.partiallyAccepted", sid, n)
                    outcome = "partial"
                else:
                    outcome = "rejected"
            shown = Shown(
                name, pos, (done_before + pos) / max(1, session.chars_total), s, outcome, n, session.latencies[-1], sid
            )
            pos += n
            session.shown.append(shown)
            if self.on_shown:
                self.on_shown(shown)
            if self.after_each:
                self.after_each()
        if pos < len(text):
            insert(text[pos:])
            session.chars_typed += len(text) - pos
        c.close_document(uri)
