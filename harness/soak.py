"""A long day in minutes: a file typed a character at a time through `rltab serve` (one
incremental didChange per key, an inline completion every few keys), the server's resident memory
read every thousand messages. What bench/soak.py reports and tests/test_soak.py bounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rltab.server.documents import position_at

from .lsp_client import ServerSession


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Soak:
    learning: bool
    messages: int = 0
    requests: int = 0
    rss: list[tuple[int, float]] = field(default_factory=list)  # (messages so far, RSS MB)

    def mb_per_1000(self, skip: int = 1) -> float:
        """Growth per 1,000 messages, from the `skip`-th reading on (the first covers warm-up)."""
        (m0, r0), (m1, r1) = self.rss[skip], self.rss[-1]
        return (r1 - r0) / (m1 - m0) * 1000

    def as_dict(self) -> dict:
        return {
            "learning": self.learning,
            "messages": self.messages,
            "requests": self.requests,
            "rss_mb": [[m, round(r, 1)] for m, r in self.rss],
            "mb_per_1000_messages": round(self.mb_per_1000(), 3),  # from the second reading on
        }


def soak(
    home: Path,
    text: str,
    learning: bool,
    workspace: Path | None = None,
    request_every: int = 10,
    read_every: int = 1000,
    rewrite_every: int = 0,
    env: dict | None = None,
) -> Soak:
    """Types `text` into a new file (in `workspace`, which the server indexes, when given). With
    `rewrite_every`, the file is emptied after that many characters and typing goes on in it (a
    day of editing: the document stays the size of one piece of work)."""
    result = Soak(learning)
    session = ServerSession(home, env=env)
    try:
        session.initialize({"learning": {"enabled": learning}}, folders=[str(workspace)] if workspace else None)
        uri = ((workspace or home) / "soak_typed.py").as_uri()
        session.open(uri, "", 1)
        doc, version = "", 1
        for i, ch in enumerate(text):
            if rewrite_every and len(doc) >= rewrite_every:
                version += 1
                session.change(uri, version, (0, 0), position_at(doc, len(doc)), "")
                doc = ""
                result.messages += 1
            at = position_at(doc, len(doc))
            version += 1
            session.change(uri, version, at, at, ch)
            doc += ch
            result.messages += 1
            if i % request_every == request_every - 1:
                line, col = position_at(doc, len(doc))
                session.inline(uri, line, col)  # answered after every edit before it: a sync point
                result.messages += 1
                result.requests += 1
                if result.messages // read_every > len(result.rss) - 1:
                    assert session.proc is not None
                    result.rss.append((result.messages, rss_mb(session.proc.pid)))
        return result
    finally:
        session.close()
