"""The local SQLite ledger: suggestions, what became of them, and their rewards (architecture.md §5).

connection.py opens and migrates the file and runs transactions; writes.py records, reads.py
answers; records.py types the rows both hand over. `Ledger` is all three.
"""

from __future__ import annotations

from .connection import Connection
from .reads import Reads
from .records import OUTCOMES, CycleRow, EventRow, LearnableRow, SuggestionRecord, SuggestionRow
from .writes import Writes

__all__ = [
    "OUTCOMES",
    "Connection",
    "CycleRow",
    "EventRow",
    "LearnableRow",
    "Ledger",
    "SuggestionRecord",
    "SuggestionRow",
]


class Ledger(Writes, Reads):
    """The ledger of one home (`ledger.db`): one connection for this process's threads."""
