"""Running status counts: what the status line shows after every edit, without a scan."""

from __future__ import annotations

from dataclasses import dataclass

from .. import rewards as R
from .records import SuggestionRow


@dataclass
class Tally:
    """Per model version, suggestions shown and taken (accepted or partly); learnable rows pending."""

    shown: dict[str, int]
    taken: dict[str, int]
    pending: int

    def recorded(self, version: str, outcome: str | None, learnable: bool) -> None:
        """A new suggestion: shown (outcome None), or settled at once (silent, invalid)."""
        if outcome is None:
            self.shown[version] = self.shown.get(version, 0) + 1
        elif learnable:
            self.pending += 1

    def settled(self, row: SuggestionRow, kind: str) -> None:
        """`row` (as it was) now has outcome `kind`."""
        was, version = row["outcome"], row["model_version"]
        taken = (kind in (R.ACCEPTED, R.PARTIAL)) - (was in (R.ACCEPTED, R.PARTIAL))
        self.taken[version] = self.taken.get(version, 0) + taken
        if was is None and row["prompt_ids"] is not None and row["trained_in"] is None:
            self.pending += 1
