"""`rltab export-ledger`: the learnable events, for training somewhere else (a team's GPU box).

What leaves: only rows recorded while learning was on (the ledger's privacy rules already kept
secret-named files and secret-looking text out of them), settled, optionally of one repository;
file paths relative to their repository; no editor window text beyond what the updater itself
trains on. Token ids ARE the user's code: an export is as private as the code it came from.

Columns are the ledger's names, with the JSON-encoded lists decoded (`prompt_ids`,
`completion_ids`, `logprobs`); `learnable_rows` turns an export back into the rows the updater's
`from_rows` reads, so the training step runs unchanged on them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from .ledger import LearnableRow, Ledger

COLUMNS = (
    "id",
    "time",
    "repo",
    "file",
    "language",
    "kind",
    "model_version",
    "prompt_ids",
    "completion_ids",
    "logprobs",
    "healed",
    "outcome",
    "completion_chars",
    "accepted_chars",
    "retention",
    "reward",
    "demonstration",
    "trained_in",
)
LISTS = ("prompt_ids", "completion_ids", "logprobs")


def records(ledger: Ledger, repo: str | None = None) -> Iterator[dict]:
    """Learnable rows (recorded while learning, settled), oldest first, as plain records."""
    for row in ledger.recorded_for_learning(repo):
        plain: dict = dict(row)
        out = {k: plain.get(k) for k in COLUMNS}
        for k in LISTS:
            out[k] = json.loads(plain[k]) if plain[k] else []
        out["file"] = _relative(row["file"], row["repo"])
        yield out


def _relative(file: str | None, repo: str | None) -> str | None:
    if not file:
        return file
    try:
        return Path(file).relative_to(repo).as_posix() if repo else Path(file).name
    except ValueError:  # a file outside its recorded repository: its name only
        return Path(file).name


def write(ledger: Ledger, out: Path, repo: str | None = None) -> int:
    """Write the export (JSONL, or Parquet for a `.parquet` name); returns how many rows."""
    rows = list(records(ledger, repo))
    if out.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as e:
            raise ImportError("Parquet needs pyarrow (pip install pyarrow); or write .jsonl") from e
        pq.write_table(pa.Table.from_pylist(rows), out)
    else:
        with out.open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    out.chmod(0o600)  # the user's code, tokenized
    return len(rows)


def learnable_rows(path: Path) -> list[LearnableRow]:
    """An export read back as the ledger rows the updater trains on (oldest first). ValueError
    (or ImportError: Parquet without pyarrow) for a file that is not one."""
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as e:
            raise ImportError("reading Parquet needs pyarrow (pip install pyarrow)") from e
        raw = pq.read_table(path).to_pylist()
    else:
        raw = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    raw.append(json.loads(line))
                except ValueError as e:
                    raise ValueError(f"{path}, line {n}: not JSON ({e})") from None
    rows = []
    for seq, r in enumerate(raw):
        if not isinstance(r, dict) or "prompt_ids" not in r:
            raise ValueError(f"{path}: row {seq + 1} is not an exported event (no prompt_ids)")
        row = {k: r.get(k) for k in COLUMNS} | {"seq": seq}  # an older export's missing columns: None
        for k in LISTS:
            row[k] = json.dumps(r.get(k) or [])
        rows.append(cast(LearnableRow, row))
    return rows
