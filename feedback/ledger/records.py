"""The ledger's rows as typed records, made in one place: a suggestion as served (what the server
writes), and as the tables return them: a suggestion row, a learnable row, an event, an updater
cycle, a typing count. Reads hand these out; nothing else decodes the tables' columns."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict, cast

from .. import rewards as R

OUTCOMES = (R.ACCEPTED, R.PARTIAL, R.REJECTED)


@dataclass
class SuggestionRecord:
    """A suggestion as served. Token ids and text are kept only when learning is on."""

    model_version: str
    kind: str
    completion_chars: int
    latency_ms: float
    confidence: float = 0.0
    repo: str = ""
    file: str = ""
    language: str = ""
    prompt_ids: list[int] | None = None
    completion_ids: list[int] | None = None
    logprobs: list[float] | None = None
    prefix_text: str | None = None
    suffix_text: str | None = None
    completion_text: str | None = None
    prompt_tokens: int | None = None
    prefill_tokens: int | None = None
    healed: int = 0
    syntax_error: bool = False  # dropped by compiler feedback: never shown, an automatic reward
    tokenizer: str | None = None  # formats.tokenizer_digest of the ids' tokenizer
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    time: float = field(default_factory=time.time)


class SuggestionRow(TypedDict):
    """A row of the `suggestion` table (feedback/migrations.py), as reads return it. JSON columns
    (token ids, log-probs) are text; learning-only columns are None while learning is off."""

    id: str
    time: float
    model_version: str
    repo: str | None
    file: str | None
    language: str | None
    kind: str
    completion_chars: int
    latency_ms: float
    confidence: float | None
    prompt_ids: str | None
    completion_ids: str | None
    logprobs: str | None
    prefix_text: str | None
    suffix_text: str | None
    completion_text: str | None
    outcome: str | None
    accepted_chars: int | None
    retention: float | None
    reward: float | None
    demonstration: str | None
    outcome_source: str | None
    prompt_tokens: int | None
    prefill_tokens: int | None
    trained_in: str | None
    healed: int | None
    tokenizer: str | None


class LearnableRow(SuggestionRow):
    seq: int  # the row's insertion order (rowid)


class EventRow(TypedDict):
    """A row of the `event` table: what happened to a suggestion, and when."""

    id: int
    suggestion_id: str
    kind: str  # accepted, partial, rejected, retention, demonstration
    accepted_chars: int | None
    retention: float | None
    time: float
    text: str | None  # what stood there (retention) or was written (demonstration); learning only
    source: str | None  # "explicit" (a client command) or "inferred" (from the edits)


class LastCycle(TypedDict):
    """One updater cycle as the status line shows it: published (`version`) or refused (`reason`)."""

    id: int
    time: float
    repo: str | None
    parent: str
    version: str | None
    reason: str


class CycleRow(LastCycle):
    """A row of `update_cycle`: the cycle, with what it used and the guard's figures."""

    events: int
    seconds: float
    report: dict  # the guard's figures (stored as JSON)


class TypingCount(TypedDict):
    """A row of `typing`: characters written in one hour while a version served a repository."""

    hour: int
    model_version: str
    repo: str | None
    chars: int


def suggestion_row(row: Mapping[str, Any]) -> SuggestionRow:
    return cast(SuggestionRow, dict(row))


def learnable_row(row: Mapping[str, Any]) -> LearnableRow:
    return cast(LearnableRow, dict(row))


def event_row(row: Mapping[str, Any]) -> EventRow:
    return cast(EventRow, dict(row))


def cycle_row(row: Mapping[str, Any]) -> CycleRow:
    """The report column decoded from JSON."""
    out = dict(row)
    out["report"] = json.loads(out.get("report") or "{}")
    return cast(CycleRow, out)


def last_cycle_row(row: Mapping[str, Any]) -> LastCycle:
    return cast(LastCycle, dict(row))
